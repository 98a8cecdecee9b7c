/* shimv2-shim.c — the shim process itself: running `SHIM start` and `SHIM delete` with
 * containerd's flags and environment, relaying the log the shim writes into berthd's,
 * and telling when a shim is gone and cleaning up after it (as containerd's
 * cleanupAfterDeadShim), so that its task still reports an exit.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>

#include "shimv2-private.h"

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
gboolean
shimv2_run_shim (ShimV2Task *task, const char *action, GBytes *input, GBytes **out_out, char **err_out,
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
gboolean
shimv2_open_log (ShimV2Task *task, GError **error)
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

void
shimv2_close_log (ShimV2Task *task)
{
  if (task->log_source == NULL)
    return;
  g_source_destroy (task->log_source);
  g_clear_pointer (&task->log_source, g_source_unref);
}

gboolean
shimv2_is_dead (ShimV2Task *task, BerthExitStatus *exit_out)
{
  g_mutex_lock (&task->lock);
  gboolean dead = task->dead;
  if (dead && exit_out != NULL)
    *exit_out = task->exit;
  g_mutex_unlock (&task->lock);
  return dead;
}

/* The shim is gone (killed, crashed): `SHIM delete` kills what is left of the container,
 * unmounts its root and tells the exit status, which the task keeps so that Wait, State,
 * Delete and /tasks/exit report it instead of an error. As containerd's
 * cleanupAfterDeadShim. */
void
shimv2_reap_dead_shim (ShimV2Task *task, BerthExitStatus *exit_out)
{
  g_mutex_lock (&task->lock);
  if (!task->dead)
    {
      g_autoptr (GBytes) out = NULL;
      g_autoptr (GError) error = NULL;
      BerthExitStatus exit = { DEAD_SHIM_EXIT_STATUS, g_get_real_time () };
      if (shimv2_run_shim (task, "delete", NULL, &out, NULL, NULL, &error))
        {
          gsize len = 0;
          const guint8 *data = g_bytes_get_data (out, &len);
          Containerd__Task__V2__DeleteResponse *response = containerd__task__v2__delete_response__unpack (NULL, len, data);
          if (response != NULL)
            {
              exit.exit_status = response->exit_status;
              if (response->exited_at != NULL && response->exited_at->seconds > 0)
                exit.exited_at = shimv2_timestamp_to_us (response->exited_at);
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
      shimv2_close_log (task);
    }
  if (exit_out != NULL)
    *exit_out = task->exit;
  BerthExitStatus exit = task->exit;
  g_mutex_unlock (&task->lock);
  shimv2_emit_exit (task, NULL, &exit);
}

/* Whether a failed call means the shim is gone: its socket refuses connections. A shim
 * that is only slow still accepts one. */
gboolean
shimv2_shim_is_gone (ShimV2Task *task, const GError *error)
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
