/* shimv2.c — the shim-v2 runtime plugin: any containerd shim (containerd-shim-runc-v2,
 * kata, runsc, runwasi, …) run as containerd 1.6 runs it.
 *
 * A runtime name maps to a binary by containerd's rule (io.containerd.NAME.VERSION →
 * containerd-shim-NAME-VERSION, looked up in berthd's PATH only, never a path a client
 * sent) or by [plugin.runtime.shimv2] runtimes. Each task's bundle is
 * "<state>/<namespace>/<id>/": config.json, rootfs/ (the shim mounts it), the "log" FIFO
 * the shim writes to, and what the shim leaves: "address" (its ttrpc socket) and
 * "shim.pid". "shim-binary-path" records the binary for cleanup and restart.
 * (Bundles are "<state>/<ns>/<id>", so "<state>/events.sock" never clashes with one: a
 * namespace is a directory.)
 *
 * `SHIM start` (in the bundle, with -namespace/-address/-publish-binary/-id,
 * TTRPC_ADDRESS in the environment and the runtime options on stdin) prints the address;
 * every other call is containerd.task.v2.Task over ttrpc. `SHIM delete` cleans up after
 * a shim that failed or died. Shims publish their events to "<state>/events.sock"
 * (containerd.services.events.ttrpc.v1.Events/Forward), which this plugin serves and
 * hands to the daemon through its "event" signal.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>

#include <berth/berth.h>

#include "ttrpc.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb-c.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"

#define TASK_SERVICE "containerd.task.v2.Task"
#define EVENTS_SERVICE "containerd.services.events.ttrpc.v1.Events"
#define PROCESS_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define RESOURCES_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
#define CALL_TIMEOUT_MS (30 * 1000)
#define STATE_TIMEOUT_MS (5 * 1000)
#define START_TIMEOUT_MS (60 * 1000)
/* What a task whose shim died reports when even `SHIM delete` cannot tell, as containerd. */
#define DEAD_SHIM_EXIT_STATUS 255

#define SHIMV2_TYPE_RUNTIME (shimv2_runtime_get_type ())
G_DECLARE_FINAL_TYPE (ShimV2Runtime, shimv2_runtime, SHIMV2, RUNTIME, GObject)
#define SHIMV2_TYPE_TASK (shimv2_task_get_type ())
G_DECLARE_FINAL_TYPE (ShimV2Task, shimv2_task, SHIMV2, TASK, GObject)

struct _ShimV2Runtime {
  GObject parent_instance;
  char *state;
  char *address;       /* berthd's gRPC socket: -address */
  char *ttrpc_address; /* the events endpoint: TTRPC_ADDRESS */
  char *publish_binary;
  GHashTable *binaries; /* runtime name → absolute path, from config */
  GStrv names;          /* its keys, for the "runtime-names" property */
  ShimV2TtrpcServer *events;
  GMutex lock;
  GHashTable *tasks; /* "<ns>/<id>" → ShimV2Task (ref), NULL while being created */
};

struct _ShimV2Task {
  GObject parent_instance;
  ShimV2Runtime *runtime; /* not owned: the runtime outlives its tasks */
  char *namespace_;
  char *id;
  char *dir;
  char *binary;
  char *address; /* the shim's ttrpc socket */
  guint32 pid;
  GSource *log_source;
  GMutex lock;
  gboolean dead; /* the shim is gone and was cleaned up; exit holds what it left */
  gboolean init_exited; /* "exited" was emitted for the init */
  GHashTable *exec_pids; /* exec id → pid, for "exited" */
  BerthExitStatus exit;
};

enum { PROP_0, PROP_RUNTIME_NAMES };
enum { SIGNAL_EVENT, N_SIGNALS };
static guint signals[N_SIGNALS];

static void shimv2_runtime_iface_init (BerthRuntimeInterface *iface);
static void shimv2_task_iface_init (BerthTaskInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShimV2Runtime, shimv2_runtime, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_RUNTIME, shimv2_runtime_iface_init))
G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShimV2Task, shimv2_task, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_TASK, shimv2_task_iface_init))

/* ---------------- helpers ---------------- */

static void
free_unpacked (ProtobufCMessage *message)
{
  protobuf_c_message_free_unpacked (message, NULL);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ProtobufCMessage, free_unpacked)

static gboolean
is_exec (const char *exec_id)
{
  return exec_id != NULL && *exec_id != '\0';
}

static char *
read_bundle_file (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return g_strstrip (text);
}

static gint64
timestamp_to_us (const Google__Protobuf__Timestamp *ts)
{
  return ts ? ts->seconds * G_USEC_PER_SEC + ts->nanos / 1000 : 0;
}

/* The shim's argv for @action ("start" or "delete"), containerd's flags first. */
static GPtrArray *
shim_argv (ShimV2Task *task, const char *action)
{
  GPtrArray *argv = g_ptr_array_new ();
  const char *fixed[] = { task->binary, "-namespace", task->namespace_, "-address", task->runtime->address,
                          "-publish-binary", task->runtime->publish_binary, "-id", task->id };
  for (guint i = 0; i < G_N_ELEMENTS (fixed); i++)
    g_ptr_array_add (argv, (char *) fixed[i]);
  if (g_str_equal (action, "delete"))
    {
      g_ptr_array_add (argv, "-bundle");
      g_ptr_array_add (argv, task->dir);
    }
  g_ptr_array_add (argv, (char *) action);
  g_ptr_array_add (argv, NULL);
  return argv;
}

