/* tasks.c — containerd.services.tasks.v1.Tasks over the runtime plugin. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "berth-api-ops.h"
#include "daemon/berth-cgroup.h"
#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

typedef Containerd__Services__Containers__V1__Container Container;

static BerthTask *
find_task (BerthGrpcCall *call, gpointer daemon, const char *id, GError **error)
{
  if (id == NULL || *id == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no container id given"), NULL;
  g_autoptr (GError) local_error = NULL;
  BerthTask *task = berth_daemon_find_task (daemon, berth_grpc_call_get_namespace (call), id, &local_error);
  if (task == NULL && g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    berth_throw (error, BERTH_ERROR_NOT_FOUND, "no running task found: task %s: not found", id);
  else if (task == NULL)
    g_propagate_error (error, g_steal_pointer (&local_error));
  return task;
}



BerthTask *
berth_api_ops_task_create (BerthDaemon *daemon, const char *ns, const char *container_id, GPtrArray *rootfs,
                           const BerthStdio *stdio, const Google__Protobuf__Any *options_in, GCancellable *cancellable,
                           GError **error)
{
  if (container_id == NULL || *container_id == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no container id given"), NULL;
  Container *found = berth_schema_container_read (berth_daemon_get_metadata (daemon), ns, container_id, error);
  if (found == NULL)
    return NULL;
  g_autoptr (ProtobufCMessage) container = &found->base;
  const char *runtime_name = found->runtime ? found->runtime->name : NULL;
  BerthRuntime *runtime = berth_daemon_get_runtime (daemon, runtime_name, error);
  if (runtime == NULL)
    return NULL;
  const Google__Protobuf__Any *options = options_in ? options_in : found->runtime ? found->runtime->options : NULL;
  g_autoptr (GBytes) spec = found->spec ? g_bytes_new (found->spec->value.data, found->spec->value.len) : NULL;
  g_autoptr (GBytes) option_bytes = options ? g_bytes_new (options->value.data, options->value.len) : NULL;
  BerthTaskCreateOptions create = {
    .namespace_ = ns,
    .id = container_id,
    .spec_json = spec,
    .rootfs = rootfs,
    .stdio = *stdio,
    .runtime_name = runtime_name,
    .options_type_url = options ? options->type_url : NULL,
    .options = option_bytes,
  };
  BerthTask *task = berth_runtime_create (runtime, &create, cancellable, error);
  if (task == NULL)
    return NULL;
  Containerd__Events__TaskCreate event = CONTAINERD__EVENTS__TASK_CREATE__INIT;
  event.container_id = (char *) container_id;
  event.pid = berth_task_get_pid (task);
  berth_events_publish (berth_daemon_get_events (daemon), ns, "/tasks/create", &event.base);
  berth_daemon_watch_exit (daemon, task, NULL);
  return task;
}

static ProtobufCMessage *
tasks_create (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__CreateTaskRequest *req = (gpointer) request;
  if (req->checkpoint != NULL)
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "restoring from a checkpoint is not supported"), NULL;
  g_autoptr (GPtrArray) rootfs = berth_proto_mounts_to_list (req->rootfs, req->n_rootfs);
  BerthStdio stdio = { req->stdin, req->stdout, req->stderr, req->terminal };
  g_autoptr (BerthTask) task = berth_api_ops_task_create (user_data, berth_grpc_call_get_namespace (call), req->container_id,
                                                          rootfs, &stdio, req->options,
                                                          berth_grpc_call_get_cancellable (call), error);
  if (task == NULL)
    return NULL;
  Containerd__Services__Tasks__V1__CreateTaskResponse *response =
    berth_grpc_message_new (&containerd__services__tasks__v1__create_task_response__descriptor);
  response->container_id = g_strdup (req->container_id);
  response->pid = berth_task_get_pid (task);
  return &response->base;
}

/* containerd's shim sends a process's start event before its exit event; Docker takes
 * a /tasks/start seen after the /tasks/exit for a container that runs again (state
 * "running", the exit lost). The runtime announces an exit from its own thread, maybe
 * before Start returned: while a process's start event is being published, its exit
 * is held and published just after. */
typedef struct {
  char *exec_id; /* NULL: init */
  guint pid;
  guint exit_status;
  gint64 exited_at;
  gboolean oom_killed; /* /tasks/oom goes out first, as containerd's */
} HeldExit;

static void
held_exit_free (HeldExit *held)
{
  g_free (held->exec_id);
  g_free (held);
}

