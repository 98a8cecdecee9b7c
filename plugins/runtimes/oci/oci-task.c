/* oci-task.c — the OCI task: each BerthTask method as a request to the task's berth-shim
 * (state, start, kill, wait, add, resize, update, pause, resume, pids, delete), the files
 * an exec'd process is described by, and the OciTask object.
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "oci-private.h"

static void oci_task_iface_init (BerthTaskInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (OciTask, oci_task, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_TASK, oci_task_iface_init))

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
  g_autofree char *reply = oci_shim_request (task, request, NULL, error);
  return reply != NULL;
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
  g_autofree char *state = oci_shim_request (task, request, NULL, &state_error);
  if (state == NULL)
    {
      if (is_exec (exec_id))
        return BERTH_TASK_STATUS_UNKNOWN;
      if (oci_read_exit_file (task, exit_out))
        return BERTH_TASK_STATUS_STOPPED;
      /* Unreachable is dead (a hung shim times out instead, and stays unknown). */
      if (g_error_matches (state_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE) && oci_reap_dead_shim (task, exit_out))
        return BERTH_TASK_STATUS_STOPPED;
      return BERTH_TASK_STATUS_UNKNOWN;
    }
  if (g_str_has_prefix (state, "stopped "))
    {
      oci_parse_exit (state, exit_out);
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
  g_autofree char *reply = oci_shim_request (OCI_TASK (t), request, cancellable, error);
  if (reply == NULL)
    return FALSE;
  guint32 pid = is_exec (exec_id) ? (guint32) g_ascii_strtoull (reply + strlen ("ok "), NULL, 10) : OCI_TASK (t)->pid;
  if (is_exec (exec_id))
    oci_exit_watch_start (OCI_TASK (t), exec_id, pid);
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
  g_autofree char *reply = oci_shim_request (OCI_TASK (t), request, NULL, &local_error);
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
  g_autofree char *reply = oci_shim_request (task, request, cancellable, &local_error);
  if (reply == NULL)
    {
      if (is_exec (exec_id) || !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE)
          || !oci_reap_dead_shim (task, exit_out))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      return TRUE;
    }
  return oci_parse_exit (reply, exit_out);
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

gboolean
oci_stdio_file_write (const char *dir, const char *exec_id, const BerthStdio *stdio, GError **error)
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
  /* The exec id names files in the task's directory and words of shim requests. */
  if (exec_id != NULL && !berth_identifier_validate (BERTH_IDENTIFIER_EXEC, exec_id, error))
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
  if (!berth_identifier_validate (BERTH_IDENTIFIER_EXEC, exec_id, error))
    return FALSE;
  g_autofree char *name = g_strconcat ("exec-", exec_id, ".json", NULL);
  g_autofree char *spec = g_build_filename (task->dir, name, NULL);
  if (g_file_test (spec, G_FILE_TEST_EXISTS))
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "exec %s: already exists in task %s", exec_id, task->id);
  gsize len = 0;
  const char *json = g_bytes_get_data (process_json, &len);
  if (!oci_stdio_file_write (task->dir, exec_id, stdio, error) || !g_file_set_contents (spec, json, len, error))
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
  g_autofree char *reply = oci_shim_request (OCI_TASK (t), "pids", NULL, error);
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

gboolean
oci_remove_tree (const char *path)
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
  oci_remove_tree (task->dir);
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
      g_autofree char *reply = oci_shim_request (task, request, cancellable, error);
      if (reply == NULL)
        return FALSE;
      oci_parse_exit (reply, exit_out);
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
  g_autofree char *reply = oci_shim_request (task, "delete", cancellable, &local_error);
  if (reply == NULL)
    {
      if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE))
        {
          g_atomic_int_set (&task->deleting, FALSE); /* refused (still running): the shim stays */
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      /* The shim is gone: its exit file still tells how the task ended. */
      if (!oci_read_exit_file (task, exit_out) && exit_out != NULL)
        *exit_out = (BerthExitStatus) { 255, g_get_real_time () };
    }
  else
    oci_parse_exit (reply, exit_out);
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

OciTask *
oci_task_new (OciRuntime *runtime, const char *ns, const char *id, const char *dir, guint32 pid)
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

void
oci_task_register (GTypeModule *module)
{
  oci_task_register_type (module);
}