/* Runs `SHIM … @action` in the bundle; its stdout in *out_out, stderr in *err_out. */
static gboolean
run_shim (ShimV2Task *task, const char *action, GBytes *input, GBytes **out_out, char **err_out,
          GCancellable *cancellable, GError **error)
{
  g_autoptr (GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                               | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_set_cwd (launcher, task->dir);
  g_subprocess_launcher_setenv (launcher, "TTRPC_ADDRESS", task->runtime->ttrpc_address, TRUE);
  /* As containerd: fewer Go stacks in every shim. */
  g_subprocess_launcher_setenv (launcher, "GOMAXPROCS", "2", TRUE);
  g_autoptr (GPtrArray) argv = shim_argv (task, action);
  g_autoptr (GSubprocess) proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, error);
  if (proc == NULL)
    return FALSE;
  g_autoptr (GBytes) out = NULL, err = NULL;
  g_autoptr (GBytes) nothing = g_bytes_new_static ("", 0);
  if (!g_subprocess_communicate (proc, input ? input : nothing, cancellable, &out, &err, error))
    return FALSE;
  gsize err_len = 0;
  const char *err_data = err ? g_bytes_get_data (err, &err_len) : NULL;
  g_autofree char *err_text = g_strstrip (g_strndup (err_data ? err_data : "", err_len));
  if (!g_subprocess_get_successful (proc))
    {
      gsize out_len = 0;
      const char *out_data = out ? g_bytes_get_data (out, &out_len) : NULL;
      g_autofree char *out_text = g_strstrip (g_strndup (out_data ? out_data : "", out_len));
      return berth_throw (error, BERTH_ERROR_UNKNOWN, "%s %s failed: %s", task->binary, action,
                          *err_text ? err_text : *out_text ? out_text : "no message");
    }
  if (out_out != NULL)
    *out_out = g_steal_pointer (&out);
  if (err_out != NULL)
    *err_out = g_steal_pointer (&err_text);
  return TRUE;
}

/* ---------------- the shim's log ---------------- */

typedef struct {
  char *id;
  int fd;
  GString *partial;
} LogRelay;

static void
log_relay_free (gpointer data)
{
  LogRelay *relay = data;
  close (relay->fd);
  g_string_free (relay->partial, TRUE);
  g_free (relay->id);
  g_free (relay);
}

static gboolean
relay_log (int fd, GIOCondition condition, gpointer user_data)
{
  LogRelay *relay = user_data;
  char buf[4096];
  ssize_t n;
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (relay->partial, buf, n);
  char *newline;
  while ((newline = strchr (relay->partial->str, '\n')) != NULL)
    {
      *newline = '\0';
      if (*relay->partial->str)
        g_debug ("shim %s: %s", relay->id, relay->partial->str);
      g_string_erase (relay->partial, 0, newline - relay->partial->str + 1);
    }
  return G_SOURCE_CONTINUE;
}

/* The shim writes its log to the FIFO "log" in its bundle; containerd holds it open read-
 * write (so neither side ever blocks on open) and copies it into its own log, as here. */
static gboolean
open_log (ShimV2Task *task, GError **error)
{
  g_autofree char *path = g_build_filename (task->dir, "log", NULL);
  if (mkfifo (path, 0700) < 0 && errno != EEXIST)
    return berth_throw_errno (error, "creating %s", path);
  int fd = open (path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return berth_throw_errno (error, "opening %s", path);
  LogRelay *relay = g_new0 (LogRelay, 1);
  relay->id = g_strdup (task->id);
  relay->fd = fd;
  relay->partial = g_string_new (NULL);
  task->log_source = g_unix_fd_source_new (fd, G_IO_IN);
  g_source_set_callback (task->log_source, G_SOURCE_FUNC (relay_log), relay, log_relay_free);
  g_source_attach (task->log_source, NULL);
  return TRUE;
}

static void
close_log (ShimV2Task *task)
{
  if (task->log_source == NULL)
    return;
  g_source_destroy (task->log_source);
  g_clear_pointer (&task->log_source, g_source_unref);
}

/* ---------------- calling the shim ---------------- */

static ProtobufCMessage *
call (ShimV2Task *task, const char *method, const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
      int timeout_ms, GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_debug ("task %s/%s: %s", task->namespace_, task->id, method);
  ProtobufCMessage *reply = shimv2_ttrpc_call (task->address, task->namespace_, TASK_SERVICE, method, request, reply_type,
                                               timeout_ms, cancellable, &local_error);
  if (reply == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "task %s: ", task->id);
      return NULL;
    }
  return reply;
}

static gboolean
call_empty (ShimV2Task *task, const char *method, const ProtobufCMessage *request, GError **error)
{
  g_autoptr (ProtobufCMessage) reply = call (task, method, request, &google__protobuf__empty__descriptor, CALL_TIMEOUT_MS,
                                             NULL, error);
  return reply != NULL;
}

static gboolean
is_dead (ShimV2Task *task, BerthExitStatus *exit_out)
{
  g_mutex_lock (&task->lock);
  gboolean dead = task->dead;
  if (dead && exit_out != NULL)
    *exit_out = task->exit;
  g_mutex_unlock (&task->lock);
  return dead;
}

static void emit_exit (ShimV2Task *task, const char *exec_id, const BerthExitStatus *exit);

/* The shim is gone (killed, crashed): `SHIM delete` kills what is left of the container,
 * unmounts its root and tells the exit status, which the task keeps so that Wait, State,
 * Delete and /tasks/exit report it instead of an error. As containerd's
 * cleanupAfterDeadShim. */
static void
reap_dead_shim (ShimV2Task *task, BerthExitStatus *exit_out)
{
  g_mutex_lock (&task->lock);
  if (!task->dead)
    {
      g_autoptr (GBytes) out = NULL;
      g_autoptr (GError) error = NULL;
      BerthExitStatus exit = { DEAD_SHIM_EXIT_STATUS, g_get_real_time () };
      if (run_shim (task, "delete", NULL, &out, NULL, NULL, &error))
        {
          gsize len = 0;
          const guint8 *data = g_bytes_get_data (out, &len);
          Containerd__Task__V2__DeleteResponse *response = containerd__task__v2__delete_response__unpack (NULL, len, data);
          if (response != NULL)
            {
              exit.exit_status = response->exit_status;
              if (response->exited_at != NULL && response->exited_at->seconds > 0)
                exit.exited_at = timestamp_to_us (response->exited_at);
              containerd__task__v2__delete_response__free_unpacked (response, NULL);
            }
        }
      else
        g_warning ("task %s/%s: cleaning up after its dead shim: %s", task->namespace_, task->id, error->message);
      /* A shim that was killed leaves its socket (in /run/containerd/s for runc's). */
      const char *socket_path = task->address && g_str_has_prefix (task->address, "unix:///")
                                  ? task->address + strlen ("unix://") : NULL;
      struct stat st;
      if (socket_path != NULL && lstat (socket_path, &st) == 0 && S_ISSOCK (st.st_mode))
        unlink (socket_path);
      g_warning ("task %s/%s: its shim %s died; the task ended with status %u", task->namespace_, task->id, task->binary,
                 exit.exit_status);
      task->dead = TRUE;
      task->exit = exit;
      close_log (task);
    }
  if (exit_out != NULL)
    *exit_out = task->exit;
  BerthExitStatus exit = task->exit;
  g_mutex_unlock (&task->lock);
  emit_exit (task, NULL, &exit);
}

