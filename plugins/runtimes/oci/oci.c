/* oci.c — the OCI runtime plugin: runc or crun under berth-shim.
 *
 * Each task lives in "<state>/<namespace>/<id>/": bundle/ (config.json, rootfs mounted
 * from the snapshot), the shim's socket and the exit file. The shim, not berthd, is the
 * container's parent, so tasks survive a daemon restart; restore() finds them again.
 *
 * A client may name the OCI runtime (runc options BinaryName, `ctr run --runc-binary`),
 * but only one that [plugin.runtime.task] allowed-binaries lists: bare names are looked
 * up in berthd's PATH, anything else must be listed as the exact absolute path. Other
 * names are refused with PERMISSION_DENIED: a client must not make berthd run an
 * arbitrary program as root.
 *
 * This file is the runtime: creating a task (its bundle, berth-shim started and its
 * answer awaited), finding and restoring tasks, and the plugin. The task's requests are
 * in oci-task.c, talking to a shim in oci-shim.c, exits in oci-exits.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "oci-private.h"
#include "runc-options.h"

#define RUNC_OPTIONS_TYPE "containerd.runc.v1.Options"
#define SHIM_READY_TIMEOUT_MS (60 * 1000)

static void oci_runtime_iface_init (BerthRuntimeInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (OciRuntime, oci_runtime, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_RUNTIME, oci_runtime_iface_init))

/* BinaryName of runc's Options, if the client sent those. */
static char *
binary_from_options (const char *type_url, GBytes *options)
{
  if (type_url == NULL || options == NULL || !g_str_has_suffix (type_url, RUNC_OPTIONS_TYPE))
    return NULL;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (options, &len);
  return oci_runc_options_binary_name (data, len);
}

/* crun refuses cgroup v1-hybrid hosts whose cgroup2 mount still offers a controller. */
static gboolean
check_crun_host (const char *binary, GError **error)
{
  g_autofree char *base = g_path_get_basename (binary);
  g_autofree char *controllers = NULL;
  if (!g_str_equal (base, "crun")
      || !g_file_get_contents ("/sys/fs/cgroup/unified/cgroup.controllers", &controllers, NULL, NULL))
    return TRUE;
  g_strstrip (controllers);
  if (*controllers == '\0')
    return TRUE;
  return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                      "crun refuses this cgroup v1-hybrid host because cgroup2 still offers \"%s\"; bind those "
                      "controllers to v1 first, e.g. mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb "
                      "cgroup /sys/fs/cgroup/hugetlb",
                      controllers);
}

/* Writes the bundle's config.json. The rootfs is bundle/rootfs, where the snapshot is
 * mounted; but a task created without rootfs mounts whose spec names an absolute root.path
 * keeps it, as containerd does: that is Docker's, whose own graph driver mounted it. */
static gboolean
write_config (const char *bundle, GBytes *spec_json, gboolean has_mounts, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len = 0;
  const char *data = spec_json ? g_bytes_get_data (spec_json, &len) : NULL;
  if (data == NULL || !berth_json_check_limits (data, len, "the container's OCI spec", error)
      || !json_parser_load_from_data (parser, data, len, error))
    return data ? FALSE : berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "the container has no OCI spec");
  JsonNode *root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "the container's OCI spec is not a JSON object");
  JsonObject *spec = json_node_get_object (root);
  JsonObject *rootobj = json_object_has_member (spec, "root") ? json_object_get_object_member (spec, "root") : NULL;
  if (rootobj == NULL)
    {
      rootobj = json_object_new ();
      json_object_set_object_member (spec, "root", rootobj);
    }
  const char *path = json_object_has_member (rootobj, "path") ? json_object_get_string_member (rootobj, "path") : NULL;
  if (has_mounts || path == NULL || !g_path_is_absolute (path))
    json_object_set_string_member (rootobj, "path", "rootfs");
  /* A rootless berthd (in a user namespace) may not create cgroups on the host's
   * hierarchies, so it runs containers with cgroups disabled: no cgroup path (runc and
   * crun then skip the cgroup setup they are denied) and no limits (runc fails on a CPU
   * share it cannot set; device rules are for the devices cgroup). */
  JsonNode *linux_node = json_object_get_member (spec, "linux");
  if (berth_in_user_namespace () && linux_node != NULL && JSON_NODE_HOLDS_OBJECT (linux_node))
    {
      JsonObject *linux_obj = json_node_get_object (linux_node);
      if (json_object_has_member (linux_obj, "cgroupsPath"))
        json_object_remove_member (linux_obj, "cgroupsPath");
      if (json_object_has_member (linux_obj, "resources"))
        {
          g_debug ("rootless: %s runs without cgroup limits", bundle);
          json_object_remove_member (linux_obj, "resources");
        }
    }
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  g_autofree char *config = g_build_filename (bundle, "config.json", NULL);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  return g_file_set_contents (config, text, -1, error);
}

