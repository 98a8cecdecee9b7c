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
  g_autoptr (GPtrArray) mounts = berth_api_mounts_from (req->mounts, req->n_mounts);
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

void
berth_api_register_diff (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Apply", BERTH_GRPC_UNARY, diff_apply, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__diff__v1__diff__descriptor, methods, daemon);
}
