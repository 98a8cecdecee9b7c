/* cri-container-status.c — what runtime.v1.RuntimeService tells of its containers and
 * changes in running ones: ListContainers, ContainerStatus, ContainerStats and
 * ListContainerStats (from the task's cgroups and the writable layer's usage),
 * UpdateContainerResources and ReopenContainerLog. */
#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "berth-cri.h"
#include "services/containerd/berth-api-util.h"
#include "daemon/berth-cgroup.h"
#include "image/berth-json.h"
#include "image/berth-snapshots.h"

/* ---------------- list, status ---------------- */

static Runtime__V1__ContainerState
container_state (BerthDaemon *daemon, const CriContainer *record, BerthExitStatus *exit, guint32 *pid_out)
{
  if (record->finished_at != 0)
    return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
  if (record->started_at == 0)
    return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
  g_autoptr (BerthTask) task = berth_cri_task (daemon, record->id);
  if (task == NULL)
    return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
  if (pid_out != NULL)
    *pid_out = berth_task_get_pid (task);
  switch (berth_task_get_status (task, NULL, exit))
    {
    case BERTH_TASK_STATUS_STOPPED: return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
    case BERTH_TASK_STATUS_CREATED: return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
    case BERTH_TASK_STATUS_UNKNOWN: return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
    default: return RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
    }
}

/* What ListContainers and ListContainerStats filter on (ids match by prefix); all
 * fields empty: every container. */
typedef struct {
  const char *id;
  const char *sandbox_id;
  void *const *selector;
  size_t n_selector;
} ContainerFilter;
/* From a ContainerFilter or a ContainerStatsFilter (NULL: match all): the same fields. */
#define CONTAINER_FILTER_OF(f)                                                                                          \
  ((f) != NULL ? (ContainerFilter) { (f)->id, (f)->pod_sandbox_id, (void *const *) (f)->label_selector,               \
                                     (f)->n_label_selector }                                                           \
               : (ContainerFilter) { 0 })

static gboolean
container_matches (const CriContainer *record, const ContainerFilter *filter)
{
  return (filter->id == NULL || *filter->id == '\0' || g_str_has_prefix (record->id, filter->id))
         && (filter->sandbox_id == NULL || *filter->sandbox_id == '\0'
             || g_str_has_prefix (record->sandbox_id, filter->sandbox_id))
         && berth_cri_labels_match (filter->selector, filter->n_selector, (void *const *) record->config->labels,
                                    record->config->n_labels);
}

/* A message for @record, or NULL to leave it out. */
typedef gpointer (*ContainerItemFunc) (BerthDaemon *daemon, const CriContainer *record, gconstpointer data);

/* The one loop of ListContainers and ListContainerStats: @item of each container
 * @filter matches, in record order, leaving out those it gives NULL for. */
static GPtrArray *
containers_collect (BerthDaemon *daemon, const ContainerFilter *filter, ContainerItemFunc item, gconstpointer data,
                    GError **error)
{
  g_autoptr (GPtrArray) records =
    berth_cri_record_list (daemon, "containers", &berth__cri__v1__container_record__descriptor, error);
  if (records == NULL)
    return NULL;
  GPtrArray *items = g_ptr_array_new ();
  for (guint i = 0; i < records->len; i++)
    {
      const CriContainer *record = records->pdata[i];
      gpointer message = container_matches (record, filter) ? item (daemon, record, data) : NULL;
      if (message != NULL)
        g_ptr_array_add (items, message);
    }
  return items;
}