/* Starts the shim and waits for its "ok PID" / "err MESSAGE". */
static gboolean
spawn_shim (OciRuntime *self, const char *dir, const char *binary, const BerthTaskCreateOptions *options,
            guint32 *pid_out, GError **error)
{
  int pipefd[2];
  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return berth_throw_errno (error, "pipe");
  berth_autofd int read_end = pipefd[0];
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_take_fd (launcher, pipefd[1], 3);
  g_autofree char *bundle = g_build_filename (dir, "bundle", NULL);
  const BerthStdio *io = &options->stdio;
  const char *argv[] = { self->shim, dir, binary, options->id, bundle,
                         io->stdin_path && *io->stdin_path ? io->stdin_path : "-",
                         io->stdout_path && *io->stdout_path ? io->stdout_path : "-",
                         io->stderr_path && *io->stderr_path ? io->stderr_path : "-",
                         io->terminal ? "--terminal" : NULL, NULL };
  g_autoptr (GSubprocess) proc = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (proc == NULL)
    return FALSE;
  g_clear_object (&launcher); /* closes our copy of the write end */
  /* The first shim process exits as soon as it has detached. */
  if (!g_subprocess_wait (proc, NULL, error))
    return FALSE;
  GString *reply = g_string_new (NULL);
  struct pollfd pfd = { read_end, POLLIN, 0 };
  gint64 deadline = g_get_monotonic_time () + SHIM_READY_TIMEOUT_MS * G_GINT64_CONSTANT (1000);
  for (;;)
    {
      int left = (int) MAX (0, (deadline - g_get_monotonic_time ()) / 1000);
      int ready = poll (&pfd, 1, left);
      /* A signal is no answer: wait out the time left. */
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready <= 0)
        break;
      char buf[1024];
      ssize_t n = read (read_end, buf, sizeof buf);
      if (n <= 0)
        break;
      g_string_append_len (reply, buf, n);
      if (strchr (reply->str, '\n') != NULL)
        break;
    }
  g_autofree char *line = g_strstrip (g_string_free (reply, FALSE));
  if (g_str_has_prefix (line, "ok "))
    {
      *pid_out = (guint32) g_ascii_strtoull (line + 3, NULL, 10);
      return TRUE;
    }
  if (g_str_has_prefix (line, "err "))
    return berth_throw (error, BERTH_ERROR_UNKNOWN, "%s create failed: %s", binary, line + 4);
  return berth_throw (error, BERTH_ERROR_UNKNOWN, "the shim for %s exited without a word", options->id);
}

/* The runtime binary for a task: the configured default, or the one the client named
 * when allowed-binaries lists it (see the top of this file). */
static char *
resolve_binary (OciRuntime *self, const char *wanted, GError **error)
{
  const char *name = wanted && *wanted ? wanted : self->default_binary;
  if (!g_str_equal (name, self->default_binary) && !g_strv_contains ((const char *const *) self->allowed_binaries, name))
    return berth_throw (error, BERTH_ERROR_PERMISSION_DENIED,
                        "OCI runtime \"%s\" is not allowed: clients may name only the runtimes listed in "
                        "[plugin.runtime.task] allowed-binaries (bare names found in PATH, or absolute paths)",
                        name), NULL;
  if (!g_path_is_absolute (name) && strchr (name, '/') != NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "OCI runtime \"%s\": a bare name or an absolute path",
                        name), NULL;
  char *binary = g_path_is_absolute (name) ? g_strdup (name) : g_find_program_in_path (name);
  if (binary == NULL)
    berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "OCI runtime \"%s\" not found in PATH", name);
  return binary;
}