static GMutex starting_lock;
#define STARTING_KEY "berth-api-starting" /* task data: exec id ("" for init) → GPtrArray of HeldExit */

static void
publish_exit (BerthDaemon *daemon, BerthTask *task, const HeldExit *exit)
{
  if (exit->oom_killed)
    {
      Containerd__Events__TaskOOM oom = CONTAINERD__EVENTS__TASK_OOM__INIT;
      oom.container_id = (char *) berth_task_get_id (task);
      berth_events_publish (berth_daemon_get_events (daemon), berth_task_get_namespace (task), "/tasks/oom", &oom.base);
    }
  g_autoptr (ProtobufCMessage) ts = &berth_schema_timestamp_new (exit->exited_at)->base;
  Containerd__Events__TaskExit event = CONTAINERD__EVENTS__TASK_EXIT__INIT;
  event.container_id = (char *) berth_task_get_id (task);
  event.id = exit->exec_id ? exit->exec_id : (char *) berth_task_get_id (task);
  event.pid = exit->pid;
  event.exit_status = exit->exit_status;
  event.exited_at = (Google__Protobuf__Timestamp *) ts;
  berth_events_publish (berth_daemon_get_events (daemon), berth_task_get_namespace (task), "/tasks/exit", &event.base);
}

void
berth_api_ops_task_exited (BerthDaemon *daemon, BerthTask *task, const char *exec_id, guint pid, guint exit_status,
                           gint64 exited_at, gboolean oom_killed)
{
  HeldExit exit = { (char *) exec_id, pid, exit_status, exited_at, oom_killed };
  g_mutex_lock (&starting_lock);
  GHashTable *starting = g_object_get_data (G_OBJECT (task), STARTING_KEY);
  GPtrArray *held = starting ? g_hash_table_lookup (starting, exec_id ? exec_id : "") : NULL;
  if (held != NULL)
    {
      HeldExit *copy = g_new0 (HeldExit, 1);
      *copy = exit;
      copy->exec_id = g_strdup (exec_id);
      g_ptr_array_add (held, copy);
    }
  g_mutex_unlock (&starting_lock);
  if (held == NULL)
    publish_exit (daemon, task, &exit);
}

/* FALSE when another start of the same process holds its exits already. */
static gboolean
exits_hold (BerthTask *task, const char *key)
{
  g_mutex_lock (&starting_lock);
  GHashTable *starting = g_object_get_data (G_OBJECT (task), STARTING_KEY);
  if (starting == NULL)
    {
      starting = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
      g_object_set_data_full (G_OBJECT (task), STARTING_KEY, starting, (GDestroyNotify) g_hash_table_unref);
    }
  gboolean mine = !g_hash_table_contains (starting, key);
  if (mine)
    g_hash_table_insert (starting, g_strdup (key), g_ptr_array_new_with_free_func ((GDestroyNotify) held_exit_free));
  g_mutex_unlock (&starting_lock);
  return mine;
}

static void
exits_release (BerthDaemon *daemon, BerthTask *task, const char *key)
{
  g_autoptr (GPtrArray) held = NULL;
  g_autofree char *stolen_key = NULL;
  g_mutex_lock (&starting_lock);
  GHashTable *starting = g_object_get_data (G_OBJECT (task), STARTING_KEY);
  g_hash_table_steal_extended (starting, key, (gpointer *) &stolen_key, (gpointer *) &held);
  g_mutex_unlock (&starting_lock);
  for (guint i = 0; held != NULL && i < held->len; i++)
    publish_exit (daemon, task, held->pdata[i]);
}

/* Starts the process and publishes its start event, with its exit held (*@holding:
 * the caller releases it with exits_release under @key). */
static gboolean
task_start (BerthDaemon *daemon, BerthTask *task, const char *exec_id, const char *key, gboolean *holding,
            guint32 *pid_out, GCancellable *cancellable, GError **error)
{
  guint32 pid = 0;
  *holding = exits_hold (task, key);
  if (!berth_task_start (task, exec_id, &pid, cancellable, error))
    return FALSE;
  const char *ns = berth_task_get_namespace (task);
  if (exec_id != NULL && *exec_id != '\0')
    {
      Containerd__Events__TaskExecStarted event = CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
      event.container_id = (char *) berth_task_get_id (task);
      event.exec_id = (char *) exec_id;
      event.pid = pid;
      berth_events_publish (berth_daemon_get_events (daemon), ns, "/tasks/exec-started", &event.base);
      berth_daemon_watch_exit (daemon, task, exec_id);
    }
  else
    {
      Containerd__Events__TaskStart event = CONTAINERD__EVENTS__TASK_START__INIT;
      event.container_id = (char *) berth_task_get_id (task);
      event.pid = pid;
      berth_events_publish (berth_daemon_get_events (daemon), ns, "/tasks/start", &event.base);
    }
  if (pid_out != NULL)
    *pid_out = pid;
  return TRUE;
}

