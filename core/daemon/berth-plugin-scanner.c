/* berth-plugin-scanner — opens one plugin in a throwaway process, like GStreamer's
 * gst-plugin-scanner: a plugin that crashes while loading kills this process, not
 * berthd. Prints the descriptor as a key file on stdout; exit 0 on success, 1 with
 * the reason on stderr otherwise. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <berth/berth.h>
#include "berth-plugin-module.h"

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      fprintf (stderr, "usage: %s PLUGIN.so\n", argv[0]);
      return 2;
    }
  g_autoptr (GError) error = NULL;
  BerthPluginModule *module = berth_plugin_module_new (argv[1]);
  if (!berth_plugin_module_open (module, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  const BerthPluginDescriptor *desc = berth_plugin_module_get_descriptor (module);
  g_autoptr (GKeyFile) out = g_key_file_new ();
  g_autofree char *abi = g_strdup_printf ("%u.%u", desc->major_version, desc->minor_version);
  g_key_file_set_string (out, "plugin", "abi", abi);
  g_key_file_set_string (out, "plugin", "type", desc->type);
  g_key_file_set_string (out, "plugin", "name", desc->name);
  g_key_file_set_string (out, "plugin", "description", desc->description ? desc->description : "");
  g_key_file_set_string (out, "plugin", "version", desc->version ? desc->version : "");
  g_key_file_set_string (out, "plugin", "license", desc->license ? desc->license : "");
  g_key_file_set_string (out, "plugin", "origin", desc->origin ? desc->origin : "");
  guint n = desc->requires ? g_strv_length ((char **) desc->requires) : 0;
  g_key_file_set_string_list (out, "plugin", "requires", desc->requires, n);
  g_autofree char *text = g_key_file_to_data (out, NULL, NULL);
  fputs (text, stdout);
  return fflush (stdout) == 0 ? 0 : 1;
}
