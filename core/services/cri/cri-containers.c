/* cri-containers.c — runtime.v1.RuntimeService's containers: create (snapshot, spec,
 * berth container), start (task with CRI-format logs), stop, remove, list, status,
 * resources and statistics (ExecSync is in cri-exec-sync.c). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "berth-cri.h"
#include "services/containerd/berth-api-ops.h"
#include "services/containerd/berth-api-util.h"
#include "daemon/berth-cgroup.h"
#include "image/berth-image-store.h"
#include "image/berth-snapshots.h"
#include "image/berth-spec.h"

#define SPEC_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Spec"

typedef Containerd__Services__Containers__V1__Container BerthContainer;

/* ---------------- containers' output without a log ---------------- */

/* A container created without a log path writes its output (in the CRI log format, or a
 * terminal's as it is) to a FIFO, <state>/cri/output/<id>, that its shim holds open
 * read-write and non-blocking: while nobody reads, what does not fit is dropped, as
 * containerd drops the output of such a container; Attach reads it from the moment of
 * attaching. */
char *
berth_cri_output_open (BerthDaemon *daemon, const char *id, GError **error)
{
  g_autofree char *dir = berth_cri_path (daemon, "output", NULL);
  g_autofree char *path = berth_cri_path (daemon, "output", id);
  if (g_mkdir_with_parents (dir, 0700) < 0)
    return berth_throw_errno (error, "creating %s", dir), NULL;
  unlink (path);
  if (mkfifo (path, 0600) < 0)
    return berth_throw_errno (error, "creating FIFO %s", path), NULL;
  return g_steal_pointer (&path);
}

void
berth_cri_output_remove (BerthDaemon *daemon, const char *id)
{
  g_autofree char *path = berth_cri_path (daemon, "output", id);
  unlink (path);
}

static gint64
now_ns (void)
{
  return g_get_real_time () * 1000;
}

/* ---------------- helpers ---------------- */

static GPtrArray *
container_records (BerthDaemon *daemon, GError **error)
{
  return berth_cri_record_list (daemon, "containers", &berth__cri__v1__container_record__descriptor, error);
}

static gboolean
snapshots_for (BerthDaemon *daemon, const char *id, BerthSnapshots *snaps, char **name_out, GError **error)
{
  g_autoptr (ProtobufCMessage) owned =
    (ProtobufCMessage *) berth_schema_container_read (berth_daemon_get_metadata (daemon), BERTH_CRI_NAMESPACE, id, error);
  if (owned == NULL)
    return FALSE;
  *name_out = g_strdup (((BerthContainer *) owned)->snapshotter);
  return berth_snapshots_init (snaps, daemon, BERTH_CRI_NAMESPACE, *name_out, NULL, error);
}

/* The OCI LinuxResources of the CRI's resources: memory and CPU. */
static JsonObject *
resources_json (const Runtime__V1__LinuxContainerResources *r)
{
  JsonObject *resources = json_object_new ();
  JsonObject *memory = json_object_new ();
  JsonObject *cpu = json_object_new ();
  json_object_set_object_member (resources, "memory", memory);
  json_object_set_object_member (resources, "cpu", cpu);
  if (r == NULL)
    return resources;
  if (r->memory_limit_in_bytes > 0)
    json_object_set_int_member (memory, "limit", r->memory_limit_in_bytes);
  if (r->memory_swap_limit_in_bytes > 0)
    json_object_set_int_member (memory, "swap", r->memory_swap_limit_in_bytes);
  if (r->cpu_shares > 0)
    json_object_set_int_member (cpu, "shares", r->cpu_shares);
  if (r->cpu_quota > 0)
    json_object_set_int_member (cpu, "quota", r->cpu_quota);
  if (r->cpu_period > 0)
    json_object_set_int_member (cpu, "period", r->cpu_period);
  if (r->cpuset_cpus && *r->cpuset_cpus)
    json_object_set_string_member (cpu, "cpus", r->cpuset_cpus);
  if (r->cpuset_mems && *r->cpuset_mems)
    json_object_set_string_member (cpu, "mems", r->cpuset_mems);
  return resources;
}

static char *
container_name (const Runtime__V1__ContainerMetadata *m)
{
  return g_strdup_printf ("%s_%u", m->name, m->attempt);
}

static GStrv
counted_strv (char **strings, size_t n)
{
  GStrv out = g_new0 (char *, n + 1);
  for (size_t i = 0; i < n; i++)
    out[i] = g_strdup (strings[i]);
  return out;
}

JsonArray *
cri_json_strings (char **strings, size_t n)
{
  JsonArray *array = json_array_new ();
  for (size_t i = 0; i < n; i++)
    json_array_add_string_element (array, strings[i]);
  return array;
}

static const char *
proc_ns (GPtrArray *keep, guint32 pid, const char *type)
{
  char *path = g_strdup_printf ("/proc/%u/ns/%s", pid, type);
  g_ptr_array_add (keep, path);
  return path;
}

/* ---------------- spec ---------------- */

/* Host devices the CRI maps into the container: a node in linux.devices and an allow
 * rule in the device cgroup, with the permissions asked for (default "rwm"). */
static gboolean
spec_devices (JsonObject *spec, const Runtime__V1__ContainerConfig *config, GError **error)
{
  JsonObject *linux_obj = json_object_get_object_member (spec, "linux");
  JsonObject *resources = json_object_get_object_member (linux_obj, "resources");
  for (size_t i = 0; i < config->n_devices; i++)
    {
      const Runtime__V1__Device *d = config->devices[i];
      struct stat st;
      if (d->host_path == NULL || stat (d->host_path, &st) < 0)
        return berth_throw_errno (error, "device %s", d->host_path ? d->host_path : "");
      if (!S_ISCHR (st.st_mode) && !S_ISBLK (st.st_mode))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s is not a device", d->host_path);
      if (d->container_path == NULL || !g_path_is_absolute (d->container_path))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "device %s: container path must be absolute",
                            d->host_path);
      const char *type = S_ISCHR (st.st_mode) ? "c" : "b";
      const char *access = d->permissions && *d->permissions ? d->permissions : "rwm";
      if (strspn (access, "rwm") != strlen (access))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "device %s: permissions \"%s\" are not of r, w, m",
                            d->host_path, access);
      if (!json_object_has_member (linux_obj, "devices"))
        json_object_set_array_member (linux_obj, "devices", json_array_new ());
      JsonObject *node = json_object_new ();
      json_object_set_string_member (node, "path", d->container_path);
      json_object_set_string_member (node, "type", type);
      json_object_set_int_member (node, "major", major (st.st_rdev));
      json_object_set_int_member (node, "minor", minor (st.st_rdev));
      json_object_set_int_member (node, "fileMode", st.st_mode & 07777);
      json_object_set_int_member (node, "uid", 0);
      json_object_set_int_member (node, "gid", 0);
      json_array_add_object_element (json_object_get_array_member (linux_obj, "devices"), node);
      if (!json_object_has_member (resources, "devices"))
        json_object_set_array_member (resources, "devices", json_array_new ());
      JsonObject *rule = json_object_new ();
      json_object_set_boolean_member (rule, "allow", TRUE);
      json_object_set_string_member (rule, "type", type);
      json_object_set_int_member (rule, "major", major (st.st_rdev));
      json_object_set_int_member (rule, "minor", minor (st.st_rdev));
      json_object_set_string_member (rule, "access", access);
      json_array_add_object_element (json_object_get_array_member (resources, "devices"), rule);
    }
  return TRUE;
}

