/* oci-exits.c — each process's exit without a thread: one "wait" request per process
 * on a socket the default main context watches; its reply becomes the task's "exited"
 * signal, and a shim that hangs up without one is reaped (in a worker: that spawns the
 * runtime) and its init's exit announced.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "oci-private.h"

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
  if (oci_reap_dead_shim (watch->task, &exit))
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
  if (g_str_has_prefix (watch->reply->str, "exit ") && oci_parse_exit (watch->reply->str, &exit))
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

void
oci_exit_watch_start (OciTask *task, const char *exec_id, guint32 pid)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *request = exec_id ? g_strdup_printf ("wait %s", exec_id) : g_strdup ("wait");
  ExitWatch *watch = g_new0 (ExitWatch, 1);
  watch->task = g_object_ref (task);
  watch->exec_id = g_strdup (exec_id);
  watch->pid = pid;
  watch->reply = g_string_new (NULL);
  watch->fd = oci_shim_send (task, request, &error);
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
