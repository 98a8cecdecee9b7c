/* berth-plugin-context.c — what a plugin's init can ask of the daemon. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <berth/berth-plugin.h>
#include "berth-plugin-context-private.h"

const char *
berth_plugin_context_get_id (BerthPluginContext *context)
{
  return context->id;
}

const char *
berth_plugin_context_get_root (BerthPluginContext *context)
{
  return context->root;
}

const char *
berth_plugin_context_get_state (BerthPluginContext *context)
{
  return context->state;
}

const char *
berth_plugin_context_get_daemon_address (BerthPluginContext *context)
{
  return context->daemon_address;
}

static const BerthConfigKey *
find_key (BerthPluginContext *context, const char *key)
{
  for (const BerthConfigKey *k = context->config_keys; k != NULL && k->name != NULL; k++)
    if (g_str_equal (k->name, key))
      return k;
  g_critical ("plugin %s asked for config key \"%s\" it did not declare", context->id, key);
  return NULL;
}

char *
berth_plugin_context_get_string (BerthPluginContext *context, const char *key)
{
  const BerthConfigKey *declared = find_key (context, key);
  if (context->keyfile != NULL && g_key_file_has_key (context->keyfile, context->group, key, NULL))
    return g_key_file_get_string (context->keyfile, context->group, key, NULL);
  return declared ? g_strdup (declared->default_value) : NULL;
}

gboolean
berth_plugin_context_get_boolean (BerthPluginContext *context, const char *key)
{
  g_autofree char *value = berth_plugin_context_get_string (context, key);
  return value != NULL && (g_ascii_strcasecmp (value, "true") == 0 || g_str_equal (value, "1"));
}

gboolean
_berth_parse_size (const char *text, gint64 *value_out)
{
  if (text == NULL || *text == '\0')
    return FALSE;
  char *end = NULL;
  errno = 0;
  gint64 value = g_ascii_strtoll (text, &end, 10);
  if (errno != 0 || end == text)
    return FALSE;
  gint64 factor = 1;
  switch (*end)
    {
    case '\0': break;
    case 'k': case 'K': factor = 1024; end++; break;
    case 'm': case 'M': factor = 1024 * 1024; end++; break;
    case 'g': case 'G': factor = 1024 * 1024 * 1024; end++; break;
    default: return FALSE;
    }
  if (*end != '\0' || value < 0 || value > G_MAXINT64 / factor)
    return FALSE;
  *value_out = value * factor;
  return TRUE;
}

gint64
berth_plugin_context_get_int (BerthPluginContext *context, const char *key)
{
  g_autofree char *value = berth_plugin_context_get_string (context, key);
  gint64 parsed = 0;
  /* Values were validated when the config was loaded. */
  if (value != NULL && !_berth_parse_size (value, &parsed))
    parsed = g_ascii_strtoll (value, NULL, 10);
  return parsed;
}

GObject *
berth_plugin_context_get_instance (BerthPluginContext *context, const char *type_or_id)
{
  if (context->lookup_instance == NULL)
    return NULL;
  return context->lookup_instance (context->registry, type_or_id);
}

char *
berth_plugin_context_find_program (BerthPluginContext *context, const char *name)
{
  for (const char *const *dir = context->program_dirs; dir != NULL && *dir != NULL; dir++)
    {
      g_autofree char *candidate = g_build_filename (*dir, name, NULL);
      if (g_file_test (candidate, G_FILE_TEST_IS_EXECUTABLE))
        return g_steal_pointer (&candidate);
    }
  g_autofree char *installed = g_build_filename (BERTH_LIBEXEC_DIR, name, NULL);
  if (g_file_test (installed, G_FILE_TEST_IS_EXECUTABLE))
    return g_steal_pointer (&installed);
  return g_find_program_in_path (name);
}