/* A ListContainers entry, unless the filter (@data) asks for another state. */
static gpointer
list_item (BerthDaemon *daemon, const CriContainer *record, gconstpointer data)
{
  const Runtime__V1__ContainerFilter *filter = data;
  const Runtime__V1__ContainerConfig *config = record->config;
  Runtime__V1__ContainerState state = container_state (daemon, record, NULL, NULL);
  if (filter != NULL && filter->state && filter->state->state != state)
    return NULL;
  Runtime__V1__Container *item = berth_grpc_message_new (&runtime__v1__container__descriptor);
  item->id = g_strdup (record->id);
  item->pod_sandbox_id = g_strdup (record->sandbox_id);
  item->metadata = berth_api_message_copy (&config->metadata->base);
  item->image = berth_api_message_copy (&config->image->base);
  item->image_ref = g_strdup (record->image_id);
  item->image_id = g_strdup (record->image_id);
  item->state = state;
  item->created_at = record->created_at;
  BERTH_CRI_ENTRIES_COPY (config->labels, config->n_labels, &runtime__v1__container__labels_entry__descriptor, item->labels,
                item->n_labels);
  BERTH_CRI_ENTRIES_COPY (config->annotations, config->n_annotations, &runtime__v1__container__annotations_entry__descriptor,
                item->annotations, item->n_annotations);
  return item;
}

ProtobufCMessage *
cri_list_containers (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ListContainersRequest *req = (gpointer) request;
  ContainerFilter match = CONTAINER_FILTER_OF (req->filter);
  g_autoptr (GPtrArray) items = containers_collect (daemon, &match, list_item, req->filter, error);
  if (items == NULL)
    return NULL;
  Runtime__V1__ListContainersResponse *response = berth_grpc_message_new (&runtime__v1__list_containers_response__descriptor);
  response->n_containers = items->len;
  response->containers = (Runtime__V1__Container **) g_ptr_array_steal (items, NULL);
  return &response->base;
}

Runtime__V1__ContainerStatus *
berth_cri_container_status_new (BerthDaemon *daemon, const CriContainer *record)
{
  const Runtime__V1__ContainerConfig *config = record->config;
  Runtime__V1__ContainerStatus *s = berth_grpc_message_new (&runtime__v1__container_status__descriptor);
  BerthExitStatus exit = { 0 };
  s->id = g_strdup (record->id);
  s->metadata = berth_api_message_copy (&config->metadata->base);
  s->state = container_state (daemon, record, &exit, NULL);
  s->created_at = record->created_at;
  s->started_at = record->started_at;
  s->finished_at = record->finished_at;
  s->exit_code = record->exit_code;
  s->reason = g_strdup (record->reason);
  s->message = g_strdup (record->message);
  if (record->finished_at == 0 && s->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED)
    {
      /* Exited on its own; StopContainer or RemoveContainer will record it. */
      s->finished_at = exit.exited_at * 1000;
      s->exit_code = (gint32) exit.exit_status;
      g_autoptr (BerthTask) task = berth_cri_task (daemon, record->id);
      g_free (s->reason);
      s->reason = g_strdup (berth_cri_exit_reason (&exit, task != NULL && berth_daemon_task_oom_killed (task)));
    }
  s->image = berth_api_message_copy (&config->image->base);
  s->image_ref = g_strdup (record->image_id);
  s->image_id = g_strdup (record->image_id);
  s->log_path = g_strdup (record->log_path);
  BERTH_CRI_ENTRIES_COPY (config->labels, config->n_labels, &runtime__v1__container_status__labels_entry__descriptor, s->labels,
                s->n_labels);
  BERTH_CRI_ENTRIES_COPY (config->annotations, config->n_annotations,
                &runtime__v1__container_status__annotations_entry__descriptor, s->annotations, s->n_annotations);
  s->n_mounts = config->n_mounts;
  s->mounts = g_new0 (Runtime__V1__Mount *, config->n_mounts + 1);
  for (size_t i = 0; i < config->n_mounts; i++)
    s->mounts[i] = berth_api_message_copy (&config->mounts[i]->base);
  if (record->resources != NULL)
    {
      s->resources = berth_grpc_message_new (&runtime__v1__container_resources__descriptor);
      s->resources->linux = berth_api_message_copy (&record->resources->base);
    }
  return s;
}

