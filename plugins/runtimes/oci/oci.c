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
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include <berth/berth.h>

#include "runc-options.h"

#define RUNC_OPTIONS_TYPE "containerd.runc.v1.Options"
#define SHIM_READY_TIMEOUT_MS (60 * 1000)
#define SHIM_REPLY_TIMEOUT_MS (30 * 1000)
/* Longest reply line read from a shim: a pid list of some 500 000 processes (the shim
 * sends at most 4 MiB of it). */
#define SHIM_REPLY_MAX (8 << 20)
#define SHIM_STATE_TIMEOUT_MS (2 * 1000)
/* What a task whose shim died unannounced reports, as containerd does. */
#define DEAD_SHIM_EXIT_STATUS 255

#define OCI_TYPE_RUNTIME (oci_runtime_get_type ())
G_DECLARE_FINAL_TYPE (OciRuntime, oci_runtime, OCI, RUNTIME, GObject)
#define OCI_TYPE_TASK (oci_task_get_type ())
G_DECLARE_FINAL_TYPE (OciTask, oci_task, OCI, TASK, GObject)

struct _OciRuntime {
  GObject parent_instance;
  char *state;
  char *shim;
  char *default_binary;
  GStrv allowed_binaries;
  GMutex lock;
  GHashTable *tasks; /* "<ns>/<id>" → OciTask (ref) */
};

struct _OciTask {
  GObject parent_instance;
  OciRuntime *runtime; /* not owned: the runtime outlives its tasks */
  char *namespace_;
  char *id;
  char *dir;
  char *rootfs;
  guint32 pid;
  /* Set (atomically) once Delete has asked the shim to go: from then on a shim that does
   * not answer is gone on purpose, not dead, and must not be reaped. */
  gint deleting;
};

static void oci_runtime_iface_init (BerthRuntimeInterface *iface);
static void oci_task_iface_init (BerthTaskInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (OciRuntime, oci_runtime, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_RUNTIME, oci_runtime_iface_init))
G_DEFINE_DYNAMIC_TYPE_EXTENDED (OciTask, oci_task, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_TASK, oci_task_iface_init))

/* ---------------- talking to a shim ---------------- */

/* Connects to the task's shim and sends one request line; the socket, or -1. */
static int
shim_send (OciTask *task, const char *request, GError **error)
{
  g_autofree char *path = g_build_filename (task->dir, "shim.sock", NULL);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  /* A long state path (CRI ids are 64 characters) is reached through a directory fd. */
  berth_autofd int dirfd = strlen (path) >= sizeof addr.sun_path ? open (task->dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
  g_autofree char *short_path = dirfd >= 0 ? g_strdup_printf ("/proc/self/fd/%d/shim.sock", dirfd) : NULL;
  if (short_path == NULL && strlen (path) >= sizeof addr.sun_path)
    return berth_throw_errno (error, "task %s: opening %s", task->id, task->dir), -1;
  strcpy (addr.sun_path, short_path ? short_path : path);
  berth_autofd int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      berth_throw (error, BERTH_ERROR_UNAVAILABLE, "task %s: its shim is gone (%s)", task->id, g_strerror (errno));
      return -1;
    }
  g_autofree char *line = g_strconcat (request, "\n", NULL);
  if (write (fd, line, strlen (line)) != (ssize_t) strlen (line))
    return berth_throw_errno (error, "task %s: writing to its shim", task->id), -1;
  return berth_steal_fd (&fd);
}

