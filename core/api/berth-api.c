/* berth-api.c — registers every service with the gRPC server. */
#include "config.h"

#include "berth-api.h"

void
berth_api_register_all (BerthGrpcServer *server, BerthDaemon *daemon)
{
  /* One line per service file; each service adds its own. */
}