ProtobufCMessage *
cri_container_status (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ContainerStatusRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  const CriContainer *record = (CriContainer *) owned;
  Runtime__V1__ContainerStatusResponse *response = berth_grpc_message_new (&runtime__v1__container_status_response__descriptor);
  response->status = berth_cri_container_status_new (daemon, record);
  if (req->verbose)
    {
      guint32 pid = 0;
      container_state (daemon, record, NULL, &pid);
      g_autoptr (GHashTable) info = berth_labels_new ();
      g_hash_table_insert (info, g_strdup ("info"), g_strdup_printf ("{\"pid\": %u, \"sandboxID\": \"%s\"}", pid,
                                                                     record->sandbox_id));
      berth_schema_labels_to_entries (info, &runtime__v1__container_status_response__info_entry__descriptor,
                                      (void ***) &response->info, &response->n_info);
    }
  return &response->base;
}

/* ---------------- resources, logs ---------------- */

BerthTask *
berth_cri_running_task (BerthDaemon *daemon, const char *id, GError **error)
{
  BerthTask *task = berth_cri_task (daemon, id);
  if (task == NULL || berth_task_get_status (task, NULL, NULL) != BERTH_TASK_STATUS_RUNNING)
    {
      g_clear_object (&task);
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "container %s is not running", id);
    }
  return task;
}

ProtobufCMessage *
cri_update_container_resources (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__UpdateContainerResourcesRequest *req = (gpointer) request;
  if (req->linux == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no linux resources given"), NULL;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  CriContainer *record = (CriContainer *) owned;
  berth_cri_lock (record->id);
  gboolean ok = TRUE;
  g_autoptr (BerthTask) task = berth_cri_task (daemon, record->id);
  if (task != NULL && berth_task_get_status (task, NULL, NULL) == BERTH_TASK_STATUS_RUNNING)
    {
      g_autoptr (JsonObject) resources = cri_resources_json (req->linux);
      g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), resources);
      gsize len = 0;
      char *text = berth_json_to_text (node, &len);
      g_autoptr (GBytes) bytes = g_bytes_new_take (text, len);
      ok = berth_task_update (task, bytes, NULL, error);
    }
  if (ok)
    {
      berth_grpc_message_free ((ProtobufCMessage *) record->resources);
      record->resources = berth_api_message_copy (&req->linux->base);
      ok = berth_cri_record_put (daemon, "containers", record->id, &record->base, error);
    }
  berth_cri_unlock (record->id);
  return ok ? berth_grpc_message_new (&runtime__v1__update_container_resources_response__descriptor) : NULL;
}

ProtobufCMessage *
cri_reopen_container_log (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ReopenContainerLogRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  const CriContainer *record = (CriContainer *) owned;
  g_autoptr (BerthTask) task = berth_cri_running_task (daemon, record->id, error);
  if (task == NULL)
    return NULL;
  if (*record->log_path == '\0')
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "container %s has no log path", record->id), NULL;
  /* The shim follows the path: it reopens as soon as the file it writes is no longer
   * the one there. Creating it now means the new file exists when we answer. */
  int fd = open (record->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return berth_throw_errno (error, "reopening log %s", record->log_path), NULL;
  close (fd);
  return berth_grpc_message_new (&runtime__v1__reopen_container_log_response__descriptor);
}

/* ---------------- stats ---------------- */

static Runtime__V1__UInt64Value *
u64 (guint64 value)
{
  Runtime__V1__UInt64Value *v = berth_grpc_message_new (&runtime__v1__uint64_value__descriptor);
  v->value = value;
  return v;
}

