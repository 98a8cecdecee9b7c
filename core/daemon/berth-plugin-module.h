/* berth-plugin-module.h — a plugin's .so as a GTypeModule (shared by the registry and
 * the out-of-process scanner). */
#pragma once

#include <berth/berth-plugin.h>

G_BEGIN_DECLS

#define BERTH_TYPE_PLUGIN_MODULE (berth_plugin_module_get_type ())
G_DECLARE_FINAL_TYPE (BerthPluginModule, berth_plugin_module, BERTH, PLUGIN_MODULE, GTypeModule)

BerthPluginModule *berth_plugin_module_new (const char *path);
/* Opens the .so, finds and checks the descriptor (ABI first), registers its types.
 * Idempotent. The module stays resident once loaded: types of a running plugin can
 * never be unloaded safely. */
gboolean berth_plugin_module_open (BerthPluginModule *module, GError **error);
const BerthPluginDescriptor *berth_plugin_module_get_descriptor (BerthPluginModule *module);

/* Reads and checks a descriptor's fields before anything of the plugin runs. */
gboolean berth_plugin_descriptor_check (const BerthPluginDescriptor *desc, const char *path, GError **error);

G_END_DECLS