/* Whether a failed call means the shim is gone: its socket refuses connections. A shim
 * that is only slow still accepts one. */
static gboolean
shim_is_gone (ShimV2Task *task, const GError *error)
{
  if (!g_error_matches (error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE))
    return FALSE;
  Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
  req.id = task->id;
  g_autoptr (GError) probe_error = NULL;
  g_autoptr (ProtobufCMessage) reply = (ProtobufCMessage *) shimv2_ttrpc_call (
    task->address, task->namespace_, TASK_SERVICE, "Connect", &req.base,
    &containerd__task__v2__connect_response__descriptor, STATE_TIMEOUT_MS, NULL, &probe_error);
  return reply == NULL && g_error_matches (probe_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE);
}

/* ---------------- exits, without a thread ---------------- */

/* One Wait per process, its connection watched on the default main context: the reply
 * is the exit, announced with the task's "exited" signal. A connection the shim closes
 * without a reply means the shim died (unless Delete sent it away): the task is reaped
 * in a worker, since that runs `SHIM delete`. */
typedef struct {
  ShimV2Task *task; /* a reference */
  char *exec_id;    /* NULL: init */
  int fd;
  GByteArray *buffer;
} ExitWatch;

static void
exit_watch_free (ExitWatch *watch)
{
  g_object_unref (watch->task);
  g_free (watch->exec_id);
  if (watch->fd >= 0)
    close (watch->fd);
  g_byte_array_unref (watch->buffer);
  g_free (watch);
}

static void
emit_exit (ShimV2Task *task, const char *exec_id, const BerthExitStatus *exit)
{
  if (exec_id == NULL)
    {
      /* Once: the Wait's reply and a reaping may both tell of the init's end. */
      g_mutex_lock (&task->lock);
      gboolean seen = task->init_exited;
      task->init_exited = TRUE;
      g_mutex_unlock (&task->lock);
      if (seen)
        return;
    }
  g_debug ("task %s/%s%s%s: exited with status %u", task->namespace_, task->id, exec_id ? " exec " : "",
           exec_id ? exec_id : "", exit->exit_status);
  g_mutex_lock (&task->lock);
  guint pid = exec_id ? GPOINTER_TO_UINT (g_hash_table_lookup (task->exec_pids, exec_id)) : task->pid;
  g_mutex_unlock (&task->lock);
  g_signal_emit_by_name (task, "exited", exec_id, pid, (guint) exit->exit_status, exit->exited_at);
}

static void
reap_thread (GTask *gtask, gpointer source, gpointer data, GCancellable *cancellable)
{
  ShimV2Task *task = data;
  reap_dead_shim (task, NULL);
  g_task_return_boolean (gtask, TRUE);
}

/* In a worker: `SHIM delete` may take a while. */
static gboolean
reap_later (gpointer data)
{
  ShimV2Task *task = data;
  g_autoptr (GTask) gtask = g_task_new (NULL, NULL, NULL, NULL);
  g_task_set_task_data (gtask, g_object_ref (task), g_object_unref);
  g_task_run_in_thread (gtask, reap_thread);
  return G_SOURCE_REMOVE;
}

/* An exec's Wait hung up: if the shim died (or is being reaped), so did the process, as
 * far as anyone can tell; its waiters must not wait forever. (A live shim that hangs up
 * on a Wait has deleted the process.) */
static void
exec_hung_up_thread (GTask *gtask, gpointer source, gpointer data, GCancellable *cancellable)
{
  ExitWatch *watch = data;
  g_autoptr (GError) error = NULL;
  berth_throw (&error, BERTH_ERROR_UNAVAILABLE, "hung up");
  if (is_dead (watch->task, NULL) || shim_is_gone (watch->task, error))
    {
      BerthExitStatus exit = { DEAD_SHIM_EXIT_STATUS, g_get_real_time () };
      emit_exit (watch->task, watch->exec_id, &exit);
    }
  g_task_return_boolean (gtask, TRUE);
}

static gboolean
on_wait_reply (int fd, GIOCondition condition, gpointer data)
{
  ExitWatch *watch = data;
  guint8 buf[4096];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return G_SOURCE_CONTINUE;
  if (n > 0)
    {
      g_byte_array_append (watch->buffer, buf, n);
      ProtobufCMessage *reply = NULL;
      g_autoptr (GError) error = NULL;
      if (!shimv2_ttrpc_take_reply (watch->buffer, &containerd__task__v2__wait_response__descriptor, &reply, &error))
        return G_SOURCE_CONTINUE;
      if (reply != NULL)
        {
          Containerd__Task__V2__WaitResponse *wait = (Containerd__Task__V2__WaitResponse *) reply;
          BerthExitStatus exit = { wait->exit_status, timestamp_to_us (wait->exited_at) };
          emit_exit (watch->task, watch->exec_id, &exit);
          protobuf_c_message_free_unpacked (reply, NULL);
        }
      else
        g_debug ("task %s: not watching %s for its exit: %s", watch->task->id, watch->exec_id ? watch->exec_id : "init",
                 error->message);
    }
  else if (watch->exec_id == NULL && !is_dead (watch->task, NULL))
    reap_later (watch->task);
  else if (watch->exec_id != NULL)
    {
      g_autoptr (GTask) gtask = g_task_new (NULL, NULL, NULL, NULL);
      g_task_set_task_data (gtask, watch, (GDestroyNotify) exit_watch_free);
      g_task_run_in_thread (gtask, exec_hung_up_thread);
      return G_SOURCE_REMOVE;
    }
  exit_watch_free (watch);
  return G_SOURCE_REMOVE;
}