Runtime__V1__ContainerStats *
berth_cri_container_stats_new (BerthDaemon *daemon, const CriContainer *record, GError **error)
{
  g_autoptr (BerthTask) task = berth_cri_running_task (daemon, record->id, error);
  BerthCgroupStats figures = { 0 };
  if (task == NULL || !berth_cgroup_stats (berth_task_get_pid (task), &figures, error))
    return NULL;
  gint64 now = g_get_real_time () * 1000;
  const Runtime__V1__ContainerConfig *config = record->config;
  Runtime__V1__ContainerStats *stats = berth_grpc_message_new (&runtime__v1__container_stats__descriptor);
  stats->attributes = berth_grpc_message_new (&runtime__v1__container_attributes__descriptor);
  stats->attributes->id = g_strdup (record->id);
  stats->attributes->metadata = berth_api_message_copy (&config->metadata->base);
  BERTH_CRI_ENTRIES_COPY (config->labels, config->n_labels, &runtime__v1__container_attributes__labels_entry__descriptor,
                stats->attributes->labels, stats->attributes->n_labels);
  BERTH_CRI_ENTRIES_COPY (config->annotations, config->n_annotations,
                &runtime__v1__container_attributes__annotations_entry__descriptor, stats->attributes->annotations,
                stats->attributes->n_annotations);
  if (figures.has_cpu)
    {
      stats->cpu = berth_grpc_message_new (&runtime__v1__cpu_usage__descriptor);
      stats->cpu->timestamp = now;
      stats->cpu->usage_core_nano_seconds = u64 (figures.cpu_usage_ns);
    }
  if (figures.has_memory)
    {
      stats->memory = berth_grpc_message_new (&runtime__v1__memory_usage__descriptor);
      stats->memory->timestamp = now;
      stats->memory->working_set_bytes = u64 (figures.memory_usage_bytes);
      stats->memory->usage_bytes = u64 (figures.memory_usage_bytes);
      if (figures.memory_limit_bytes > figures.memory_usage_bytes)
        stats->memory->available_bytes = u64 (figures.memory_limit_bytes - figures.memory_usage_bytes);
    }
  BerthSnapshots snaps;
  g_autofree char *snapshotter = NULL;
  BerthSnapshotUsage usage = { 0 };
  if (cri_container_snapshots (daemon, record->id, &snaps, &snapshotter, NULL))
    {
      g_autofree char *key = berth_snapshots_backend_key (&snaps, record->id);
      if (berth_snapshotter_usage (snaps.backend, key, &usage, NULL, NULL))
        {
          stats->writable_layer = berth_grpc_message_new (&runtime__v1__filesystem_usage__descriptor);
          stats->writable_layer->timestamp = now;
          stats->writable_layer->fs_id = berth_grpc_message_new (&runtime__v1__filesystem_identifier__descriptor);
          stats->writable_layer->fs_id->mountpoint = g_strdup (berth_daemon_get_config (daemon)->root);
          stats->writable_layer->used_bytes = u64 (usage.size);
          stats->writable_layer->inodes_used = u64 (usage.inodes);
        }
    }
  return stats;
}

ProtobufCMessage *
cri_container_stats (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ContainerStatsRequest *req = (gpointer) request;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_container_get (daemon, req->container_id, error);
  Runtime__V1__ContainerStats *stats = owned ? berth_cri_container_stats_new (daemon, (CriContainer *) owned, error)
                                             : NULL;
  if (stats == NULL)
    return NULL;
  Runtime__V1__ContainerStatsResponse *response = berth_grpc_message_new (&runtime__v1__container_stats_response__descriptor);
  response->stats = stats;
  return &response->base;
}

/* Only running containers have figures: the others are left out. */
static gpointer
stats_item (BerthDaemon *daemon, const CriContainer *record, gconstpointer data)
{
  return berth_cri_container_stats_new (daemon, record, NULL);
}

ProtobufCMessage *
cri_list_container_stats (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ListContainerStatsRequest *req = (gpointer) request;
  ContainerFilter match = CONTAINER_FILTER_OF (req->filter);
  g_autoptr (GPtrArray) items = containers_collect (daemon, &match, stats_item, NULL, error);
  if (items == NULL)
    return NULL;
  Runtime__V1__ListContainerStatsResponse *response =
    berth_grpc_message_new (&runtime__v1__list_container_stats_response__descriptor);
  response->n_stats = items->len;
  response->stats = (Runtime__V1__ContainerStats **) g_ptr_array_steal (items, NULL);
  return &response->base;
}