/* Mount propagation the CRI asks for on each bind mount, as containerd does: rprivate
 * (runc would otherwise leave it a slave of the host's), rslave (host to container) or
 * rshared (both ways), and the root's propagation to match the last two. */
static void
spec_propagation (JsonObject *spec, const Runtime__V1__ContainerConfig *config)
{
  JsonArray *mounts = json_object_get_array_member (spec, "mounts");
  const char *root_propagation = NULL;
  for (size_t i = 0; i < config->n_mounts; i++)
    {
      const Runtime__V1__Mount *m = config->mounts[i];
      const char *mode = m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL ? "rshared"
                         : m->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER ? "rslave"
                                                                                                         : "rprivate";
      for (guint k = 0; mounts != NULL && k < json_array_get_length (mounts); k++)
        {
          JsonObject *mount = json_array_get_object_element (mounts, k);
          if (g_strcmp0 (json_object_get_string_member_with_default (mount, "destination", NULL), m->container_path) != 0)
            continue;
          JsonArray *options = json_object_get_array_member (mount, "options");
          if (options != NULL)
            json_array_add_string_element (options, mode);
        }
      if (!g_str_equal (mode, "rprivate") && (root_propagation == NULL || g_str_equal (mode, "rshared")))
        root_propagation = mode;
    }
  if (root_propagation != NULL)
    json_object_set_string_member (json_object_get_object_member (spec, "linux"), "rootfsPropagation", root_propagation);
}