static void
exit_watch_start (ShimV2Task *task, const char *exec_id)
{
  Containerd__Task__V2__WaitRequest req = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  g_autoptr (GError) error = NULL;
  int fd = shimv2_ttrpc_send (task->address, task->namespace_, TASK_SERVICE, "Wait", &req.base, -1, &error);
  if (fd < 0)
    {
      /* Once the main loop runs: at a restart, after the daemon listens for "exited". */
      if (exec_id == NULL)
        g_idle_add_full (G_PRIORITY_DEFAULT, reap_later, g_object_ref (task), g_object_unref);
      g_debug ("task %s: %s", task->id, error->message);
      return;
    }
  g_unix_set_fd_nonblocking (fd, TRUE, NULL);
  ExitWatch *watch = g_new0 (ExitWatch, 1);
  watch->task = g_object_ref (task);
  watch->exec_id = g_strdup (exec_id && *exec_id ? exec_id : NULL);
  watch->fd = fd;
  watch->buffer = g_byte_array_new ();
  g_unix_fd_add (fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_wait_reply, watch);
}

/* ---------------- the task ---------------- */

static const char *task_get_id (BerthTask *t) { return SHIMV2_TASK (t)->id; }
static const char *task_get_namespace (BerthTask *t) { return SHIMV2_TASK (t)->namespace_; }
static guint32 task_get_pid (BerthTask *t) { return SHIMV2_TASK (t)->pid; }

static BerthTaskStatus
task_get_status (BerthTask *t, const char *exec_id, BerthExitStatus *exit_out)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  if (is_dead (task, exit_out))
    return is_exec (exec_id) ? BERTH_TASK_STATUS_UNKNOWN : BERTH_TASK_STATUS_STOPPED;
  Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  g_autoptr (GError) error = NULL;
  g_autoptr (ProtobufCMessage) reply = call (task, "State", &req.base, &containerd__task__v2__state_response__descriptor,
                                             STATE_TIMEOUT_MS, NULL, &error);
  if (reply == NULL)
    {
      if (!is_exec (exec_id) && shim_is_gone (task, error))
        {
          reap_dead_shim (task, exit_out);
          return BERTH_TASK_STATUS_STOPPED;
        }
      g_debug ("%s", error->message);
      return BERTH_TASK_STATUS_UNKNOWN;
    }
  Containerd__Task__V2__StateResponse *state = (Containerd__Task__V2__StateResponse *) reply;
  if (exit_out != NULL)
    *exit_out = (BerthExitStatus) { state->exit_status, timestamp_to_us (state->exited_at) };
  return state->status <= CONTAINERD__V1__TYPES__STATUS__PAUSING ? (BerthTaskStatus) state->status
                                                                 : BERTH_TASK_STATUS_UNKNOWN;
}

static gboolean
task_start (BerthTask *t, const char *exec_id, guint32 *pid_out, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  Containerd__Task__V2__StartRequest req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  g_autoptr (ProtobufCMessage) reply = call (task, "Start", &req.base, &containerd__task__v2__start_response__descriptor,
                                             CALL_TIMEOUT_MS, cancellable, error);
  if (reply == NULL)
    return FALSE;
  guint32 pid = ((Containerd__Task__V2__StartResponse *) reply)->pid;
  if (!is_exec (exec_id) && pid != 0)
    task->pid = pid;
  if (is_exec (exec_id))
    {
      g_mutex_lock (&task->lock);
      g_hash_table_replace (task->exec_pids, g_strdup (exec_id), GUINT_TO_POINTER (pid));
      g_mutex_unlock (&task->lock);
      exit_watch_start (task, exec_id);
    }
  if (pid_out != NULL)
    *pid_out = pid;
  return TRUE;
}

static gboolean
task_kill (BerthTask *t, const char *exec_id, int signal, gboolean all, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  if (is_dead (task, NULL))
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "task %s: process already finished", task->id);
  Containerd__Task__V2__KillRequest req = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  req.signal = signal;
  req.all = all;
  return call_empty (task, "Kill", &req.base, error);
}

