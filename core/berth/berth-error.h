/* berth-error.h — the error domain shared by the core and plugins.
 *
 * The codes are numerically equal to gRPC status codes, so an error raised deep in a
 * plugin reaches a client with the right status without a translation table.
 */
#pragma once

#include <glib.h>
#include <unistd.h>

G_BEGIN_DECLS

#define BERTH_ERROR (berth_error_quark ())
GQuark berth_error_quark (void);

typedef enum {
  BERTH_ERROR_CANCELLED = 1,
  BERTH_ERROR_UNKNOWN = 2,
  BERTH_ERROR_INVALID_ARGUMENT = 3,
  BERTH_ERROR_DEADLINE_EXCEEDED = 4,
  BERTH_ERROR_NOT_FOUND = 5,
  BERTH_ERROR_ALREADY_EXISTS = 6,
  BERTH_ERROR_PERMISSION_DENIED = 7,
  BERTH_ERROR_RESOURCE_EXHAUSTED = 8,
  BERTH_ERROR_FAILED_PRECONDITION = 9,
  BERTH_ERROR_ABORTED = 10,
  BERTH_ERROR_OUT_OF_RANGE = 11,
  BERTH_ERROR_UNIMPLEMENTED = 12,
  BERTH_ERROR_INTERNAL = 13,
  BERTH_ERROR_UNAVAILABLE = 14,
  BERTH_ERROR_DATA_LOSS = 15,
  BERTH_ERROR_UNAUTHENTICATED = 16,
} BerthErrorCode;

/* Sets @error from errno (saved first), prefixed with the formatted context, e.g.
 * berth_throw_errno (error, "opening %s", path). Always returns FALSE. */
gboolean berth_throw_errno (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);
/* Sets a BERTH_ERROR of @code. Always returns FALSE. */
gboolean berth_throw (GError **error, BerthErrorCode code, const char *format, ...) G_GNUC_PRINTF (3, 4);
/* Maps any GError (BERTH_ERROR, G_IO_ERROR, G_FILE_ERROR, …) to a gRPC status code. */
BerthErrorCode berth_error_to_code (const GError *error);

/* An fd that closes itself: `berth_autofd int fd = open (...)`. (g_autofd needs GLib 2.76.) */
static inline void
berth_close_fdp (int *fdp)
{
  if (*fdp >= 0)
    {
      int saved = errno;
      close (*fdp);
      errno = saved;
    }
}
#define berth_autofd __attribute__ ((cleanup (berth_close_fdp)))
/* Hands an fd out of an autofd variable. */
static inline int
berth_steal_fd (int *fdp)
{
  int fd = *fdp;
  *fdp = -1;
  return fd;
}

G_END_DECLS