/* Sends one request line and returns the reply line; blocks (cancellably). */
static char *
shim_request (OciTask *task, const char *request, GCancellable *cancellable, GError **error)
{
  berth_autofd int fd = shim_send (task, request, error);
  if (fd < 0)
    return NULL;
  /* A wait lasts as long as the process; anything else must not hang a caller (or a
   * whole Tasks.List) on one stuck shim. */
  int timeout = g_str_has_prefix (request, "wait") ? -1
                : g_str_has_prefix (request, "state") ? SHIM_STATE_TIMEOUT_MS
                                                      : SHIM_REPLY_TIMEOUT_MS;
  gint64 deadline = timeout < 0 ? -1 : g_get_monotonic_time () + timeout * G_GINT64_CONSTANT (1000);
  GString *reply = g_string_new (NULL);
  GPollFD fds[2] = { { fd, G_IO_IN, 0 } };
  int nfds = g_cancellable_make_pollfd (cancellable, &fds[1]) ? 2 : 1;
  for (;;)
    {
      int left = deadline < 0 ? -1 : (int) MAX (0, (deadline - g_get_monotonic_time ()) / 1000);
      int ready = g_poll (fds, nfds, left);
      /* A signal: poll again for the time left, never fall through to a read that
       * would block past the deadline. */
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready < 0)
        break;
      if (ready == 0 && deadline >= 0)
        {
          if (nfds == 2)
            g_cancellable_release_fd (cancellable);
          g_string_free (reply, TRUE);
          return berth_throw (error, BERTH_ERROR_DEADLINE_EXCEEDED, "task %s: its shim did not answer \"%s\" within %d ms",
                              task->id, request, timeout), NULL;
        }
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          g_cancellable_release_fd (cancellable);
          g_string_free (reply, TRUE);
          return NULL;
        }
      char buf[4096];
      ssize_t n = read (fd, buf, sizeof buf);
      if (n <= 0)
        break;
      g_string_append_len (reply, buf, n);
      /* Only the new bytes: a long reply (pids) must not be rescanned at every read. */
      if (memchr (buf, '\n', n) != NULL)
        break;
      if (reply->len > SHIM_REPLY_MAX)
        {
          if (nfds == 2)
            g_cancellable_release_fd (cancellable);
          g_string_free (reply, TRUE);
          return berth_throw (error, BERTH_ERROR_RESOURCE_EXHAUSTED, "task %s: its shim's reply to \"%s\" is over %d bytes",
                              task->id, request, SHIM_REPLY_MAX), NULL;
        }
    }
  if (nfds == 2)
    g_cancellable_release_fd (cancellable);
  g_strchomp (reply->str);
  if (reply->len == 0)
    {
      g_string_free (reply, TRUE);
      return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "task %s: its shim hung up", task->id), NULL;
    }
  if (g_str_has_prefix (reply->str, "err "))
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "task %s: %s", task->id, reply->str + 4);
      g_string_free (reply, TRUE);
      return NULL;
    }
  return g_string_free (reply, FALSE);
}

/* "exit STATUS NSEC" / "stopped STATUS NSEC" → @exit_out */
static gboolean
parse_exit (const char *line, BerthExitStatus *exit_out)
{
  const char *space = strchr (line, ' ');
  if (space == NULL)
    return FALSE;
  char *end = NULL;
  guint64 status = g_ascii_strtoull (space + 1, &end, 10);
  gint64 ns = end ? g_ascii_strtoll (end, NULL, 10) : 0;
  if (exit_out != NULL)
    {
      exit_out->exit_status = status;
      exit_out->exited_at = ns / 1000;
    }
  return TRUE;
}

