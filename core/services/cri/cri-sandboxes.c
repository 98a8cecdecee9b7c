/* cri-sandboxes.c — runtime.v1.RuntimeService's pod sandboxes: run (the pause
 * container, its network namespace and CNI), stop, remove, status, list, stats. The
 * method table is in cri-runtime.c. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "berth-cri.h"
#include "berth-cni.h"
#include "daemon/berth-config.h"
#include "services/containerd/berth-api.h"
#include "services/containerd/berth-api-ops.h"
#include "services/containerd/berth-api-util.h"
#include "image/berth-image-store.h"
#include "image/berth-spec.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb-c.h"

#define SPEC_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#define PAUSE_BINARY "berth-pause"

static const Runtime__V1__NamespaceOption *
sandbox_namespaces (const Runtime__V1__PodSandboxConfig *config)
{
  if (config && config->linux && config->linux->security_context)
    return config->linux->security_context->namespace_options;
  return NULL;
}

static gboolean
host_network (const Runtime__V1__PodSandboxConfig *config)
{
  const Runtime__V1__NamespaceOption *ns = sandbox_namespaces (config);
  return ns != NULL && ns->network == RUNTIME__V1__NAMESPACE_MODE__NODE;
}

static char *
sandbox_name (const Runtime__V1__PodSandboxMetadata *m)
{
  return g_strdup_printf ("%s_%s_%s_%u", m->name, m->namespace_, m->uid, m->attempt);
}

typedef struct {
  const CriSandbox *record;
  const char *name;
} Reserve;

typedef struct {
  const char *name;
  char *clash;
} NameScan;

static gboolean
scan_name (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  NameScan *scan = user_data;
  CriSandbox *s = berth_api_message_unpack (&berth__cri__v1__sandbox_record__descriptor, value, len);
  if (s != NULL && s->config != NULL && s->config->metadata != NULL)
    {
      g_autofree char *name = sandbox_name (s->config->metadata);
      if (g_str_equal (name, scan->name))
        scan->clash = g_strdup (s->id);
    }
  berth_grpc_message_free ((ProtobufCMessage *) s);
  return scan->clash == NULL;
}

static gboolean
create_record_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Reserve *r = user_data;
  g_autofree char *prefix = cri_record_key ("sandboxes", NULL);
  NameScan scan = { r->name, NULL };
  if (!berth_metadata_txn_foreach (txn, prefix, scan_name, &scan, error))
    return FALSE;
  if (scan.clash != NULL)
    {
      berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "failed to reserve sandbox name \"%s\": name is reserved for \"%s\"",
                   r->name, scan.clash);
      g_free (scan.clash);
      return FALSE;
    }
  g_autofree char *key = cri_record_key ("sandboxes", r->record->id);
  return berth_schema_put (txn, key, &r->record->base, error);
}

static gboolean
write_file (const char *dir, const char *name, const char *text, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  return g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, error);
}

static char *
resolv_conf (const Runtime__V1__DNSConfig *dns)
{
  if (dns == NULL || (dns->n_servers == 0 && dns->n_searches == 0 && dns->n_options == 0))
    {
      char *host = NULL;
      return g_file_get_contents ("/etc/resolv.conf", &host, NULL, NULL) ? host : g_strdup ("");
    }
  GString *text = g_string_new (NULL);
  if (dns->n_searches > 0)
    {
      g_string_append (text, "search");
      for (size_t i = 0; i < dns->n_searches; i++)
        g_string_append_printf (text, " %s", dns->searches[i]);
      g_string_append_c (text, '\n');
    }
  for (size_t i = 0; i < dns->n_servers; i++)
    g_string_append_printf (text, "nameserver %s\n", dns->servers[i]);
  if (dns->n_options > 0)
    {
      g_string_append (text, "options");
      for (size_t i = 0; i < dns->n_options; i++)
        g_string_append_printf (text, " %s", dns->options[i]);
      g_string_append_c (text, '\n');
    }
  return g_string_free (text, FALSE);
}

/* hostname, hosts and resolv.conf for the pod's containers. */
static gboolean
write_sandbox_files (const char *dir, const Runtime__V1__PodSandboxConfig *config, GError **error)
{
  if (g_mkdir_with_parents (dir, 0711) < 0)
    return berth_throw_errno (error, "creating %s", dir);
  g_autofree char *hostname = g_strdup_printf ("%s\n", config->hostname && *config->hostname ? config->hostname
                                                                                             : g_get_host_name ());
  g_autofree char *resolv = resolv_conf (config->dns_config);
  g_autofree char *hosts = NULL;
  if (host_network (config))
    g_file_get_contents ("/etc/hosts", &hosts, NULL, NULL);
  if (hosts == NULL)
    hosts = g_strdup ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
  return write_file (dir, "hostname", hostname, error) && write_file (dir, "resolv.conf", resolv, error)
         && write_file (dir, "hosts", hosts, error);
}

