/* snapshots.c — containerd.services.snapshots.v1.Snapshots, routed by the request's
 * snapshotter name to the plugin. A namespace's key K is "<ns>/K" in the backend, so
 * namespaces never see each other's snapshots; "v1/<ns>/snapshots/<snapshotter>/<K>"
 * records in the metadata store tell namespace deletion and leases what exists.
 */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "github.com/containerd/containerd/api/events/snapshot.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

typedef Containerd__Services__Snapshots__V1__Info Info;

typedef struct {
  BerthGrpcCall *call;
  BerthDaemon *daemon;
  BerthSnapshotter *backend;
  const char *name; /* snapshotter name as asked, default filled in */
} Ctx;

static gboolean
ctx_init (Ctx *ctx, BerthGrpcCall *call, gpointer daemon, const char *snapshotter, GError **error)
{
  ctx->call = call;
  ctx->daemon = daemon;
  ctx->name = snapshotter && *snapshotter ? snapshotter : berth_daemon_get_config (daemon)->default_snapshotter;
  ctx->backend = berth_daemon_get_snapshotter (daemon, ctx->name, error);
  return ctx->backend != NULL;
}

static char *
backend_key (Ctx *ctx, const char *key)
{
  return key && *key ? g_strdup_printf ("%s/%s", berth_grpc_call_get_namespace (ctx->call), key) : NULL;
}

/* The namespace's own name for a backend key; NULL when it is another namespace's. */
static const char *
client_key (Ctx *ctx, const char *key)
{
  const char *ns = berth_grpc_call_get_namespace (ctx->call);
  gsize len = strlen (ns);
  if (key == NULL || strncmp (key, ns, len) != 0 || key[len] != '/')
    return NULL;
  return key + len + 1;
}

static gboolean
validate_key (const char *what, const char *key, GError **error)
{
  if (key == NULL || *key == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "snapshot %s must not be empty", what);
  return TRUE;
}

typedef struct {
  Ctx *ctx;
  const char *key;
  gboolean add;
} RecordData;

static gboolean
record_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  RecordData *r = user_data;
  const char *ns = berth_grpc_call_get_namespace (r->ctx->call);
  g_autofree char *key = g_strdup_printf ("v1/%s/snapshots/%s/%s", ns, r->ctx->name, r->key);
  if (!r->add)
    {
      g_autoptr (GError) ignored = NULL;
      berth_metadata_txn_delete (txn, key, &ignored);
      return TRUE;
    }
  if (!berth_api_namespace_touch (txn, ns, error) || !berth_metadata_txn_put (txn, key, "", 0, error))
    return FALSE;
  const char *lease = berth_grpc_call_get_header (r->ctx->call, "containerd-lease");
  if (lease != NULL && *lease != '\0')
    {
      g_autofree char *resource = g_strdup_printf ("v1/%s/leases/%s/r/snapshots/%s/%s", ns, lease, r->ctx->name, r->key);
      return berth_metadata_txn_put (txn, resource, "", 0, error);
    }
  return TRUE;
}

static void
note_snapshot (Ctx *ctx, const char *key, gboolean add)
{
  RecordData r = { ctx, key, add };
  g_autoptr (GError) error = NULL;
  if (!berth_metadata_write (berth_daemon_get_metadata (ctx->daemon), record_txn, &r, &error))
    g_warning ("recording snapshot %s: %s", key, error->message);
}

static void
publish (Ctx *ctx, const char *topic, const ProtobufCMessage *event)
{
  berth_events_publish (berth_daemon_get_events (ctx->daemon), berth_grpc_call_get_namespace (ctx->call), topic, event);
}


static GHashTable *
labels_of (void *const *entries, size_t n, GError **error)
{
  return berth_api_labels_from_entries (entries, n, error);
}

/* Prepare and View share everything but the kind. */
static ProtobufCMessage *
create (BerthGrpcCall *call, gpointer daemon, const char *snapshotter, const char *key, const char *parent,
        void *const *label_entries, size_t n_labels, gboolean view, GError **error)
{
  Ctx ctx;
  if (!validate_key ("key", key, error) || !ctx_init (&ctx, call, daemon, snapshotter, error))
    return NULL;
  g_autoptr (GHashTable) labels = labels_of (label_entries, n_labels, error);
  if (labels == NULL)
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, key);
  g_autofree char *bparent = backend_key (&ctx, parent);
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  g_autoptr (GPtrArray) mounts = view ? berth_snapshotter_view (ctx.backend, bkey, bparent, labels, cancellable, error)
                                      : berth_snapshotter_prepare (ctx.backend, bkey, bparent, labels, cancellable, error);
  if (mounts == NULL)
    return NULL;
  note_snapshot (&ctx, key, TRUE);
  Containerd__Events__SnapshotPrepare event = CONTAINERD__EVENTS__SNAPSHOT_PREPARE__INIT;
  event.key = (char *) key;
  event.parent = (char *) (parent ? parent : "");
  publish (&ctx, "/snapshot/prepare", &event.base);
  /* Prepare and View responses have the same layout. */
  Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *response = berth_grpc_message_new (
    view ? &containerd__services__snapshots__v1__view_snapshot_response__descriptor
         : &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor);
  response->mounts = berth_api_mounts_to (mounts, &response->n_mounts);
  return &response->base;
}