/* The exit file the shim leaves, for when the shim itself is gone. */
static gboolean
read_exit_file (OciTask *task, BerthExitStatus *exit_out)
{
  g_autofree char *path = g_build_filename (task->dir, "exit", NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  g_autofree char *line = g_strconcat ("exit ", g_strstrip (text), NULL);
  return parse_exit (line, exit_out);
}

/* The shim died without leaving an exit file (killed, OOM, a crash): its container may
 * still run, unsupervised. Kill and delete it through the runtime, unmount its root and
 * record an exit so that Wait, Delete and /tasks/exit report it instead of hanging. */
static gboolean
reap_dead_shim (OciTask *task, BerthExitStatus *exit_out)
{
  if (read_exit_file (task, exit_out))
    return TRUE;
  /* A State or Wait racing with Delete (`ctr tasks ls` while another client deletes)
   * finds the shim gone and the exit file with it. Reaping then would write into the
   * directory Delete is removing (leaving it behind, so the id stays taken) and could
   * `runtime delete --force` a new container that reuses the id. */
  if (g_atomic_int_get (&task->deleting))
    {
      if (exit_out != NULL)
        *exit_out = (BerthExitStatus) { DEAD_SHIM_EXIT_STATUS, g_get_real_time () };
      return TRUE;
    }
  g_autofree char *binary_file = g_build_filename (task->dir, "runtime-binary", NULL);
  g_autofree char *binary = NULL;
  g_autofree char *root = g_build_filename (task->dir, "runtime", NULL);
  if (g_file_get_contents (binary_file, &binary, NULL, NULL))
    {
      g_strstrip (binary);
      const char *argv[] = { binary, "--root", root, "delete", "--force", task->id, NULL };
      g_autoptr (GError) spawn_error = NULL;
      if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                         NULL, NULL, NULL, &spawn_error))
        g_warning ("task %s: deleting its container: %s", task->id, spawn_error->message);
    }
  berth_mount_unmount (task->rootfs, NULL);
  gint64 now = g_get_real_time ();
  g_autofree char *text = g_strdup_printf ("%d %" G_GINT64_FORMAT "\n", DEAD_SHIM_EXIT_STATUS, now * 1000);
  g_autofree char *exit_path = g_build_filename (task->dir, "exit", NULL);
  g_autoptr (GError) write_error = NULL;
  if (!g_file_set_contents (exit_path, text, -1, &write_error))
    g_warning ("task %s: recording its exit: %s", task->id, write_error->message);
  g_warning ("task %s/%s: its shim died; the container was killed and exit status %d recorded", task->namespace_,
             task->id, DEAD_SHIM_EXIT_STATUS);
  if (exit_out != NULL)
    *exit_out = (BerthExitStatus) { DEAD_SHIM_EXIT_STATUS, now };
  return TRUE;
}

/* ---------------- exits, without a thread ---------------- */

/* One "wait" request per process, its socket watched on the default main context: the
 * reply is the exit, announced with the task's "exited" signal. No thread waits. */
typedef struct {
  OciTask *task; /* a reference */
  char *exec_id; /* NULL: init */
  guint32 pid;
  int fd;
  GString *reply;
} ExitWatch;

static void
exit_watch_free (ExitWatch *watch)
{
  g_object_unref (watch->task);
  g_free (watch->exec_id);
  if (watch->fd >= 0)
    close (watch->fd);
  g_string_free (watch->reply, TRUE);
  g_free (watch);
}

static void
exit_emit (OciTask *task, const char *exec_id, guint32 pid, const BerthExitStatus *exit)
{
  g_debug ("task %s/%s%s%s: exited with status %u", task->namespace_, task->id, exec_id ? " exec " : "",
           exec_id ? exec_id : "", exit->exit_status);
  g_signal_emit_by_name (task, "exited", exec_id, (guint) pid, (guint) exit->exit_status, exit->exited_at);
}

/* The shim hung up without an answer: it died. Reaping spawns the runtime: a worker's job. */
static void
reap_thread (GTask *gtask, gpointer source, gpointer data, GCancellable *cancellable)
{
  ExitWatch *watch = data;
  BerthExitStatus exit = { 0 };
  if (reap_dead_shim (watch->task, &exit))
    exit_emit (watch->task, NULL, watch->pid, &exit);
  g_task_return_boolean (gtask, TRUE);
}

/* No answer: for init, the shim died (or Delete sent it away before the process ran):
 * reap and announce, as a blocking wait would have answered. */
static void
exit_watch_hung_up (ExitWatch *watch)
{
  if (watch->exec_id == NULL)
    {
      g_autoptr (GTask) gtask = g_task_new (NULL, NULL, NULL, NULL);
      g_task_set_task_data (gtask, watch, (GDestroyNotify) exit_watch_free);
      g_task_run_in_thread (gtask, reap_thread);
      return;
    }
  exit_watch_free (watch);
}

static gboolean
on_exit_reply (int fd, GIOCondition condition, gpointer data)
{
  ExitWatch *watch = data;
  char buf[256];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return G_SOURCE_CONTINUE;
  if (n > 0)
    {
      g_string_append_len (watch->reply, buf, n);
      if (strchr (watch->reply->str, '\n') == NULL && watch->reply->len < 4096)
        return G_SOURCE_CONTINUE;
    }
  BerthExitStatus exit = { 0 };
  if (g_str_has_prefix (watch->reply->str, "exit ") && parse_exit (watch->reply->str, &exit))
    exit_emit (watch->task, watch->exec_id, watch->pid, &exit);
  else if (watch->reply->len == 0)
    {
      exit_watch_hung_up (watch);
      return G_SOURCE_REMOVE;
    }
  else
    g_debug ("task %s: not watching %s for its exit: \"%s\"", watch->task->id, watch->exec_id ? watch->exec_id : "init",
             g_strchomp (watch->reply->str));
  exit_watch_free (watch);
  return G_SOURCE_REMOVE;
}

