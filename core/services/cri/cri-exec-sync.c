/* cri-exec-sync.c — runtime.v1.RuntimeService's ExecSync: a command in a running
 * container, its output gathered (bounded) and its exit code returned; and
 * berth_cri_exec_as, which the streaming Exec shares. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "berth-cri.h"
#include "services/containerd/berth-api-ops.h"
#include "services/containerd/berth-api-util.h"
#include "daemon/berth-cgroup.h"
#include "image/berth-image-store.h"
#include "image/berth-snapshots.h"
#include "image/berth-spec.h"

/* ExecSync output beyond this is dropped, as the CRI asks (CVE-2022-1708). */
#define EXEC_OUTPUT_MAX (16 << 20)

typedef Containerd__Services__Containers__V1__Container BerthContainer;

static GBytes *
exec_process (BerthDaemon *daemon, const char *id, char **cmd, size_t n_cmd, gboolean terminal, GError **error)
{
  g_autoptr (ProtobufCMessage) owned =
    (ProtobufCMessage *) berth_schema_container_read (berth_daemon_get_metadata (daemon), BERTH_CRI_NAMESPACE, id, error);
  if (owned == NULL)
    return NULL;
  const BerthContainer *c = (BerthContainer *) owned;
  if (c->spec == NULL)
    return berth_throw (error, BERTH_ERROR_DATA_LOSS, "container %s has no spec", id), NULL;
  g_autoptr (GBytes) spec_bytes = g_bytes_new (c->spec->value.data, c->spec->value.len);
  g_autoptr (JsonNode) spec = berth_json_parse_object (spec_bytes, "container spec", error);
  if (spec == NULL)
    return NULL;
  JsonObject *process = berth_json_member_object (json_node_get_object (spec), "process");
  if (process == NULL)
    return berth_throw (error, BERTH_ERROR_DATA_LOSS, "container %s's spec has no process", id), NULL;
  json_object_set_array_member (process, "args", cri_json_strings (cmd, n_cmd));
  json_object_set_boolean_member (process, "terminal", terminal);
  json_object_remove_member (process, "consoleSize");
  g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), process);
  gsize len = 0;
  char *text = berth_json_to_text (node, &len);
  return g_bytes_new_take (text, len);
}

static void
read_output (const char *path, ProtobufCBinaryData *out)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  out->data = g_malloc (1);
  out->len = 0;
  if (fd < 0)
    return;
  GByteArray *buf = g_byte_array_new ();
  guint8 chunk[65536];
  ssize_t n;
  while (buf->len < EXEC_OUTPUT_MAX && (n = read (fd, chunk, MIN (sizeof chunk, EXEC_OUTPUT_MAX - buf->len))) > 0)
    g_byte_array_append (buf, chunk, n);
  close (fd);
  g_free (out->data);
  out->len = buf->len;
  out->data = g_byte_array_free (buf, FALSE);
}

gboolean
berth_cri_exec (BerthDaemon *daemon, const char *container_id, char **cmd, size_t n_cmd, const BerthStdio *stdio,
                gint64 timeout_ms, BerthExitStatus *exit, GCancellable *cancellable, GError **error)
{
  g_autofree char *exec_id = berth_cri_exec_id_new ();
  return berth_cri_exec_as (daemon, container_id, exec_id, cmd, n_cmd, stdio, timeout_ms, exit, cancellable, error);
}

char *
berth_cri_exec_id_new (void)
{
  return g_strdup_printf ("exec-%08x%08x", g_random_int (), g_random_int ());
}