static BerthTask *
runtime_create (BerthRuntime *iface, const BerthTaskCreateOptions *options, GCancellable *cancellable, GError **error)
{
  OciRuntime *self = OCI_RUNTIME (iface);
  g_autofree char *key = g_strdup_printf ("%s/%s", options->namespace_, options->id);
  g_autofree char *dir = g_build_filename (self->state, options->namespace_, options->id, NULL);
  g_autofree char *wanted = binary_from_options (options->options_type_url, options->options);
  g_autofree char *binary = resolve_binary (self, wanted, error);
  if (binary == NULL)
    return NULL;
  if (!check_crun_host (binary, error))
    return NULL;

  g_mutex_lock (&self->lock);
  gboolean exists = g_hash_table_contains (self->tasks, key) || g_file_test (dir, G_FILE_TEST_EXISTS);
  if (!exists)
    g_hash_table_insert (self->tasks, g_strdup (key), NULL); /* reserve the id */
  g_mutex_unlock (&self->lock);
  if (exists)
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "task %s: already exists", options->id), NULL;

  g_autoptr (OciTask) task = oci_task_new (self, options->namespace_, options->id, dir, 0);
  g_autofree char *bundle = g_build_filename (dir, "bundle", NULL);
  gboolean mounted = FALSE;
  gboolean ok = g_mkdir_with_parents (task->rootfs, 0711) == 0 || berth_throw_errno (error, "creating %s", task->rootfs);
  gboolean has_mounts = options->rootfs != NULL && options->rootfs->len > 0;
  ok = ok && write_config (bundle, options->spec_json, has_mounts, error);
  /* What to clean up with should the shim die: see reap_dead_shim. */
  g_autofree char *binary_file = g_build_filename (dir, "runtime-binary", NULL);
  ok = ok && g_file_set_contents (binary_file, binary, -1, error);
  ok = ok && oci_stdio_file_write (dir, NULL, &options->stdio, error);
  if (ok && has_mounts)
    ok = mounted = berth_mount_list_mount (options->rootfs, task->rootfs, error);
  ok = ok && spawn_shim (self, dir, binary, options, &task->pid, error);
  if (!ok)
    {
      /* Nothing may be left behind: mount, bundle, reservation. */
      if (mounted)
        berth_mount_unmount (task->rootfs, NULL);
      oci_remove_tree (dir);
      g_mutex_lock (&self->lock);
      g_hash_table_remove (self->tasks, key);
      g_mutex_unlock (&self->lock);
      return NULL;
    }
  g_mutex_lock (&self->lock);
  g_hash_table_replace (self->tasks, g_strdup (key), g_object_ref (task));
  g_mutex_unlock (&self->lock);
  g_debug ("task %s created with %s, pid %u", key, binary, task->pid);
  oci_exit_watch_start (task, NULL, task->pid);
  return BERTH_TASK (g_steal_pointer (&task));
}

static BerthTask *
runtime_get (BerthRuntime *iface, const char *ns, const char *id, GError **error)
{
  OciRuntime *self = OCI_RUNTIME (iface);
  return berth_task_table_lookup (self->tasks, &self->lock, ns, id, error);
}

static GPtrArray *
runtime_list (BerthRuntime *iface, const char *ns, GError **error)
{
  OciRuntime *self = OCI_RUNTIME (iface);
  return berth_task_table_list (self->tasks, &self->lock, ns);
}

/* Finds every task a previous berthd left: "<state>/<ns>/<id>/" with a shim socket or
 * an exit file. */
