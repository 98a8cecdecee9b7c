/* berth-daemon.c — the daemon object: config, lock, metadata, events, plugins, API. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metadata/berth-metadata-schema.h"
#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "berth-daemon-private.h"
#include "berth-cgroup.h"
#include "berth-gc.h"
#include "wire/berth-grpc.h"
#include "berth-log.h"
#include "berth-metrics.h"

struct _BerthDaemon {
  BerthConfig *config;
  BerthRegistry *registry;
  BerthMetadata *metadata;
  BerthEvents *events;
  BerthGrpcServer *server;
  BerthMetricsServer *metrics;
  int root_lock_fd;
  int state_lock_fd;
  char *root_lock_path;
  char *state_lock_path;
  guint gc_source;
  GCancellable *shutdown;
  BerthDaemonTaskExitFunc task_exited;
};

/* OOM kills, as containerd reports them (/tasks/oom before the /tasks/exit): the kernel
 * counts them in the memory cgroup, which outlives the task's processes until the runtime
 * deletes the container, so the core reads the counter at each exit, whatever the runtime.
 * The directory is found while the init lives (/proc/PID/cgroup). */
typedef struct {
  char *memory_dir; /* NULL: no memory cgroup of its own, or found too late */
  guint64 oom_kills; /* the counter as last seen */
  gboolean oom_killed;
} TaskOom;

#define TASK_OOM_KEY "berth-daemon-oom"
static GMutex oom_lock;

static void
task_oom_free (TaskOom *oom)
{
  g_free (oom->memory_dir);
  g_free (oom);
}

static void
task_oom_watch (BerthTask *task)
{
  TaskOom *oom = g_new0 (TaskOom, 1);
  g_autoptr (GError) error = NULL;
  /* A stopped task's pid may be another process's by now. */
  if (berth_task_get_status (task, NULL, NULL) != BERTH_TASK_STATUS_STOPPED)
    oom->memory_dir = berth_cgroup_memory_dir (berth_task_get_pid (task), &error);
  if (oom->memory_dir != NULL)
    berth_cgroup_oom_kills (oom->memory_dir, &oom->oom_kills);
  else
    g_debug ("task %s: OOM kills not watched: %s", berth_task_get_id (task), error ? error->message : "stopped");
  g_object_set_data_full (G_OBJECT (task), TASK_OOM_KEY, oom, (GDestroyNotify) task_oom_free);
}

/* TRUE when the OOM killer killed a process of @task since the last call. */
static gboolean
task_oom_check (BerthTask *task)
{
  g_mutex_lock (&oom_lock);
  TaskOom *oom = g_object_get_data (G_OBJECT (task), TASK_OOM_KEY);
  guint64 count = 0;
  gboolean killed = oom != NULL && oom->memory_dir != NULL && berth_cgroup_oom_kills (oom->memory_dir, &count)
                    && count > oom->oom_kills;
  if (killed)
    {
      oom->oom_kills = count;
      oom->oom_killed = TRUE;
    }
  g_mutex_unlock (&oom_lock);
  return killed;
}

gboolean
berth_daemon_task_oom_killed (BerthTask *task)
{
  g_mutex_lock (&oom_lock);
  TaskOom *oom = g_object_get_data (G_OBJECT (task), TASK_OOM_KEY);
  gboolean killed = oom != NULL && oom->oom_killed;
  g_mutex_unlock (&oom_lock);
  return killed;
}

/* A process of @task exited (the runtime's "exited" signal, from any thread). */
static void
on_task_exited (BerthTask *task, const char *exec_id, guint pid, guint exit_status, gint64 exited_at, gpointer data)
{
  BerthDaemon *daemon = data;
  daemon->task_exited (daemon, task, exec_id, pid, exit_status, exited_at, task_oom_check (task));
}

/* Publishes the exits of @task's processes as /tasks/exit. The runtime announces them
 * (BerthTask's "exited" signal): no thread waits per task or process. Once per task
 * object; @exec_id is watched by the runtime from its start. */
void
berth_daemon_watch_exit (BerthDaemon *daemon, BerthTask *task, const char *exec_id)
{
  (void) exec_id;
  static GMutex lock;
  g_mutex_lock (&lock);
  if (g_object_get_data (G_OBJECT (task), "berth-daemon-exits") == NULL)
    {
      g_object_set_data (G_OBJECT (task), "berth-daemon-exits", daemon);
      task_oom_watch (task);
      g_signal_connect (task, "exited", G_CALLBACK (on_task_exited), daemon);
    }
  g_mutex_unlock (&lock);
}