static JsonNode *
container_spec (BerthDaemon *daemon, const CriSandbox *sandbox, const CriContainer *record, BerthImageInfo *image,
                GPtrArray *rootfs, GError **error)
{
  const Runtime__V1__ContainerConfig *config = record->config;
  const Runtime__V1__LinuxContainerSecurityContext *sc = config->linux ? config->linux->security_context : NULL;
  const Runtime__V1__NamespaceOption *sandbox_ns =
    sandbox->config->linux && sandbox->config->linux->security_context
      ? sandbox->config->linux->security_context->namespace_options : NULL;
  gboolean host_net = sandbox_ns && sandbox_ns->network == RUNTIME__V1__NAMESPACE_MODE__NODE;

  /* Kubernetes' command and args are the image's Entrypoint and Cmd. */
  g_autoptr (JsonNode) image_config = json_node_copy (image->config);
  JsonObject *root = json_node_get_object (image_config);
  JsonObject *cfg = berth_json_member_object (root, "config");
  if (cfg == NULL)
    {
      cfg = json_object_new ();
      json_object_set_object_member (root, "config", cfg);
    }
  if (config->n_command > 0)
    {
      json_object_set_array_member (cfg, "Entrypoint", cri_json_strings (config->command, config->n_command));
      json_object_set_array_member (cfg, "Cmd", cri_json_strings (config->args, config->n_args));
    }
  else if (config->n_args > 0)
    json_object_set_array_member (cfg, "Cmd", cri_json_strings (config->args, config->n_args));

  g_autoptr (GPtrArray) env = g_ptr_array_new_with_free_func (g_free);
  for (size_t i = 0; i < config->n_envs; i++)
    g_ptr_array_add (env, g_strdup_printf ("%s=%s", config->envs[i]->key, config->envs[i]->value));
  g_ptr_array_add (env, NULL);
  g_autoptr (GPtrArray) mounts = g_ptr_array_new_with_free_func (g_free);
  gboolean has_hostname = FALSE, has_hosts = FALSE, has_resolv = FALSE;
  for (size_t i = 0; i < config->n_mounts; i++)
    {
      const Runtime__V1__Mount *m = config->mounts[i];
      if (m->image != NULL && m->image->image && *m->image->image)
        return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "image volume mounts are not supported"), NULL;
      has_hostname |= g_strcmp0 (m->container_path, "/etc/hostname") == 0;
      has_hosts |= g_strcmp0 (m->container_path, "/etc/hosts") == 0;
      has_resolv |= g_strcmp0 (m->container_path, "/etc/resolv.conf") == 0;
      g_ptr_array_add (mounts, g_strdup_printf ("%s:%s:%s", m->host_path, m->container_path, m->readonly ? "ro" : "rw"));
    }
  g_autofree char *dir = berth_cri_sandbox_dir (daemon, sandbox->id);
  const struct { const char *name; gboolean given; } files[] = {
    { "hostname", has_hostname }, { "hosts", has_hosts }, { "resolv.conf", has_resolv },
  };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    if (!files[i].given)
      g_ptr_array_add (mounts, g_strdup_printf ("%s/%s:/etc/%s:%s", dir, files[i].name, files[i].name,
                                                sc && sc->readonly_rootfs ? "ro" : "rw"));
  g_ptr_array_add (mounts, NULL);

  g_auto (GStrv) cap_add = NULL, cap_drop = NULL;
  if (sc && sc->capabilities)
    {
      cap_add = counted_strv (sc->capabilities->add_capabilities, sc->capabilities->n_add_capabilities);
      cap_drop = counted_strv (sc->capabilities->drop_capabilities, sc->capabilities->n_drop_capabilities);
    }
  g_autofree char *user = NULL;
  if (sc && sc->run_as_username && *sc->run_as_username)
    user = sc->run_as_group ? g_strdup_printf ("%s:%" G_GINT64_FORMAT, sc->run_as_username, sc->run_as_group->value)
                            : g_strdup (sc->run_as_username);
  else if (sc && sc->run_as_user)
    user = sc->run_as_group ? g_strdup_printf ("%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT, sc->run_as_user->value,
                                               sc->run_as_group->value)
                            : g_strdup_printf ("%" G_GINT64_FORMAT, sc->run_as_user->value);
  else if (sc && sc->run_as_group)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "run_as_group needs run_as_user or run_as_username"), NULL;
  const char *seccomp = "unconfined", *apparmor = NULL;
  if (sc && (!berth_cri_seccomp (sc->seccomp, berth_cri_legacy_seccomp_container (sc), &seccomp, error)
             || !berth_cri_apparmor (sc->apparmor, berth_cri_legacy_apparmor_container (sc), &apparmor, error)))
    return NULL;
  const Runtime__V1__LinuxSandboxSecurityContext *sandbox_sc =
    sandbox->config->linux ? sandbox->config->linux->security_context : NULL;
  /* As containerd: a pod kubelet did not make privileged holds no privileged container. */
  if (sc && sc->privileged && !(sandbox_sc && sandbox_sc->privileged))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no privileged container allowed in sandbox %s",
                        sandbox->id), NULL;
  g_autofree char *what = g_strdup_printf ("container %s", record->id);
  if (!berth_cri_check_rootless (daemon, what, sc && sc->privileged,
                                 config->linux && config->linux->resources ? config->linux->resources->oom_score_adj : 0,
                                 error))
    return NULL;
  const char *parent = sandbox->config->linux ? sandbox->config->linux->cgroup_parent : NULL;
  g_autofree char *cgroups = parent && *parent ? g_build_path ("/", parent, record->id, NULL) : NULL;
  BerthSpecOptions opts = {
    .env = (GStrv) env->pdata,
    .mounts = (GStrv) mounts->pdata,
    .cap_add = cap_add,
    .cap_drop = cap_drop,
    .workdir = config->working_dir && *config->working_dir ? config->working_dir : NULL,
    .user = user,
    .hostname = host_net ? NULL : sandbox->config->hostname && *sandbox->config->hostname ? sandbox->config->hostname : NULL,
    .read_only = sc && sc->readonly_rootfs,
    .privileged = sc && sc->privileged,
    .terminal = config->tty,
    .seccomp_profile = seccomp,
    .cgroups_path = cgroups,
    .namespace = BERTH_CRI_NAMESPACE,
    .id = record->id,
    .image_name = image->name,
  };
  g_autoptr (JsonNode) node = berth_spec_generate_on_mounts (&opts, image_config, rootfs, error);
  if (node == NULL)
    return NULL;
  JsonObject *spec = json_node_get_object (node);

  /* Join the pod: its network namespace file, berth-pause's IPC and UTS (and PID when
   * the pod shares one). */
  g_autoptr (GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  berth_cri_spec_set_namespace (spec, "network", host_net ? "" : sandbox->netns);
  berth_cri_spec_set_namespace (spec, "uts", host_net ? "" : proc_ns (keep, sandbox->pid, "uts"));
  berth_cri_spec_set_namespace (spec, "ipc", sandbox_ns && sandbox_ns->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE
                                               ? "" : proc_ns (keep, sandbox->pid, "ipc"));
  const Runtime__V1__NamespaceOption *own = sc ? sc->namespace_options : NULL;
  Runtime__V1__NamespaceMode pid_mode = own ? own->pid : RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  if (pid_mode == RUNTIME__V1__NAMESPACE_MODE__POD)
    berth_cri_spec_set_namespace (spec, "pid", proc_ns (keep, sandbox->pid, "pid"));
  else if (pid_mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
    berth_cri_spec_set_namespace (spec, "pid", "");
  else if (pid_mode == RUNTIME__V1__NAMESPACE_MODE__TARGET)
    {
      g_autoptr (BerthTask) target = berth_cri_task (daemon, own->target_id);
      if (target == NULL)
        return berth_throw (error, BERTH_ERROR_NOT_FOUND, "target container %s is not running", own->target_id), NULL;
      berth_cri_spec_set_namespace (spec, "pid", proc_ns (keep, berth_task_get_pid (target), "pid"));
    }

  JsonObject *linux_obj = json_object_get_object_member (spec, "linux");
  JsonObject *resources = json_object_get_object_member (linux_obj, "resources");
  g_autoptr (JsonObject) wanted = resources_json (config->linux ? config->linux->resources : NULL);
  json_object_set_object_member (resources, "memory", json_object_ref (json_object_get_object_member (wanted, "memory")));
  json_object_set_object_member (resources, "cpu", json_object_ref (json_object_get_object_member (wanted, "cpu")));
  if (config->linux && config->linux->resources && config->linux->resources->oom_score_adj != 0)
    json_object_set_int_member (json_object_get_object_member (spec, "process"), "oomScoreAdj",
                                config->linux->resources->oom_score_adj);
  if (sc && sc->n_masked_paths > 0)
    json_object_set_array_member (linux_obj, "maskedPaths", cri_json_strings (sc->masked_paths, sc->n_masked_paths));
  if (sc && sc->n_readonly_paths > 0)
    json_object_set_array_member (linux_obj, "readonlyPaths", cri_json_strings (sc->readonly_paths, sc->n_readonly_paths));
  JsonObject *process = json_object_get_object_member (spec, "process");
  /* The CRI's say, both ways (berth's own default is TRUE); privileged never has it. */
  json_object_set_boolean_member (process, "noNewPrivileges", sc && sc->no_new_privs && !sc->privileged);
  if (apparmor != NULL && !(sc && sc->privileged))
    json_object_set_string_member (process, "apparmorProfile", apparmor);
  /* The request's supplemental groups, after the primary and the image's (/etc/group). */
  JsonObject *user_obj = json_object_get_object_member (process, "user");
  if (sc && sc->n_supplemental_groups > 0 && user_obj != NULL)
    {
      JsonArray *gids = json_object_get_array_member (user_obj, "additionalGids");
      if (gids == NULL)
        {
          gids = json_array_new ();
          json_object_set_array_member (user_obj, "additionalGids", gids);
        }
      for (size_t i = 0; i < sc->n_supplemental_groups; i++)
        {
          gboolean seen = FALSE;
          for (guint j = 0; j < json_array_get_length (gids) && !seen; j++)
            seen = json_array_get_int_element (gids, j) == sc->supplemental_groups[i];
          if (!seen)
            json_array_add_int_element (gids, sc->supplemental_groups[i]);
        }
    }
  spec_propagation (spec, config);
  if (!spec_devices (spec, config, error))
    return NULL;
  return g_steal_pointer (&node);
}

/* ---------------- create ---------------- */

typedef struct {
  const CriContainer *record;
  char *clash;
} ContainerReserve;

static gboolean
scan_container (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  ContainerReserve *r = user_data;
  CriContainer *c = berth_api_message_unpack (&berth__cri__v1__container_record__descriptor, value, len);
  if (c != NULL && c->config && c->config->metadata && g_str_equal (c->sandbox_id, r->record->sandbox_id))
    {
      g_autofree char *a = container_name (c->config->metadata);
      g_autofree char *b = container_name (r->record->config->metadata);
      if (g_str_equal (a, b))
        r->clash = g_strdup (c->id);
    }
  berth_grpc_message_free ((ProtobufCMessage *) c);
  return r->clash == NULL;
}

static gboolean
reserve_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  ContainerReserve *r = user_data;
  g_autofree char *prefix = berth_schema_cri_key (BERTH_CRI_NAMESPACE, "containers", NULL);
  if (!berth_metadata_txn_foreach (txn, prefix, scan_container, r, error))
    return FALSE;
  if (r->clash != NULL)
    {
      g_autofree char *name = container_name (r->record->config->metadata);
      return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "failed to reserve container name \"%s\" in sandbox %s: "
                          "name is reserved for \"%s\"", name, r->record->sandbox_id, r->clash);
    }
  g_autofree char *key = g_strdup_printf ("%s%s", prefix, r->record->id);
  return berth_schema_put (txn, key, &r->record->base, error);
}