static ProtobufCMessage *
snapshots_prepare (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__PrepareSnapshotRequest *req = (gpointer) request;
  return create (call, user_data, req->snapshotter, req->key, req->parent, (void *const *) req->labels, req->n_labels,
                 FALSE, error);
}

static ProtobufCMessage *
snapshots_view (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__ViewSnapshotRequest *req = (gpointer) request;
  return create (call, user_data, req->snapshotter, req->key, req->parent, (void *const *) req->labels, req->n_labels,
                 TRUE, error);
}

static ProtobufCMessage *
snapshots_mounts (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__MountsRequest *req = (gpointer) request;
  Ctx ctx;
  if (!validate_key ("key", req->key, error) || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, req->key);
  g_autoptr (GPtrArray) mounts = berth_snapshotter_mounts (ctx.backend, bkey, error);
  if (mounts == NULL)
    return NULL;
  Containerd__Services__Snapshots__V1__MountsResponse *response =
    berth_grpc_message_new (&containerd__services__snapshots__v1__mounts_response__descriptor);
  response->mounts = berth_api_mounts_to (mounts, &response->n_mounts);
  return &response->base;
}

static ProtobufCMessage *
snapshots_commit (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__CommitSnapshotRequest *req = (gpointer) request;
  Ctx ctx;
  if (!validate_key ("key", req->key, error) || !validate_key ("name", req->name, error)
      || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  g_autoptr (GHashTable) labels = labels_of ((void *const *) req->labels, req->n_labels, error);
  if (labels == NULL)
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, req->key);
  g_autofree char *bname = backend_key (&ctx, req->name);
  if (!berth_snapshotter_commit (ctx.backend, bname, bkey, labels, berth_grpc_call_get_cancellable (call), error))
    return NULL;
  note_snapshot (&ctx, req->key, FALSE);
  note_snapshot (&ctx, req->name, TRUE);
  Containerd__Events__SnapshotCommit event = CONTAINERD__EVENTS__SNAPSHOT_COMMIT__INIT;
  event.key = req->key;
  event.name = req->name;
  publish (&ctx, "/snapshot/commit", &event.base);
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static ProtobufCMessage *
snapshots_remove (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__RemoveSnapshotRequest *req = (gpointer) request;
  Ctx ctx;
  if (!validate_key ("key", req->key, error) || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, req->key);
  if (!berth_snapshotter_remove (ctx.backend, bkey, berth_grpc_call_get_cancellable (call), error))
    return NULL;
  note_snapshot (&ctx, req->key, FALSE);
  Containerd__Events__SnapshotRemove event = CONTAINERD__EVENTS__SNAPSHOT_REMOVE__INIT;
  event.key = req->key;
  publish (&ctx, "/snapshot/remove", &event.base);
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static Info *
info_message (Ctx *ctx, const BerthSnapshotInfo *info)
{
  Info *out = berth_grpc_message_new (&containerd__services__snapshots__v1__info__descriptor);
  const char *name = client_key (ctx, info->name);
  const char *parent = client_key (ctx, info->parent);
  out->name = g_strdup (name ? name : info->name);
  out->parent = g_strdup (parent ? parent : "");
  out->kind = (Containerd__Services__Snapshots__V1__Kind) info->kind;
  out->created_at = berth_api_timestamp_new (info->created_at);
  out->updated_at = berth_api_timestamp_new (info->updated_at);
  berth_api_labels_to_entries (info->labels, &containerd__services__snapshots__v1__info__labels_entry__descriptor,
                               (void ***) &out->labels, &out->n_labels);
  return out;
}

static ProtobufCMessage *
snapshots_stat (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__StatSnapshotRequest *req = (gpointer) request;
  Ctx ctx;
  if (!validate_key ("key", req->key, error) || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, req->key);
  g_autoptr (BerthSnapshotInfo) info = berth_snapshotter_stat (ctx.backend, bkey, error);
  if (info == NULL)
    return NULL;
  Containerd__Services__Snapshots__V1__StatSnapshotResponse *response =
    berth_grpc_message_new (&containerd__services__snapshots__v1__stat_snapshot_response__descriptor);
  response->info = info_message (&ctx, info);
  return &response->base;
}

static ProtobufCMessage *
snapshots_update (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__UpdateSnapshotRequest *req = (gpointer) request;
  Ctx ctx;
  if (req->info == NULL || !validate_key ("name", req->info->name, error)
      || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return req->info ? NULL : (berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no info given"), NULL);
  g_autoptr (GHashTable) labels = labels_of ((void *const *) req->info->labels, req->info->n_labels, error);
  if (labels == NULL)
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, req->info->name);
  BerthSnapshotInfo in = { bkey, NULL, BERTH_SNAPSHOT_KIND_UNKNOWN, labels, 0, 0 };
  g_autofree const char **paths = g_new0 (const char *, (req->update_mask ? req->update_mask->n_paths : 0) + 1);
  for (size_t i = 0; req->update_mask && i < req->update_mask->n_paths; i++)
    paths[i] = req->update_mask->paths[i];
  g_autoptr (BerthSnapshotInfo) info = berth_snapshotter_update (ctx.backend, &in, paths, error);
  if (info == NULL)
    return NULL;
  Containerd__Services__Snapshots__V1__UpdateSnapshotResponse *response =
    berth_grpc_message_new (&containerd__services__snapshots__v1__update_snapshot_response__descriptor);
  response->info = info_message (&ctx, info);
  return &response->base;
}

static const char *
snapshot_field (const char *const *fieldpath, gpointer object)
{
  const Info *info = object;
  if (fieldpath[0] == NULL)
    return NULL;
  if (fieldpath[1] == NULL && g_str_equal (fieldpath[0], "name"))
    return info->name;
  if (fieldpath[1] == NULL && g_str_equal (fieldpath[0], "parent"))
    return info->parent;
  if (fieldpath[1] == NULL && g_str_equal (fieldpath[0], "kind"))
    return info->kind == 1 ? "view" : info->kind == 2 ? "active" : "committed";
  return berth_api_label_field (fieldpath, (void *const *) info->labels, info->n_labels);
}

typedef struct {
  Ctx *ctx;
  BerthFilter *filter;
  GPtrArray *out;
} ListData;

static gboolean
list_one (const BerthSnapshotInfo *info, gpointer user_data)
{
  ListData *data = user_data;
  if (client_key (data->ctx, info->name) == NULL)
    return TRUE;
  Info *message = info_message (data->ctx, info);
  if (berth_filter_match (data->filter, snapshot_field, message))
    g_ptr_array_add (data->out, message);
  else
    berth_grpc_message_free (&message->base);
  return TRUE;
}

static gboolean
snapshots_list (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__ListSnapshotsRequest *req = (gpointer) request;
  Ctx ctx;
  if (!ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return FALSE;
  g_autoptr (BerthFilter) filter = berth_api_filter_parse (req->filters, req->n_filters, error);
  if (filter == NULL)
    return FALSE;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  ListData data = { &ctx, filter, out };
  if (!berth_snapshotter_walk (ctx.backend, list_one, &data, berth_grpc_call_get_cancellable (call), error))
    return FALSE;
  for (guint i = 0; i < out->len; i += 100)
    {
      Containerd__Services__Snapshots__V1__ListSnapshotsResponse batch =
        CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_RESPONSE__INIT;
      batch.n_info = MIN (100, out->len - i);
      batch.info = (Info **) &out->pdata[i];
      if (!berth_grpc_call_send (call, &batch.base, error))
        return FALSE;
    }
  return TRUE;
}

static ProtobufCMessage *
snapshots_usage (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__UsageRequest *req = (gpointer) request;
  Ctx ctx;
  if (!validate_key ("key", req->key, error) || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, req->key);
  BerthSnapshotUsage usage = { 0 };
  if (!berth_snapshotter_usage (ctx.backend, bkey, &usage, berth_grpc_call_get_cancellable (call), error))
    return NULL;
  Containerd__Services__Snapshots__V1__UsageResponse *response =
    berth_grpc_message_new (&containerd__services__snapshots__v1__usage_response__descriptor);
  response->size = usage.size;
  response->inodes = usage.inodes;
  return &response->base;
}

static ProtobufCMessage *
snapshots_cleanup (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__CleanupRequest *req = (gpointer) request;
  Ctx ctx;
  if (!ctx_init (&ctx, call, user_data, req->snapshotter, error)
      || !berth_snapshotter_cleanup (ctx.backend, berth_grpc_call_get_cancellable (call), error))
    return NULL;
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

void
berth_api_register_snapshots (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Prepare", BERTH_GRPC_UNARY, snapshots_prepare, NULL },
    { "View", BERTH_GRPC_UNARY, snapshots_view, NULL },
    { "Mounts", BERTH_GRPC_UNARY, snapshots_mounts, NULL },
    { "Commit", BERTH_GRPC_UNARY, snapshots_commit, NULL },
    { "Remove", BERTH_GRPC_UNARY, snapshots_remove, NULL },
    { "Stat", BERTH_GRPC_UNARY, snapshots_stat, NULL },
    { "Update", BERTH_GRPC_UNARY, snapshots_update, NULL },
    { "List", BERTH_GRPC_SERVER_STREAMING, NULL, snapshots_list },
    { "Usage", BERTH_GRPC_UNARY, snapshots_usage, NULL },
    { "Cleanup", BERTH_GRPC_UNARY, snapshots_cleanup, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__snapshots__v1__snapshots__descriptor, methods, daemon);
}