/* The root filesystem every sandbox's berth-pause runs from: the static binary and the
 * directories the runtime mounts on. Refreshed when the installed binary differs. */
static char *
pause_rootfs (BerthDaemon *daemon, GError **error)
{
  static GMutex lock;
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&lock);
  g_autofree char *dir = berth_cri_path (daemon, "pause-rootfs", NULL);
  g_autofree char *source = g_build_filename (berth_daemon_get_config (daemon)->libexec_dir, PAUSE_BINARY, NULL);
  g_autofree char *target = g_build_filename (dir, PAUSE_BINARY, NULL);
  g_autofree char *wanted = NULL, *have = NULL;
  gsize wanted_len = 0, have_len = 0;
  if (!g_file_get_contents (source, &wanted, &wanted_len, error))
    return g_prefix_error (error, "the pod sandbox's init: "), NULL;
  if (g_file_get_contents (target, &have, &have_len, NULL) && have_len == wanted_len
      && memcmp (have, wanted, wanted_len) == 0)
    return g_steal_pointer (&dir);
  static const char *const dirs[] = { "proc", "dev", "sys", "etc", "tmp", "run" };
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *path = g_build_filename (dir, dirs[i], NULL);
      if (g_mkdir_with_parents (path, 0755) < 0)
        return berth_throw_errno (error, "creating %s", path), NULL;
    }
  if (!g_file_set_contents_full (target, wanted, wanted_len, G_FILE_SET_CONTENTS_CONSISTENT, 0755, error))
    return NULL;
  return g_steal_pointer (&dir);
}

void
berth_cri_spec_set_namespace (JsonObject *spec, const char *type, const char *path)
{
  JsonObject *linux_obj = json_object_get_object_member (spec, "linux");
  JsonArray *namespaces = linux_obj ? json_object_get_array_member (linux_obj, "namespaces") : NULL;
  if (namespaces == NULL)
    return;
  for (guint i = 0; i < json_array_get_length (namespaces); i++)
    {
      JsonObject *ns = json_array_get_object_element (namespaces, i);
      if (g_strcmp0 (json_object_get_string_member_with_default (ns, "type", NULL), type) != 0)
        continue;
      if (path != NULL && *path == '\0')
        json_array_remove_element (namespaces, i);
      else if (path != NULL)
        json_object_set_string_member (ns, "path", path);
      return;
    }
  if (path == NULL || *path != '\0')
    {
      JsonObject *ns = json_object_new ();
      json_object_set_string_member (ns, "type", type);
      if (path != NULL)
        json_object_set_string_member (ns, "path", path);
      json_array_add_object_element (namespaces, ns);
    }
}

gboolean
berth_cri_seccomp (const Runtime__V1__SecurityProfile *profile, const char *legacy_path, const char **out,
                   GError **error)
{
  *out = "unconfined";
  if (profile != NULL)
    switch (profile->profile_type)
      {
      case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
        *out = NULL;
        return TRUE;
      case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
        if (profile->localhost_ref == NULL || !g_path_is_absolute (profile->localhost_ref))
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "seccomp profile \"%s\": want an absolute path",
                              profile->localhost_ref ? profile->localhost_ref : "");
        *out = profile->localhost_ref;
        return TRUE;
      default:
        return TRUE;
      }
  if (legacy_path == NULL || *legacy_path == '\0' || g_str_equal (legacy_path, "unconfined"))
    return TRUE;
  if (g_str_equal (legacy_path, "runtime/default") || g_str_equal (legacy_path, "docker/default"))
    *out = NULL;
  else if (g_str_has_prefix (legacy_path, "localhost/") && g_path_is_absolute (legacy_path + strlen ("localhost")))
    *out = legacy_path + strlen ("localhost");
  else
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "unsupported seccomp profile \"%s\": want "
                        "runtime/default, docker/default, unconfined or localhost/PATH", legacy_path);
  return TRUE;
}

static gboolean
apparmor_enabled (void)
{
  g_autofree char *text = NULL;
  return g_file_get_contents ("/sys/module/apparmor/parameters/enabled", &text, NULL, NULL) && text[0] == 'Y';
}

