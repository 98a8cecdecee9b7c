/* gc.c — berth.services.gc.v1.GC, berth's extension: collect garbage now. */
#include "config.h"

#include "berth-api.h"
#include "daemon/berth-gc.h"
#include "berth/services/gc/v1/gc.pb-c.h"

static ProtobufCMessage *
gc_collect (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  (void) request;
  BerthGcStats stats = { 0 };
  gint64 start = g_get_monotonic_time ();
  if (!berth_gc_run (user_data, berth_grpc_call_get_cancellable (call), &stats, error))
    return NULL;
  Berth__Services__Gc__V1__CollectResponse *response =
    berth_grpc_message_new (&berth__services__gc__v1__collect_response__descriptor);
  response->leases_expired = stats.leases_expired;
  response->content_records_removed = stats.content_records_removed;
  response->blobs_removed = stats.blobs_removed;
  response->snapshots_removed = stats.snapshots_removed;
  response->ingests_removed = stats.ingests_removed;
  response->duration_ns = (g_get_monotonic_time () - start) * 1000;
  return &response->base;
}

void
berth_api_register_gc (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Collect", BERTH_GRPC_UNARY, gc_collect, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &berth__services__gc__v1__gc__descriptor, methods, daemon);
}