static void
exit_watch_start (OciTask *task, const char *exec_id, guint32 pid)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *request = exec_id ? g_strdup_printf ("wait %s", exec_id) : g_strdup ("wait");
  ExitWatch *watch = g_new0 (ExitWatch, 1);
  watch->task = g_object_ref (task);
  watch->exec_id = g_strdup (exec_id);
  watch->pid = pid;
  watch->reply = g_string_new (NULL);
  watch->fd = shim_send (task, request, &error);
  if (watch->fd < 0 || !g_unix_set_fd_nonblocking (watch->fd, TRUE, &error))
    {
      /* Unreachable: the same as a hang-up, handled by the source at once. */
      g_debug ("task %s: watching for its exit: %s", task->id, error->message);
      exit_watch_hung_up (watch);
      return;
    }
  GSource *source = g_unix_fd_source_new (watch->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) on_exit_reply, watch, NULL);
  g_source_attach (source, g_main_context_default ());
  g_source_unref (source);
}

/* ---------------- the task ---------------- */

static gboolean
is_exec (const char *exec_id)
{
  return exec_id != NULL && *exec_id != '\0';
}

/* "VERB" for init, "VERB EXEC_ID" for an exec'd process. */
static char *
request_for (const char *verb, const char *exec_id)
{
  return is_exec (exec_id) ? g_strdup_printf ("%s %s", verb, exec_id) : g_strdup (verb);
}

static gboolean
simple_request (OciTask *task, const char *request, GError **error)
{
  g_autofree char *reply = shim_request (task, request, NULL, error);
  return reply != NULL;
}

static gboolean
validate_exec_id (const char *exec_id, GError **error)
{
  gsize len = strlen (exec_id);
  gboolean good = len > 0 && len < 128;
  for (gsize i = 0; good && i < len; i++)
    good = g_ascii_isalnum (exec_id[i]) || strchr ("._-", exec_id[i]);
  if (!good)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "exec id \"%s\": must be 1-127 letters, digits, '.', '_' or '-'",
                        exec_id);
  return TRUE;
}

static const char *task_get_id (BerthTask *t) { return OCI_TASK (t)->id; }
static const char *task_get_namespace (BerthTask *t) { return OCI_TASK (t)->namespace_; }
static guint32 task_get_pid (BerthTask *t) { return OCI_TASK (t)->pid; }

static BerthTaskStatus
task_get_status (BerthTask *t, const char *exec_id, BerthExitStatus *exit_out)
{
  OciTask *task = OCI_TASK (t);
  g_autofree char *request = request_for ("state", exec_id);
  g_autoptr (GError) state_error = NULL;
  g_autofree char *state = shim_request (task, request, NULL, &state_error);
  if (state == NULL)
    {
      if (is_exec (exec_id))
        return BERTH_TASK_STATUS_UNKNOWN;
      if (read_exit_file (task, exit_out))
        return BERTH_TASK_STATUS_STOPPED;
      /* Unreachable is dead (a hung shim times out instead, and stays unknown). */
      if (g_error_matches (state_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE) && reap_dead_shim (task, exit_out))
        return BERTH_TASK_STATUS_STOPPED;
      return BERTH_TASK_STATUS_UNKNOWN;
    }
  if (g_str_has_prefix (state, "stopped "))
    {
      parse_exit (state, exit_out);
      return BERTH_TASK_STATUS_STOPPED;
    }
  if (g_str_has_prefix (state, "paused "))
    return BERTH_TASK_STATUS_PAUSED;
  return g_str_has_prefix (state, "running ") ? BERTH_TASK_STATUS_RUNNING : BERTH_TASK_STATUS_CREATED;
}

