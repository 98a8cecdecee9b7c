/* berth-modules.c — opening service modules on first use, and the daemon's entry points
 * into them. */
#include "config.h"

#include <gmodule.h>
#include <unistd.h>

#include <berth/berth.h>
#include "berth-modules.h"

static GHashTable *opened; /* name → GModule*, never closed */
G_LOCK_DEFINE_STATIC (opened);

static GModule *
open_module (const char *name, GError **error)
{
  GModule *module = opened ? g_hash_table_lookup (opened, name) : NULL;
  if (module != NULL)
    return module;
  const char *dir = g_getenv ("BERTH_MODULE_DIR");
  g_autofree char *file = g_strdup_printf ("berth-%s.so", name);
  g_autofree char *path = g_build_filename (dir && *dir ? dir : BERTH_MODULE_DIR, file, NULL);
  /* LOCAL: a module's libraries stay out of the global scope; LAZY: the functions of
   * them this daemon never calls are never bound. */
  module = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
  if (module == NULL)
    {
      berth_throw (error, BERTH_ERROR_UNAVAILABLE, "cannot load the %s module: %s", name, g_module_error ());
      return NULL;
    }
  g_module_make_resident (module);
  g_info ("module %s loaded from %s", name, path);
  if (opened == NULL)
    opened = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (opened, g_strdup (name), module);
  return module;
}

static gpointer
module_symbol (const char *name, const char *symbol, gboolean open, GError **error)
{
  G_LOCK (opened);
  GModule *module = open || opened == NULL ? open_module (name, error) : g_hash_table_lookup (opened, name);
  G_UNLOCK (opened);
  if (module == NULL && !open)
    return NULL;
  gpointer address = NULL;
  if (module != NULL && !g_module_symbol (module, symbol, &address))
    berth_throw (error, BERTH_ERROR_INTERNAL, "module %s: %s", name, g_module_error ());
  return address;
}

gpointer
berth_module_symbol (const char *name, const char *symbol, GError **error)
{
  return module_symbol (name, symbol, TRUE, error);
}

/* @symbol when module @name is already open, else NULL. */
gpointer
berth_module_symbol_if_open (const char *name, const char *symbol)
{
  return module_symbol (name, symbol, FALSE, NULL);
}

/* The address of @func: the program's own copy when it links the module's source (a weak
 * reference), else the module's. */
#define MODULE_FUNC(module, func, error)                                                                                \
  ((func) != NULL ? (func) : (__typeof__ (func) *) berth_module_symbol ((module), #func, (error)))

/* ---------------- image archives (libarchive) ---------------- */

/* Weak: defined only in a program that links berth-image-archive.c itself. */
extern __typeof__ (berth_image_archive_module_import) berth_image_archive_module_import __attribute__ ((weak));
extern __typeof__ (berth_image_archive_module_export) berth_image_archive_module_export __attribute__ ((weak));

GPtrArray *
berth_image_archive_import_full (BerthDaemon *daemon, const char *ns, GInputStream *input, const char *base_name,
                                 BerthImageArchiveProgress progress, gpointer progress_data,
                                 GCancellable *cancellable, GError **error)
{
  __typeof__ (berth_image_archive_module_import) *import =
    MODULE_FUNC ("image-archive", berth_image_archive_module_import, error);
  if (import == NULL)
    return NULL;
  return import (daemon, ns, input, base_name, progress, progress_data, cancellable, error);
}

GPtrArray *
berth_image_archive_import (BerthDaemon *daemon, const char *ns, GInputStream *input, const char *base_name,
                            GCancellable *cancellable, GError **error)
{
  return berth_image_archive_import_full (daemon, ns, input, base_name, NULL, NULL, cancellable, error);
}

gboolean
berth_image_archive_export (BerthDaemon *daemon, const char *ns, const char *const *names, GOutputStream *output,
                            GCancellable *cancellable, GError **error)
{
  __typeof__ (berth_image_archive_module_export) *export =
    MODULE_FUNC ("image-archive", berth_image_archive_module_export, error);
  if (export == NULL)
    return FALSE;
  return export (daemon, ns, names, output, cancellable, error);
}

/* ---------------- registry client (libsoup, TLS) ---------------- */

extern __typeof__ (berth_distribution_module_pull) berth_distribution_module_pull __attribute__ ((weak));
extern __typeof__ (berth_distribution_module_push) berth_distribution_module_push __attribute__ ((weak));

char *
berth_distribution_pull (BerthDaemon *daemon, const char *ns, const BerthPullOptions *options,
                         BerthTransferProgressFunc progress, gpointer progress_data, char **target_out,
                         GCancellable *cancellable, GError **error)
{
  __typeof__ (berth_distribution_module_pull) *pull = MODULE_FUNC ("registry-client", berth_distribution_module_pull, error);
  return pull ? pull (daemon, ns, options, progress, progress_data, target_out, cancellable, error) : NULL;
}

char *
berth_distribution_push (BerthDaemon *daemon, const char *ns, const BerthPushOptions *options,
                         BerthTransferProgressFunc progress, gpointer progress_data, GCancellable *cancellable,
                         GError **error)
{
  __typeof__ (berth_distribution_module_push) *push = MODULE_FUNC ("registry-client", berth_distribution_module_push, error);
  return push ? push (daemon, ns, options, progress, progress_data, cancellable, error) : NULL;
}

/* ---------------- metrics endpoint (libsoup) ---------------- */

extern __typeof__ (berth_metrics_server_module_new) berth_metrics_server_module_new __attribute__ ((weak));
extern __typeof__ (berth_metrics_server_module_get_address) berth_metrics_server_module_get_address
  __attribute__ ((weak));
extern __typeof__ (berth_metrics_server_module_stop) berth_metrics_server_module_stop __attribute__ ((weak));

BerthMetricsServer *
berth_metrics_server_new (BerthDaemon *daemon, const char *address, GError **error)
{
  __typeof__ (berth_metrics_server_module_new) *new_server =
    MODULE_FUNC ("metrics-http", berth_metrics_server_module_new, error);
  return new_server ? new_server (daemon, address, error) : NULL;
}

/* A server exists: its module is open. */
const char *
berth_metrics_server_get_address (BerthMetricsServer *self)
{
  return MODULE_FUNC ("metrics-http", berth_metrics_server_module_get_address, NULL) (self);
}

void
berth_metrics_server_stop (BerthMetricsServer *self)
{
  MODULE_FUNC ("metrics-http", berth_metrics_server_module_stop, NULL) (self);
}
