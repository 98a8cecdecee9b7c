/* berth-modules.h — services with heavy libraries, in modules loaded on first use
 * (core-internal).
 *
 * An idle berthd should map only what it uses. What links heavy libraries is built as a
 * module, $(pkglibdir)/modules/berth-NAME.so: image-archive (import/export, libarchive),
 * registry-client (pull/push; its HTTP requests go through `berthd --http-request`
 * helper processes, which open http-fetch: libsoup and TLS), metrics-http (the
 * Prometheus endpoint, libsoup) and cri-streaming (CRI exec/attach/port-forward, libsoup). $BERTH_MODULE_DIR
 * overrides the directory, as the tests do to run from the build tree), that berthd
 * opens the first time it is needed and keeps. A module calls the daemon's own
 * functions (berthd is linked with -export-dynamic). A program that links a module's
 * source itself (unit tests, fuzzers) uses that copy and opens nothing.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The address of @symbol in module @name, opening it the first time. */
gpointer berth_module_symbol (const char *name, const char *symbol, GError **error);
/* The address of @symbol when module @name is already open, else NULL (opens nothing). */
gpointer berth_module_symbol_if_open (const char *name, const char *symbol);

/* The address of @func: the program's own copy when it links the module's source (declare
 * @func weak beside its entry point: it is then NULL in berthd), else the module's.
 * Each module's entry points are declared in its own header, beside its API. */
#define BERTH_MODULE_FUNC(module, func, error)                                                                          \
  ((func) != NULL ? (func) : (__typeof__ (func) *) berth_module_symbol ((module), #func, (error)))

G_END_DECLS
