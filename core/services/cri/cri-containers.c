/* cri-containers.c — runtime.v1.RuntimeService's container lifecycle: create (the
 * record, a snapshot of the image, the spec of cri-container-spec.c, a berth container),
 * start (a task whose output goes to the CRI log, or to a FIFO Attach reads), stop
 * (SIGTERM, then SIGKILL after the timeout) and remove. Status, listing, resources and
 * statistics are cri-container-status.c's, ExecSync cri-exec-sync.c's. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "berth-cri.h"
#include "services/containerd/berth-api-ops.h"
#include "services/containerd/berth-api-util.h"
#include "image/berth-image-store.h"
#include "image/berth-snapshots.h"
#include "image/berth-json.h"

#define SPEC_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Spec"

typedef Containerd__Services__Containers__V1__Container BerthContainer;

/* ---------------- containers' output without a log ---------------- */

/* A container created without a log path writes its output (in the CRI log format, or a
 * terminal's as it is) to a FIFO, <state>/cri/output/<id>, that its shim holds open
 * read-write and non-blocking: while nobody reads, what does not fit is dropped, as
 * containerd drops the output of such a container; Attach reads it from the moment of
 * attaching. */
char *
berth_cri_output_open (BerthDaemon *daemon, const char *id, GError **error)
{
  g_autofree char *dir = berth_cri_path (daemon, "output", NULL);
  g_autofree char *path = berth_cri_path (daemon, "output", id);
  if (g_mkdir_with_parents (dir, 0700) < 0)
    return berth_throw_errno (error, "creating %s", dir), NULL;
  unlink (path);
  if (mkfifo (path, 0600) < 0)
    return berth_throw_errno (error, "creating FIFO %s", path), NULL;
  return g_steal_pointer (&path);
}

void
berth_cri_output_remove (BerthDaemon *daemon, const char *id)
{
  g_autofree char *path = berth_cri_path (daemon, "output", id);
  unlink (path);
}

static gint64
now_ns (void)
{
  return g_get_real_time () * 1000;
}

/* ---------------- helpers ---------------- */

static GPtrArray *
container_records (BerthDaemon *daemon, GError **error)
{
  return berth_cri_record_list (daemon, "containers", &berth__cri__v1__container_record__descriptor, error);
}

gboolean
cri_container_snapshots (BerthDaemon *daemon, const char *id, BerthSnapshots *snaps, char **name_out, GError **error)
{
  g_autoptr (ProtobufCMessage) owned =
    (ProtobufCMessage *) berth_schema_container_read (berth_daemon_get_metadata (daemon), BERTH_CRI_NAMESPACE, id, error);
  if (owned == NULL)
    return FALSE;
  *name_out = g_strdup (((BerthContainer *) owned)->snapshotter);
  return berth_snapshots_init (snaps, daemon, BERTH_CRI_NAMESPACE, *name_out, NULL, error);
}


static char *
container_name (const Runtime__V1__ContainerMetadata *m)
{
  return g_strdup_printf ("%s_%u", m->name, m->attempt);
}

/* ---------------- create ---------------- */

typedef struct {
  const CriContainer *record;
  char *clash;
} ContainerReserve;

static gboolean
scan_container (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  ContainerReserve *r = user_data;
  CriContainer *c = berth_api_message_unpack (&berth__cri__v1__container_record__descriptor, value, len);
  if (c != NULL && c->config && c->config->metadata && g_str_equal (c->sandbox_id, r->record->sandbox_id))
    {
      g_autofree char *a = container_name (c->config->metadata);
      g_autofree char *b = container_name (r->record->config->metadata);
      if (g_str_equal (a, b))
        r->clash = g_strdup (c->id);
    }
  berth_grpc_message_free ((ProtobufCMessage *) c);
  return r->clash == NULL;
}

static gboolean
reserve_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  ContainerReserve *r = user_data;
  g_autofree char *prefix = berth_schema_cri_key (BERTH_CRI_NAMESPACE, "containers", NULL);
  if (!berth_metadata_txn_foreach (txn, prefix, scan_container, r, error))
    return FALSE;
  if (r->clash != NULL)
    {
      g_autofree char *name = container_name (r->record->config->metadata);
      return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "failed to reserve container name \"%s\" in sandbox %s: "
                          "name is reserved for \"%s\"", name, r->record->sandbox_id, r->clash);
    }
  g_autofree char *key = g_strdup_printf ("%s%s", prefix, r->record->id);
  return berth_schema_put (txn, key, &r->record->base, error);
}

