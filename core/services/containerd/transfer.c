/* transfer.c — berth.services.transfer.v1.Transfer, berth's extension: registry pull
 * and push done by the daemon (berth-distribution), their progress streamed back. */
#include "config.h"

#include <berth/berth-error.h>
#include "berth-api.h"
#include "image/berth-distribution.h"
#include "berth/services/transfer/v1/transfer.pb-c.h"

typedef struct {
  BerthGrpcCall *call;
  GError *error; /* the first failed send: the client is gone, later progress is dropped */
} Sender;

static void
send_progress (const BerthTransferProgress *progress, gpointer user_data)
{
  Sender *sender = user_data;
  if (sender->error != NULL)
    return;
  Berth__Services__Transfer__V1__Progress message = BERTH__SERVICES__TRANSFER__V1__PROGRESS__INIT;
  message.digest = (char *) progress->digest;
  message.kind = (char *) progress->kind;
  message.status = (char *) progress->status;
  message.offset = progress->offset;
  message.total = progress->total;
  berth_grpc_call_send (sender->call, &message.base, &sender->error);
}

static gboolean
finish (Sender *sender, const char *image, const char *digest, GError **error)
{
  if (sender->error != NULL)
    {
      g_clear_error (error);
      g_propagate_error (error, g_steal_pointer (&sender->error));
      return FALSE;
    }
  if (image == NULL)
    return FALSE;
  Berth__Services__Transfer__V1__Progress last = BERTH__SERVICES__TRANSFER__V1__PROGRESS__INIT;
  last.image = (char *) image;
  last.target_digest = (char *) digest;
  last.status = (char *) BERTH_TRANSFER_DONE;
  return berth_grpc_call_send (sender->call, &last.base, error);
}

static gboolean
transfer_pull (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Berth__Services__Transfer__V1__PullRequest *req = (gpointer) request;
  const Berth__Services__Transfer__V1__RegistryOptions *reg = req->registry;
  BerthPullOptions options = {
    req->reference, req->platform, req->snapshotter, req->no_unpack,
    reg ? reg->plain_http : FALSE, reg ? reg->skip_verify : FALSE,
    reg ? reg->username : NULL, reg ? reg->password : NULL,
  };
  Sender sender = { call, NULL };
  berth_grpc_call_send_headers (call);
  g_autofree char *digest = NULL;
  g_autofree char *image = berth_distribution_pull (user_data, berth_grpc_call_get_namespace (call), &options,
                                                    send_progress, &sender, &digest,
                                                    berth_grpc_call_get_cancellable (call), error);
  if (image != NULL)
    g_debug ("pulled %s (%s)", image, digest);
  return finish (&sender, image, digest, error);
}

static gboolean
transfer_push (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Berth__Services__Transfer__V1__PushRequest *req = (gpointer) request;
  const Berth__Services__Transfer__V1__RegistryOptions *reg = req->registry;
  BerthPushOptions options = {
    req->reference, req->image,
    reg ? reg->plain_http : FALSE, reg ? reg->skip_verify : FALSE,
    reg ? reg->username : NULL, reg ? reg->password : NULL,
  };
  Sender sender = { call, NULL };
  berth_grpc_call_send_headers (call);
  g_autofree char *digest = berth_distribution_push (user_data, berth_grpc_call_get_namespace (call), &options,
                                                     send_progress, &sender, berth_grpc_call_get_cancellable (call),
                                                     error);
  return finish (&sender, digest ? req->reference : NULL, digest, error);
}

void
berth_api_register_transfer (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Pull", BERTH_GRPC_SERVER_STREAMING, NULL, transfer_pull },
    { "Push", BERTH_GRPC_SERVER_STREAMING, NULL, transfer_push },
    { NULL },
  };
  berth_grpc_server_add_service (server, &berth__services__transfer__v1__transfer__descriptor, methods, daemon);
}