gboolean
berth_cri_exec_as (BerthDaemon *daemon, const char *container_id, const char *exec_id, char **cmd, size_t n_cmd,
                   const BerthStdio *stdio, gint64 timeout_ms, BerthExitStatus *exit, GCancellable *cancellable,
                   GError **error)
{
  g_autoptr (BerthTask) task = berth_cri_running_task (daemon, container_id, error);
  g_autoptr (GBytes) process = task ? exec_process (daemon, container_id, cmd, n_cmd, stdio->terminal, error) : NULL;
  if (process == NULL)
    return FALSE;
  gboolean ok = FALSE;
  gboolean added = berth_task_exec (task, exec_id, process, stdio, cancellable, error);
  if (added && berth_api_ops_task_start (daemon, task, exec_id, NULL, cancellable, error))
    {
      ok = cri_wait_exit (task, exec_id, timeout_ms, exit, cancellable);
      if (!ok)
        {
          berth_task_kill (task, exec_id, SIGKILL, FALSE, NULL, NULL);
          cri_wait_exit (task, exec_id, 5000, exit, NULL);
          if (g_cancellable_is_cancelled (cancellable))
            berth_throw (error, BERTH_ERROR_CANCELLED, "command in container %s cancelled", container_id);
          else
            berth_throw (error, BERTH_ERROR_DEADLINE_EXCEEDED, "command in container %s timed out after %" G_GINT64_FORMAT "s",
                         container_id, timeout_ms / 1000);
        }
    }
  if (added)
    berth_task_delete (task, exec_id, NULL, NULL, NULL);
  return ok;
}

/* ExecSync holds no thread while the command runs: the call is deferred and ended from
 * the exec's "exited" signal, its timeout or the client leaving; each hands the
 * blocking rest (outputs, kill, delete) to a worker. */
typedef enum { EXEC_RUNNING, EXEC_EXITED, EXEC_TIMED_OUT, EXEC_ABANDONED } ExecPhase;

typedef struct {
  gint refs;
  gint phase; /* ExecPhase, changed once from RUNNING (atomically) */
  BerthGrpcCall *call;
  BerthTask *task;
  char *container_id;
  char *exec_id;
  char *dir;
  gint64 timeout_s;
  BerthExitStatus exit;
  BerthApiExitWaiter *waiter;
  GSource *timer;
} ExecSync;

static ExecSync *
exec_sync_ref (ExecSync *exec)
{
  g_atomic_int_inc (&exec->refs);
  return exec;
}

static void
exec_sync_unref (gpointer data)
{
  ExecSync *exec = data;
  if (!g_atomic_int_dec_and_test (&exec->refs))
    return;
  berth_grpc_call_unref (exec->call);
  g_object_unref (exec->task);
  g_free (exec->container_id);
  g_free (exec->exec_id);
  g_free (exec->dir);
  g_free (exec);
}

/* On a worker: the process is done (or is made to be); let go of it and its files. */
static void
exec_sync_cleanup (ExecSync *exec, gboolean kill)
{
  if (kill)
    {
      berth_task_kill (exec->task, exec->exec_id, SIGKILL, FALSE, NULL, NULL);
      cri_wait_exit (exec->task, exec->exec_id, 5000, &exec->exit, NULL);
    }
  berth_task_delete (exec->task, exec->exec_id, NULL, NULL, NULL);
  berth_cri_exec_dir_remove (exec->dir);
}

static ProtobufCMessage *
exec_sync_exited (BerthGrpcCall *call, gpointer data, GError **error)
{
  ExecSync *exec = data;
  Runtime__V1__ExecSyncResponse *response = berth_grpc_message_new (&runtime__v1__exec_sync_response__descriptor);
  g_autofree char *out_path = g_build_filename (exec->dir, "stdout", NULL);
  g_autofree char *err_path = g_build_filename (exec->dir, "stderr", NULL);
  read_output (out_path, &response->stdout);
  read_output (err_path, &response->stderr);
  response->exit_code = (gint32) exec->exit.exit_status;
  exec_sync_cleanup (exec, FALSE);
  return &response->base;
}

static ProtobufCMessage *
exec_sync_stopped (BerthGrpcCall *call, gpointer data, GError **error)
{
  ExecSync *exec = data;
  exec_sync_cleanup (exec, TRUE);
  if (exec->phase == EXEC_TIMED_OUT)
    berth_throw (error, BERTH_ERROR_DEADLINE_EXCEEDED, "command in container %s timed out after %" G_GINT64_FORMAT "s",
                 exec->container_id, exec->timeout_s);
  else
    berth_throw (error, BERTH_ERROR_CANCELLED, "command in container %s cancelled", exec->container_id);
  return NULL;
}

/* From RUNNING to @phase, once; the winner hands the rest to a worker. */
static void
exec_sync_conclude (ExecSync *exec, ExecPhase phase)
{
  if (!g_atomic_int_compare_and_exchange (&exec->phase, EXEC_RUNNING, phase))
    return;
  berth_grpc_call_resume (exec->call, phase == EXEC_EXITED ? exec_sync_exited : exec_sync_stopped,
                          exec_sync_ref (exec), exec_sync_unref);
}