/* flock()s "<dir>/berthd.lock" and writes our pid into it. The inode check guards
 * against locking a file that the previous owner unlinked at exit. */
static gboolean
take_lock (const char *dir, const char *what, char **path_out, int *fd_out, GError **error)
{
  g_autofree char *path = g_build_filename (dir, "berthd.lock", NULL);
  for (int attempt = 0; attempt < 3; attempt++)
    {
      berth_autofd int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0)
        return berth_throw_errno (error, "opening lock %s", path);
      if (flock (fd, LOCK_EX | LOCK_NB) < 0)
        {
          if (errno != EWOULDBLOCK)
            return berth_throw_errno (error, "locking %s", path);
          char pid[32] = "";
          ssize_t n = pread (fd, pid, sizeof pid - 1, 0);
          pid[n > 0 ? n : 0] = '\0';
          g_strstrip (pid);
          return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                              "another berthd (pid %s) is already using %s %s; stop it first or give this one its "
                              "own --root and --state",
                              *pid ? pid : "unknown", what, dir);
        }
      struct stat by_fd, by_path;
      if (fstat (fd, &by_fd) < 0 || stat (path, &by_path) < 0 || by_fd.st_ino != by_path.st_ino)
        continue; /* unlinked under us by an exiting daemon: try again */
      g_autofree char *pid = g_strdup_printf ("%d\n", (int) getpid ());
      if (ftruncate (fd, 0) < 0 || pwrite (fd, pid, strlen (pid), 0) < 0)
        return berth_throw_errno (error, "writing %s", path);
      *fd_out = berth_steal_fd (&fd);
      *path_out = g_steal_pointer (&path);
      return TRUE;
    }
  return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "lock %s keeps disappearing; is another berthd exiting?", path);
}

static void
release_lock (char **path, int *fd)
{
  if (*fd < 0)
    return;
  unlink (*path);
  close (*fd);
  *fd = -1;
  g_clear_pointer (path, g_free);
}

BerthDaemon *
berth_daemon_new (BerthConfig *config, GError **error)
{
  g_autoptr (BerthDaemon) daemon = g_new0 (BerthDaemon, 1);
  daemon->config = config;
  daemon->root_lock_fd = daemon->state_lock_fd = -1;
  if (g_mkdir_with_parents (config->root, 0700) < 0)
    {
      berth_throw_errno (error, "creating root %s", config->root);
      return NULL;
    }
  if (g_mkdir_with_parents (config->state, 0711) < 0)
    {
      berth_throw_errno (error, "creating state %s", config->state);
      return NULL;
    }
  if (!take_lock (config->root, "root", &daemon->root_lock_path, &daemon->root_lock_fd, error)
      || !take_lock (config->state, "state", &daemon->state_lock_path, &daemon->state_lock_fd, error))
    return NULL;
  daemon->metadata = berth_metadata_open (config->root, error);
  if (daemon->metadata == NULL)
    return NULL;
  daemon->events = berth_events_new ();
  daemon->shutdown = g_cancellable_new ();
  daemon->registry = berth_registry_new (config);
  const char *scanner = g_getenv ("BERTH_PLUGIN_SCANNER");
  if (scanner != NULL)
    berth_registry_set_scanner (daemon->registry, scanner);
  if (!berth_registry_load (daemon->registry, error))
    return NULL;
  return g_steal_pointer (&daemon);
}

/* An event a runtime's supervisor published (a containerd shim's Events/Forward). The
 * task lifecycle topics the Tasks service publishes itself are not published twice, nor
 * a shim's /tasks/oom: the core reads OOM kills from the cgroup for every runtime. */
static void
on_runtime_event (GObject *runtime, const char *ns, const char *topic, const char *type_url, GBytes *payload,
                  gint64 timestamp, gpointer user_data)
{
  BerthDaemon *daemon = user_data;
  const char *const own[] = { "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete", "/tasks/exec-added",
                              "/tasks/exec-started", "/tasks/paused", "/tasks/resumed", "/tasks/oom", NULL };
  if (g_strv_contains (own, topic))
    return;
  BerthEventEnvelope envelope = { timestamp, (char *) ns, (char *) topic, (char *) type_url, payload };
  berth_events_publish_envelope (daemon->events, &envelope);
}