static Runtime__V1__PodSandboxState
sandbox_ready (BerthDaemon *daemon, const CriSandbox *sandbox)
{
  if (sandbox->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
    return FALSE;
  g_autoptr (BerthTask) task = berth_cri_task (daemon, sandbox->id);
  return task != NULL && berth_task_get_status (task, NULL, NULL) == BERTH_TASK_STATUS_RUNNING;
}

/* The berth container behind a CRI container: its spec, image and snapshot. */
static gboolean
create_berth_container (BerthDaemon *daemon, const CriContainer *record, const char *image_name, const char *snapshotter,
                        const char *runtime_handler, JsonNode *spec, GError **error)
{
  gsize len = 0;
  g_autofree char *text = berth_json_to_text (spec, &len);
  BerthContainer c = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
  Containerd__Services__Containers__V1__Container__Runtime runtime =
    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry kind =
    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry sandbox =
    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry *labels[] = { &kind, &sandbox };
  kind.key = (char *) "io.cri-containerd.kind";
  kind.value = (char *) "container";
  sandbox.key = (char *) "io.kubernetes.cri.sandbox-id";
  sandbox.value = record->sandbox_id;
  g_autoptr (ProtobufCMessage) options =
    (ProtobufCMessage *) berth_cri_runtime_options (daemon, runtime_handler, (const char **) &runtime.name);
  runtime.options = (Google__Protobuf__Any *) options;
  any.type_url = (char *) SPEC_TYPE_URL;
  any.value.data = (guint8 *) text;
  any.value.len = len;
  c.id = record->id;
  c.image = (char *) image_name;
  c.runtime = &runtime;
  c.spec = &any;
  c.snapshotter = (char *) snapshotter;
  c.snapshot_key = record->id;
  c.labels = labels;
  c.n_labels = G_N_ELEMENTS (labels);
  g_autoptr (ProtobufCMessage) created =
    (ProtobufCMessage *) berth_api_ops_container_create (daemon, BERTH_CRI_NAMESPACE, &c, error);
  return created != NULL;
}

ProtobufCMessage *
cri_create_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__CreateContainerRequest *req = (gpointer) request;
  const Runtime__V1__ContainerConfig *config = req->config;
  if (config == NULL || config->metadata == NULL || config->metadata->name == NULL || !*config->metadata->name)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "container config must include metadata with a name"), NULL;
  if (config->image == NULL || config->image->image == NULL || !*config->image->image)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "container config must name an image"), NULL;
  g_autoptr (ProtobufCMessage) owned_sandbox = (ProtobufCMessage *) berth_cri_sandbox_get (daemon, req->pod_sandbox_id,
                                                                                          error);
  if (owned_sandbox == NULL)
    return NULL;
  const CriSandbox *sandbox = (CriSandbox *) owned_sandbox;
  if (!sandbox_ready (daemon, sandbox))
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "sandbox %s is not ready", sandbox->id), NULL;
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  g_autoptr (BerthImageInfo) image = berth_cri_image_lookup (daemon, config->image->image, cancellable, error);
  if (image == NULL)
    return NULL;

  CriContainer *record = berth_grpc_message_new (&berth__cri__v1__container_record__descriptor);
  g_autoptr (ProtobufCMessage) owned = &record->base;
  record->id = berth_cri_new_id ();
  record->sandbox_id = g_strdup (sandbox->id);
  record->config = berth_api_message_copy (&config->base);
  record->image_ref = g_strdup (image->name);
  record->image_id = g_strdup (image->config_digest);
  record->created_at = now_ns ();
  record->reason = g_strdup ("");
  record->message = g_strdup ("");
  const char *log_dir = sandbox->config->log_directory;
  record->log_path = log_dir && *log_dir && config->log_path && *config->log_path
                       ? g_build_filename (log_dir, config->log_path, NULL) : g_strdup ("");
  if (config->linux && config->linux->resources)
    record->resources = berth_api_message_copy (&config->linux->resources->base);
  ContainerReserve reserve = { record, NULL };
  gboolean reserved = berth_metadata_write (berth_daemon_get_metadata (daemon), reserve_txn, &reserve, error);
  g_free (reserve.clash);
  if (!reserved)
    return NULL;

  BerthSnapshots snaps;
  g_autoptr (GPtrArray) mounts = NULL;
  g_autoptr (JsonNode) spec = NULL;
  gboolean ok = berth_snapshots_init (&snaps, daemon, BERTH_CRI_NAMESPACE, NULL, NULL, error)
                && (mounts = berth_snapshots_create (&snaps, record->id, image->chain_id, NULL, FALSE, cancellable,
                                                     error)) != NULL;
  gboolean prepared = ok;
  ok = ok && (spec = container_spec (daemon, sandbox, record, image, mounts, error)) != NULL
       && create_berth_container (daemon, record, image->name, snaps.name, sandbox->runtime_handler, spec, error);
  if (!ok)
    {
      if (prepared)
        berth_snapshots_remove (&snaps, record->id, NULL, NULL);
      berth_cri_record_delete (daemon, "containers", record->id, NULL);
      return NULL;
    }
  Runtime__V1__CreateContainerResponse *response = berth_grpc_message_new (&runtime__v1__create_container_response__descriptor);
  response->container_id = g_strdup (record->id);
  return &response->base;
}

