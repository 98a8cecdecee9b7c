/* berth-error.c — the shared error domain and errno helpers. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <gio/gio.h>
#include <berth/berth-error.h>

G_DEFINE_QUARK (berth-error-quark, berth_error)

gboolean
berth_throw_errno (GError **error, const char *format, ...)
{
  int saved_errno = errno;
  va_list args;
  va_start (args, format);
  g_autofree char *context = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno), "%s: %s", context,
               g_strerror (saved_errno));
  errno = saved_errno;
  return FALSE;
}

gboolean
berth_throw (GError **error, BerthErrorCode code, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, BERTH_ERROR, code, message);
  return FALSE;
}

BerthErrorCode
berth_error_to_code (const GError *error)
{
  if (error == NULL)
    return 0;
  if (error->domain == BERTH_ERROR)
    return (BerthErrorCode) error->code;
  if (error->domain == G_IO_ERROR)
    {
      switch (error->code)
        {
        case G_IO_ERROR_NOT_FOUND: return BERTH_ERROR_NOT_FOUND;
        case G_IO_ERROR_EXISTS: return BERTH_ERROR_ALREADY_EXISTS;
        case G_IO_ERROR_CANCELLED: return BERTH_ERROR_CANCELLED;
        case G_IO_ERROR_TIMED_OUT: return BERTH_ERROR_DEADLINE_EXCEEDED;
        case G_IO_ERROR_PERMISSION_DENIED: return BERTH_ERROR_PERMISSION_DENIED;
        case G_IO_ERROR_INVALID_ARGUMENT:
        case G_IO_ERROR_INVALID_DATA:
        case G_IO_ERROR_INVALID_FILENAME: return BERTH_ERROR_INVALID_ARGUMENT;
        case G_IO_ERROR_NOT_SUPPORTED: return BERTH_ERROR_UNIMPLEMENTED;
        case G_IO_ERROR_NO_SPACE: return BERTH_ERROR_RESOURCE_EXHAUSTED;
        case G_IO_ERROR_BUSY:
        case G_IO_ERROR_NOT_EMPTY: return BERTH_ERROR_FAILED_PRECONDITION;
        default: return BERTH_ERROR_UNKNOWN;
        }
    }
  if (error->domain == G_FILE_ERROR)
    {
      switch (error->code)
        {
        case G_FILE_ERROR_NOENT: return BERTH_ERROR_NOT_FOUND;
        case G_FILE_ERROR_EXIST: return BERTH_ERROR_ALREADY_EXISTS;
        case G_FILE_ERROR_ACCES:
        case G_FILE_ERROR_PERM: return BERTH_ERROR_PERMISSION_DENIED;
        case G_FILE_ERROR_INVAL: return BERTH_ERROR_INVALID_ARGUMENT;
        case G_FILE_ERROR_NOSPC: return BERTH_ERROR_RESOURCE_EXHAUSTED;
        default: return BERTH_ERROR_UNKNOWN;
        }
    }
  if (error->domain == G_KEY_FILE_ERROR)
    return BERTH_ERROR_INVALID_ARGUMENT;
  return BERTH_ERROR_UNKNOWN;
}