static gboolean
task_wait (BerthTask *t, const char *exec_id, BerthExitStatus *exit_out, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  if (!is_exec (exec_id) && is_dead (task, exit_out))
    return TRUE;
  Containerd__Task__V2__WaitRequest req = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  g_autoptr (GError) local_error = NULL;
  g_autoptr (ProtobufCMessage) reply = call (task, "Wait", &req.base, &containerd__task__v2__wait_response__descriptor, -1,
                                             cancellable, &local_error);
  if (reply == NULL)
    {
      /* The shim died under the call: the init's wait reports the task's end. */
      if (!is_exec (exec_id) && shim_is_gone (task, local_error))
        {
          reap_dead_shim (task, exit_out);
          return TRUE;
        }
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  Containerd__Task__V2__WaitResponse *wait = (Containerd__Task__V2__WaitResponse *) reply;
  if (exit_out != NULL)
    *exit_out = (BerthExitStatus) { wait->exit_status, timestamp_to_us (wait->exited_at) };
  return TRUE;
}

static void
task_cleanup (ShimV2Task *task)
{
  close_log (task);
  /* The shim unmounts the rootfs when it deletes the task; one that died may not have:
   * removing the bundle must never reach into the container's files. */
  g_autofree char *rootfs = g_build_filename (task->dir, "rootfs", NULL);
  berth_mount_unmount (rootfs, NULL);
  g_autoptr (GError) error = NULL;
  if (!berth_remove_tree_at (AT_FDCWD, task->dir, &error))
    g_warning ("%s", error->message);
  g_autofree char *key = g_strdup_printf ("%s/%s", task->namespace_, task->id);
  g_mutex_lock (&task->runtime->lock);
  g_hash_table_remove (task->runtime->tasks, key);
  g_mutex_unlock (&task->runtime->lock);
}

/* The shim goes once its last task is deleted; it may hang up before replying. */
static void
shutdown_shim (ShimV2Task *task, gboolean now)
{
  Containerd__Task__V2__ShutdownRequest shutdown = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
  shutdown.id = task->id;
  shutdown.now = now;
  g_autoptr (GError) error = NULL;
  if (!call_empty (task, "Shutdown", &shutdown.base, &error) && !g_error_matches (error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE))
    g_debug ("%s", error->message);
}

static gboolean
task_delete (BerthTask *t, const char *exec_id, BerthExitStatus *exit_out, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  if (!is_exec (exec_id) && is_dead (task, exit_out))
    {
      task_cleanup (task);
      return TRUE;
    }
  Containerd__Task__V2__DeleteRequest req = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  g_autoptr (GError) local_error = NULL;
  g_autoptr (ProtobufCMessage) reply = call (task, "Delete", &req.base, &containerd__task__v2__delete_response__descriptor,
                                             CALL_TIMEOUT_MS, cancellable, &local_error);
  if (reply == NULL)
    {
      if (is_exec (exec_id) || !shim_is_gone (task, local_error))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      reap_dead_shim (task, exit_out);
      task_cleanup (task);
      return TRUE;
    }
  Containerd__Task__V2__DeleteResponse *response = (Containerd__Task__V2__DeleteResponse *) reply;
  BerthExitStatus exit = { response->exit_status, timestamp_to_us (response->exited_at) };
  if (exit_out != NULL)
    *exit_out = exit;
  if (is_exec (exec_id))
    {
      g_mutex_lock (&task->lock);
      g_hash_table_remove (task->exec_pids, exec_id);
      g_mutex_unlock (&task->lock);
      return TRUE;
    }
  /* From now on the shim goes away on purpose: a call still in flight (the exit
   * watcher's Wait) must not take that for a crash and clean up after it. */
  g_mutex_lock (&task->lock);
  task->dead = TRUE;
  task->exit = exit;
  g_mutex_unlock (&task->lock);
  shutdown_shim (task, FALSE);
  task_cleanup (task);
  return TRUE;
}

static Google__Protobuf__Any
json_any (const char *type_url, GBytes *json)
{
  gsize len = 0;
  const guint8 *data = json ? g_bytes_get_data (json, &len) : NULL;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  any.type_url = (char *) type_url;
  any.value = (ProtobufCBinaryData) { len, (guint8 *) data };
  return any;
}

static gboolean
task_exec (BerthTask *t, const char *exec_id, GBytes *process_json, const BerthStdio *stdio, GCancellable *cancellable,
           GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  Google__Protobuf__Any spec = json_any (PROCESS_TYPE_URL, process_json);
  Containerd__Task__V2__ExecProcessRequest req = CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) exec_id;
  req.terminal = stdio->terminal;
  req.stdin = stdio->stdin_path ? stdio->stdin_path : "";
  req.stdout = stdio->stdout_path ? stdio->stdout_path : "";
  req.stderr = stdio->stderr_path ? stdio->stderr_path : "";
  req.spec = &spec;
  return call_empty (task, "Exec", &req.base, error);
}

static gboolean
task_resize_pty (BerthTask *t, const char *exec_id, guint32 width, guint32 height, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  Containerd__Task__V2__ResizePtyRequest req = CONTAINERD__TASK__V2__RESIZE_PTY_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  req.width = width;
  req.height = height;
  return call_empty (task, "ResizePty", &req.base, error);
}

static gboolean
task_close_io (BerthTask *t, const char *exec_id, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  Containerd__Task__V2__CloseIORequest req = CONTAINERD__TASK__V2__CLOSE_IOREQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  req.stdin = TRUE;
  return call_empty (task, "CloseIO", &req.base, error);
}

static gboolean
task_pause (BerthTask *t, GCancellable *cancellable, GError **error)
{
  Containerd__Task__V2__PauseRequest req = CONTAINERD__TASK__V2__PAUSE_REQUEST__INIT;
  req.id = SHIMV2_TASK (t)->id;
  return call_empty (SHIMV2_TASK (t), "Pause", &req.base, error);
}

static gboolean
task_resume (BerthTask *t, GCancellable *cancellable, GError **error)
{
  Containerd__Task__V2__ResumeRequest req = CONTAINERD__TASK__V2__RESUME_REQUEST__INIT;
  req.id = SHIMV2_TASK (t)->id;
  return call_empty (SHIMV2_TASK (t), "Resume", &req.base, error);
}

static GArray *
task_pids (BerthTask *t, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  Containerd__Task__V2__PidsRequest req = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
  req.id = task->id;
  g_autoptr (ProtobufCMessage) reply = call (task, "Pids", &req.base, &containerd__task__v2__pids_response__descriptor,
                                             CALL_TIMEOUT_MS, NULL, error);
  if (reply == NULL)
    return NULL;
  Containerd__Task__V2__PidsResponse *response = (Containerd__Task__V2__PidsResponse *) reply;
  GArray *pids = g_array_new (FALSE, TRUE, sizeof (BerthProcessInfo));
  for (gsize i = 0; i < response->n_processes; i++)
    {
      BerthProcessInfo info = { response->processes[i]->pid, NULL };
      g_array_append_val (pids, info);
    }
  return pids;
}

static gboolean
task_update (BerthTask *t, GBytes *resources_json, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  Google__Protobuf__Any resources = json_any (RESOURCES_TYPE_URL, resources_json);
  Containerd__Task__V2__UpdateTaskRequest req = CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__INIT;
  req.id = task->id;
  req.resources = &resources;
  return call_empty (task, "Update", &req.base, error);
}

static GBytes *
task_metrics (BerthTask *t, char **type_url_out, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  Containerd__Task__V2__StatsRequest req = CONTAINERD__TASK__V2__STATS_REQUEST__INIT;
  req.id = task->id;
  g_autoptr (ProtobufCMessage) reply = call (task, "Stats", &req.base, &containerd__task__v2__stats_response__descriptor,
                                             CALL_TIMEOUT_MS, NULL, error);
  if (reply == NULL)
    return NULL;
  Google__Protobuf__Any *stats = ((Containerd__Task__V2__StatsResponse *) reply)->stats;
  if (stats == NULL)
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "task %s: its shim has no statistics", task->id), NULL;
  *type_url_out = g_strdup (stats->type_url);
  return g_bytes_new (stats->value.data, stats->value.len);
}