static Runtime__V1__PodSandboxState
sandbox_ready (BerthDaemon *daemon, const CriSandbox *sandbox)
{
  if (sandbox->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
    return FALSE;
  g_autoptr (BerthTask) task = berth_cri_task (daemon, sandbox->id);
  return task != NULL && berth_task_get_status (task, NULL, NULL) == BERTH_TASK_STATUS_RUNNING;
}

/* The berth container behind a CRI container: its spec, image and snapshot. */
static gboolean
create_berth_container (BerthDaemon *daemon, const CriContainer *record, const char *image_name, const char *snapshotter,
                        const char *runtime_handler, JsonNode *spec, GError **error)
{
  gsize len = 0;
  g_autofree char *text = berth_json_to_text (spec, &len);
  BerthContainer c = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
  Containerd__Services__Containers__V1__Container__Runtime runtime =
    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry kind =
    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry sandbox =
    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry *labels[] = { &kind, &sandbox };
  kind.key = (char *) "io.cri-containerd.kind";
  kind.value = (char *) "container";
  sandbox.key = (char *) "io.kubernetes.cri.sandbox-id";
  sandbox.value = record->sandbox_id;
  g_autoptr (ProtobufCMessage) options =
    (ProtobufCMessage *) berth_cri_runtime_options (daemon, runtime_handler, (const char **) &runtime.name);
  runtime.options = (Google__Protobuf__Any *) options;
  any.type_url = (char *) SPEC_TYPE_URL;
  any.value.data = (guint8 *) text;
  any.value.len = len;
  c.id = record->id;
  c.image = (char *) image_name;
  c.runtime = &runtime;
  c.spec = &any;
  c.snapshotter = (char *) snapshotter;
  c.snapshot_key = record->id;
  c.labels = labels;
  c.n_labels = G_N_ELEMENTS (labels);
  g_autoptr (ProtobufCMessage) created =
    (ProtobufCMessage *) berth_api_ops_container_create (daemon, BERTH_CRI_NAMESPACE, &c, error);
  return created != NULL;
}

ProtobufCMessage *
cri_create_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__CreateContainerRequest *req = (gpointer) request;
  const Runtime__V1__ContainerConfig *config = req->config;
  if (config == NULL || config->metadata == NULL || config->metadata->name == NULL || !*config->metadata->name)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "container config must include metadata with a name"), NULL;
  if (config->image == NULL || config->image->image == NULL || !*config->image->image)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "container config must name an image"), NULL;
  g_autoptr (ProtobufCMessage) owned_sandbox = (ProtobufCMessage *) berth_cri_sandbox_get (daemon, req->pod_sandbox_id,
                                                                                          error);
  if (owned_sandbox == NULL)
    return NULL;
  const CriSandbox *sandbox = (CriSandbox *) owned_sandbox;
  if (!sandbox_ready (daemon, sandbox))
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "sandbox %s is not ready", sandbox->id), NULL;
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  g_autoptr (BerthImageInfo) image = berth_cri_image_lookup (daemon, config->image->image, cancellable, error);
  if (image == NULL)
    return NULL;

  CriContainer *record = berth_grpc_message_new (&berth__cri__v1__container_record__descriptor);
  g_autoptr (ProtobufCMessage) owned = &record->base;
  record->id = berth_cri_new_id ();
  record->sandbox_id = g_strdup (sandbox->id);
  record->config = berth_api_message_copy (&config->base);
  record->image_ref = g_strdup (image->name);
  record->image_id = g_strdup (image->config_digest);
  record->created_at = now_ns ();
  record->reason = g_strdup ("");
  record->message = g_strdup ("");
  const char *log_dir = sandbox->config->log_directory;
  record->log_path = log_dir && *log_dir && config->log_path && *config->log_path
                       ? g_build_filename (log_dir, config->log_path, NULL) : g_strdup ("");
  if (config->linux && config->linux->resources)
    record->resources = berth_api_message_copy (&config->linux->resources->base);
  ContainerReserve reserve = { record, NULL };
  gboolean reserved = berth_metadata_write (berth_daemon_get_metadata (daemon), reserve_txn, &reserve, error);
  g_free (reserve.clash);
  if (!reserved)
    return NULL;

  BerthSnapshots snaps;
  g_autoptr (GPtrArray) mounts = NULL;
  g_autoptr (JsonNode) spec = NULL;
  gboolean ok = berth_snapshots_init (&snaps, daemon, BERTH_CRI_NAMESPACE, NULL, NULL, error)
                && (mounts = berth_snapshots_create (&snaps, record->id, image->chain_id, NULL, FALSE, cancellable,
                                                     error)) != NULL;
  gboolean prepared = ok;
  ok = ok && (spec = cri_container_spec (daemon, sandbox, record, image, mounts, error)) != NULL
       && create_berth_container (daemon, record, image->name, snaps.name, sandbox->runtime_handler, spec, error);
  if (!ok)
    {
      if (prepared)
        berth_snapshots_remove (&snaps, record->id, NULL, NULL);
      berth_cri_record_delete (daemon, "containers", record->id, NULL);
      return NULL;
    }
  Runtime__V1__CreateContainerResponse *response = berth_grpc_message_new (&runtime__v1__create_container_response__descriptor);
  response->container_id = g_strdup (record->id);
  return &response->base;
}

