/* health.c — grpc.health.v1.Health, which containerd's Go client uses for liveness. */
#include "config.h"

#include "grpc/health/v1/health.pb-c.h"
#include "berth-api.h"

static ProtobufCMessage *
health_check (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  Grpc__Health__V1__HealthCheckResponse *response =
    berth_grpc_message_new (&grpc__health__v1__health_check_response__descriptor);
  response->status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  return &response->base;
}

void
berth_api_register_health (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Check", BERTH_GRPC_UNARY, health_check, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &grpc__health__v1__health__descriptor, methods, daemon);
}
