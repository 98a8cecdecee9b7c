/* berth-modules.c — opening service modules on first use, and the daemon's entry points
 * into them. */
#include "config.h"

#include <gmodule.h>

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

gpointer
berth_module_symbol (const char *name, const char *symbol, GError **error)
{
  G_LOCK (opened);
  GModule *module = open_module (name, error);
  G_UNLOCK (opened);
  gpointer address = NULL;
  if (module != NULL && !g_module_symbol (module, symbol, &address))
    berth_throw (error, BERTH_ERROR_INTERNAL, "module %s: %s", name, g_module_error ());
  return address;
}

/* ---------------- image archives (libarchive) ---------------- */

/* Weak: defined only in a program that links berth-image-archive.c itself. */
extern __typeof__ (berth_image_archive_module_import) berth_image_archive_module_import __attribute__ ((weak));
extern __typeof__ (berth_image_archive_module_export) berth_image_archive_module_export __attribute__ ((weak));

GPtrArray *
berth_image_archive_import_full (BerthDaemon *daemon, const char *ns, GInputStream *input, const char *base_name,
                                 BerthImageArchiveProgress progress, gpointer progress_data,
                                 GCancellable *cancellable, GError **error)
{
  __typeof__ (berth_image_archive_module_import) *import = berth_image_archive_module_import;
  if (import == NULL)
    import = berth_module_symbol ("image-archive", "berth_image_archive_module_import", error);
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
  __typeof__ (berth_image_archive_module_export) *export = berth_image_archive_module_export;
  if (export == NULL)
    export = berth_module_symbol ("image-archive", "berth_image_archive_module_export", error);
  if (export == NULL)
    return FALSE;
  return export (daemon, ns, names, output, cancellable, error);
}