static gboolean
task_start (BerthTask *t, const char *exec_id, guint32 *pid_out, GCancellable *cancellable, GError **error)
{
  g_autofree char *request = request_for ("start", exec_id);
  g_autofree char *reply = shim_request (OCI_TASK (t), request, cancellable, error);
  if (reply == NULL)
    return FALSE;
  guint32 pid = is_exec (exec_id) ? (guint32) g_ascii_strtoull (reply + strlen ("ok "), NULL, 10) : OCI_TASK (t)->pid;
  if (is_exec (exec_id))
    exit_watch_start (OCI_TASK (t), exec_id, pid);
  if (pid_out != NULL)
    *pid_out = pid;
  return TRUE;
}

static gboolean
task_kill (BerthTask *t, const char *exec_id, int signal, gboolean all, GCancellable *cancellable, GError **error)
{
  g_autofree char *request = is_exec (exec_id) ? g_strdup_printf ("kill %d %d %s", signal, all ? 1 : 0, exec_id)
                                               : g_strdup_printf ("kill %d %d", signal, all ? 1 : 0);
  g_autoptr (GError) local_error = NULL;
  g_autofree char *reply = shim_request (OCI_TASK (t), request, NULL, &local_error);
  if (reply != NULL)
    return TRUE;
  if (strstr (local_error->message, "already finished") != NULL)
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "task %s: process already finished", OCI_TASK (t)->id);
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

static gboolean
task_wait (BerthTask *t, const char *exec_id, BerthExitStatus *exit_out, GCancellable *cancellable, GError **error)
{
  OciTask *task = OCI_TASK (t);
  g_autoptr (GError) local_error = NULL;
  g_autofree char *request = request_for ("wait", exec_id);
  g_autofree char *reply = shim_request (task, request, cancellable, &local_error);
  if (reply == NULL)
    {
      if (is_exec (exec_id) || !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE)
          || !reap_dead_shim (task, exit_out))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      return TRUE;
    }
  return parse_exit (reply, exit_out);
}

/* "<dir>/exec-ID.io" (what the shim reads for an exec) or "<dir>/init.io" (kept for
 * Tasks.Get): the stdin, stdout and stderr paths, "-" for none, one a line, then
 * "terminal" for a terminal. */
static char *
stdio_file_path (const char *dir, const char *exec_id)
{
  g_autofree char *name = exec_id ? g_strconcat ("exec-", exec_id, ".io", NULL) : g_strdup ("init.io");
  return g_build_filename (dir, name, NULL);
}

static gboolean
stdio_file_write (const char *dir, const char *exec_id, const BerthStdio *stdio, GError **error)
{
  g_autofree char *path = stdio_file_path (dir, exec_id);
  g_autofree char *io = g_strdup_printf ("%s\n%s\n%s\n%s", stdio->stdin_path && *stdio->stdin_path ? stdio->stdin_path : "-",
                                         stdio->stdout_path && *stdio->stdout_path ? stdio->stdout_path : "-",
                                         stdio->stderr_path && *stdio->stderr_path ? stdio->stderr_path : "-",
                                         stdio->terminal ? "terminal\n" : "");
  return g_file_set_contents (path, io, -1, error);
}

static gboolean
task_get_stdio (BerthTask *t, const char *exec_id, BerthStdio *stdio_out, GError **error)
{
  OciTask *task = OCI_TASK (t);
  if (exec_id != NULL && !validate_exec_id (exec_id, error))
    return FALSE;
  g_autofree char *path = stdio_file_path (task->dir, exec_id);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, error))
    return FALSE;
  g_auto (GStrv) lines = g_strsplit (text, "\n", 5);
  char **paths[] = { &stdio_out->stdin_path, &stdio_out->stdout_path, &stdio_out->stderr_path };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    *paths[i] = g_strv_length (lines) > i && !g_str_equal (lines[i], "-") ? g_strdup (lines[i]) : NULL;
  stdio_out->terminal = g_strv_length (lines) > 3 && g_str_equal (lines[3], "terminal");
  return TRUE;
}

/* Records an exec'd process for the shim: its OCI process spec and its stdio. It runs
 * at start. */
