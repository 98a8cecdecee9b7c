/* version.c — containerd.services.version.v1.Version. */
#include "config.h"

#include "github.com/containerd/containerd/api/services/version/v1/version.pb-c.h"
#include "berth-api.h"

static ProtobufCMessage *
version_version (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  Containerd__Services__Version__V1__VersionResponse *response =
    berth_grpc_message_new (&containerd__services__version__v1__version_response__descriptor);
  response->version = g_strdup (PACKAGE_VERSION);
  response->revision = g_strdup ("berth");
  return &response->base;
}

void
berth_api_register_version (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Version", BERTH_GRPC_UNARY, version_version, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__version__v1__version__descriptor, methods, daemon);
}
