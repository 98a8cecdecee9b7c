/* The daemon's side of BerthPluginContext: the registry fills one per plugin init. */
#pragma once

#include <berth/berth-plugin.h>

struct _BerthPluginContext {
  const char *id;
  const char *root;
  const char *state;
  const char *daemon_address;
  GKeyFile *keyfile;                /* the daemon config, may be NULL */
  const char *group;                /* the plugin's group in it */
  const BerthConfigKey *config_keys;
  GObject *(*lookup_instance) (gpointer registry, const char *type_or_id);
  gpointer registry;
  const char *const *program_dirs;  /* searched by find_program before BERTH_LIBEXEC_DIR */
};

/* Parses a BERTH_CONFIG_SIZE/INT value ("64M", "1024"). */
gboolean _berth_parse_size (const char *text, gint64 *value_out);
