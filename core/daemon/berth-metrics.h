/* berth-metrics.h — Prometheus metrics (core-internal).
 *
 * Two halves:
 *  - recording: berth_metrics_observe_* are called from hot paths in any thread (every
 *    gRPC call, every collection). They take one process-wide mutex for a few counter
 *    increments and never allocate after a method's first call.
 *  - serving: a BerthMetricsServer answers GET /v1/metrics (containerd's path) and
 *    /metrics with the text exposition format 0.0.4, on the daemon's main context. The
 *    recorded figures are joined by ones gathered per scrape (plugins, content, snapshots,
 *    per-container cgroup figures) in a worker thread, since that reads files.
 *
 * The page, metric by metric:
 *   berth_build_info{version}                               gauge, always 1
 *   berth_grpc_requests_total{method,code}                  counter
 *   berth_grpc_request_duration_seconds{method}             histogram
 *   berth_plugin_status{type,id,status}                     gauge, 1 for the plugin's status
 *   berth_content_blobs, berth_content_bytes                gauges
 *   berth_snapshots{snapshotter}                            gauge
 *   berth_gc_runs_total                                     counter
 *   berth_gc_duration_seconds                               histogram
 *   berth_gc_removed_total{kind}                            counter
 *   berth_container_cpu_usage_seconds_total{namespace,container_id}     counter
 *   berth_container_memory_usage_bytes{namespace,container_id}          gauge
 *   berth_container_memory_limit_bytes{namespace,container_id}          gauge, only when limited
 *   berth_container_pids_current{namespace,container_id}                gauge
 *   berth_container_io_bytes_total{namespace,container_id,op}           counter
 */
#pragma once

#include <gio/gio.h>
#include "berth-gc.h"

G_BEGIN_DECLS

/* @method: the call's path ("/containerd.services.version.v1.Version/Version"), NULL
 * for a path no service has (kept as "unknown": clients must not mint label values);
 * @code: the gRPC status code. */
void berth_metrics_observe_grpc (const char *method, guint code, gint64 duration_usec);
void berth_metrics_observe_gc (gint64 duration_usec, const BerthGcStats *stats);

/* The whole exposition page. Reads the content store, snapshotters and cgroups: call
 * it from a worker. */
char *berth_metrics_render (BerthDaemon *daemon, GCancellable *cancellable);

/* "IP:PORT" or "[IPv6]:PORT" → an address to listen on (@address_out may be NULL to
 * only validate). Host names are refused: resolving one could block startup. */
gboolean berth_metrics_parse_address (const char *text, GSocketAddress **address_out, GError **error);

#define BERTH_TYPE_METRICS_SERVER (berth_metrics_server_get_type ())
G_DECLARE_FINAL_TYPE (BerthMetricsServer, berth_metrics_server, BERTH, METRICS_SERVER, GObject)

/* Listens on @address (as berth_metrics_parse_address takes it) on the thread-default
 * main context. */
BerthMetricsServer *berth_metrics_server_new (BerthDaemon *daemon, const char *address, GError **error);
const char *berth_metrics_server_get_address (BerthMetricsServer *self);
/* Closes the socket and every connection and waits for scrapes being gathered, so
 * nothing reaches the daemon afterwards. Called by dispose too. */
void berth_metrics_server_stop (BerthMetricsServer *self);

/* What the berth-metrics-http module exports (berth-modules.h); the three functions
 * above call them, opening the module on first use. */
BerthMetricsServer *berth_metrics_server_module_new (BerthDaemon *daemon, const char *address, GError **error);
const char *berth_metrics_server_module_get_address (BerthMetricsServer *self);
void berth_metrics_server_module_stop (BerthMetricsServer *self);

G_END_DECLS