/* Events from @record's runtime reach the event service, and its tasks' exits are
 * watched — those of tasks a previous berthd left included. */
static void
adopt_runtime (BerthDaemon *daemon, const BerthPluginRecord *record)
{
  g_autoptr (GError) local_error = NULL;
  if (record->instance == NULL || !BERTH_IS_RUNTIME (record->instance))
    return;
  BerthRuntime *runtime = BERTH_RUNTIME (record->instance);
  if (g_signal_lookup ("event", G_OBJECT_TYPE (runtime)) != 0)
    g_signal_connect (runtime, "event", G_CALLBACK (on_runtime_event), daemon);
  if (!berth_runtime_restore (runtime, NULL, &local_error))
    {
      g_warning ("runtime %s: reconnecting to running tasks: %s", record->id, local_error->message);
      return;
    }
  /* Exits that happened while no berthd was watching are published now. */
  g_autoptr (GPtrArray) tasks = berth_runtime_list (runtime, NULL, NULL);
  for (guint t = 0; tasks != NULL && t < tasks->len; t++)
    berth_daemon_watch_exit (daemon, tasks->pdata[t], NULL);
}

/* A runtime loaded on its first use (see the registry's wanted_at_start). */
static void
on_plugin_decided (BerthRegistry *registry G_GNUC_UNUSED, const BerthPluginRecord *record, BerthDaemon *daemon)
{
  adopt_runtime (daemon, record);
}

gboolean
berth_daemon_start (BerthDaemon *daemon, int listen_fd, BerthDaemonServicesFunc register_services,
                    BerthDaemonTaskExitFunc task_exited, GError **error)
{
  daemon->task_exited = task_exited;
  GPtrArray *plugins = berth_registry_get_plugins (daemon->registry);
  for (guint i = 0; i < plugins->len; i++)
    adopt_runtime (daemon, plugins->pdata[i]);
  g_signal_connect (daemon->registry, "plugin-decided", G_CALLBACK (on_plugin_decided), daemon);

  /* Before the gRPC socket: a metrics address that cannot be had fails startup while
   * nothing has been served yet. */
  if (daemon->config->metrics_address != NULL)
    {
      daemon->metrics = berth_metrics_server_new (daemon, daemon->config->metrics_address, error);
      if (daemon->metrics == NULL)
        return FALSE;
    }
  daemon->gc_source = berth_gc_schedule (daemon, daemon->config->gc_interval_seconds);
  daemon->server = berth_grpc_server_new (daemon, daemon->config->max_message_size);
  berth_grpc_server_set_call_observer (daemon->server, berth_metrics_observe_grpc);
  register_services (daemon->server, daemon);
  if (listen_fd >= 0)
    return berth_grpc_server_adopt_fd (daemon->server, listen_fd, error);
  g_autofree char *dir = g_path_get_dirname (daemon->config->address);
  if (g_mkdir_with_parents (dir, 0711) < 0)
    return berth_throw_errno (error, "creating %s", dir);
  return berth_grpc_server_listen (daemon->server, daemon->config->address, daemon->config->address_group, error);
}

void
berth_daemon_stop (BerthDaemon *daemon)
{
  if (daemon->gc_source != 0)
    g_source_remove (daemon->gc_source);
  daemon->gc_source = 0;
  /* Before the gRPC server, whose stop runs what is pending on the main context:
   * scrapes finishing there find their server stopped and let go of it. */
  if (daemon->metrics != NULL)
    berth_metrics_server_stop (daemon->metrics);
  if (daemon->server != NULL)
    berth_grpc_server_stop (daemon->server);
  if (daemon->shutdown != NULL)
    g_cancellable_cancel (daemon->shutdown);
  /* Tasks outlive the daemon object (the runtime plugins hold them): nothing they
   * announce may reach it any more. */
  GPtrArray *plugins = daemon->registry ? berth_registry_get_plugins (daemon->registry) : NULL;
  for (guint i = 0; plugins != NULL && i < plugins->len; i++)
    {
      BerthPluginRecord *record = plugins->pdata[i];
      if (record->instance == NULL || !BERTH_IS_RUNTIME (record->instance))
        continue;
      g_autoptr (GPtrArray) tasks = berth_runtime_list (BERTH_RUNTIME (record->instance), NULL, NULL);
      for (guint t = 0; tasks != NULL && t < tasks->len; t++)
        {
          g_signal_handlers_disconnect_by_data (tasks->pdata[t], daemon);
          g_object_set_data (tasks->pdata[t], "berth-daemon-exits", NULL);
        }
    }
}