static void
exec_sync_on_exit (const BerthExitStatus *exit, const GError *error, gpointer data)
{
  ExecSync *exec = data;
  if (exit != NULL)
    exec->exit = *exit;
  exec_sync_conclude (exec, EXEC_EXITED);
}

static gboolean
exec_sync_on_timeout (gpointer data)
{
  exec_sync_conclude (data, EXEC_TIMED_OUT);
  return G_SOURCE_REMOVE;
}

/* The call is over (answered, or the client left): disarm, and stop the command if it
 * still runs. */
static void
exec_sync_end (gpointer data)
{
  ExecSync *exec = data;
  berth_api_exit_waiter_cancel (exec->waiter);
  if (exec->timer != NULL)
    {
      g_source_destroy (exec->timer);
      g_source_unref (exec->timer);
    }
  exec_sync_conclude (exec, EXEC_ABANDONED);
  exec_sync_unref (exec);
}

ProtobufCMessage *
cri_exec_sync (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ExecSyncRequest *req = (gpointer) request;
  if (req->n_cmd == 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "ExecSync needs a command"), NULL;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  g_autoptr (BerthTask) task = berth_cri_running_task (daemon, req->container_id, error);
  g_autoptr (GBytes) process = task ? exec_process (daemon, req->container_id, req->cmd, req->n_cmd, FALSE, error) : NULL;
  if (process == NULL)
    return NULL;
  g_autofree char *dir = berth_cri_exec_dir_new (daemon, error);
  if (dir == NULL)
    return NULL;
  g_autofree char *out_path = g_build_filename (dir, "stdout", NULL);
  g_autofree char *err_path = g_build_filename (dir, "stderr", NULL);
  g_autofree char *out_uri = g_strconcat ("file://", out_path, NULL);
  g_autofree char *err_uri = g_strconcat ("file://", err_path, NULL);
  BerthStdio stdio = { NULL, out_uri, err_uri, FALSE };
  g_autofree char *exec_id = g_strdup_printf ("exec-%08x%08x", g_random_int (), g_random_int ());
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  if (!berth_task_exec (task, exec_id, process, &stdio, cancellable, error))
    {
      berth_cri_exec_dir_remove (dir);
      return NULL;
    }
  if (!berth_api_ops_task_start (daemon, task, exec_id, NULL, cancellable, error))
    {
      berth_task_delete (task, exec_id, NULL, NULL, NULL);
      berth_cri_exec_dir_remove (dir);
      return NULL;
    }
  ExecSync *exec = g_new0 (ExecSync, 1);
  exec->refs = 1; /* the call's end */
  exec->call = berth_grpc_call_ref (call);
  exec->task = g_object_ref (task);
  exec->container_id = g_strdup (req->container_id);
  exec->exec_id = g_steal_pointer (&exec_id);
  exec->dir = g_steal_pointer (&dir);
  exec->timeout_s = req->timeout;
  if (req->timeout > 0)
    {
      exec->timer = g_timeout_source_new_seconds ((guint) MIN (req->timeout, G_MAXUINT / 1000));
      g_source_set_callback (exec->timer, exec_sync_on_timeout, exec_sync_ref (exec), exec_sync_unref);
    }
  exec->waiter = berth_api_wait_exit (task, exec->exec_id, exec_sync_on_exit, exec);
  if (exec->timer != NULL)
    g_source_attach (exec->timer, g_main_context_default ());
  berth_grpc_call_defer (call, exec_sync_end, exec);
  return NULL;
}

/* A fresh private directory for one exec's stdio. */
char *
berth_cri_exec_dir_new (BerthDaemon *daemon, GError **error)
{
  g_autofree char *name = g_strdup_printf ("%08x%08x", g_random_int (), g_random_int ());
  g_autofree char *dir = berth_cri_path (daemon, "exec", name);
  if (g_mkdir_with_parents (dir, 0700) < 0)
    return berth_throw_errno (error, "creating %s", dir), NULL;
  return g_steal_pointer (&dir);
}

void
berth_cri_exec_dir_remove (const char *dir)
{
  static const char *const names[] = { "stdin", "stdout", "stderr" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (dir, names[i], NULL);
      unlink (path);
    }
  rmdir (dir);
}