/* ---------------- start, stop, remove ---------------- */

static void
record_exit (CriContainer *record, const BerthExitStatus *exit)
{
  record->finished_at = exit->exited_at > 0 ? exit->exited_at * 1000 : now_ns ();
  record->exit_code = (gint32) exit->exit_status;
  berth_cri_set_string (&record->reason, exit->exit_status == 0 ? "Completed" : "Error");
}

/* The stdout/stderr URI that makes @record's shim write @path. berth-shim (berthd's
 * default runtime) writes the CRI log format itself (cri://), a terminal's output as it
 * is (file://); another runtime (a shim v2, which knows containerd's schemes only) runs
 * berth-cri-log as containerd's binary:// logging driver. */
static char *
log_uri (BerthDaemon *daemon, const char *handler, gboolean tty, const char *path)
{
  const char *runtime_name = NULL;
  g_autoptr (ProtobufCMessage) options = (ProtobufCMessage *) berth_cri_runtime_options (daemon, handler, &runtime_name);
  BerthRuntime *runtime = berth_daemon_get_runtime (daemon, runtime_name, NULL);
  if (runtime == NULL || runtime == berth_daemon_get_runtime (daemon, NULL, NULL))
    return g_strdup_printf ("%s%s", tty ? "file://" : "cri://", path);
  g_autofree char *logger = g_build_filename (berth_daemon_get_config (daemon)->libexec_dir, "berth-cri-log", NULL);
  g_autofree char *escaped = g_uri_escape_string (path, "/", FALSE);
  return g_strdup_printf ("binary://%s?%s", logger, escaped);
}

ProtobufCMessage *
cri_start_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__StartContainerRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  CriContainer *record = (CriContainer *) owned;
  berth_cri_lock (record->id);
  g_autoptr (ProtobufCMessage) owned_sandbox = NULL;
  BerthSnapshots snaps;
  g_autofree char *snapshotter = NULL, *backend_key = NULL, *log = NULL, *stdin_path = NULL;
  g_autofree char *fifo = NULL;
  g_autoptr (GPtrArray) mounts = NULL;
  g_autoptr (BerthTask) task = NULL;
  gboolean ok = FALSE;
  if (record->started_at != 0 || record->finished_at != 0)
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "container %s is not in created state", record->id);
      goto out;
    }
  owned_sandbox = (ProtobufCMessage *) berth_cri_sandbox_get (daemon, record->sandbox_id, error);
  if (owned_sandbox == NULL)
    goto out;
  if (!sandbox_ready (daemon, (CriSandbox *) owned_sandbox))
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "sandbox %s of container %s is not ready", record->sandbox_id,
                   record->id);
      goto out;
    }
  if (!snapshots_for (daemon, record->id, &snaps, &snapshotter, error))
    goto out;
  backend_key = berth_snapshots_backend_key (&snaps, record->id);
  mounts = berth_snapshotter_mounts (snaps.backend, backend_key, NULL, error);
  if (mounts == NULL)
    goto out;
  if (*record->log_path != '\0')
    {
      g_autofree char *parent = g_path_get_dirname (record->log_path);
      if (g_mkdir_with_parents (parent, 0755) < 0)
        {
          berth_throw_errno (error, "creating log directory %s", parent);
          goto out;
        }
    }
  /* No log: the output goes to a FIFO Attach can read (dropped while nobody does). */
  else if ((fifo = berth_cri_output_open (daemon, record->id, error)) == NULL)
    goto out;
  log = log_uri (daemon, ((CriSandbox *) owned_sandbox)->runtime_handler, record->config->tty,
                 fifo ? fifo : record->log_path);
  if (record->config->stdin && (stdin_path = berth_cri_stdin_open (daemon, record->id, error)) == NULL)
    goto out;
  BerthStdio stdio = { stdin_path, log, log, record->config->tty };
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  task = berth_api_ops_task_create (daemon, BERTH_CRI_NAMESPACE, record->id, mounts, &stdio, NULL, cancellable, error);
  if (task != NULL && berth_api_ops_task_start (daemon, task, NULL, NULL, cancellable, error))
    {
      record->started_at = now_ns ();
      ok = berth_cri_record_put (daemon, "containers", record->id, &record->base, error);
      goto out;
    }
  /* A container that failed to start is exited, with the reason. */
  if (task != NULL)
    berth_cri_task_destroy (daemon, task, NULL, NULL);
  record->started_at = record->finished_at = now_ns ();
  record->exit_code = 128;
  berth_cri_set_string (&record->reason, "StartError");
  berth_cri_set_string (&record->message, error && *error ? (*error)->message : "");
  berth_cri_record_put (daemon, "containers", record->id, &record->base, NULL);
out:
  berth_cri_unlock (record->id);
  return ok ? berth_grpc_message_new (&runtime__v1__start_container_response__descriptor) : NULL;
}

/* Polls until @exec_id (NULL: init) of @task exits or @timeout_ms passes (< 0: never).
 * FALSE on timeout or cancellation. */
gboolean
cri_wait_exit (BerthTask *task, const char *exec_id, gint64 timeout_ms, BerthExitStatus *exit, GCancellable *cancellable)
{
  gint64 deadline = timeout_ms < 0 ? G_MAXINT64 : g_get_monotonic_time () + timeout_ms * 1000;
  gulong sleep_us = 2000;
  while (berth_task_get_status (task, exec_id, exit) != BERTH_TASK_STATUS_STOPPED)
    {
      if (g_get_monotonic_time () >= deadline || g_cancellable_is_cancelled (cancellable))
        return FALSE;
      g_usleep (sleep_us);
      sleep_us = MIN (sleep_us * 2, 100000);
    }
  return TRUE;
}

/* Whether the signal @sig sent to @pid now would be dropped by the kernel: the process
 * is the init of its PID namespace (NSpid's last field 1) and has no handler for it. An
 * init gets no default action, so a SIGTERM it receives before it installs its handler
 * is lost. FALSE when unsure. */