gboolean
berth_cri_apparmor (const Runtime__V1__SecurityProfile *profile, const char *legacy_name, const char **out,
                    GError **error)
{
  const char *name = NULL;
  *out = NULL;
  if (profile != NULL)
    switch (profile->profile_type)
      {
      case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
        name = profile->localhost_ref;
        if (name == NULL || *name == '\0')
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "AppArmor profile: localhost without a name");
        break;
      default: /* RuntimeDefault: berth loads no default profile of its own; unconfined */
        return TRUE;
      }
  else if (legacy_name == NULL || *legacy_name == '\0' || g_str_equal (legacy_name, "unconfined")
           || g_str_equal (legacy_name, "runtime/default"))
    return TRUE;
  else if (g_str_has_prefix (legacy_name, "localhost/") && legacy_name[strlen ("localhost/")] != '\0')
    name = legacy_name + strlen ("localhost/");
  else
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "unsupported AppArmor profile \"%s\": want "
                        "runtime/default, unconfined or localhost/NAME", legacy_name);
  if (!apparmor_enabled ())
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "AppArmor profile \"%s\": AppArmor is not enabled "
                        "on this host", name);
  *out = name;
  return TRUE;
}

/* Adds the CRI's sysctls to a spec. */
static void
spec_sysctls (JsonObject *spec, void *const *entries, size_t n)
{
  if (n == 0)
    return;
  JsonObject *linux_obj = json_object_get_object_member (spec, "linux");
  JsonObject *sysctl = json_object_new ();
  for (size_t i = 0; i < n; i++)
    {
      const BerthSchemaMapEntry *e = entries[i];
      json_object_set_string_member (sysctl, e->key, e->value);
    }
  json_object_set_object_member (linux_obj, "sysctl", sysctl);
}

static char *
cgroups_path (const char *parent, const char *id)
{
  return parent && *parent ? g_build_path ("/", parent, id, NULL) : g_strdup_printf ("/%s/%s", BERTH_CRI_NAMESPACE, id);
}

gboolean
berth_cri_check_rootless (BerthDaemon *daemon, const char *what, gboolean privileged, gint64 oom_score_adj,
                          GError **error)
{
  if (!berth_daemon_get_config (daemon)->rootless)
    return TRUE;
  if (privileged)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                        "%s: privileged needs real root; this berthd is rootless (berthd --rootless)", what);
  if (oom_score_adj < 0)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                        "%s: oom_score_adj %" G_GINT64_FORMAT " needs real root; this berthd is rootless (berthd --rootless)",
                        what, oom_score_adj);
  return TRUE;
}

static GBytes *
sandbox_spec (BerthDaemon *daemon, const CriSandbox *record, GError **error)
{
  const Runtime__V1__PodSandboxConfig *config = record->config;
  const Runtime__V1__LinuxSandboxSecurityContext *sc = config->linux ? config->linux->security_context : NULL;
  char *args[] = { (char *) "/" PAUSE_BINARY, NULL };
  g_autofree char *cgroups = cgroups_path (config->linux ? config->linux->cgroup_parent : NULL, record->id);
  const char *seccomp = "unconfined";
  g_autofree char *what = g_strdup_printf ("pod sandbox %s", record->id);
  if (!berth_cri_check_rootless (daemon, what, sc && sc->privileged, 0, error))
    return NULL;
  if (sc && !berth_cri_seccomp (sc->seccomp, berth_cri_legacy_seccomp_sandbox (sc), &seccomp, error))
    return NULL;
  BerthSpecOptions opts = {
    .args = args,
    .read_only = TRUE,
    .privileged = sc && sc->privileged,
    .seccomp_profile = seccomp,
    .cgroups_path = cgroups,
    .namespace = BERTH_CRI_NAMESPACE,
    .id = record->id,
    .hostname = host_network (config) ? NULL : config->hostname && *config->hostname ? config->hostname : NULL,
  };
  g_autoptr (JsonNode) node = berth_spec_generate (&opts, NULL, NULL, error);
  if (node == NULL)
    return NULL;
  JsonObject *spec = json_node_get_object (node);
  const Runtime__V1__NamespaceOption *nsopt = sandbox_namespaces (config);
  if (host_network (config))
    {
      berth_cri_spec_set_namespace (spec, "network", "");
      berth_cri_spec_set_namespace (spec, "uts", "");
    }
  else
    berth_cri_spec_set_namespace (spec, "network", record->netns);
  if (nsopt && nsopt->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE)
    berth_cri_spec_set_namespace (spec, "ipc", "");
  if (nsopt && nsopt->pid == RUNTIME__V1__NAMESPACE_MODE__NODE)
    berth_cri_spec_set_namespace (spec, "pid", "");
  if (config->linux)
    spec_sysctls (spec, (void *const *) config->linux->sysctls, config->linux->n_sysctls);
  gsize len = 0;
  char *text = berth_json_to_text (node, &len);
  return g_bytes_new_take (text, len);
}

/* CNI_ARGS as containerd's CRI passes them. */
static char *
cni_args (const CriSandbox *record)
{
  const Runtime__V1__PodSandboxMetadata *m = record->config->metadata;
  return g_strdup_printf ("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
                          m->namespace_, m->name, record->id, m->uid);
}

