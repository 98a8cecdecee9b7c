/* berth-grpc.c — INTERIM: the real server lands from the gRPC work (issue 3); until
 * then berthd refuses to serve with a clear error. */
#include "config.h"

#include <berth/berth-error.h>
#include "berth-grpc.h"

struct _BerthGrpcServer { int unused; };

BerthGrpcServer *berth_grpc_server_new (BerthDaemon *daemon, gsize max) { return g_new0 (BerthGrpcServer, 1); }
void berth_grpc_server_add_service (BerthGrpcServer *s, const ProtobufCServiceDescriptor *d, const BerthGrpcMethod *m, gpointer u) {}
gboolean berth_grpc_server_listen (BerthGrpcServer *s, const char *path, const char *group, GError **error)
{ return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "the gRPC server is not built yet"); }
gboolean berth_grpc_server_adopt_fd (BerthGrpcServer *s, int fd, GError **error)
{ return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "the gRPC server is not built yet"); }
void berth_grpc_server_stop (BerthGrpcServer *s) {}
void berth_grpc_server_free (BerthGrpcServer *s) { g_free (s); }