static gboolean
signal_would_be_dropped (guint32 pid, int sig)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/status", pid);
  g_autofree char *text = NULL;
  if (pid == 0 || !g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  gboolean ns_init = FALSE, caught = TRUE;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "NSpid:"))
        {
          const char *last = strrchr (lines[i], '\t');
          ns_init = last != NULL && g_str_equal (last + 1, "1");
        }
      else if (g_str_has_prefix (lines[i], "SigCgt:"))
        {
          guint64 mask = g_ascii_strtoull (lines[i] + strlen ("SigCgt:"), NULL, 16);
          caught = (mask >> (sig - 1)) & 1;
        }
    }
  return ns_init && !caught;
}

static gint64
remaining_ms (gint64 deadline)
{
  return MAX (0, (deadline - g_get_monotonic_time ()) / 1000);
}

/* Stops the container's process (SIGTERM, then SIGKILL after @timeout seconds), records
 * its exit and deletes its task, which unmounts the rootfs. Idempotent. */
static gboolean
container_stop (BerthDaemon *daemon, CriContainer *record, gint64 timeout, GError **error)
{
  g_autoptr (BerthTask) task = berth_cri_task (daemon, record->id);
  if (task == NULL)
    return TRUE;
  BerthExitStatus exit = { 0 };
  BerthTaskStatus status = berth_task_get_status (task, NULL, &exit);
  if (status == BERTH_TASK_STATUS_RUNNING && timeout > 0)
    {
      /* A stop right after StartContainer can reach the container's init before it has
       * installed its SIGTERM handler (runc start returns before the process has
       * exec'd): the kernel drops the signal, and the stop used to wait the whole
       * timeout (60 s for kubelet and critest) for a process that would have exited at
       * once. So, while the signal would have been dropped, it is sent again as soon as
       * the process catches it; an init that never does waits the timeout, as on
       * containerd. */
      guint32 pid = berth_task_get_pid (task);
      gint64 deadline = g_get_monotonic_time () + timeout * G_USEC_PER_SEC;
      gboolean delivered = FALSE;
      do
        {
          gboolean dropped = signal_would_be_dropped (pid, SIGTERM);
          if (!delivered && !dropped)
            {
              g_autoptr (GError) local_error = NULL;
              if (!berth_task_kill (task, NULL, SIGTERM, FALSE, NULL, &local_error))
                g_debug ("SIGTERM to container %s: %s", record->id, local_error->message);
              /* Checked again after sending: the handler may have come just before. */
              delivered = !signal_would_be_dropped (pid, SIGTERM);
            }
        }
      while (!cri_wait_exit (task, NULL, delivered ? remaining_ms (deadline) : MIN (50, remaining_ms (deadline)), &exit, NULL)
             && g_get_monotonic_time () < deadline);
    }
  if (!berth_cri_task_destroy (daemon, task, &exit, error))
    return FALSE;
  if (record->finished_at == 0)
    {
      record_exit (record, &exit);
      if (record->started_at == 0)
        record->started_at = record->finished_at;
    }
  return berth_cri_record_put (daemon, "containers", record->id, &record->base, error);
}

static gboolean
container_remove (BerthDaemon *daemon, CriContainer *record, GError **error)
{
  if (!container_stop (daemon, record, 0, error))
    return FALSE;
  berth_cri_stdin_close (daemon, record->id, TRUE);
  berth_cri_output_remove (daemon, record->id);
  g_autoptr (GError) local_error = NULL;
  BerthSnapshots snaps;
  g_autofree char *snapshotter = NULL;
  if (snapshots_for (daemon, record->id, &snaps, &snapshotter, &local_error))
    {
      if (!berth_snapshots_remove (&snaps, record->id, NULL, &local_error)
          && !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return g_propagate_error (error, g_steal_pointer (&local_error)), FALSE;
      g_clear_error (&local_error);
      if (!berth_api_ops_container_delete (daemon, BERTH_CRI_NAMESPACE, record->id, error))
        return FALSE;
    }
  else if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    return g_propagate_error (error, g_steal_pointer (&local_error)), FALSE;
  return berth_cri_record_delete (daemon, "containers", record->id, error);
}

ProtobufCMessage *
cri_stop_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__StopContainerRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  CriContainer *record = (CriContainer *) owned;
  berth_cri_lock (record->id);
  gboolean ok = container_stop (daemon, record, req->timeout, error);
  berth_cri_unlock (record->id);
  return ok ? berth_grpc_message_new (&runtime__v1__stop_container_response__descriptor) : NULL;
}

ProtobufCMessage *
cri_remove_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__RemoveContainerRequest *req = (gpointer) request;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (ProtobufCMessage) owned =
    (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, &local_error);
  if (owned == NULL)
    {
      if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return g_propagate_error (error, g_steal_pointer (&local_error)), NULL;
      return berth_grpc_message_new (&runtime__v1__remove_container_response__descriptor);
    }
  CriContainer *record = (CriContainer *) owned;
  berth_cri_lock (record->id);
  gboolean ok = container_remove (daemon, record, error);
  berth_cri_unlock (record->id);
  return ok ? berth_grpc_message_new (&runtime__v1__remove_container_response__descriptor) : NULL;
}