gboolean
berth_api_ops_task_start (BerthDaemon *daemon, BerthTask *task, const char *exec_id, guint32 *pid_out,
                          GCancellable *cancellable, GError **error)
{
  const char *key = exec_id != NULL ? exec_id : "";
  gboolean holding = FALSE;
  gboolean ok = task_start (daemon, task, exec_id, key, &holding, pid_out, cancellable, error);
  if (holding)
    exits_release (daemon, task, key);
  return ok;
}

typedef struct {
  BerthDaemon *daemon;
  BerthTask *task;
  char *key;
} StartRelease;

/* The call is over, its response written to the client's socket (the end runs on the
 * main context after the response went out): now the exit may follow. */
static void
start_release (gpointer data)
{
  StartRelease *release = data;
  exits_release (release->daemon, release->task, release->key);
  g_object_unref (release->task);
  g_free (release->key);
  g_free (release);
}

/* Docker takes a /tasks/exit for its container's end only once Start has answered (it
 * compares the exit's pid with the one Start returned; before that the exit is an
 * unknown process's and the container stays "running" for good). containerd's exit
 * comes from the shim through containerd, well after Start's answer: here the exit is
 * held until the answer is out. */
static ProtobufCMessage *
tasks_start (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__StartRequest *req = (gpointer) request;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  if (task == NULL)
    return NULL;
  guint32 pid = 0;
  const char *key = req->exec_id != NULL ? req->exec_id : "";
  gboolean holding = FALSE;
  gboolean ok = task_start (user_data, task, req->exec_id, key, &holding, &pid, berth_grpc_call_get_cancellable (call),
                            error);
  if (!ok || !holding)
    {
      if (holding)
        exits_release (user_data, task, key);
      if (!ok)
        return NULL;
      Containerd__Services__Tasks__V1__StartResponse *response =
        berth_grpc_message_new (&containerd__services__tasks__v1__start_response__descriptor);
      response->pid = pid;
      return &response->base;
    }
  StartRelease *release = g_new0 (StartRelease, 1);
  release->daemon = user_data;
  release->task = g_object_ref (task);
  release->key = g_strdup (key);
  berth_grpc_call_defer (call, start_release, release);
  Containerd__Services__Tasks__V1__StartResponse *response =
    berth_grpc_message_new (&containerd__services__tasks__v1__start_response__descriptor);
  response->pid = pid;
  berth_grpc_call_complete (call, &response->base, NULL);
  return NULL;
}

gboolean
berth_api_ops_task_delete (BerthDaemon *daemon, BerthTask *task, BerthExitStatus *exit_out, GCancellable *cancellable,
                           GError **error)
{
  BerthExitStatus exit = { 0 };
  guint32 pid = berth_task_get_pid (task);
  if (!berth_task_delete (task, NULL, &exit, cancellable, error))
    return FALSE;
  Containerd__Events__TaskDelete event = CONTAINERD__EVENTS__TASK_DELETE__INIT;
  g_autoptr (ProtobufCMessage) ts = &berth_schema_timestamp_new (exit.exited_at)->base;
  event.container_id = (char *) berth_task_get_id (task);
  event.pid = pid;
  event.exit_status = exit.exit_status;
  event.exited_at = (Google__Protobuf__Timestamp *) ts;
  berth_events_publish (berth_daemon_get_events (daemon), berth_task_get_namespace (task), "/tasks/delete", &event.base);
  if (exit_out != NULL)
    *exit_out = exit;
  return TRUE;
}

static ProtobufCMessage *
tasks_delete (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__DeleteTaskRequest *req = (gpointer) request;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  BerthExitStatus exit = { 0 };
  if (task == NULL)
    return NULL;
  guint32 pid = berth_task_get_pid (task);
  if (!berth_api_ops_task_delete (user_data, task, &exit, berth_grpc_call_get_cancellable (call), error))
    return NULL;
  Containerd__Services__Tasks__V1__DeleteResponse *response =
    berth_grpc_message_new (&containerd__services__tasks__v1__delete_response__descriptor);
  response->id = g_strdup (req->container_id);
  response->pid = pid;
  response->exit_status = exit.exit_status;
  response->exited_at = berth_schema_timestamp_new (exit.exited_at);
  return &response->base;
}

