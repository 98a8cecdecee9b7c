/* snapshots.c — containerd.services.snapshots.v1.Snapshots, routed by the request's
 * snapshotter name to the plugin. A namespace's key K is "<ns>/K" in the backend, so
 * namespaces never see each other's snapshots; the bookkeeping is berth-snapshots.c's,
 * shared with server-side unpack.
 */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-identifiers.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "image/berth-snapshots.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

typedef Containerd__Services__Snapshots__V1__Info Info;

typedef struct {
  BerthGrpcCall *call;
  BerthSnapshots snaps;
} Ctx;

static gboolean
ctx_init (Ctx *ctx, BerthGrpcCall *call, gpointer daemon, const char *snapshotter, GError **error)
{
  ctx->call = call;
  return berth_snapshots_init (&ctx->snaps, daemon, berth_grpc_call_get_namespace (call), snapshotter,
                               berth_grpc_call_get_header (call, "containerd-lease"), error);
}

static char *
backend_key (Ctx *ctx, const char *key)
{
  return berth_snapshots_backend_key (&ctx->snaps, key);
}

static const char *
client_key (Ctx *ctx, const char *key)
{
  return berth_snapshots_client_key (&ctx->snaps, key);
}

static GHashTable *
labels_of (void *const *entries, size_t n, GError **error)
{
  return berth_schema_labels_from_entries (entries, n, error);
}

/* Prepare and View share everything but the kind. */
static ProtobufCMessage *
create (BerthGrpcCall *call, gpointer daemon, const char *snapshotter, const char *key, const char *parent,
        void *const *label_entries, size_t n_labels, gboolean view, GError **error)
{
  Ctx ctx;
  if (!berth_identifier_validate (BERTH_IDENTIFIER_SNAPSHOT_KEY, key, error) || !ctx_init (&ctx, call, daemon, snapshotter, error))
    return NULL;
  g_autoptr (GHashTable) labels = labels_of (label_entries, n_labels, error);
  if (labels == NULL)
    return NULL;
  g_autoptr (GPtrArray) mounts = berth_snapshots_create (&ctx.snaps, key, parent, labels, view,
                                                         berth_grpc_call_get_cancellable (call), error);
  if (mounts == NULL)
    return NULL;
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
  if (!berth_identifier_validate (BERTH_IDENTIFIER_SNAPSHOT_KEY, req->key, error) || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, req->key);
  g_autoptr (GPtrArray) mounts = berth_snapshotter_mounts (ctx.snaps.backend, bkey, NULL, error);
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
  if (!berth_identifier_validate (BERTH_IDENTIFIER_SNAPSHOT_KEY, req->key, error) || !berth_identifier_validate (BERTH_IDENTIFIER_SNAPSHOT_KEY, req->name, error)
      || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  g_autoptr (GHashTable) labels = labels_of ((void *const *) req->labels, req->n_labels, error);
  if (labels == NULL)
    return NULL;
  if (!berth_snapshots_commit (&ctx.snaps, req->name, req->key, labels, berth_grpc_call_get_cancellable (call), error))
    return NULL;
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static ProtobufCMessage *
snapshots_remove (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__RemoveSnapshotRequest *req = (gpointer) request;
  Ctx ctx;
  if (!berth_identifier_validate (BERTH_IDENTIFIER_SNAPSHOT_KEY, req->key, error) || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  if (!berth_snapshots_remove (&ctx.snaps, req->key, berth_grpc_call_get_cancellable (call), error))
    return NULL;
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
  out->created_at = berth_schema_timestamp_new (info->created_at);
  out->updated_at = berth_schema_timestamp_new (info->updated_at);
  berth_schema_labels_to_entries (info->labels, &containerd__services__snapshots__v1__info__labels_entry__descriptor,
                                  (void ***) &out->labels, &out->n_labels);
  return out;
}

static ProtobufCMessage *
snapshots_stat (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__StatSnapshotRequest *req = (gpointer) request;
  Ctx ctx;
  if (!berth_identifier_validate (BERTH_IDENTIFIER_SNAPSHOT_KEY, req->key, error) || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, req->key);
  g_autoptr (BerthSnapshotInfo) info = berth_snapshotter_stat (ctx.snaps.backend, bkey, NULL, error);
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
  if (req->info == NULL || !berth_identifier_validate (BERTH_IDENTIFIER_SNAPSHOT_KEY, req->info->name, error)
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
  g_autoptr (BerthSnapshotInfo) info = berth_snapshotter_update (ctx.snaps.backend, &in, paths, NULL, error);
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
  if (!berth_snapshotter_walk (ctx.snaps.backend, list_one, &data, berth_grpc_call_get_cancellable (call), error))
    return FALSE;
  return berth_grpc_call_send_list (call, g_steal_pointer (&out), "info", 100);
}

static ProtobufCMessage *
snapshots_usage (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Snapshots__V1__UsageRequest *req = (gpointer) request;
  Ctx ctx;
  if (!berth_identifier_validate (BERTH_IDENTIFIER_SNAPSHOT_KEY, req->key, error) || !ctx_init (&ctx, call, user_data, req->snapshotter, error))
    return NULL;
  g_autofree char *bkey = backend_key (&ctx, req->key);
  BerthSnapshotUsage usage = { 0 };
  if (!berth_snapshotter_usage (ctx.snaps.backend, bkey, &usage, berth_grpc_call_get_cancellable (call), error))
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
      || !berth_snapshotter_cleanup (ctx.snaps.backend, berth_grpc_call_get_cancellable (call), error))
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
