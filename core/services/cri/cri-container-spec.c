/* cri-container-spec.c — the OCI spec of a CRI container: berth-spec.c's generator fed
 * with the ContainerConfig (command, env, mounts, user, capabilities, seccomp and
 * AppArmor, read-only root), then joined to its pod's namespaces and given what only
 * the CRI asks for: resources, OOM score, masked and read-only paths, supplemental
 * groups, mount propagation and host devices. */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <berth/berth-error.h>
#include "berth-cri.h"
#include "image/berth-json.h"
#include "image/berth-spec.h"

/* The OCI LinuxResources of the CRI's resources: memory and CPU. */
JsonObject *
cri_resources_json (const Runtime__V1__LinuxContainerResources *r)
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

JsonNode *
cri_container_spec (BerthDaemon *daemon, const CriSandbox *sandbox, const CriContainer *record, BerthImageInfo *image,
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
  g_autoptr (JsonObject) wanted = cri_resources_json (config->linux ? config->linux->resources : NULL);
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