static Containerd__V1__Types__Process *
process_message (BerthTask *task, const char *exec_id)
{
  Containerd__V1__Types__Process *p = berth_grpc_message_new (&containerd__v1__types__process__descriptor);
  BerthExitStatus exit = { 0 };
  p->container_id = g_strdup (berth_task_get_id (task));
  p->id = g_strdup (exec_id && *exec_id ? exec_id : berth_task_get_id (task));
  p->pid = berth_task_get_pid (task);
  p->status = (Containerd__V1__Types__Status) berth_task_get_status (task, exec_id, &exit);
  if (p->status == CONTAINERD__V1__TYPES__STATUS__STOPPED)
    {
      p->exit_status = exit.exit_status;
      p->exited_at = berth_schema_timestamp_new (exit.exited_at);
    }
  /* The client's FIFOs, for one that attaches later (ctr tasks attach). */
  BerthStdio stdio = { 0 };
  g_autoptr (GError) error = NULL;
  if (berth_task_get_stdio (task, exec_id && *exec_id ? exec_id : NULL, &stdio, &error))
    {
      if (stdio.stdin_path != NULL)
        p->stdin = g_steal_pointer (&stdio.stdin_path);
      if (stdio.stdout_path != NULL)
        p->stdout = g_steal_pointer (&stdio.stdout_path);
      if (stdio.stderr_path != NULL)
        p->stderr = g_steal_pointer (&stdio.stderr_path);
      p->terminal = stdio.terminal;
    }
  else
    g_debug ("task %s: no stdio to report: %s", berth_task_get_id (task), error->message);
  return p;
}