/* ---------------- start, stop, remove ---------------- */

/* containerd's reasons: the kernel's OOM kill comes before the exit status. */
const char *
berth_cri_exit_reason (const BerthExitStatus *exit, gboolean oom_killed)
{
  return oom_killed ? "OOMKilled" : exit->exit_status == 0 ? "Completed" : "Error";
}

static void
record_exit (CriContainer *record, const BerthExitStatus *exit, gboolean oom_killed)
{
  record->finished_at = exit->exited_at > 0 ? exit->exited_at * 1000 : now_ns ();
  record->exit_code = (gint32) exit->exit_status;
  berth_cri_set_string (&record->reason, berth_cri_exit_reason (exit, oom_killed));
}

/* The stdout/stderr URI that makes @record's shim write @path. berth-shim (berthd's
 * default runtime) writes the CRI log format itself (cri://), a terminal's output as it
 * is (file://); another runtime (a shim v2, which knows containerd's schemes only) runs
 * berth-cri-log as containerd's binary:// logging driver. */
static char *
log_uri (BerthDaemon *daemon, const char *handler, gboolean tty, const char *path)
{
  const char *runtime_name = NULL;
  g_autoptr (ProtobufCMessage) options = (ProtobufCMessage *) berth_cri_runtime_options (daemon, handler, &runtime_name);
  BerthRuntime *runtime = berth_daemon_get_runtime (daemon, runtime_name, NULL);
  if (runtime == NULL || runtime == berth_daemon_get_runtime (daemon, NULL, NULL))
    return g_strdup_printf ("%s%s", tty ? "file://" : "cri://", path);
  g_autofree char *logger = g_build_filename (berth_daemon_get_config (daemon)->libexec_dir, "berth-cri-log", NULL);
  g_autofree char *escaped = g_uri_escape_string (path, "/", FALSE);
  return g_strdup_printf ("binary://%s?%s", logger, escaped);
}

