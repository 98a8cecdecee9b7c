/* shimv2-exits.c — each process's exit without a thread: one Wait per process on a
 * connection the default main context watches; its reply becomes the task's "exited"
 * signal, and a connection the shim closes without one has the task reaped.
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include <glib-unix.h>

#include "shimv2-private.h"

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

void
shimv2_emit_exit (ShimV2Task *task, const char *exec_id, const BerthExitStatus *exit)
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
  shimv2_reap_dead_shim (task, NULL);
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
  if (shimv2_is_dead (watch->task, NULL) || shimv2_shim_is_gone (watch->task, error))
    {
      BerthExitStatus exit = { DEAD_SHIM_EXIT_STATUS, g_get_real_time () };
      shimv2_emit_exit (watch->task, watch->exec_id, &exit);
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
          BerthExitStatus exit = { wait->exit_status, shimv2_timestamp_to_us (wait->exited_at) };
          shimv2_emit_exit (watch->task, watch->exec_id, &exit);
          protobuf_c_message_free_unpacked (reply, NULL);
        }
      else
        g_debug ("task %s: not watching %s for its exit: %s", watch->task->id, watch->exec_id ? watch->exec_id : "init",
                 error->message);
    }
  else if (watch->exec_id == NULL && !shimv2_is_dead (watch->task, NULL))
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

void
shimv2_exit_watch_start (ShimV2Task *task, const char *exec_id)
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
