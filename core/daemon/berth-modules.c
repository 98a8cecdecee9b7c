/* berth-modules.c — opening service modules on first use. The daemon's entry points
 * into each module live beside its API (berth-metrics.c, core/image/berth-image-modules.c). */
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