static JsonNode *
port_mappings (const Runtime__V1__PodSandboxConfig *config)
{
  static const char *const protocols[] = { "tcp", "udp", "sctp" };
  JsonArray *array = json_array_new ();
  for (size_t i = 0; i < config->n_port_mappings; i++)
    {
      const Runtime__V1__PortMapping *pm = config->port_mappings[i];
      if (pm->host_port <= 0)
        continue;
      JsonObject *m = json_object_new ();
      json_object_set_int_member (m, "hostPort", pm->host_port);
      json_object_set_int_member (m, "containerPort", pm->container_port);
      json_object_set_string_member (m, "protocol", protocols[(guint) pm->protocol < 3 ? pm->protocol : 0]);
      if (pm->host_ip && *pm->host_ip)
        json_object_set_string_member (m, "hostIP", pm->host_ip);
      json_array_add_object_element (array, m);
    }
  JsonObject *rc = json_object_new ();
  json_object_set_array_member (rc, "portMappings", array);
  JsonNode *node = json_node_init_object (json_node_alloc (), rc);
  json_object_unref (rc);
  return node;
}

static void
cni_call_init (BerthCniCall *call, BerthDaemon *daemon, const CriSandbox *record, char *args, JsonNode *runtime_config)
{
  *call = (BerthCniCall) {
    .bin_dir = berth_daemon_get_config (daemon)->cri_cni_bin_dir,
    .network = record->cni_network,
    .container_id = record->id,
    .netns = record->netns,
    .ifname = "eth0",
    .args = args,
    .runtime_config = runtime_config,
  };
}

static gboolean
network_setup (BerthDaemon *daemon, CriSandbox *record, GError **error)
{
  g_autofree char *netns = berth_cri_path (daemon, "netns", record->id);
  g_autofree char *dir = berth_cri_path (daemon, "netns", NULL);
  g_autofree char *network = berth_cni_load_network (berth_daemon_get_config (daemon)->cri_cni_conf_dir, NULL, error);
  if (network == NULL)
    return FALSE;
  if (g_mkdir_with_parents (dir, 0711) < 0)
    return berth_throw_errno (error, "creating %s", dir);
  if (!berth_netns_create (netns, error))
    return FALSE;
  berth_cri_set_string (&record->netns, netns);
  berth_cri_set_string (&record->cni_network, network);
  g_autofree char *args = cni_args (record);
  g_autoptr (JsonNode) rc = port_mappings (record->config);
  BerthCniCall call;
  cni_call_init (&call, daemon, record, args, rc);
  g_autofree char *result = berth_cni_add (&call, error);
  if (result == NULL)
    {
      berth_cri_set_string (&record->cni_network, "");
      return FALSE;
    }
  g_autoptr (GPtrArray) ips = berth_cni_result_ips (result);
  berth_cri_set_string (&record->cni_result, result);
  berth_cri_set_string (&record->ip, ips->len > 0 ? ips->pdata[0] : "");
  record->n_additional_ips = ips->len > 1 ? ips->len - 1 : 0;
  record->additional_ips = g_new0 (char *, record->n_additional_ips + 1);
  for (guint i = 1; i < ips->len; i++)
    record->additional_ips[i - 1] = g_strdup (ips->pdata[i]);
  return TRUE;
}

/* CNI DEL and the namespace's removal; a second call finds nothing to do. */
static gboolean
network_teardown (BerthDaemon *daemon, CriSandbox *record, GError **error)
{
  if (record->cni_network != NULL && *record->cni_network != '\0')
    {
      g_autofree char *args = cni_args (record);
      g_autoptr (JsonNode) rc = port_mappings (record->config);
      BerthCniCall call;
      cni_call_init (&call, daemon, record, args, rc);
      if (!berth_cni_del (&call, record->cni_result, error))
        return FALSE;
      berth_cri_set_string (&record->cni_network, "");
    }
  if (record->netns != NULL && *record->netns != '\0')
    {
      if (!berth_netns_remove (record->netns, error))
        return FALSE;
      berth_cri_set_string (&record->netns, "");
    }
  return TRUE;
}

