/* diff.c — containerd.services.diff.v1.Diff: Apply through the differ plugin. */
#include "config.h"

#include <berth/berth-error.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "github.com/containerd/containerd/api/services/diff/v1/diff.pb-c.h"


static ProtobufCMessage *
diff_apply (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Diff__V1__ApplyRequest *req = (gpointer) request;
  if (req->diff == NULL || !berth_digest_validate (req->diff->digest, error))
    return req->diff ? NULL : (berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no layer descriptor given"), NULL);
  if (req->n_mounts == 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no mounts to apply the layer to"), NULL;
  /* The namespace must see the blob it asks to apply. */
  BerthDaemon *daemon = user_data;
  BerthDiffer *differ = berth_daemon_get_differ (daemon, NULL, error);
  if (differ == NULL)
    return NULL;
  g_autoptr (BerthDescriptor) layer = berth_descriptor_new (req->diff->media_type, req->diff->digest, req->diff->size);
  g_autoptr (GPtrArray) mounts = berth_proto_mounts_to_list (req->mounts, req->n_mounts);
  g_autoptr (BerthDescriptor) applied = berth_differ_apply (differ, layer, mounts, NULL,
                                                            berth_grpc_call_get_cancellable (call), error);
  if (applied == NULL)
    return NULL;
  Containerd__Services__Diff__V1__ApplyResponse *response =
    berth_grpc_message_new (&containerd__services__diff__v1__apply_response__descriptor);
  Containerd__Types__Descriptor *desc = berth_grpc_message_new (&containerd__types__descriptor__descriptor);
  desc->media_type = g_strdup (applied->media_type);
  desc->digest = g_strdup (applied->digest);
  desc->size = applied->size;
  response->applied = desc;
  return &response->base;
}

typedef struct {
  const char *ns;
  const char *lease;
  const BerthDescriptor *layer;
} RecordData;

static gboolean
record_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  RecordData *r = user_data;
  return berth_schema_content_record (txn, r->ns, r->lease, r->layer->digest, r->layer->size, r->layer->annotations, error);
}

static ProtobufCMessage *
diff_diff (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Diff__V1__DiffRequest *req = (gpointer) request;
  if (req->n_right == 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no upper mounts to diff"), NULL;
  BerthDaemon *daemon = user_data;
  BerthDiffer *differ = berth_daemon_get_differ (daemon, NULL, error);
  if (differ == NULL)
    return NULL;
  g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) req->labels, req->n_labels, error);
  if (labels == NULL)
    return NULL;
  g_autoptr (GPtrArray) lower = berth_proto_mounts_to_list (req->left, req->n_left);
  g_autoptr (GPtrArray) upper = berth_proto_mounts_to_list (req->right, req->n_right);
  /* Namespaced like every ingest ref. */
  g_autofree char *ref = req->ref && *req->ref ? g_strdup_printf ("%s/%s", berth_grpc_call_get_namespace (call), req->ref)
                                               : NULL;
  g_autoptr (BerthDescriptor) layer = berth_differ_compare (differ, lower, upper, req->media_type, ref, labels,
                                                            berth_grpc_call_get_cancellable (call), error);
  if (layer == NULL)
    return NULL;
  RecordData r = { berth_grpc_call_get_namespace (call), berth_grpc_call_get_header (call, "containerd-lease"), layer };
  if (!berth_metadata_write (berth_daemon_get_metadata (daemon), record_txn, &r, error))
    return NULL;
  Containerd__Services__Diff__V1__DiffResponse *response =
    berth_grpc_message_new (&containerd__services__diff__v1__diff_response__descriptor);
  Containerd__Types__Descriptor *desc = berth_grpc_message_new (&containerd__types__descriptor__descriptor);
  desc->media_type = g_strdup (layer->media_type);
  desc->digest = g_strdup (layer->digest);
  desc->size = layer->size;
  response->diff = desc;
  return &response->base;
}

void
berth_api_register_diff (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Apply", BERTH_GRPC_UNARY, diff_apply, NULL },
    { "Diff", BERTH_GRPC_UNARY, diff_diff, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__diff__v1__diff__descriptor, methods, daemon);
}