void
berth_daemon_free (BerthDaemon *daemon)
{
  if (daemon == NULL)
    return;
  berth_daemon_stop (daemon);
  g_clear_pointer (&daemon->server, berth_grpc_server_free);
  g_clear_object (&daemon->metrics);
  g_clear_object (&daemon->shutdown);
  if (daemon->registry != NULL)
    berth_registry_shutdown (daemon->registry);
  g_clear_object (&daemon->registry);
  g_clear_pointer (&daemon->events, berth_events_free);
  g_clear_pointer (&daemon->metadata, berth_metadata_close);
  release_lock (&daemon->state_lock_path, &daemon->state_lock_fd);
  release_lock (&daemon->root_lock_path, &daemon->root_lock_fd);
  g_clear_pointer (&daemon->config, berth_config_free);
  g_free (daemon);
}

static gboolean
strv_equal (char **a, char **b)
{
  return g_strv_equal ((const char *const *) (a ? a : (char *[]) { NULL }),
                       (const char *const *) (b ? b : (char *[]) { NULL }));
}

static void
needs_restart (const char *what, gboolean changed)
{
  if (changed)
    g_warning ("reload: %s changed; that takes a restart of berthd", what);
}

/* Moves the endpoint to @address (NULL: off). A failure leaves metrics off, not the
 * daemon down. */
static void
reload_metrics (BerthDaemon *daemon, const char *address)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthMetricsServer) next = NULL;
  if (address != NULL)
    {
      next = berth_metrics_server_new (daemon, address, &error);
      if (next == NULL && daemon->metrics != NULL)
        {
          /* The old endpoint may hold the port (same port, another IP): free it, retry. */
          g_debug ("reload: %s; retrying without the old endpoint", error->message);
          g_clear_error (&error);
          berth_metrics_server_stop (daemon->metrics);
          g_clear_object (&daemon->metrics);
          next = berth_metrics_server_new (daemon, address, &error);
        }
    }
  if (daemon->metrics != NULL)
    berth_metrics_server_stop (daemon->metrics);
  g_clear_object (&daemon->metrics);
  daemon->metrics = g_steal_pointer (&next);
  g_free (daemon->config->metrics_address);
  daemon->config->metrics_address = daemon->metrics ? g_strdup (address) : NULL;
  if (error != NULL)
    g_warning ("reload: [metrics] address %s: %s; metrics are off", address, error->message);
  else if (address != NULL)
    g_message ("reload: serving metrics on http://%s/v1/metrics", address);
  else
    g_message ("reload: metrics endpoint off");
}