static gboolean
task_exec (BerthTask *t, const char *exec_id, GBytes *process_json, const BerthStdio *stdio, GCancellable *cancellable,
           GError **error)
{
  OciTask *task = OCI_TASK (t);
  if (!validate_exec_id (exec_id, error))
    return FALSE;
  g_autofree char *name = g_strconcat ("exec-", exec_id, ".json", NULL);
  g_autofree char *spec = g_build_filename (task->dir, name, NULL);
  if (g_file_test (spec, G_FILE_TEST_EXISTS))
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "exec %s: already exists in task %s", exec_id, task->id);
  gsize len = 0;
  const char *json = g_bytes_get_data (process_json, &len);
  if (!stdio_file_write (task->dir, exec_id, stdio, error) || !g_file_set_contents (spec, json, len, error))
    return FALSE;
  g_autofree char *request = g_strdup_printf ("add %s", exec_id);
  return simple_request (task, request, error);
}

static gboolean
task_resize_pty (BerthTask *t, const char *exec_id, guint32 width, guint32 height, GCancellable *cancellable, GError **error)
{
  g_autofree char *request = is_exec (exec_id) ? g_strdup_printf ("resize %u %u %s", width, height, exec_id)
                                               : g_strdup_printf ("resize %u %u", width, height);
  return simple_request (OCI_TASK (t), request, error);
}

static gboolean
task_update (BerthTask *t, GBytes *resources_json, GCancellable *cancellable, GError **error)
{
  OciTask *task = OCI_TASK (t);
  g_autofree char *path = g_build_filename (task->dir, "resources.json", NULL);
  gsize len = 0;
  const char *json = g_bytes_get_data (resources_json, &len);
  if (!g_file_set_contents (path, json, len, error))
    return FALSE;
  return simple_request (task, "update", error);
}

static gboolean
task_pause (BerthTask *t, GCancellable *cancellable, GError **error)
{
  return simple_request (OCI_TASK (t), "pause", error);
}

static gboolean
task_resume (BerthTask *t, GCancellable *cancellable, GError **error)
{
  return simple_request (OCI_TASK (t), "resume", error);
}

static GArray *
task_pids (BerthTask *t, GCancellable *cancellable, GError **error)
{
  g_autofree char *reply = shim_request (OCI_TASK (t), "pids", NULL, error);
  if (reply == NULL)
    return NULL;
  GArray *pids = g_array_new (FALSE, TRUE, sizeof (BerthProcessInfo));
  /* "ok [12,34]" */
  for (const char *p = reply + strlen ("ok"); *p;)
    {
      if (!g_ascii_isdigit (*p))
        {
          p++;
          continue;
        }
      char *end = NULL;
      BerthProcessInfo info = { (guint32) g_ascii_strtoull (p, &end, 10), NULL };
      g_array_append_val (pids, info);
      p = end;
    }
  return pids;
}

static gboolean
remove_tree (const char *path)
{
  g_autoptr (GError) error = NULL;
  if (berth_remove_tree_at (AT_FDCWD, path, &error))
    return TRUE;
  g_warning ("%s", error->message);
  return FALSE;
}

static void
task_cleanup (OciTask *task)
{
  berth_mount_unmount (task->rootfs, NULL);
  remove_tree (task->dir);
  g_autofree char *key = g_strdup_printf ("%s/%s", task->namespace_, task->id);
  g_mutex_lock (&task->runtime->lock);
  g_hash_table_remove (task->runtime->tasks, key);
  g_mutex_unlock (&task->runtime->lock);
}