gboolean
berth_cri_containers_of_sandbox_stop (BerthDaemon *daemon, const char *sandbox_id, gboolean remove, GError **error)
{
  g_autoptr (GPtrArray) records = container_records (daemon, error);
  if (records == NULL)
    return FALSE;
  for (guint i = 0; i < records->len; i++)
    {
      CriContainer *record = records->pdata[i];
      if (!g_str_equal (record->sandbox_id, sandbox_id))
        continue;
      berth_cri_lock (record->id);
      gboolean ok = remove ? container_remove (daemon, record, error) : container_stop (daemon, record, 0, error);
      berth_cri_unlock (record->id);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* ---------------- list, status ---------------- */

static Runtime__V1__ContainerState
container_state (BerthDaemon *daemon, const CriContainer *record, BerthExitStatus *exit, guint32 *pid_out)
{
  if (record->finished_at != 0)
    return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
  if (record->started_at == 0)
    return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
  g_autoptr (BerthTask) task = berth_cri_task (daemon, record->id);
  if (task == NULL)
    return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
  if (pid_out != NULL)
    *pid_out = berth_task_get_pid (task);
  switch (berth_task_get_status (task, NULL, exit))
    {
    case BERTH_TASK_STATUS_STOPPED: return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
    case BERTH_TASK_STATUS_CREATED: return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
    case BERTH_TASK_STATUS_UNKNOWN: return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
    default: return RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
    }
}

/* The filters ListContainers and ListContainerStats share (ids match by prefix). */
static gboolean
container_matches (const CriContainer *record, const char *id, const char *sandbox_id, void *const *selector,
                   size_t n_selector)
{
  return (id == NULL || *id == '\0' || g_str_has_prefix (record->id, id))
         && (sandbox_id == NULL || *sandbox_id == '\0' || g_str_has_prefix (record->sandbox_id, sandbox_id))
         && berth_cri_labels_match (selector, n_selector, (void *const *) record->config->labels,
                                    record->config->n_labels);
}

ProtobufCMessage *
cri_list_containers (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ListContainersRequest *req = (gpointer) request;
  const Runtime__V1__ContainerFilter *filter = req->filter;
  g_autoptr (GPtrArray) records = container_records (daemon, error);
  if (records == NULL)
    return NULL;
  g_autoptr (GPtrArray) items = g_ptr_array_new ();
  for (guint i = 0; i < records->len; i++)
    {
      const CriContainer *record = records->pdata[i];
      const Runtime__V1__ContainerConfig *config = record->config;
      Runtime__V1__ContainerState state = container_state (daemon, record, NULL, NULL);
      if (filter != NULL
          && ((filter->state && filter->state->state != state)
              || !container_matches (record, filter->id, filter->pod_sandbox_id, (void *const *) filter->label_selector,
                                     filter->n_label_selector)))
        continue;
      Runtime__V1__Container *item = berth_grpc_message_new (&runtime__v1__container__descriptor);
      item->id = g_strdup (record->id);
      item->pod_sandbox_id = g_strdup (record->sandbox_id);
      item->metadata = berth_api_message_copy (&config->metadata->base);
      item->image = berth_api_message_copy (&config->image->base);
      item->image_ref = g_strdup (record->image_id);
      item->image_id = g_strdup (record->image_id);
      item->state = state;
      item->created_at = record->created_at;
      BERTH_CRI_ENTRIES_COPY (config->labels, config->n_labels, &runtime__v1__container__labels_entry__descriptor, item->labels,
                    item->n_labels);
      BERTH_CRI_ENTRIES_COPY (config->annotations, config->n_annotations, &runtime__v1__container__annotations_entry__descriptor,
                    item->annotations, item->n_annotations);
      g_ptr_array_add (items, item);
    }
  Runtime__V1__ListContainersResponse *response = berth_grpc_message_new (&runtime__v1__list_containers_response__descriptor);
  response->n_containers = items->len;
  response->containers = (Runtime__V1__Container **) g_ptr_array_steal (items, NULL);
  return &response->base;
}

Runtime__V1__ContainerStatus *
berth_cri_container_status_new (BerthDaemon *daemon, const CriContainer *record)
{
  const Runtime__V1__ContainerConfig *config = record->config;
  Runtime__V1__ContainerStatus *s = berth_grpc_message_new (&runtime__v1__container_status__descriptor);
  BerthExitStatus exit = { 0 };
  s->id = g_strdup (record->id);
  s->metadata = berth_api_message_copy (&config->metadata->base);
  s->state = container_state (daemon, record, &exit, NULL);
  s->created_at = record->created_at;
  s->started_at = record->started_at;
  s->finished_at = record->finished_at;
  s->exit_code = record->exit_code;
  s->reason = g_strdup (record->reason);
  s->message = g_strdup (record->message);
  if (record->finished_at == 0 && s->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED)
    {
      /* Exited on its own; StopContainer or RemoveContainer will record it. */
      s->finished_at = exit.exited_at * 1000;
      s->exit_code = (gint32) exit.exit_status;
      g_free (s->reason);
      s->reason = g_strdup (exit.exit_status == 0 ? "Completed" : "Error");
    }
  s->image = berth_api_message_copy (&config->image->base);
  s->image_ref = g_strdup (record->image_id);
  s->image_id = g_strdup (record->image_id);
  s->log_path = g_strdup (record->log_path);
  BERTH_CRI_ENTRIES_COPY (config->labels, config->n_labels, &runtime__v1__container_status__labels_entry__descriptor, s->labels,
                s->n_labels);
  BERTH_CRI_ENTRIES_COPY (config->annotations, config->n_annotations,
                &runtime__v1__container_status__annotations_entry__descriptor, s->annotations, s->n_annotations);
  s->n_mounts = config->n_mounts;
  s->mounts = g_new0 (Runtime__V1__Mount *, config->n_mounts + 1);
  for (size_t i = 0; i < config->n_mounts; i++)
    s->mounts[i] = berth_api_message_copy (&config->mounts[i]->base);
  if (record->resources != NULL)
    {
      s->resources = berth_grpc_message_new (&runtime__v1__container_resources__descriptor);
      s->resources->linux = berth_api_message_copy (&record->resources->base);
    }
  return s;
}

ProtobufCMessage *
cri_container_status (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ContainerStatusRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  const CriContainer *record = (CriContainer *) owned;
  Runtime__V1__ContainerStatusResponse *response = berth_grpc_message_new (&runtime__v1__container_status_response__descriptor);
  response->status = berth_cri_container_status_new (daemon, record);
  if (req->verbose)
    {
      guint32 pid = 0;
      container_state (daemon, record, NULL, &pid);
      g_autoptr (GHashTable) info = berth_labels_new ();
      g_hash_table_insert (info, g_strdup ("info"), g_strdup_printf ("{\"pid\": %u, \"sandboxID\": \"%s\"}", pid,
                                                                     record->sandbox_id));
      berth_schema_labels_to_entries (info, &runtime__v1__container_status_response__info_entry__descriptor,
                                      (void ***) &response->info, &response->n_info);
    }
  return &response->base;
}

/* ---------------- resources, logs ---------------- */

BerthTask *
berth_cri_running_task (BerthDaemon *daemon, const char *id, GError **error)
{
  BerthTask *task = berth_cri_task (daemon, id);
  if (task == NULL || berth_task_get_status (task, NULL, NULL) != BERTH_TASK_STATUS_RUNNING)
    {
      g_clear_object (&task);
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "container %s is not running", id);
    }
  return task;
}

ProtobufCMessage *
cri_update_container_resources (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__UpdateContainerResourcesRequest *req = (gpointer) request;
  if (req->linux == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no linux resources given"), NULL;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  CriContainer *record = (CriContainer *) owned;
  berth_cri_lock (record->id);
  gboolean ok = TRUE;
  g_autoptr (BerthTask) task = berth_cri_task (daemon, record->id);
  if (task != NULL && berth_task_get_status (task, NULL, NULL) == BERTH_TASK_STATUS_RUNNING)
    {
      g_autoptr (JsonObject) resources = resources_json (req->linux);
      g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), resources);
      gsize len = 0;
      char *text = berth_json_to_text (node, &len);
      g_autoptr (GBytes) bytes = g_bytes_new_take (text, len);
      ok = berth_task_update (task, bytes, NULL, error);
    }
  if (ok)
    {
      berth_grpc_message_free ((ProtobufCMessage *) record->resources);
      record->resources = berth_api_message_copy (&req->linux->base);
      ok = berth_cri_record_put (daemon, "containers", record->id, &record->base, error);
    }
  berth_cri_unlock (record->id);
  return ok ? berth_grpc_message_new (&runtime__v1__update_container_resources_response__descriptor) : NULL;
}

