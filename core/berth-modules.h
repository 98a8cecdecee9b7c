/* berth-modules.h — services with heavy libraries, in modules loaded on first use
 * (core-internal).
 *
 * An idle berthd should map only what it uses. What links heavy libraries is built as a
 * module, $(pkglibdir)/modules/berth-NAME.so: image-archive (import/export, libarchive),
 * registry-client (pull/push, libsoup and TLS), metrics-http (the Prometheus endpoint,
 * libsoup) and cri-streaming (CRI exec/attach/port-forward, libsoup). $BERTH_MODULE_DIR
 * overrides the directory, as the tests do to run from the build tree), that berthd
 * opens the first time it is needed and keeps. A module calls the daemon's own
 * functions (berthd is linked with -export-dynamic). A program that links a module's
 * source itself (unit tests, fuzzers) uses that copy and opens nothing.
 */
#pragma once

#include <gio/gio.h>
#include "berth-daemon.h"
#include "berth-distribution.h"
#include "berth-image-archive.h"
#include "berth-metrics.h"

G_BEGIN_DECLS

/* The address of @symbol in module @name, opening it the first time. */
gpointer berth_module_symbol (const char *name, const char *symbol, GError **error);
/* The address of @symbol when module @name is already open, else NULL (opens nothing). */
gpointer berth_module_symbol_if_open (const char *name, const char *symbol);

/* What the berth-image-archive module exports. */
GPtrArray *berth_image_archive_module_import (BerthDaemon *daemon, const char *ns, GInputStream *input,
                                              const char *base_name, BerthImageArchiveProgress progress,
                                              gpointer progress_data, GCancellable *cancellable, GError **error);
gboolean berth_image_archive_module_export (BerthDaemon *daemon, const char *ns, const char *const *names,
                                            GOutputStream *output, GCancellable *cancellable, GError **error);

/* What the berth-registry-client module exports. */
char *berth_distribution_module_pull (BerthDaemon *daemon, const char *ns, const BerthPullOptions *options,
                                      BerthTransferProgressFunc progress, gpointer progress_data, char **target_out,
                                      GCancellable *cancellable, GError **error);
char *berth_distribution_module_push (BerthDaemon *daemon, const char *ns, const BerthPushOptions *options,
                                      BerthTransferProgressFunc progress, gpointer progress_data,
                                      GCancellable *cancellable, GError **error);

/* What the berth-metrics-http module exports. */
BerthMetricsServer *berth_metrics_server_module_new (BerthDaemon *daemon, const char *address, GError **error);
const char *berth_metrics_server_module_get_address (BerthMetricsServer *self);
void berth_metrics_server_module_stop (BerthMetricsServer *self);

G_END_DECLS