static void
shimv2_task_finalize (GObject *object)
{
  ShimV2Task *task = SHIMV2_TASK (object);
  close_log (task);
  g_hash_table_unref (task->exec_pids);
  g_mutex_clear (&task->lock);
  g_free (task->namespace_);
  g_free (task->id);
  g_free (task->dir);
  g_free (task->binary);
  g_free (task->address);
  G_OBJECT_CLASS (shimv2_task_parent_class)->finalize (object);
}

static void shimv2_task_class_init (ShimV2TaskClass *klass) { G_OBJECT_CLASS (klass)->finalize = shimv2_task_finalize; }
static void shimv2_task_class_finalize (ShimV2TaskClass *klass) {}
static void
shimv2_task_init (ShimV2Task *self)
{
  g_mutex_init (&self->lock);
  self->exec_pids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static void
shimv2_task_iface_init (BerthTaskInterface *iface)
{
  iface->get_id = task_get_id;
  iface->get_namespace = task_get_namespace;
  iface->get_pid = task_get_pid;
  iface->get_status = task_get_status;
  iface->start = task_start;
  iface->kill = task_kill;
  iface->wait = task_wait;
  iface->delete = task_delete;
  iface->exec = task_exec;
  iface->resize_pty = task_resize_pty;
  iface->close_io = task_close_io;
  iface->pause = task_pause;
  iface->resume = task_resume;
  iface->pids = task_pids;
  iface->update = task_update;
  iface->metrics = task_metrics;
}

static ShimV2Task *
task_new (ShimV2Runtime *runtime, const char *ns, const char *id, const char *dir, const char *binary)
{
  ShimV2Task *task = g_object_new (SHIMV2_TYPE_TASK, NULL);
  task->runtime = runtime;
  task->namespace_ = g_strdup (ns);
  task->id = g_strdup (id);
  task->dir = g_strdup (dir);
  task->binary = g_strdup (binary);
  return task;
}

/* ---------------- the runtime ---------------- */

/* The shim binary for @name: from config, else containerd's rule in berthd's PATH. */
static char *
resolve_binary (ShimV2Runtime *self, const char *name, GError **error)
{
  const char *configured = g_hash_table_lookup (self->binaries, name);
  if (configured != NULL)
    return g_strdup (configured);
  g_auto (GStrv) parts = g_strsplit (name, ".", -1);
  guint n = g_strv_length (parts);
  if (n < 2 || *parts[n - 2] == '\0' || *parts[n - 1] == '\0' || strchr (name, '/') != NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "runtime \"%s\": not a shim name (io.containerd.NAME.VERSION, run by containerd-shim-NAME-VERSION)",
                        name), NULL;
  g_autofree char *binary = g_strdup_printf ("containerd-shim-%s-%s", parts[n - 2], parts[n - 1]);
  char *path = g_find_program_in_path (binary);
  if (path == NULL)
    berth_throw (error, BERTH_ERROR_NOT_FOUND, "runtime \"%s\": shim binary %s not found in PATH", name, binary);
  return path;
}

static gboolean
write_bundle (ShimV2Task *task, GBytes *spec_json, GError **error)
{
  if (spec_json == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "the container has no OCI spec");
  g_autofree char *rootfs = g_build_filename (task->dir, "rootfs", NULL);
  g_autofree char *config = g_build_filename (task->dir, "config.json", NULL);
  g_autofree char *binary_file = g_build_filename (task->dir, "shim-binary-path", NULL);
  gsize len = 0;
  const char *data = g_bytes_get_data (spec_json, &len);
  if (g_mkdir_with_parents (rootfs, 0711) < 0)
    return berth_throw_errno (error, "creating %s", rootfs);
  return g_file_set_contents (config, data, len, error) && g_file_set_contents (binary_file, task->binary, -1, error);
}

/* `SHIM start`: the shim detaches and prints its ttrpc address. */
static gboolean
start_shim (ShimV2Task *task, const BerthTaskCreateOptions *options, GCancellable *cancellable, GError **error)
{
  g_autoptr (GBytes) input = NULL;
  if (options->options_type_url != NULL)
    {
      Google__Protobuf__Any any = json_any (options->options_type_url, options->options);
      gsize len = protobuf_c_message_get_packed_size (&any.base);
      guint8 *data = g_malloc (len + 1);
      protobuf_c_message_pack (&any.base, data);
      input = g_bytes_new_take (data, len);
    }
  g_autoptr (GBytes) out = NULL;
  if (!run_shim (task, "start", input, &out, NULL, cancellable, error))
    return FALSE;
  gsize len = 0;
  const char *data = g_bytes_get_data (out, &len);
  task->address = g_strstrip (g_strndup (data, len));
  if (*task->address == '\0')
    return berth_throw (error, BERTH_ERROR_UNKNOWN, "%s start printed no address", task->binary);
  return TRUE;
}

static Containerd__Types__Mount **
mounts_to_proto (GPtrArray *rootfs, Containerd__Types__Mount *storage)
{
  Containerd__Types__Mount **out = g_new0 (Containerd__Types__Mount *, rootfs ? rootfs->len + 1 : 1);
  for (guint i = 0; rootfs != NULL && i < rootfs->len; i++)
    {
      const BerthMount *mount = rootfs->pdata[i];
      containerd__types__mount__init (&storage[i]);
      storage[i].type = mount->type;
      storage[i].source = mount->source;
      storage[i].target = mount->target ? mount->target : "";
      storage[i].options = mount->options;
      storage[i].n_options = mount->options ? g_strv_length (mount->options) : 0;
      out[i] = &storage[i];
    }
  return out;
}

static gboolean
create_in_shim (ShimV2Task *task, const BerthTaskCreateOptions *options, GCancellable *cancellable, GError **error)
{
  guint n_mounts = options->rootfs ? options->rootfs->len : 0;
  g_autofree Containerd__Types__Mount *storage = g_new0 (Containerd__Types__Mount, n_mounts + 1);
  g_autofree Containerd__Types__Mount **mounts = mounts_to_proto (options->rootfs, storage);
  Google__Protobuf__Any runtime_options = json_any (options->options_type_url, options->options);
  const BerthStdio *io = &options->stdio;
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  req.id = task->id;
  req.bundle = task->dir;
  req.rootfs = mounts;
  req.n_rootfs = n_mounts;
  req.terminal = io->terminal;
  req.stdin = io->stdin_path ? io->stdin_path : "";
  req.stdout = io->stdout_path ? io->stdout_path : "";
  req.stderr = io->stderr_path ? io->stderr_path : "";
  if (options->options_type_url != NULL)
    req.options = &runtime_options;
  g_autoptr (ProtobufCMessage) reply = call (task, "Create", &req.base,
                                             &containerd__task__v2__create_task_response__descriptor, START_TIMEOUT_MS,
                                             cancellable, error);
  if (reply == NULL)
    return FALSE;
  task->pid = ((Containerd__Task__V2__CreateTaskResponse *) reply)->pid;
  return TRUE;
}

static BerthTask *
runtime_create (BerthRuntime *iface, const BerthTaskCreateOptions *options, GCancellable *cancellable, GError **error)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (iface);
  const char *name = options->runtime_name ? options->runtime_name : "";
  g_autofree char *binary = resolve_binary (self, name, error);
  if (binary == NULL)
    return NULL;
  g_autofree char *key = g_strdup_printf ("%s/%s", options->namespace_, options->id);
  g_autofree char *dir = g_build_filename (self->state, options->namespace_, options->id, NULL);
  g_mutex_lock (&self->lock);
  gboolean exists = g_hash_table_contains (self->tasks, key) || g_file_test (dir, G_FILE_TEST_EXISTS);
  if (!exists)
    g_hash_table_insert (self->tasks, g_strdup (key), NULL); /* reserve the id */
  g_mutex_unlock (&self->lock);
  if (exists)
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "task %s: already exists", options->id), NULL;

  g_autoptr (ShimV2Task) task = task_new (self, options->namespace_, options->id, dir, binary);
  gboolean started = FALSE;
  gboolean ok = write_bundle (task, options->spec_json, error) && open_log (task, error);
  ok = ok && (started = start_shim (task, options, cancellable, error));
  ok = ok && create_in_shim (task, options, cancellable, error);
  if (!ok)
    {
      /* Nothing may be left: the shim (told to go, then `SHIM delete` for what it
       * leaves, as containerd), the bundle, the reservation. */
      if (started)
        {
          shutdown_shim (task, TRUE);
          g_autoptr (GError) delete_error = NULL;
          if (!run_shim (task, "delete", NULL, NULL, NULL, NULL, &delete_error))
            g_debug ("task %s: %s", task->id, delete_error->message);
        }
      task_cleanup (task);
      return NULL;
    }
  g_mutex_lock (&self->lock);
  g_hash_table_replace (self->tasks, g_strdup (key), g_object_ref (task));
  g_mutex_unlock (&self->lock);
  exit_watch_start (task, NULL);
  g_debug ("task %s created by %s at %s, pid %u", key, binary, task->address, task->pid);
  return BERTH_TASK (g_steal_pointer (&task));
}

