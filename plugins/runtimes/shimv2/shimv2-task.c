/* shimv2-task.c — the shim-v2 task: each BerthTask method as a containerd.task.v2.Task
 * call to the task's shim over ttrpc (State, Start, Kill, Wait, Delete, Exec, ResizePty,
 * CloseIO, Pause, Resume, Pids, Update, Stats), with the dead-shim cases containerd
 * handles, and the ShimV2Task object.
 */
#include "config.h"

#include <fcntl.h>

#include "shimv2-private.h"

#define PROCESS_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define RESOURCES_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"

static void shimv2_task_iface_init (BerthTaskInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShimV2Task, shimv2_task, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_TASK, shimv2_task_iface_init))

ProtobufCMessage *
shimv2_call (ShimV2Task *task, const char *method, const ProtobufCMessage *request,
             const ProtobufCMessageDescriptor *reply_type, int timeout_ms, GCancellable *cancellable, GError **error)
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
  g_autoptr (ProtobufCMessage) reply =
    shimv2_call (task, method, request, &google__protobuf__empty__descriptor, CALL_TIMEOUT_MS, NULL, error);
  return reply != NULL;
}

/* ---------------- the task ---------------- */

static const char *task_get_id (BerthTask *t) { return SHIMV2_TASK (t)->id; }
static const char *task_get_namespace (BerthTask *t) { return SHIMV2_TASK (t)->namespace_; }
static guint32 task_get_pid (BerthTask *t) { return SHIMV2_TASK (t)->pid; }

static BerthTaskStatus
task_get_status (BerthTask *t, const char *exec_id, BerthExitStatus *exit_out)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  if (shimv2_is_dead (task, exit_out))
    return shimv2_is_exec (exec_id) ? BERTH_TASK_STATUS_UNKNOWN : BERTH_TASK_STATUS_STOPPED;
  Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  g_autoptr (GError) error = NULL;
  g_autoptr (ProtobufCMessage) reply =
    shimv2_call (task, "State", &req.base, &containerd__task__v2__state_response__descriptor, STATE_TIMEOUT_MS, NULL,
                 &error);
  if (reply == NULL)
    {
      if (!shimv2_is_exec (exec_id) && shimv2_shim_is_gone (task, error))
        {
          shimv2_reap_dead_shim (task, exit_out);
          return BERTH_TASK_STATUS_STOPPED;
        }
      g_debug ("%s", error->message);
      return BERTH_TASK_STATUS_UNKNOWN;
    }
  Containerd__Task__V2__StateResponse *state = (Containerd__Task__V2__StateResponse *) reply;
  if (exit_out != NULL)
    *exit_out = (BerthExitStatus) { state->exit_status, shimv2_timestamp_to_us (state->exited_at) };
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
  g_autoptr (ProtobufCMessage) reply =
    shimv2_call (task, "Start", &req.base, &containerd__task__v2__start_response__descriptor, CALL_TIMEOUT_MS,
                 cancellable, error);
  if (reply == NULL)
    return FALSE;
  guint32 pid = ((Containerd__Task__V2__StartResponse *) reply)->pid;
  if (!shimv2_is_exec (exec_id) && pid != 0)
    task->pid = pid;
  if (shimv2_is_exec (exec_id))
    {
      g_mutex_lock (&task->lock);
      g_hash_table_replace (task->exec_pids, g_strdup (exec_id), GUINT_TO_POINTER (pid));
      g_mutex_unlock (&task->lock);
      shimv2_exit_watch_start (task, exec_id);
    }
  if (pid_out != NULL)
    *pid_out = pid;
  return TRUE;
}

