/* berth-sd.h — the few systemd service-manager calls berthd makes, without libsystemd.
 *
 * libsystemd pulled libgcrypt, liblz4, libzstd, liblzma and libcap into every berthd for
 * three tiny protocols: a datagram to $NOTIFY_SOCKET, $LISTEN_FDS and $WATCHDOG_USEC
 * (see sd_notify(3), sd_listen_fds(3), sd_watchdog_enabled(3)).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BERTH_SD_LISTEN_FDS_START 3

/* Sends @state to $NOTIFY_SOCKET; FALSE (nothing sent) when not run by systemd or on error. */
gboolean berth_sd_notify (const char *state);
gboolean berth_sd_notifyf (const char *format, ...) G_GNUC_PRINTF (1, 2);
/* The number of sockets passed by socket activation (0 when none); they start at
 * BERTH_SD_LISTEN_FDS_START and are made close-on-exec. Unsets the variables. */
int berth_sd_listen_fds (void);
/* The watchdog interval for this process in microseconds, 0 when none. */
guint64 berth_sd_watchdog_usec (void);

G_END_DECLS
