/* berth-log.h — berthd's log writer: a level threshold, journald when stderr is the
 * journal (structured fields kept), plain lines otherwise. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @level: error, critical, warning, message, info, debug. FALSE for an unknown name. */
gboolean berth_log_setup (const char *level);
/* Changes the threshold of a running daemon (config reload); FALSE for an unknown name. */
gboolean berth_log_set_level (const char *level);

G_END_DECLS