static ProtobufCMessage *
tasks_exec (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__ExecProcessRequest *req = (gpointer) request;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  if (task == NULL)
    return NULL;
  if (req->spec == NULL || req->exec_id == NULL || *req->exec_id == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "exec needs an id and a process spec"), NULL;
  g_autoptr (GBytes) spec = g_bytes_new (req->spec->value.data, req->spec->value.len);
  BerthStdio stdio = { req->stdin, req->stdout, req->stderr, req->terminal };
  if (!berth_task_exec (task, req->exec_id, spec, &stdio, berth_grpc_call_get_cancellable (call), error))
    return NULL;
  Containerd__Events__TaskExecAdded event = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
  event.container_id = req->container_id;
  event.exec_id = req->exec_id;
  berth_api_publish (call, "/tasks/exec-added", &event.base);
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static ProtobufCMessage *
tasks_delete_process (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__DeleteProcessRequest *req = (gpointer) request;
  if (req->exec_id == NULL || *req->exec_id == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "DeleteProcess needs an exec id (use Delete for the task)"), NULL;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  BerthExitStatus exit = { 0 };
  if (task == NULL || !berth_task_delete (task, req->exec_id, &exit, berth_grpc_call_get_cancellable (call), error))
    return NULL;
  Containerd__Services__Tasks__V1__DeleteResponse *response =
    berth_grpc_message_new (&containerd__services__tasks__v1__delete_response__descriptor);
  response->id = g_strdup (req->exec_id);
  response->exit_status = exit.exit_status;
  response->exited_at = berth_schema_timestamp_new (exit.exited_at);
  return &response->base;
}

/* Closes a process's stdin (ctr after its stdin hits EOF). berth-shim sees the EOF on the
 * FIFO itself and has no close_io: that is success. */
static ProtobufCMessage *
tasks_close_io (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__CloseIORequest *req = (gpointer) request;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  if (task == NULL)
    return NULL;
  g_autoptr (GError) local_error = NULL;
  if (req->stdin && !berth_task_close_io (task, req->exec_id, NULL, &local_error)
      && !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNIMPLEMENTED))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static ProtobufCMessage *
tasks_get (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__GetRequest *req = (gpointer) request;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  if (task == NULL)
    return NULL;
  Containerd__Services__Tasks__V1__GetResponse *response =
    berth_grpc_message_new (&containerd__services__tasks__v1__get_response__descriptor);
  response->process = process_message (task, req->exec_id);
  return &response->base;
}

static ProtobufCMessage *
tasks_list (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  g_autoptr (GPtrArray) tasks = berth_daemon_list_tasks (user_data, berth_grpc_call_get_namespace (call), error);
  if (tasks == NULL)
    return NULL;
  Containerd__Services__Tasks__V1__ListTasksResponse *response =
    berth_grpc_message_new (&containerd__services__tasks__v1__list_tasks_response__descriptor);
  response->n_tasks = tasks->len;
  response->tasks = g_new0 (Containerd__V1__Types__Process *, tasks->len + 1);
  for (guint i = 0; i < tasks->len; i++)
    response->tasks[i] = process_message (tasks->pdata[i], NULL);
  return &response->base;
}

static ProtobufCMessage *
tasks_kill (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__KillRequest *req = (gpointer) request;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  if (task == NULL || !berth_task_kill (task, req->exec_id, req->signal, req->all, NULL, error))
    return NULL;
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

/* In the announcing thread: answer the Wait. */
static void
wait_answered (const BerthExitStatus *exit, const GError *error, gpointer data)
{
  BerthGrpcCall *call = data;
  if (error != NULL)
    {
      berth_grpc_call_complete (call, NULL, g_error_copy (error));
      return;
    }
  Containerd__Services__Tasks__V1__WaitResponse *response =
    berth_grpc_message_new (&containerd__services__tasks__v1__wait_response__descriptor);
  response->exit_status = exit->exit_status;
  response->exited_at = berth_schema_timestamp_new (exit->exited_at);
  berth_grpc_call_complete (call, &response->base, NULL);
}

typedef struct {
  BerthGrpcCall *call;
  BerthApiExitWaiter *waiter;
} WaitCall;

static void
wait_end (gpointer data)
{
  WaitCall *wait = data;
  berth_api_exit_waiter_cancel (wait->waiter);
  berth_grpc_call_unref (wait->call);
  g_free (wait);
}

/* Holds no thread while the process runs: answered from its "exited" signal. */
static ProtobufCMessage *
tasks_wait (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__WaitRequest *req = (gpointer) request;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  if (task == NULL)
    return NULL;
  WaitCall *wait = g_new0 (WaitCall, 1);
  wait->call = berth_grpc_call_ref (call);
  wait->waiter = berth_api_wait_exit (task, req->exec_id, wait_answered, wait->call);
  berth_grpc_call_defer (call, wait_end, wait);
  return NULL;
}

/* Pause and Resume differ only in the call and the event. */
static ProtobufCMessage *
pause_or_resume (BerthGrpcCall *call, gpointer daemon, const char *id, gboolean pause, GError **error)
{
  g_autoptr (BerthTask) task = find_task (call, daemon, id, error);
  if (task == NULL || !(pause ? berth_task_pause (task, NULL, error) : berth_task_resume (task, NULL, error)))
    return NULL;
  /* TaskPaused and TaskResumed share the layout: container_id. */
  Containerd__Events__TaskPaused event = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
  if (!pause)
    event.base.descriptor = &containerd__events__task_resumed__descriptor;
  event.container_id = (char *) id;
  berth_api_publish (call, pause ? "/tasks/paused" : "/tasks/resumed", &event.base);
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static ProtobufCMessage *
tasks_pause (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  return pause_or_resume (call, user_data, ((Containerd__Services__Tasks__V1__PauseTaskRequest *) request)->container_id,
                          TRUE, error);
}

static ProtobufCMessage *
tasks_resume (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  return pause_or_resume (call, user_data, ((Containerd__Services__Tasks__V1__ResumeTaskRequest *) request)->container_id,
                          FALSE, error);
}

static ProtobufCMessage *
tasks_resize_pty (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__ResizePtyRequest *req = (gpointer) request;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  if (task == NULL || !berth_task_resize_pty (task, req->exec_id, req->width, req->height, NULL, error))
    return NULL;
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static ProtobufCMessage *
tasks_update (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__UpdateTaskRequest *req = (gpointer) request;
  if (req->resources == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no resources given"), NULL;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  /* ctr sends the OCI LinuxResources as JSON inside the Any. */
  g_autoptr (GBytes) resources = g_bytes_new (req->resources->value.data, req->resources->value.len);
  if (task == NULL || !berth_task_update (task, resources, NULL, error))
    return NULL;
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static ProtobufCMessage *
tasks_list_pids (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__ListPidsRequest *req = (gpointer) request;
  g_autoptr (BerthTask) task = find_task (call, user_data, req->container_id, error);
  g_autoptr (GArray) pids = task ? berth_task_pids (task, NULL, error) : NULL;
  if (pids == NULL)
    return NULL;
  Containerd__Services__Tasks__V1__ListPidsResponse *response =
    berth_grpc_message_new (&containerd__services__tasks__v1__list_pids_response__descriptor);
  response->n_processes = pids->len;
  response->processes = g_new0 (Containerd__V1__Types__ProcessInfo *, pids->len + 1);
  for (guint i = 0; i < pids->len; i++)
    {
      Containerd__V1__Types__ProcessInfo *info = berth_grpc_message_new (&containerd__v1__types__process_info__descriptor);
      info->pid = g_array_index (pids, BerthProcessInfo, i).pid;
      response->processes[i] = info;
    }
  return &response->base;
}

static const char *
task_field (const char *const *fieldpath, gpointer object)
{
  if (fieldpath[0] != NULL && fieldpath[1] == NULL && g_str_equal (fieldpath[0], "id"))
    return berth_task_get_id (object);
  return NULL;
}

static ProtobufCMessage *
tasks_metrics (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Tasks__V1__MetricsRequest *req = (gpointer) request;
  g_autoptr (BerthFilter) filter = berth_api_filter_parse (req->filters, req->n_filters, error);
  g_autoptr (GPtrArray) tasks = filter ? berth_daemon_list_tasks (user_data, berth_grpc_call_get_namespace (call), error)
                                       : NULL;
  if (tasks == NULL)
    return NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  for (guint i = 0; i < tasks->len; i++)
    {
      BerthTask *task = tasks->pdata[i];
      if (!berth_filter_match (filter, task_field, task))
        continue;
      /* The runtime's own figures if it has them, else the cgroups of the init. */
      g_autofree char *type_url = NULL;
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GBytes) data = berth_task_metrics (task, &type_url, NULL, &local_error);
      if (data == NULL && g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNIMPLEMENTED))
        {
          g_clear_error (&local_error);
          data = berth_cgroup_metrics (berth_task_get_pid (task), &type_url, &local_error);
        }
      if (data == NULL)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "task %s: ", berth_task_get_id (task));
          return NULL;
        }
      Containerd__Types__Metric *metric = berth_grpc_message_new (&containerd__types__metric__descriptor);
      metric->id = g_strdup (berth_task_get_id (task));
      metric->timestamp = berth_schema_timestamp_new (g_get_real_time ());
      Google__Protobuf__Any *any = berth_grpc_message_new (&google__protobuf__any__descriptor);
      any->type_url = g_strdup (type_url);
      any->value.len = g_bytes_get_size (data);
      any->value.data = g_memdup2 (g_bytes_get_data (data, NULL), any->value.len);
      metric->data = any;
      g_ptr_array_add (out, metric);
    }
  Containerd__Services__Tasks__V1__MetricsResponse *response =
    berth_grpc_message_new (&containerd__services__tasks__v1__metrics_response__descriptor);
  response->n_metrics = out->len;
  g_ptr_array_set_free_func (out, NULL);
  response->metrics = (Containerd__Types__Metric **) g_ptr_array_steal (out, NULL);
  return &response->base;
}

void
berth_api_register_tasks (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Create", BERTH_GRPC_UNARY, tasks_create, NULL },
    { "Start", BERTH_GRPC_UNARY, tasks_start, NULL },
    { "Delete", BERTH_GRPC_UNARY, tasks_delete, NULL },
    { "Get", BERTH_GRPC_UNARY, tasks_get, NULL },
    { "List", BERTH_GRPC_UNARY, tasks_list, NULL },
    { "Kill", BERTH_GRPC_UNARY, tasks_kill, NULL },
    { "Wait", BERTH_GRPC_UNARY, tasks_wait, NULL },
    { "Exec", BERTH_GRPC_UNARY, tasks_exec, NULL },
    { "DeleteProcess", BERTH_GRPC_UNARY, tasks_delete_process, NULL },
    { "Pause", BERTH_GRPC_UNARY, tasks_pause, NULL },
    { "Resume", BERTH_GRPC_UNARY, tasks_resume, NULL },
    { "ListPids", BERTH_GRPC_UNARY, tasks_list_pids, NULL },
    { "Metrics", BERTH_GRPC_UNARY, tasks_metrics, NULL },
    { "ResizePty", BERTH_GRPC_UNARY, tasks_resize_pty, NULL },
    { "CloseIO", BERTH_GRPC_UNARY, tasks_close_io, NULL },
    { "Update", BERTH_GRPC_UNARY, tasks_update, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__tasks__v1__tasks__descriptor, methods, daemon);
}
