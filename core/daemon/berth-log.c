/* berth-log.c — structured logging with a threshold. */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "berth-log.h"

/* Read by every thread that logs, changed by a config reload on the main thread. */
static gint threshold = G_LOG_LEVEL_INFO;
static gboolean to_journal;

static GLogWriterOutput
berth_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  /* GLib's levels grow less severe as their bit grows. */
  if ((gint) (level & G_LOG_LEVEL_MASK) > g_atomic_int_get (&threshold))
    return G_LOG_WRITER_HANDLED;
  if (to_journal && g_log_writer_journald (level, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_standard_streams (level, fields, n_fields, user_data);
}

gboolean
berth_log_set_level (const char *level)
{
  static const struct {
    const char *name;
    GLogLevelFlags flag;
  } levels[] = {
    { "error", G_LOG_LEVEL_ERROR },     { "critical", G_LOG_LEVEL_CRITICAL }, { "warning", G_LOG_LEVEL_WARNING },
    { "message", G_LOG_LEVEL_MESSAGE }, { "info", G_LOG_LEVEL_INFO },         { "debug", G_LOG_LEVEL_DEBUG },
  };
  for (guint i = 0; i < G_N_ELEMENTS (levels); i++)
    if (g_str_equal (levels[i].name, level))
      {
        g_atomic_int_set (&threshold, levels[i].flag);
        /* g_debug() drops messages before they reach the writer unless this is on. */
        g_log_set_debug_enabled (levels[i].flag >= G_LOG_LEVEL_INFO);
        return TRUE;
      }
  return FALSE;
}

gboolean
berth_log_setup (const char *level)
{
  gboolean found = berth_log_set_level (level);
  if (!found)
    g_log_set_debug_enabled (TRUE);
  to_journal = g_log_writer_is_journald (fileno (stderr));
  /* GLib allows one writer per process: set once, here. */
  g_log_set_writer_func (berth_log_writer, NULL, NULL);
  return found;
}
