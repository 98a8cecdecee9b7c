/* oci-shim.c — talking to a task's berth-shim: a request line over its unix socket and
 * the reply line, with deadlines so that one stuck shim hangs no caller; the exit file a
 * shim leaves; and cleaning up after a shim that died without one (its container killed
 * and deleted through the runtime, its root unmounted, an exit recorded).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "oci-private.h"

#define SHIM_REPLY_TIMEOUT_MS (30 * 1000)
/* Longest reply line read from a shim: a pid list of some 500 000 processes (the shim
 * sends at most 4 MiB of it). */
#define SHIM_REPLY_MAX (8 << 20)
#define SHIM_STATE_TIMEOUT_MS (2 * 1000)
/* What a task whose shim died unannounced reports, as containerd does. */
#define DEAD_SHIM_EXIT_STATUS 255

/* Connects to the task's shim and sends one request line; the socket, or -1. */
int
oci_shim_send (OciTask *task, const char *request, GError **error)
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
char *
oci_shim_request (OciTask *task, const char *request, GCancellable *cancellable, GError **error)
{
  berth_autofd int fd = oci_shim_send (task, request, error);
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
gboolean
oci_parse_exit (const char *line, BerthExitStatus *exit_out)
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
gboolean
oci_read_exit_file (OciTask *task, BerthExitStatus *exit_out)
{
  g_autofree char *path = g_build_filename (task->dir, "exit", NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  g_autofree char *line = g_strconcat ("exit ", g_strstrip (text), NULL);
  return oci_parse_exit (line, exit_out);
}

/* The shim died without leaving an exit file (killed, OOM, a crash): its container may
 * still run, unsupervised. Kill and delete it through the runtime, unmount its root and
 * record an exit so that Wait, Delete and /tasks/exit report it instead of hanging. */
gboolean
oci_reap_dead_shim (OciTask *task, BerthExitStatus *exit_out)
{
  if (oci_read_exit_file (task, exit_out))
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