static gboolean
runtime_restore (BerthRuntime *iface, GCancellable *cancellable, GError **error)
{
  OciRuntime *self = OCI_RUNTIME (iface);
  g_autoptr (GDir) namespaces = g_dir_open (self->state, 0, NULL);
  const char *ns;
  while (namespaces != NULL && (ns = g_dir_read_name (namespaces)) != NULL)
    {
      g_autofree char *nsdir = g_build_filename (self->state, ns, NULL);
      g_autoptr (GDir) ids = g_dir_open (nsdir, 0, NULL);
      const char *id;
      while (ids != NULL && (id = g_dir_read_name (ids)) != NULL)
        {
          g_autofree char *dir = g_build_filename (nsdir, id, NULL);
          g_autofree char *pidfile = g_build_filename (dir, "init.pid", NULL);
          g_autofree char *pidtext = NULL;
          if (!g_file_get_contents (pidfile, &pidtext, NULL, NULL))
            continue;
          OciTask *task = oci_task_new (self, ns, id, dir, (guint32) g_ascii_strtoull (pidtext, NULL, 10));
          g_hash_table_replace (self->tasks, g_strdup_printf ("%s/%s", ns, id), task);
          oci_exit_watch_start (task, NULL, task->pid);
          g_info ("reconnected to task %s/%s (pid %u)", ns, id, task->pid);
        }
    }
  return TRUE;
}

static void
oci_runtime_finalize (GObject *object)
{
  OciRuntime *self = OCI_RUNTIME (object);
  g_hash_table_unref (self->tasks);
  g_mutex_clear (&self->lock);
  g_free (self->state);
  g_free (self->shim);
  g_free (self->default_binary);
  g_strfreev (self->allowed_binaries);
  G_OBJECT_CLASS (oci_runtime_parent_class)->finalize (object);
}

static void oci_runtime_class_init (OciRuntimeClass *klass) { G_OBJECT_CLASS (klass)->finalize = oci_runtime_finalize; }
static void oci_runtime_class_finalize (OciRuntimeClass *klass) {}

/* A NULL value reserves an id while its task is being created. */
static void
unref_task (gpointer task)
{
  if (task != NULL)
    g_object_unref (task);
}

static void
oci_runtime_init (OciRuntime *self)
{
  g_mutex_init (&self->lock);
  self->tasks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unref_task);
}

static void
oci_runtime_iface_init (BerthRuntimeInterface *iface)
{
  iface->create = runtime_create;
  iface->get = runtime_get;
  iface->list = runtime_list;
  iface->restore = runtime_restore;
}

static void
register_types (GTypeModule *module)
{
  oci_runtime_register_type (module);
  oci_task_register (module);
}

static const BerthConfigKey config_keys[] = {
  /* The default is configure's --with-default-runtime. */
  { "binary", BERTH_CONFIG_STRING, BERTH_DEFAULT_RUNTIME_BINARY, "OCI runtime used when the client names none: runc or crun" },
  { "allowed-binaries", BERTH_CONFIG_STRING, "runc;crun",
    "OCI runtimes clients may name (runc options BinaryName, ctr run --runc-binary), ';'-separated: bare names "
    "are looked up in PATH, absolute paths must be listed as such" },
  { NULL },
};

static GObject *
init (BerthPluginContext *context, GError **error)
{
  g_autofree char *shim = berth_plugin_context_find_program (context, "berth-shim");
  if (shim == NULL)
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "berth-shim not found (set libexec-dir)");
      return NULL;
    }
  OciRuntime *self = g_object_new (OCI_TYPE_RUNTIME, NULL);
  self->state = g_strdup (berth_plugin_context_get_state (context));
  self->shim = g_steal_pointer (&shim);
  self->default_binary = berth_plugin_context_get_string (context, "binary");
  g_autofree char *allowed = berth_plugin_context_get_string (context, "allowed-binaries");
  self->allowed_binaries = g_strsplit (allowed ? allowed : "", ";", -1);
  for (char **b = self->allowed_binaries; *b != NULL; b++)
    g_strstrip (*b);
  return G_OBJECT (self);
}

BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_RUNTIME, "task", "OCI containers with runc or crun under berth-shim", NULL,
                     config_keys, register_types, init)