static gboolean
task_delete (BerthTask *t, const char *exec_id, BerthExitStatus *exit_out, GCancellable *cancellable, GError **error)
{
  OciTask *task = OCI_TASK (t);
  if (is_exec (exec_id))
    {
      g_autofree char *request = request_for ("delete", exec_id);
      g_autofree char *reply = shim_request (task, request, cancellable, error);
      if (reply == NULL)
        return FALSE;
      parse_exit (reply, exit_out);
      for (const char *suffix = ".json"; suffix != NULL; suffix = g_str_equal (suffix, ".json") ? ".io" : NULL)
        {
          g_autofree char *name = g_strconcat ("exec-", exec_id, suffix, NULL);
          g_autofree char *path = g_build_filename (task->dir, name, NULL);
          unlink (path);
        }
      return TRUE;
    }
  g_autoptr (GError) local_error = NULL;
  g_atomic_int_set (&task->deleting, TRUE);
  g_autofree char *reply = shim_request (task, "delete", cancellable, &local_error);
  if (reply == NULL)
    {
      if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE))
        {
          g_atomic_int_set (&task->deleting, FALSE); /* refused (still running): the shim stays */
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      /* The shim is gone: its exit file still tells how the task ended. */
      if (!read_exit_file (task, exit_out) && exit_out != NULL)
        *exit_out = (BerthExitStatus) { 255, g_get_real_time () };
    }
  else
    parse_exit (reply, exit_out);
  g_object_ref (task);
  task_cleanup (task);
  g_object_unref (task);
  return TRUE;
}

static void
oci_task_finalize (GObject *object)
{
  OciTask *task = OCI_TASK (object);
  g_free (task->namespace_);
  g_free (task->id);
  g_free (task->dir);
  g_free (task->rootfs);
  G_OBJECT_CLASS (oci_task_parent_class)->finalize (object);
}

static void oci_task_class_init (OciTaskClass *klass) { G_OBJECT_CLASS (klass)->finalize = oci_task_finalize; }
static void oci_task_class_finalize (OciTaskClass *klass) {}
static void oci_task_init (OciTask *self) {}

static void
oci_task_iface_init (BerthTaskInterface *iface)
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
  iface->update = task_update;
  iface->pause = task_pause;
  iface->resume = task_resume;
  iface->pids = task_pids;
  iface->get_stdio = task_get_stdio;
}

static OciTask *
task_new (OciRuntime *runtime, const char *ns, const char *id, const char *dir, guint32 pid)
{
  OciTask *task = g_object_new (OCI_TYPE_TASK, NULL);
  task->runtime = runtime;
  task->namespace_ = g_strdup (ns);
  task->id = g_strdup (id);
  task->dir = g_strdup (dir);
  task->rootfs = g_build_filename (dir, "bundle", "rootfs", NULL);
  task->pid = pid;
  return task;
}

/* ---------------- the runtime ---------------- */

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

  g_autoptr (OciTask) task = task_new (self, options->namespace_, options->id, dir, 0);
  g_autofree char *bundle = g_build_filename (dir, "bundle", NULL);
  gboolean mounted = FALSE;
  gboolean ok = g_mkdir_with_parents (task->rootfs, 0711) == 0 || berth_throw_errno (error, "creating %s", task->rootfs);
  gboolean has_mounts = options->rootfs != NULL && options->rootfs->len > 0;
  ok = ok && write_config (bundle, options->spec_json, has_mounts, error);
  /* What to clean up with should the shim die: see reap_dead_shim. */
  g_autofree char *binary_file = g_build_filename (dir, "runtime-binary", NULL);
  ok = ok && g_file_set_contents (binary_file, binary, -1, error);
  ok = ok && stdio_file_write (dir, NULL, &options->stdio, error);
  if (ok && has_mounts)
    ok = mounted = berth_mount_list_mount (options->rootfs, task->rootfs, error);
  ok = ok && spawn_shim (self, dir, binary, options, &task->pid, error);
  if (!ok)
    {
      /* Nothing may be left behind: mount, bundle, reservation. */
      if (mounted)
        berth_mount_unmount (task->rootfs, NULL);
      remove_tree (dir);
      g_mutex_lock (&self->lock);
      g_hash_table_remove (self->tasks, key);
      g_mutex_unlock (&self->lock);
      return NULL;
    }
  g_mutex_lock (&self->lock);
  g_hash_table_replace (self->tasks, g_strdup (key), g_object_ref (task));
  g_mutex_unlock (&self->lock);
  g_debug ("task %s created with %s, pid %u", key, binary, task->pid);
  exit_watch_start (task, NULL, task->pid);
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
          OciTask *task = task_new (self, ns, id, dir, (guint32) g_ascii_strtoull (pidtext, NULL, 10));
          g_hash_table_replace (self->tasks, g_strdup_printf ("%s/%s", ns, id), task);
          exit_watch_start (task, NULL, task->pid);
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
  oci_task_register_type (module);
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