ProtobufCMessage *
cri_start_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__StartContainerRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  CriContainer *record = (CriContainer *) owned;
  berth_cri_lock (record->id);
  g_autoptr (ProtobufCMessage) owned_sandbox = NULL;
  BerthSnapshots snaps;
  g_autofree char *snapshotter = NULL, *backend_key = NULL, *log = NULL, *stdin_path = NULL;
  g_autofree char *fifo = NULL;
  g_autoptr (GPtrArray) mounts = NULL;
  g_autoptr (BerthTask) task = NULL;
  gboolean ok = FALSE;
  if (record->started_at != 0 || record->finished_at != 0)
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "container %s is not in created state", record->id);
      goto out;
    }
  owned_sandbox = (ProtobufCMessage *) berth_cri_sandbox_get (daemon, record->sandbox_id, error);
  if (owned_sandbox == NULL)
    goto out;
  if (!sandbox_ready (daemon, (CriSandbox *) owned_sandbox))
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "sandbox %s of container %s is not ready", record->sandbox_id,
                   record->id);
      goto out;
    }
  if (!cri_container_snapshots (daemon, record->id, &snaps, &snapshotter, error))
    goto out;
  backend_key = berth_snapshots_backend_key (&snaps, record->id);
  mounts = berth_snapshotter_mounts (snaps.backend, backend_key, NULL, error);
  if (mounts == NULL)
    goto out;
  if (*record->log_path != '\0')
    {
      g_autofree char *parent = g_path_get_dirname (record->log_path);
      if (g_mkdir_with_parents (parent, 0755) < 0)
        {
          berth_throw_errno (error, "creating log directory %s", parent);
          goto out;
        }
    }
  /* No log: the output goes to a FIFO Attach can read (dropped while nobody does). */
  else if ((fifo = berth_cri_output_open (daemon, record->id, error)) == NULL)
    goto out;
  log = log_uri (daemon, ((CriSandbox *) owned_sandbox)->runtime_handler, record->config->tty,
                 fifo ? fifo : record->log_path);
  if (record->config->stdin && (stdin_path = berth_cri_stdin_open (daemon, record->id, error)) == NULL)
    goto out;
  BerthStdio stdio = { stdin_path, log, log, record->config->tty };
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  task = berth_api_ops_task_create (daemon, BERTH_CRI_NAMESPACE, record->id, mounts, &stdio, NULL, cancellable, error);
  if (task != NULL && berth_api_ops_task_start (daemon, task, NULL, NULL, cancellable, error))
    {
      record->started_at = now_ns ();
      ok = berth_cri_record_put (daemon, "containers", record->id, &record->base, error);
      goto out;
    }
  /* A container that failed to start is exited, with the reason. */
  if (task != NULL)
    berth_cri_task_destroy (daemon, task, NULL, NULL);
  record->started_at = record->finished_at = now_ns ();
  record->exit_code = 128;
  berth_cri_set_string (&record->reason, "StartError");
  berth_cri_set_string (&record->message, error && *error ? (*error)->message : "");
  berth_cri_record_put (daemon, "containers", record->id, &record->base, NULL);
out:
  berth_cri_unlock (record->id);
  return ok ? berth_grpc_message_new (&runtime__v1__start_container_response__descriptor) : NULL;
}

/* Polls until @exec_id (NULL: init) of @task exits or @timeout_ms passes (< 0: never).
 * FALSE on timeout or cancellation. */
gboolean
cri_wait_exit (BerthTask *task, const char *exec_id, gint64 timeout_ms, BerthExitStatus *exit, GCancellable *cancellable)
{
  gint64 deadline = timeout_ms < 0 ? G_MAXINT64 : g_get_monotonic_time () + timeout_ms * 1000;
  gulong sleep_us = 2000;
  while (berth_task_get_status (task, exec_id, exit) != BERTH_TASK_STATUS_STOPPED)
    {
      if (g_get_monotonic_time () >= deadline || g_cancellable_is_cancelled (cancellable))
        return FALSE;
      g_usleep (sleep_us);
      sleep_us = MIN (sleep_us * 2, 100000);
    }
  return TRUE;
}

/* Whether the signal @sig sent to @pid now would be dropped by the kernel: the process
 * is the init of its PID namespace (NSpid's last field 1) and has no handler for it. An
 * init gets no default action, so a SIGTERM it receives before it installs its handler
 * is lost. FALSE when unsure. */
static gboolean
signal_would_be_dropped (guint32 pid, int sig)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/status", pid);
  g_autofree char *text = NULL;
  if (pid == 0 || !g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  gboolean ns_init = FALSE, caught = TRUE;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "NSpid:"))
        {
          const char *last = strrchr (lines[i], '\t');
          ns_init = last != NULL && g_str_equal (last + 1, "1");
        }
      else if (g_str_has_prefix (lines[i], "SigCgt:"))
        {
          guint64 mask = g_ascii_strtoull (lines[i] + strlen ("SigCgt:"), NULL, 16);
          caught = (mask >> (sig - 1)) & 1;
        }
    }
  return ns_init && !caught;
}

static gint64
remaining_ms (gint64 deadline)
{
  return MAX (0, (deadline - g_get_monotonic_time ()) / 1000);
}

/* Stops the container's process (SIGTERM, then SIGKILL after @timeout seconds), records
 * its exit and deletes its task, which unmounts the rootfs. Idempotent. */