/* The sandbox's berth container and its running berth-pause task. */
static gboolean
sandbox_start (BerthDaemon *daemon, CriSandbox *record, GCancellable *cancellable, GError **error)
{
  g_autofree char *rootfs = pause_rootfs (daemon, error);
  g_autoptr (GBytes) spec = rootfs ? sandbox_spec (daemon, record, error) : NULL;
  if (spec == NULL)
    return FALSE;
  Containerd__Services__Containers__V1__Container c = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
  Containerd__Services__Containers__V1__Container__Runtime runtime =
    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry kind =
    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry *labels[] = { &kind };
  kind.key = (char *) "io.cri-containerd.kind";
  kind.value = (char *) "sandbox";
  any.type_url = (char *) SPEC_TYPE_URL;
  any.value.data = (guint8 *) g_bytes_get_data (spec, &any.value.len);
  g_autoptr (ProtobufCMessage) options =
    (ProtobufCMessage *) berth_cri_runtime_options (daemon, record->runtime_handler, (const char **) &runtime.name);
  runtime.options = (Google__Protobuf__Any *) options;
  c.id = record->id;
  c.runtime = &runtime;
  c.spec = &any;
  c.labels = labels;
  c.n_labels = 1;
  g_autoptr (ProtobufCMessage) created = (ProtobufCMessage *) berth_api_ops_container_create (daemon, BERTH_CRI_NAMESPACE,
                                                                                              &c, error);
  if (created == NULL)
    return FALSE;
  g_autoptr (GPtrArray) mounts = berth_mount_list_new ();
  static const char *const bind_options[] = { "rbind", "rw", NULL };
  g_ptr_array_add (mounts, berth_mount_new ("bind", rootfs, bind_options));
  BerthStdio stdio = { NULL, NULL, NULL, FALSE };
  g_autoptr (BerthTask) task = berth_api_ops_task_create (daemon, BERTH_CRI_NAMESPACE, record->id, mounts, &stdio, NULL,
                                                          cancellable, error);
  if (task == NULL || !berth_api_ops_task_start (daemon, task, NULL, &record->pid, cancellable, error))
    {
      if (task != NULL)
        berth_cri_task_destroy (daemon, task, NULL, NULL);
      berth_api_ops_container_delete (daemon, BERTH_CRI_NAMESPACE, record->id, NULL);
      return FALSE;
    }
  return TRUE;
}

/* Everything a sandbox holds but its record and directory: containers stopped, the pause
 * task and berth container gone, network torn down. Idempotent. */