static BerthTask *
runtime_get (BerthRuntime *iface, const char *ns, const char *id, GError **error)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (iface);
  return berth_task_table_lookup (self->tasks, &self->lock, ns, id, error);
}

static GPtrArray *
runtime_list (BerthRuntime *iface, const char *ns, GError **error)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (iface);
  return berth_task_table_list (self->tasks, &self->lock, ns);
}

/* One bundle a previous berthd left: reconnect to its shim, or clean up after it. */
static void
restore_task (gpointer data, gpointer user_data)
{
  ShimV2Task *task = data;
  ShimV2Runtime *self = task->runtime;
  g_autoptr (GError) error = NULL;
  if (!open_log (task, &error))
    g_warning ("task %s: %s", task->id, error->message);
  Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
  req.id = task->id;
  g_clear_error (&error);
  g_autoptr (ProtobufCMessage) reply =
    task->address ? call (task, "Connect", &req.base, &containerd__task__v2__connect_response__descriptor,
                          STATE_TIMEOUT_MS, NULL, &error)
                  : NULL;
  if (reply != NULL)
    {
      task->pid = ((Containerd__Task__V2__ConnectResponse *) reply)->task_pid;
      g_info ("reconnected to task %s/%s (pid %u) through %s", task->namespace_, task->id, task->pid, task->binary);
    }
  /* Its exit, or for a dead shim its reaping, is announced once the main loop runs. */
  exit_watch_start (task, NULL);
  g_mutex_lock (&self->lock);
  g_hash_table_replace (self->tasks, g_strdup_printf ("%s/%s", task->namespace_, task->id), task);
  g_mutex_unlock (&self->lock);
}

/* Every "<state>/<ns>/<id>/" with a shim-binary-path is a task; their shims are asked in
 * parallel, so one that hangs costs one timeout, not one each. */
static gboolean
runtime_restore (BerthRuntime *iface, GCancellable *cancellable, GError **error)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (iface);
  GThreadPool *pool = g_thread_pool_new (restore_task, NULL, 8, FALSE, NULL);
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
          g_autofree char *binary = read_bundle_file (dir, "shim-binary-path");
          if (binary == NULL)
            continue;
          ShimV2Task *task = task_new (self, ns, id, dir, binary);
          task->address = read_bundle_file (dir, "address");
          g_thread_pool_push (pool, task, NULL);
        }
    }
  g_thread_pool_free (pool, FALSE, TRUE);
  return TRUE;
}

/* ---------------- events from shims ---------------- */

static GBytes *
handle_events (const char *service, const char *method, GBytes *payload, gpointer user_data, GError **error)
{
  ShimV2Runtime *self = user_data;
  if (!g_str_equal (service, EVENTS_SERVICE) || !g_str_equal (method, "Forward"))
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "%s/%s: not served here", service, method), NULL;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (payload, &len);
  Containerd__Services__Events__Ttrpc__V1__ForwardRequest *req =
    containerd__services__events__ttrpc__v1__forward_request__unpack (NULL, len, data);
  if (req == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "malformed ForwardRequest"), NULL;
  Containerd__Services__Events__Ttrpc__V1__Envelope *envelope = req->envelope;
  if (envelope == NULL || envelope->event == NULL || envelope->topic == NULL || envelope->namespace_ == NULL)
    {
      containerd__services__events__ttrpc__v1__forward_request__free_unpacked (req, NULL);
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "an event needs a namespace, a topic and a payload"), NULL;
    }
  g_autoptr (GBytes) event = g_bytes_new (envelope->event->value.data, envelope->event->value.len);
  gint64 timestamp = envelope->timestamp ? timestamp_to_us (envelope->timestamp) : g_get_real_time ();
  g_debug ("event %s %s from a shim", envelope->namespace_, envelope->topic);
  g_signal_emit (self, signals[SIGNAL_EVENT], 0, envelope->namespace_, envelope->topic, envelope->event->type_url, event,
                 timestamp);
  containerd__services__events__ttrpc__v1__forward_request__free_unpacked (req, NULL);
  return g_bytes_new (NULL, 0); /* google.protobuf.Empty */
}