void
berth_daemon_reload (BerthDaemon *daemon, BerthConfig *new_config)
{
  g_autoptr (BerthConfig) config = new_config;
  BerthConfig *old = daemon->config;
  /* Handlers in worker threads read the running config without a lock, so it is never
   * replaced: only the fields that the main thread alone reads change in place. */
  needs_restart ("root", g_strcmp0 (old->root, config->root) != 0);
  needs_restart ("state", g_strcmp0 (old->state, config->state) != 0);
  needs_restart ("address", g_strcmp0 (old->address, config->address) != 0);
  needs_restart ("address-group", g_strcmp0 (old->address_group, config->address_group) != 0);
  needs_restart ("libexec-dir", g_strcmp0 (old->libexec_dir, config->libexec_dir) != 0);
  needs_restart ("plugin-dirs", !strv_equal (old->plugin_dirs, config->plugin_dirs));
  needs_restart ("disabled-plugins", !strv_equal (old->disabled_plugins, config->disabled_plugins));
  needs_restart ("default-snapshotter", g_strcmp0 (old->default_snapshotter, config->default_snapshotter) != 0);
  needs_restart ("default-runtime", g_strcmp0 (old->default_runtime, config->default_runtime) != 0);
  needs_restart ("default-runtime-binary",
                 g_strcmp0 (old->default_runtime_binary, config->default_runtime_binary) != 0);
  needs_restart ("max-message-size", old->max_message_size != config->max_message_size);
  g_autofree char *plugin_group = NULL;
  if (berth_config_plugin_groups_differ (old, config, &plugin_group))
    {
      g_autofree char *what = g_strdup_printf ("[%s]", plugin_group);
      needs_restart (what, TRUE);
    }

  if (g_strcmp0 (old->log_level, config->log_level) != 0)
    {
      berth_log_set_level (config->log_level);
      g_message ("reload: log-level %s (was %s)", config->log_level, old->log_level);
      g_free (old->log_level);
      old->log_level = g_strdup (config->log_level);
    }
  if (old->gc_interval_seconds != config->gc_interval_seconds)
    {
      if (daemon->gc_source != 0)
        g_source_remove (daemon->gc_source);
      daemon->gc_source = berth_gc_schedule (daemon, config->gc_interval_seconds);
      g_message ("reload: gc-interval %" G_GINT64_FORMAT " s (was %" G_GINT64_FORMAT ")", config->gc_interval_seconds,
                 old->gc_interval_seconds);
      old->gc_interval_seconds = config->gc_interval_seconds;
    }
  if (g_strcmp0 (old->metrics_address, config->metrics_address) != 0)
    reload_metrics (daemon, config->metrics_address);
}

BerthConfig *
berth_daemon_get_config (BerthDaemon *daemon)
{
  return daemon->config;
}

BerthRegistry *
berth_daemon_get_registry (BerthDaemon *daemon)
{
  return daemon->registry;
}

BerthMetadata *
berth_daemon_get_metadata (BerthDaemon *daemon)
{
  return daemon->metadata;
}

BerthEvents *
berth_daemon_get_events (BerthDaemon *daemon)
{
  return daemon->events;
}

/* The instance of @type_or_id, or an error that says why there is none. */
static GObject *
get_backend (BerthDaemon *daemon, const char *kind, const char *type_or_id, GError **error)
{
  const BerthPluginRecord *record = berth_registry_lookup (daemon->registry, type_or_id);
  if (record == NULL)
    {
      berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s %s is not installed (see berthd --list-plugins)", kind,
                   type_or_id);
      return NULL;
    }
  if (record->instance == NULL)
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "%s %s is not available: %s", kind, record->id,
                   record->error ? record->error->message : "not loaded");
      return NULL;
    }
  return record->instance;
}

BerthContentStore *
berth_daemon_get_content_store (BerthDaemon *daemon, GError **error)
{
  return (BerthContentStore *) get_backend (daemon, "content store", BERTH_PLUGIN_TYPE_CONTENT, error);
}

static GObject *
get_named_backend (BerthDaemon *daemon, const char *kind, const char *type, const char *name, GError **error)
{
  if (name == NULL || *name == '\0')
    return get_backend (daemon, kind, type, error);
  g_autofree char *id = g_str_has_prefix (name, type) ? g_strdup (name) : g_strdup_printf ("%s.%s", type, name);
  return get_backend (daemon, kind, id, error);
}

BerthSnapshotter *
berth_daemon_get_snapshotter (BerthDaemon *daemon, const char *name, GError **error)
{
  if (name == NULL || *name == '\0')
    name = daemon->config->default_snapshotter;
  return (BerthSnapshotter *) get_named_backend (daemon, "snapshotter", BERTH_PLUGIN_TYPE_SNAPSHOTTER, name, error);
}

BerthDiffer *
berth_daemon_get_differ (BerthDaemon *daemon, const char *name, GError **error)
{
  return (BerthDiffer *) get_named_backend (daemon, "differ", BERTH_PLUGIN_TYPE_DIFFER, name, error);
}

/* berth-shim's plugin, which runs tasks whose runtime is unnamed or one of runc's. */
#define DEFAULT_RUNTIME_PLUGIN BERTH_PLUGIN_TYPE_RUNTIME ".task"
/* The plugin that runs every other runtime name as a containerd shim v2. */
#define SHIM_RUNTIME_PLUGIN BERTH_PLUGIN_TYPE_RUNTIME ".shimv2"