static gboolean
container_stop (BerthDaemon *daemon, CriContainer *record, gint64 timeout, GError **error)
{
  g_autoptr (BerthTask) task = berth_cri_task (daemon, record->id);
  if (task == NULL)
    return TRUE;
  BerthExitStatus exit = { 0 };
  BerthTaskStatus status = berth_task_get_status (task, NULL, &exit);
  if (status == BERTH_TASK_STATUS_RUNNING && timeout > 0)
    {
      /* A stop right after StartContainer can reach the container's init before it has
       * installed its SIGTERM handler (runc start returns before the process has
       * exec'd): the kernel drops the signal, and the stop used to wait the whole
       * timeout (60 s for kubelet and critest) for a process that would have exited at
       * once. So, while the signal would have been dropped, it is sent again as soon as
       * the process catches it; an init that never does waits the timeout, as on
       * containerd. */
      guint32 pid = berth_task_get_pid (task);
      gint64 deadline = g_get_monotonic_time () + timeout * G_USEC_PER_SEC;
      gboolean delivered = FALSE;
      do
        {
          gboolean dropped = signal_would_be_dropped (pid, SIGTERM);
          if (!delivered && !dropped)
            {
              g_autoptr (GError) local_error = NULL;
              if (!berth_task_kill (task, NULL, SIGTERM, FALSE, NULL, &local_error))
                g_debug ("SIGTERM to container %s: %s", record->id, local_error->message);
              /* Checked again after sending: the handler may have come just before. */
              delivered = !signal_would_be_dropped (pid, SIGTERM);
            }
        }
      while (!cri_wait_exit (task, NULL, delivered ? remaining_ms (deadline) : MIN (50, remaining_ms (deadline)), &exit, NULL)
             && g_get_monotonic_time () < deadline);
    }
  /* Read before the task object goes with the delete. */
  gboolean oom_killed = berth_daemon_task_oom_killed (task);
  if (!berth_cri_task_destroy (daemon, task, &exit, error))
    return FALSE;
  if (record->finished_at == 0)
    {
      record_exit (record, &exit, oom_killed);
      if (record->started_at == 0)
        record->started_at = record->finished_at;
    }
  return berth_cri_record_put (daemon, "containers", record->id, &record->base, error);
}

static gboolean
container_remove (BerthDaemon *daemon, CriContainer *record, GError **error)
{
  if (!container_stop (daemon, record, 0, error))
    return FALSE;
  berth_cri_stdin_close (daemon, record->id, TRUE);
  berth_cri_output_remove (daemon, record->id);
  g_autoptr (GError) local_error = NULL;
  BerthSnapshots snaps;
  g_autofree char *snapshotter = NULL;
  if (cri_container_snapshots (daemon, record->id, &snaps, &snapshotter, &local_error))
    {
      if (!berth_snapshots_remove (&snaps, record->id, NULL, &local_error)
          && !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return g_propagate_error (error, g_steal_pointer (&local_error)), FALSE;
      g_clear_error (&local_error);
      if (!berth_api_ops_container_delete (daemon, BERTH_CRI_NAMESPACE, record->id, error))
        return FALSE;
    }
  else if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    return g_propagate_error (error, g_steal_pointer (&local_error)), FALSE;
  return berth_cri_record_delete (daemon, "containers", record->id, error);
}

ProtobufCMessage *
cri_stop_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__StopContainerRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  CriContainer *record = (CriContainer *) owned;
  berth_cri_lock (record->id);
  gboolean ok = container_stop (daemon, record, req->timeout, error);
  berth_cri_unlock (record->id);
  return ok ? berth_grpc_message_new (&runtime__v1__stop_container_response__descriptor) : NULL;
}

ProtobufCMessage *
cri_remove_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__RemoveContainerRequest *req = (gpointer) request;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (ProtobufCMessage) owned =
    (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, &local_error);
  if (owned == NULL)
    {
      if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return g_propagate_error (error, g_steal_pointer (&local_error)), NULL;
      return berth_grpc_message_new (&runtime__v1__remove_container_response__descriptor);
    }
  CriContainer *record = (CriContainer *) owned;
  berth_cri_lock (record->id);
  gboolean ok = container_remove (daemon, record, error);
  berth_cri_unlock (record->id);
  return ok ? berth_grpc_message_new (&runtime__v1__remove_container_response__descriptor) : NULL;
}

gboolean
berth_cri_containers_of_sandbox_stop (BerthDaemon *daemon, const char *sandbox_id, gboolean remove, GError **error)
{
  g_autoptr (GPtrArray) records = container_records (daemon, error);
  if (records == NULL)
    return FALSE;
  for (guint i = 0; i < records->len; i++)
    {
      CriContainer *record = records->pdata[i];
      if (!g_str_equal (record->sandbox_id, sandbox_id))
        continue;
      berth_cri_lock (record->id);
      gboolean ok = remove ? container_remove (daemon, record, error) : container_stop (daemon, record, 0, error);
      berth_cri_unlock (record->id);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