/* ---------------- the plugin ---------------- */

static void
shimv2_runtime_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  if (prop_id == PROP_RUNTIME_NAMES)
    g_value_set_boxed (value, SHIMV2_RUNTIME (object)->names);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
shimv2_runtime_finalize (GObject *object)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (object);
  shimv2_ttrpc_server_free (self->events);
  g_hash_table_unref (self->tasks);
  g_hash_table_unref (self->binaries);
  g_strfreev (self->names);
  g_mutex_clear (&self->lock);
  g_free (self->state);
  g_free (self->address);
  g_free (self->ttrpc_address);
  g_free (self->publish_binary);
  G_OBJECT_CLASS (shimv2_runtime_parent_class)->finalize (object);
}

static void
shimv2_runtime_class_init (ShimV2RuntimeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->finalize = shimv2_runtime_finalize;
  object_class->get_property = shimv2_runtime_get_property;
  /* The names config routes here: the daemon sends them here even when another runtime
   * plugin would run them by default (io.containerd.runc.v2 → berth-shim). */
  g_object_class_install_property (object_class, PROP_RUNTIME_NAMES,
                                   g_param_spec_boxed ("runtime-names", NULL, NULL, G_TYPE_STRV,
                                                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  /* "event" (namespace, topic, type URL, payload, timestamp µs): a shim published an
   * event; the daemon puts it on its event bus. Emitted on the main context. */
  signals[SIGNAL_EVENT] = g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                        G_TYPE_NONE, 5, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_BYTES,
                                        G_TYPE_INT64);
}

static void shimv2_runtime_class_finalize (ShimV2RuntimeClass *klass) {}

static void
unref_task (gpointer task)
{
  if (task != NULL)
    g_object_unref (task);
}

static void
shimv2_runtime_init (ShimV2Runtime *self)
{
  g_mutex_init (&self->lock);
  self->tasks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unref_task);
  self->binaries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

static void
shimv2_runtime_iface_init (BerthRuntimeInterface *iface)
{
  iface->create = runtime_create;
  iface->get = runtime_get;
  iface->list = runtime_list;
  iface->restore = runtime_restore;
}

static void
register_types (GTypeModule *module)
{
  shimv2_runtime_register_type (module);
  shimv2_task_register_type (module);
}

static const BerthConfigKey config_keys[] = {
  { "runtimes", BERTH_CONFIG_STRING, "",
    "shims by runtime name, ';'-separated NAME=ABSOLUTE-PATH (e.g. io.containerd.runc.v2=/usr/bin/containerd-shim-runc-v2); "
    "a name listed here is run by this plugin, even one berth-shim runs by default; other names are looked up in PATH "
    "by containerd's rule (io.containerd.NAME.VERSION → containerd-shim-NAME-VERSION)" },
  { NULL },
};

/* "NAME=PATH;…" → self->binaries */
static gboolean
parse_runtimes (ShimV2Runtime *self, const char *text, GError **error)
{
  g_auto (GStrv) entries = g_strsplit (text ? text : "", ";", -1);
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  for (char **entry = entries; *entry != NULL; entry++)
    {
      g_strstrip (*entry);
      if (**entry == '\0')
        continue;
      char *eq = strchr (*entry, '=');
      if (eq == NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "[plugin.runtime.shimv2] runtimes: \"%s\" is not NAME=PATH",
                            *entry);
      *eq = '\0';
      const char *name = g_strstrip (*entry), *path = g_strstrip (eq + 1);
      if (!g_path_is_absolute (path))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                            "[plugin.runtime.shimv2] runtimes: the shim of %s must be an absolute path, not \"%s\"", name,
                            path);
      g_hash_table_replace (self->binaries, g_strdup (name), g_strdup (path));
    }
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init (&iter, self->binaries);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  g_ptr_array_add (names, NULL);
  self->names = (GStrv) g_ptr_array_free (g_steal_pointer (&names), FALSE);
  return TRUE;
}

static GObject *
init (BerthPluginContext *context, GError **error)
{
  g_autoptr (ShimV2Runtime) self = g_object_new (SHIMV2_TYPE_RUNTIME, NULL);
  self->state = g_strdup (berth_plugin_context_get_state (context));
  self->address = g_strdup (berth_plugin_context_get_daemon_address (context));
  /* containerd puts it beside its gRPC socket ("ADDRESS.ttrpc"); the plugin's state dir
   * is as good for shims, and is this daemon's alone (a socket-activated berthd may have
   * the default address while another one serves it). */
  self->ttrpc_address = g_build_filename (self->state, "events.sock", NULL);
  /* Shims of containerd 1.6 publish through TTRPC_ADDRESS and only pass this on; older
   * ones would run `PUBLISH-BINARY --address A publish --topic T --namespace N`, which
   * berthd does not offer. */
  self->publish_binary = g_file_read_link ("/proc/self/exe", NULL);
  if (self->publish_binary == NULL)
    self->publish_binary = g_strdup ("berthd");
  g_autofree char *runtimes = berth_plugin_context_get_string (context, "runtimes");
  if (!parse_runtimes (self, runtimes, error))
    return NULL;
  self->events = shimv2_ttrpc_server_new (self->ttrpc_address, handle_events, self, error);
  if (self->events == NULL)
    return NULL;
  return G_OBJECT (g_steal_pointer (&self));
}

BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_RUNTIME, "shimv2", "any containerd shim v2 (containerd-shim-NAME-VERSION) over ttrpc",
                     NULL, config_keys, register_types, init)