static gboolean
sandbox_stop (BerthDaemon *daemon, CriSandbox *record, GError **error)
{
  if (!berth_cri_containers_of_sandbox_stop (daemon, record->id, FALSE, error))
    return FALSE;
  g_autoptr (BerthTask) task = berth_cri_task (daemon, record->id);
  if (task != NULL && !berth_cri_task_destroy (daemon, task, NULL, error))
    return FALSE;
  g_autoptr (GError) local_error = NULL;
  if (!berth_api_ops_container_delete (daemon, BERTH_CRI_NAMESPACE, record->id, &local_error)
      && !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  gboolean ok = network_teardown (daemon, record, error);
  record->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
  return berth_cri_record_put (daemon, "sandboxes", record->id, &record->base, ok ? error : NULL) && ok;
}

static void
remove_dir (const char *path)
{
  g_autoptr (GFile) dir = g_file_new_for_path (path);
  g_autoptr (GFileEnumerator) e = g_file_enumerate_children (dir, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                                              G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  GFileInfo *info;
  while (e != NULL && (info = g_file_enumerator_next_file (e, NULL, NULL)) != NULL)
    {
      g_autoptr (GFileInfo) owned = info;
      g_autofree char *child = g_build_filename (path, g_file_info_get_name (info), NULL);
      if (unlink (child) < 0 && errno == EISDIR)
        remove_dir (child);
    }
  rmdir (path);
}

ProtobufCMessage *
cri_run_pod_sandbox (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__RunPodSandboxRequest *req = (gpointer) request;
  const Runtime__V1__PodSandboxConfig *config = req->config;
  if (config == NULL || config->metadata == NULL || !*config->metadata->name || !*config->metadata->uid
      || !*config->metadata->namespace_)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "sandbox config must include metadata with a name, uid "
                        "and namespace"), NULL;
  const char *handler = req->runtime_handler ? req->runtime_handler : "";
  if (!cri_handler_check (handler, error))
    return NULL;
  g_autofree char *id = berth_cri_new_id ();
  g_autofree char *name = sandbox_name (config->metadata);
  CriSandbox *record = berth_grpc_message_new (&berth__cri__v1__sandbox_record__descriptor);
  g_autoptr (ProtobufCMessage) owned = &record->base;
  record->id = g_strdup (id);
  record->config = berth_api_message_copy (&config->base);
  record->created_at = g_get_real_time () * 1000;
  record->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
  record->netns = g_strdup ("");
  record->ip = g_strdup ("");
  record->runtime_handler = g_strdup (handler);
  record->cni_result = g_strdup ("");
  record->cni_network = g_strdup ("");
  Reserve reserve = { record, name };
  if (!berth_metadata_write (berth_daemon_get_metadata (daemon), create_record_txn, &reserve, error))
    return NULL;
  berth_cri_lock (id);
  g_autofree char *dir = berth_cri_sandbox_dir (daemon, id);
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  gboolean ok = write_sandbox_files (dir, record->config, error)
                && (host_network (record->config) || network_setup (daemon, record, error))
                && sandbox_start (daemon, record, cancellable, error);
  if (ok)
    {
      record->state = RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
      ok = berth_cri_record_put (daemon, "sandboxes", id, &record->base, error);
    }
  if (!ok)
    {
      /* Nothing of a failed sandbox stays: not even its name. */
      g_autoptr (GError) cleanup_error = NULL;
      if (!sandbox_stop (daemon, record, &cleanup_error))
        g_warning ("cleaning up failed sandbox %s: %s", id, cleanup_error->message);
      remove_dir (dir);
      berth_cri_record_delete (daemon, "sandboxes", id, NULL);
      berth_cri_unlock (id);
      return NULL;
    }
  berth_cri_unlock (id);
  g_info ("pod sandbox %s (%s) ready, ip %s", id, name, record->ip);
  Runtime__V1__RunPodSandboxResponse *response = berth_grpc_message_new (&runtime__v1__run_pod_sandbox_response__descriptor);
  response->pod_sandbox_id = g_strdup (id);
  return &response->base;
}

ProtobufCMessage *
cri_stop_pod_sandbox (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__StopPodSandboxRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_sandbox_get (daemon, req->pod_sandbox_id, error);
  if (owned == NULL)
    return NULL;
  berth_cri_lock (req->pod_sandbox_id);
  gboolean ok = sandbox_stop (daemon, (CriSandbox *) owned, error);
  berth_cri_unlock (req->pod_sandbox_id);
  return ok ? berth_grpc_message_new (&runtime__v1__stop_pod_sandbox_response__descriptor) : NULL;
}

ProtobufCMessage *
cri_remove_pod_sandbox (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__RemovePodSandboxRequest *req = (gpointer) request;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (ProtobufCMessage) owned =
    (ProtobufCMessage *) berth_cri_sandbox_get (daemon, req->pod_sandbox_id, &local_error);
  if (owned == NULL)
    {
      /* Removing what is gone succeeds: kubelet retries. */
      if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return g_propagate_error (error, g_steal_pointer (&local_error)), NULL;
      return berth_grpc_message_new (&runtime__v1__remove_pod_sandbox_response__descriptor);
    }
  CriSandbox *record = (CriSandbox *) owned;
  berth_cri_lock (record->id);
  g_autofree char *dir = berth_cri_sandbox_dir (daemon, record->id);
  gboolean ok = sandbox_stop (daemon, record, error)
                && berth_cri_containers_of_sandbox_stop (daemon, record->id, TRUE, error)
                && berth_cri_record_delete (daemon, "sandboxes", record->id, error);
  if (ok)
    remove_dir (dir);
  berth_cri_unlock (record->id);
  return ok ? berth_grpc_message_new (&runtime__v1__remove_pod_sandbox_response__descriptor) : NULL;
}

/* READY only while its berth-pause runs. */
static Runtime__V1__PodSandboxState
sandbox_state (BerthDaemon *daemon, const CriSandbox *record)
{
  if (record->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
    return record->state;
  g_autoptr (BerthTask) task = berth_cri_task (daemon, record->id);
  if (task == NULL || berth_task_get_status (task, NULL, NULL) != BERTH_TASK_STATUS_RUNNING)
    return RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
  return RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
}

ProtobufCMessage *
cri_pod_sandbox_status (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__PodSandboxStatusRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_sandbox_get (daemon, req->pod_sandbox_id, error);
  if (owned == NULL)
    return NULL;
  const CriSandbox *record = (CriSandbox *) owned;
  const Runtime__V1__PodSandboxConfig *config = record->config;
  Runtime__V1__PodSandboxStatus *status = berth_grpc_message_new (&runtime__v1__pod_sandbox_status__descriptor);
  status->id = g_strdup (record->id);
  status->metadata = berth_api_message_copy (&config->metadata->base);
  status->state = sandbox_state (daemon, record);
  status->created_at = record->created_at;
  status->runtime_handler = g_strdup (record->runtime_handler);
  status->network = berth_grpc_message_new (&runtime__v1__pod_sandbox_network_status__descriptor);
  status->network->ip = g_strdup (record->ip);
  status->network->n_additional_ips = record->n_additional_ips;
  status->network->additional_ips = g_new0 (Runtime__V1__PodIP *, record->n_additional_ips + 1);
  for (size_t i = 0; i < record->n_additional_ips; i++)
    {
      status->network->additional_ips[i] = berth_grpc_message_new (&runtime__v1__pod_ip__descriptor);
      status->network->additional_ips[i]->ip = g_strdup (record->additional_ips[i]);
    }
  status->linux = berth_grpc_message_new (&runtime__v1__linux_pod_sandbox_status__descriptor);
  status->linux->namespaces = berth_grpc_message_new (&runtime__v1__namespace__descriptor);
  const Runtime__V1__NamespaceOption *nsopt = sandbox_namespaces (config);
  status->linux->namespaces->options = nsopt ? berth_api_message_copy (&nsopt->base)
                                             : berth_grpc_message_new (&runtime__v1__namespace_option__descriptor);
  BERTH_CRI_ENTRIES_COPY (config->labels, config->n_labels, &runtime__v1__pod_sandbox_status__labels_entry__descriptor,
                status->labels, status->n_labels);
  BERTH_CRI_ENTRIES_COPY (config->annotations, config->n_annotations,
                &runtime__v1__pod_sandbox_status__annotations_entry__descriptor, status->annotations,
                status->n_annotations);
  Runtime__V1__PodSandboxStatusResponse *response =
    berth_grpc_message_new (&runtime__v1__pod_sandbox_status_response__descriptor);
  response->status = status;
  response->timestamp = g_get_real_time () * 1000;
  if (req->verbose)
    {
      /* What kubelet shows in `crictl inspectp`: the network's state, checked now with
       * CNI CHECK against the ADD result. */
      g_autoptr (JsonBuilder) builder = json_builder_new ();
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "pid");
      json_builder_add_int_value (builder, record->pid);
      json_builder_set_member_name (builder, "netns");
      json_builder_add_string_value (builder, record->netns);
      if (*record->cni_network != '\0')
        {
          g_autofree char *args = cni_args (record);
          g_autoptr (JsonNode) rc = port_mappings (record->config);
          g_autoptr (GError) check_error = NULL;
          BerthCniCall cni;
          cni_call_init (&cni, daemon, record, args, rc);
          json_builder_set_member_name (builder, "cniCheck");
          json_builder_add_string_value (builder, berth_cni_check (&cni, record->cni_result, &check_error)
                                                    ? "ok" : check_error->message);
        }
      json_builder_end_object (builder);
      g_autoptr (JsonNode) root = json_builder_get_root (builder);
      g_autoptr (GHashTable) info = berth_labels_new ();
      g_hash_table_insert (info, g_strdup ("info"), berth_json_to_text (root, NULL));
      berth_schema_labels_to_entries (info, &runtime__v1__pod_sandbox_status_response__info_entry__descriptor,
                                      (void ***) &response->info, &response->n_info);
    }
  return &response->base;
}

ProtobufCMessage *
cri_list_pod_sandbox (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ListPodSandboxRequest *req = (gpointer) request;
  const Runtime__V1__PodSandboxFilter *filter = req->filter;
  g_autoptr (GPtrArray) records = berth_cri_record_list (daemon, "sandboxes", &berth__cri__v1__sandbox_record__descriptor,
                                                         error);
  if (records == NULL)
    return NULL;
  g_autoptr (GPtrArray) items = g_ptr_array_new ();
  for (guint i = 0; i < records->len; i++)
    {
      const CriSandbox *record = records->pdata[i];
      const Runtime__V1__PodSandboxConfig *config = record->config;
      Runtime__V1__PodSandboxState state = sandbox_state (daemon, record);
      if (filter != NULL
          && ((filter->id && *filter->id && !g_str_has_prefix (record->id, filter->id))
              || (filter->state && filter->state->state != state)
              || !berth_cri_labels_match ((void *const *) filter->label_selector, filter->n_label_selector,
                                          (void *const *) config->labels, config->n_labels)))
        continue;
      Runtime__V1__PodSandbox *item = berth_grpc_message_new (&runtime__v1__pod_sandbox__descriptor);
      item->id = g_strdup (record->id);
      item->metadata = berth_api_message_copy (&config->metadata->base);
      item->state = state;
      item->created_at = record->created_at;
      item->runtime_handler = g_strdup (record->runtime_handler);
      BERTH_CRI_ENTRIES_COPY (config->labels, config->n_labels, &runtime__v1__pod_sandbox__labels_entry__descriptor, item->labels,
                    item->n_labels);
      BERTH_CRI_ENTRIES_COPY (config->annotations, config->n_annotations, &runtime__v1__pod_sandbox__annotations_entry__descriptor,
                    item->annotations, item->n_annotations);
      g_ptr_array_add (items, item);
    }
  Runtime__V1__ListPodSandboxResponse *response = berth_grpc_message_new (&runtime__v1__list_pod_sandbox_response__descriptor);
  response->n_items = items->len;
  response->items = (Runtime__V1__PodSandbox **) g_ptr_array_steal (items, NULL);
  return &response->base;
}

/* A pod's figures: the sum of its containers' (@containers: every container record). */
static Runtime__V1__PodSandboxStats *
sandbox_stats_new (BerthDaemon *daemon, const CriSandbox *record, GPtrArray *containers)
{
  Runtime__V1__PodSandboxStats *stats = berth_grpc_message_new (&runtime__v1__pod_sandbox_stats__descriptor);
  stats->attributes = berth_grpc_message_new (&runtime__v1__pod_sandbox_attributes__descriptor);
  stats->attributes->id = g_strdup (record->id);
  stats->attributes->metadata = berth_api_message_copy (&record->config->metadata->base);
  BERTH_CRI_ENTRIES_COPY (record->config->labels, record->config->n_labels,
                          &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor, stats->attributes->labels,
                          stats->attributes->n_labels);
  BERTH_CRI_ENTRIES_COPY (record->config->annotations, record->config->n_annotations,
                          &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor,
                          stats->attributes->annotations, stats->attributes->n_annotations);
  stats->linux = berth_grpc_message_new (&runtime__v1__linux_pod_sandbox_stats__descriptor);
  g_autoptr (GPtrArray) items = g_ptr_array_new ();
  guint64 cpu = 0, memory = 0;
  for (guint i = 0; i < containers->len; i++)
    {
      const CriContainer *c = containers->pdata[i];
      if (!g_str_equal (c->sandbox_id, record->id))
        continue;
      Runtime__V1__ContainerStats *cs = berth_cri_container_stats_new (daemon, c, NULL);
      if (cs == NULL)
        continue;
      cpu += cs->cpu && cs->cpu->usage_core_nano_seconds ? cs->cpu->usage_core_nano_seconds->value : 0;
      memory += cs->memory && cs->memory->working_set_bytes ? cs->memory->working_set_bytes->value : 0;
      g_ptr_array_add (items, cs);
    }
  gint64 now = g_get_real_time () * 1000;
  stats->linux->cpu = berth_grpc_message_new (&runtime__v1__cpu_usage__descriptor);
  stats->linux->cpu->timestamp = now;
  stats->linux->cpu->usage_core_nano_seconds = berth_grpc_message_new (&runtime__v1__uint64_value__descriptor);
  stats->linux->cpu->usage_core_nano_seconds->value = cpu;
  stats->linux->memory = berth_grpc_message_new (&runtime__v1__memory_usage__descriptor);
  stats->linux->memory->timestamp = now;
  stats->linux->memory->working_set_bytes = berth_grpc_message_new (&runtime__v1__uint64_value__descriptor);
  stats->linux->memory->working_set_bytes->value = memory;
  stats->linux->n_containers = items->len;
  stats->linux->containers = (Runtime__V1__ContainerStats **) g_ptr_array_steal (items, NULL);
  return stats;
}

ProtobufCMessage *
cri_pod_sandbox_stats (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__PodSandboxStatsRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_sandbox_get (daemon, req->pod_sandbox_id, error);
  g_autoptr (GPtrArray) containers = owned ? berth_cri_record_list (daemon, "containers",
                                                                    &berth__cri__v1__container_record__descriptor, error)
                                           : NULL;
  if (containers == NULL)
    return NULL;
  Runtime__V1__PodSandboxStatsResponse *response = berth_grpc_message_new (&runtime__v1__pod_sandbox_stats_response__descriptor);
  response->stats = sandbox_stats_new (daemon, (CriSandbox *) owned, containers);
  return &response->base;
}

ProtobufCMessage *
cri_list_pod_sandbox_stats (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ListPodSandboxStatsRequest *req = (gpointer) request;
  const Runtime__V1__PodSandboxStatsFilter *filter = req->filter;
  g_autoptr (GPtrArray) sandboxes = berth_cri_record_list (daemon, "sandboxes", &berth__cri__v1__sandbox_record__descriptor,
                                                           error);
  g_autoptr (GPtrArray) containers = sandboxes ? berth_cri_record_list (daemon, "containers",
                                                                        &berth__cri__v1__container_record__descriptor,
                                                                        error)
                                               : NULL;
  if (containers == NULL)
    return NULL;
  g_autoptr (GPtrArray) items = g_ptr_array_new ();
  for (guint i = 0; i < sandboxes->len; i++)
    {
      const CriSandbox *record = sandboxes->pdata[i];
      if (sandbox_state (daemon, record) != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
          || (filter != NULL
              && ((filter->id && *filter->id && !g_str_has_prefix (record->id, filter->id))
                  || !berth_cri_labels_match ((void *const *) filter->label_selector, filter->n_label_selector,
                                              (void *const *) record->config->labels, record->config->n_labels))))
        continue;
      g_ptr_array_add (items, sandbox_stats_new (daemon, record, containers));
    }
  Runtime__V1__ListPodSandboxStatsResponse *response =
    berth_grpc_message_new (&runtime__v1__list_pod_sandbox_stats_response__descriptor);
  response->n_stats = items->len;
  response->stats = (Runtime__V1__PodSandboxStats **) g_ptr_array_steal (items, NULL);
  return &response->base;
}