ProtobufCMessage *
cri_reopen_container_log (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ReopenContainerLogRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  const CriContainer *record = (CriContainer *) owned;
  g_autoptr (BerthTask) task = berth_cri_running_task (daemon, record->id, error);
  if (task == NULL)
    return NULL;
  if (*record->log_path == '\0')
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "container %s has no log path", record->id), NULL;
  /* The shim follows the path: it reopens as soon as the file it writes is no longer
   * the one there. Creating it now means the new file exists when we answer. */
  int fd = open (record->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return berth_throw_errno (error, "reopening log %s", record->log_path), NULL;
  close (fd);
  return berth_grpc_message_new (&runtime__v1__reopen_container_log_response__descriptor);
}

/* ---------------- stats ---------------- */

static Runtime__V1__UInt64Value *
u64 (guint64 value)
{
  Runtime__V1__UInt64Value *v = berth_grpc_message_new (&runtime__v1__uint64_value__descriptor);
  v->value = value;
  return v;
}

Runtime__V1__ContainerStats *
berth_cri_container_stats_new (BerthDaemon *daemon, const CriContainer *record, GError **error)
{
  g_autoptr (BerthTask) task = berth_cri_running_task (daemon, record->id, error);
  BerthCgroupStats figures = { 0 };
  if (task == NULL || !berth_cgroup_stats (berth_task_get_pid (task), &figures, error))
    return NULL;
  gint64 now = now_ns ();
  const Runtime__V1__ContainerConfig *config = record->config;
  Runtime__V1__ContainerStats *stats = berth_grpc_message_new (&runtime__v1__container_stats__descriptor);
  stats->attributes = berth_grpc_message_new (&runtime__v1__container_attributes__descriptor);
  stats->attributes->id = g_strdup (record->id);
  stats->attributes->metadata = berth_api_message_copy (&config->metadata->base);
  BERTH_CRI_ENTRIES_COPY (config->labels, config->n_labels, &runtime__v1__container_attributes__labels_entry__descriptor,
                stats->attributes->labels, stats->attributes->n_labels);
  BERTH_CRI_ENTRIES_COPY (config->annotations, config->n_annotations,
                &runtime__v1__container_attributes__annotations_entry__descriptor, stats->attributes->annotations,
                stats->attributes->n_annotations);
  if (figures.has_cpu)
    {
      stats->cpu = berth_grpc_message_new (&runtime__v1__cpu_usage__descriptor);
      stats->cpu->timestamp = now;
      stats->cpu->usage_core_nano_seconds = u64 (figures.cpu_usage_ns);
    }
  if (figures.has_memory)
    {
      stats->memory = berth_grpc_message_new (&runtime__v1__memory_usage__descriptor);
      stats->memory->timestamp = now;
      stats->memory->working_set_bytes = u64 (figures.memory_usage_bytes);
      stats->memory->usage_bytes = u64 (figures.memory_usage_bytes);
      if (figures.memory_limit_bytes > figures.memory_usage_bytes)
        stats->memory->available_bytes = u64 (figures.memory_limit_bytes - figures.memory_usage_bytes);
    }
  BerthSnapshots snaps;
  g_autofree char *snapshotter = NULL;
  BerthSnapshotUsage usage = { 0 };
  if (snapshots_for (daemon, record->id, &snaps, &snapshotter, NULL))
    {
      g_autofree char *key = berth_snapshots_backend_key (&snaps, record->id);
      if (berth_snapshotter_usage (snaps.backend, key, &usage, NULL, NULL))
        {
          stats->writable_layer = berth_grpc_message_new (&runtime__v1__filesystem_usage__descriptor);
          stats->writable_layer->timestamp = now;
          stats->writable_layer->fs_id = berth_grpc_message_new (&runtime__v1__filesystem_identifier__descriptor);
          stats->writable_layer->fs_id->mountpoint = g_strdup (berth_daemon_get_config (daemon)->root);
          stats->writable_layer->used_bytes = u64 (usage.size);
          stats->writable_layer->inodes_used = u64 (usage.inodes);
        }
    }
  return stats;
}

ProtobufCMessage *
cri_container_stats (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ContainerStatsRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  Runtime__V1__ContainerStats *stats = owned ? berth_cri_container_stats_new (daemon, (CriContainer *) owned, error)
                                             : NULL;
  if (stats == NULL)
    return NULL;
  Runtime__V1__ContainerStatsResponse *response = berth_grpc_message_new (&runtime__v1__container_stats_response__descriptor);
  response->stats = stats;
  return &response->base;
}

ProtobufCMessage *
cri_list_container_stats (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ListContainerStatsRequest *req = (gpointer) request;
  const Runtime__V1__ContainerStatsFilter *filter = req->filter;
  g_autoptr (GPtrArray) records = container_records (daemon, error);
  if (records == NULL)
    return NULL;
  g_autoptr (GPtrArray) items = g_ptr_array_new ();
  for (guint i = 0; i < records->len; i++)
    {
      const CriContainer *record = records->pdata[i];
      if (filter != NULL
          && !container_matches (record, filter->id, filter->pod_sandbox_id, (void *const *) filter->label_selector,
                                 filter->n_label_selector))
        continue;
      /* Only running containers have figures. */
      Runtime__V1__ContainerStats *stats = berth_cri_container_stats_new (daemon, record, NULL);
      if (stats != NULL)
        g_ptr_array_add (items, stats);
    }
  Runtime__V1__ListContainerStatsResponse *response =
    berth_grpc_message_new (&runtime__v1__list_container_stats_response__descriptor);
  response->n_stats = items->len;
  response->stats = (Runtime__V1__ContainerStats **) g_ptr_array_steal (items, NULL);
  return &response->base;
}