static BerthRuntime *
default_runtime (BerthDaemon *daemon, GError **error)
{
  gboolean have_default = berth_registry_lookup (daemon->registry, DEFAULT_RUNTIME_PLUGIN) != NULL;
  return (BerthRuntime *) get_backend (daemon, "runtime", have_default ? DEFAULT_RUNTIME_PLUGIN : BERTH_PLUGIN_TYPE_RUNTIME,
                                       error);
}

/* Whether a runtime plugin's config routes @name to it: its "runtime-names" property. */
static gboolean
claims_runtime_name (GObject *instance, const char *name)
{
  if (instance == NULL || !BERTH_IS_RUNTIME (instance)
      || g_object_class_find_property (G_OBJECT_GET_CLASS (instance), "runtime-names") == NULL)
    return FALSE;
  g_auto (GStrv) names = NULL;
  g_object_get (instance, "runtime-names", &names, NULL);
  return names != NULL && g_strv_contains ((const char *const *) names, name);
}

BerthRuntime *
berth_daemon_get_runtime (BerthDaemon *daemon, const char *name, GError **error)
{
  /* Clients name runtimes by shim name ("io.containerd.runc.v2"), as containerd does: a
   * plugin id is honoured; a name that a runtime plugin's config claims goes there;
   * berth-shim runs unnamed tasks and runc's names; any other name is a containerd shim
   * (containerd-shim-NAME-VERSION), which the shimv2 plugin runs or refuses with
   * NOT_FOUND naming the binary. */
  if (name != NULL && g_str_has_prefix (name, BERTH_PLUGIN_TYPE_RUNTIME "."))
    return (BerthRuntime *) get_backend (daemon, "runtime", name, error);
  if (name == NULL || *name == '\0')
    return default_runtime (daemon, error);
  GPtrArray *plugins = berth_registry_get_plugins (daemon->registry);
  for (guint i = 0; i < plugins->len; i++)
    {
      const BerthPluginRecord *record = plugins->pdata[i];
      if (claims_runtime_name (record->instance, name))
        return BERTH_RUNTIME (record->instance);
    }
  const char *const runc_names[] = { "io.containerd.runc.v2", "io.containerd.runc.v1", "io.containerd.runtime.v1.linux", NULL };
  if (g_strv_contains (runc_names, name))
    return default_runtime (daemon, error);
  BerthRuntime *runtime = (BerthRuntime *) get_backend (daemon, "runtime", SHIM_RUNTIME_PLUGIN, error);
  if (runtime == NULL)
    g_prefix_error (error, "runtime \"%s\" needs a containerd shim: ", name);
  return runtime;
}

GPtrArray *
berth_daemon_list_tasks (BerthDaemon *daemon, const char *namespace_, GError **error)
{
  if (default_runtime (daemon, error) == NULL)
    return NULL;
  GPtrArray *all = g_ptr_array_new_with_free_func (g_object_unref);
  GPtrArray *plugins = berth_registry_get_plugins (daemon->registry);
  for (guint i = 0; i < plugins->len; i++)
    {
      const BerthPluginRecord *record = plugins->pdata[i];
      if (record->instance == NULL || !BERTH_IS_RUNTIME (record->instance))
        continue;
      g_autoptr (GPtrArray) tasks = berth_runtime_list (BERTH_RUNTIME (record->instance), namespace_, NULL);
      for (guint t = 0; tasks != NULL && t < tasks->len; t++)
        g_ptr_array_add (all, g_object_ref (tasks->pdata[t]));
    }
  return all;
}

BerthTask *
berth_daemon_find_task (BerthDaemon *daemon, const char *namespace_, const char *id, GError **error)
{
  GPtrArray *plugins = berth_registry_get_plugins (daemon->registry);
  for (guint i = 0; i < plugins->len; i++)
    {
      const BerthPluginRecord *record = plugins->pdata[i];
      if (record->instance == NULL || !BERTH_IS_RUNTIME (record->instance))
        continue;
      BerthTask *task = berth_runtime_get (BERTH_RUNTIME (record->instance), namespace_, id, NULL);
      if (task != NULL)
        return task;
    }
  if (default_runtime (daemon, error) == NULL)
    return NULL;
  return berth_throw (error, BERTH_ERROR_NOT_FOUND, "task %s: not found", id), NULL;
}