static gboolean
task_kill (BerthTask *t, const char *exec_id, int signal, gboolean all, GCancellable *cancellable, GError **error)
{
  ShimV2Task *task = SHIMV2_TASK (t);
  if (shimv2_is_dead (task, NULL))
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
  if (!shimv2_is_exec (exec_id) && shimv2_is_dead (task, exit_out))
    return TRUE;
  Containerd__Task__V2__WaitRequest req = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  g_autoptr (GError) local_error = NULL;
  g_autoptr (ProtobufCMessage) reply =
    shimv2_call (task, "Wait", &req.base, &containerd__task__v2__wait_response__descriptor, -1, cancellable,
                 &local_error);
  if (reply == NULL)
    {
      /* The shim died under the call: the init's wait reports the task's end. */
      if (!shimv2_is_exec (exec_id) && shimv2_shim_is_gone (task, local_error))
        {
          shimv2_reap_dead_shim (task, exit_out);
          return TRUE;
        }
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  Containerd__Task__V2__WaitResponse *wait = (Containerd__Task__V2__WaitResponse *) reply;
  if (exit_out != NULL)
    *exit_out = (BerthExitStatus) { wait->exit_status, shimv2_timestamp_to_us (wait->exited_at) };
  return TRUE;
}

void
shimv2_task_cleanup (ShimV2Task *task)
{
  shimv2_close_log (task);
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
void
shimv2_shutdown_shim (ShimV2Task *task, gboolean now)
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
  if (!shimv2_is_exec (exec_id) && shimv2_is_dead (task, exit_out))
    {
      shimv2_task_cleanup (task);
      return TRUE;
    }
  Containerd__Task__V2__DeleteRequest req = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  req.id = task->id;
  req.exec_id = (char *) (exec_id ? exec_id : "");
  g_autoptr (GError) local_error = NULL;
  g_autoptr (ProtobufCMessage) reply =
    shimv2_call (task, "Delete", &req.base, &containerd__task__v2__delete_response__descriptor, CALL_TIMEOUT_MS,
                 cancellable, &local_error);
  if (reply == NULL)
    {
      if (shimv2_is_exec (exec_id) || !shimv2_shim_is_gone (task, local_error))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      shimv2_reap_dead_shim (task, exit_out);
      shimv2_task_cleanup (task);
      return TRUE;
    }
  Containerd__Task__V2__DeleteResponse *response = (Containerd__Task__V2__DeleteResponse *) reply;
  BerthExitStatus exit = { response->exit_status, shimv2_timestamp_to_us (response->exited_at) };
  if (exit_out != NULL)
    *exit_out = exit;
  if (shimv2_is_exec (exec_id))
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
  shimv2_shutdown_shim (task, FALSE);
  shimv2_task_cleanup (task);
  return TRUE;
}

Google__Protobuf__Any
shimv2_json_any (const char *type_url, GBytes *json)
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
  Google__Protobuf__Any spec = shimv2_json_any (PROCESS_TYPE_URL, process_json);
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
  g_autoptr (ProtobufCMessage) reply =
    shimv2_call (task, "Pids", &req.base, &containerd__task__v2__pids_response__descriptor, CALL_TIMEOUT_MS, NULL,
                 error);
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
  Google__Protobuf__Any resources = shimv2_json_any (RESOURCES_TYPE_URL, resources_json);
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
  g_autoptr (ProtobufCMessage) reply =
    shimv2_call (task, "Stats", &req.base, &containerd__task__v2__stats_response__descriptor, CALL_TIMEOUT_MS, NULL,
                 error);
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
  shimv2_close_log (task);
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

ShimV2Task *
shimv2_task_new (ShimV2Runtime *runtime, const char *ns, const char *id, const char *dir, const char *binary)
{
  ShimV2Task *task = g_object_new (SHIMV2_TYPE_TASK, NULL);
  task->runtime = runtime;
  task->namespace_ = g_strdup (ns);
  task->id = g_strdup (id);
  task->dir = g_strdup (dir);
  task->binary = g_strdup (binary);
  return task;
}

void
shimv2_task_register (GTypeModule *module)
{
  shimv2_task_register_type (module);
}
