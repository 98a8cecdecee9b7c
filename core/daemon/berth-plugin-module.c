/* berth-plugin-module.c — loading a plugin's .so through GTypeModule. */
#include "config.h"

#include <berth/berth-error.h>
#include "berth-plugin-module.h"

struct _BerthPluginModule {
  GTypeModule parent_instance;
  char *path;
  GModule *gmodule;
  const BerthPluginDescriptor *descriptor;
  gboolean types_registered;
  GError *load_error; /* why the last load failed, for open() to report */
};

G_DEFINE_FINAL_TYPE (BerthPluginModule, berth_plugin_module, G_TYPE_TYPE_MODULE)

gboolean
berth_plugin_descriptor_check (const BerthPluginDescriptor *desc, const char *path, GError **error)
{
  /* Read before any other field: a plugin of another ABI may lay them out differently.
   * Minor releases only append (vfuncs to core-allocated vtables, reserved slots of
   * plugin-allocated structs), so an older minor works; a newer one may call what this
   * berthd lacks, and another major is another ABI. */
  if (desc->major_version != BERTH_MAJOR_VERSION || desc->minor_version > BERTH_MINOR_VERSION)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                        "%s: plugin built against berth %u.%u, but this berthd is %u.%u and loads plugins built "
                        "against %u.0 to %u.%u; rebuild the plugin against berth-plugin-1 of this berth",
                        path, desc->major_version, desc->minor_version, BERTH_MAJOR_VERSION, BERTH_MINOR_VERSION,
                        BERTH_MAJOR_VERSION, BERTH_MAJOR_VERSION, BERTH_MINOR_VERSION);
  if (desc->type == NULL || *desc->type == '\0' || desc->name == NULL || *desc->name == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s: plugin descriptor has no type or name", path);
  if (strchr (desc->name, '/') != NULL || strchr (desc->type, '/') != NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s: plugin type and name must not contain '/'", path);
  if (desc->init == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s: plugin descriptor has no init function", path);
  return TRUE;
}

static gboolean
plugin_module_load (GTypeModule *type_module)
{
  BerthPluginModule *self = BERTH_PLUGIN_MODULE (type_module);
  g_clear_error (&self->load_error);
  if (self->gmodule == NULL)
    {
      self->gmodule = g_module_open (self->path, G_MODULE_BIND_LOCAL | G_MODULE_BIND_LAZY);
      if (self->gmodule == NULL)
        {
          berth_throw (&self->load_error, BERTH_ERROR_FAILED_PRECONDITION, "%s: not a loadable plugin: %s",
                       self->path, g_module_error ());
          return FALSE;
        }
      gpointer symbol = NULL;
      if (!g_module_symbol (self->gmodule, BERTH_PLUGIN_DESCRIPTOR_SYMBOL, &symbol) || symbol == NULL)
        {
          berth_throw (&self->load_error, BERTH_ERROR_FAILED_PRECONDITION,
                       "%s: no \"%s\" symbol; a plugin declares itself with BERTH_PLUGIN_DEFINE", self->path,
                       BERTH_PLUGIN_DESCRIPTOR_SYMBOL);
          g_module_close (g_steal_pointer (&self->gmodule));
          return FALSE;
        }
      if (!berth_plugin_descriptor_check (symbol, self->path, &self->load_error))
        {
          g_module_close (g_steal_pointer (&self->gmodule));
          return FALSE;
        }
      self->descriptor = symbol;
      g_module_make_resident (self->gmodule);
    }
  /* GTypeModule calls load again after an unuse; dynamic types are registered once. */
  if (!self->types_registered && self->descriptor->register_types != NULL)
    self->descriptor->register_types (type_module);
  self->types_registered = TRUE;
  return TRUE;
}

static void
plugin_module_unload (GTypeModule *type_module)
{
  /* Resident: nothing to do; the GModule stays open for the process's life. */
}

static void
berth_plugin_module_finalize (GObject *object)
{
  BerthPluginModule *self = BERTH_PLUGIN_MODULE (object);
  g_free (self->path);
  g_clear_error (&self->load_error);
  G_OBJECT_CLASS (berth_plugin_module_parent_class)->finalize (object);
}

static void
berth_plugin_module_class_init (BerthPluginModuleClass *klass)
{
  GTypeModuleClass *module_class = G_TYPE_MODULE_CLASS (klass);
  module_class->load = plugin_module_load;
  module_class->unload = plugin_module_unload;
  G_OBJECT_CLASS (klass)->finalize = berth_plugin_module_finalize;
}

static void
berth_plugin_module_init (BerthPluginModule *self)
{
}

BerthPluginModule *
berth_plugin_module_new (const char *path)
{
  BerthPluginModule *self = g_object_new (BERTH_TYPE_PLUGIN_MODULE, NULL);
  self->path = g_strdup (path);
  g_type_module_set_name (G_TYPE_MODULE (self), path);
  return self;
}

gboolean
berth_plugin_module_open (BerthPluginModule *self, GError **error)
{
  if (self->descriptor != NULL && self->types_registered)
    return TRUE;
  if (!g_type_module_use (G_TYPE_MODULE (self)))
    {
      if (self->load_error != NULL)
        g_propagate_error (error, g_steal_pointer (&self->load_error));
      else
        berth_throw (error, BERTH_ERROR_INTERNAL, "%s: cannot load plugin", self->path);
      return FALSE;
    }
  /* Keep the use count: a plugin is never unloaded. */
  return TRUE;
}

const BerthPluginDescriptor *
berth_plugin_module_get_descriptor (BerthPluginModule *self)
{
  return self->descriptor;
}
