/* berth-api.h — containerd's v1 services, one file per service (core-internal).
 * Each file defines berth_api_register_<service> (server, daemon); berth-api.c calls
 * them all. Handlers are named after the RPC: version_version, tasks_create, … */
#pragma once

#include "wire/berth-grpc.h"
#include "daemon/berth-daemon.h"

G_BEGIN_DECLS

void berth_api_register_all (BerthGrpcServer *server, BerthDaemon *daemon);

void berth_api_register_version (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_health (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_namespaces (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_introspection (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_events (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_content (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_images (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_leases (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_snapshots (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_diff (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_containers (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_tasks (BerthGrpcServer *server, BerthDaemon *daemon);
/* berth's own extension (core/proto/berth/): image archives in and out, GC on demand,
 * registry pull and push. */
void berth_api_register_archive (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_gc (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_api_register_transfer (BerthGrpcServer *server, BerthDaemon *daemon);

G_END_DECLS
