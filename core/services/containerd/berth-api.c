/* berth-api.c — registers every service with the gRPC server. */
#include "config.h"

#include "berth-api.h"
#include "services/cri/berth-cri.h"

void
berth_api_register_all (BerthGrpcServer *server, BerthDaemon *daemon)
{
  /* One line per service file. */
  berth_api_register_version (server, daemon);
  berth_api_register_health (server, daemon);
  berth_api_register_namespaces (server, daemon);
  berth_api_register_introspection (server, daemon);
  berth_api_register_events (server, daemon);
  berth_api_register_content (server, daemon);
  berth_api_register_images (server, daemon);
  berth_api_register_leases (server, daemon);
  berth_api_register_snapshots (server, daemon);
  berth_api_register_diff (server, daemon);
  berth_api_register_containers (server, daemon);
  berth_api_register_tasks (server, daemon);
  berth_api_register_archive (server, daemon);
  berth_api_register_gc (server, daemon);
  berth_api_register_transfer (server, daemon);
  /* Kubernetes' CRI (runtime.v1) on the same socket, as containerd's CRI plugin. */
  berth_cri_register (server, daemon);
}
