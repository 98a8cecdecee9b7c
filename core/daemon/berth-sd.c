/* berth-sd.c — sd_notify, sd_listen_fds and sd_watchdog_enabled, written out. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "berth-sd.h"

/* $NOTIFY_SOCKET names an AF_UNIX datagram socket: a path, or "@name" in the abstract namespace. */
gboolean
berth_sd_notify (const char *state)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");
  if (path == NULL || (path[0] != '/' && path[0] != '@'))
    return FALSE;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  size_t len = strlen (path);
  if (len >= sizeof addr.sun_path)
    return FALSE;
  memcpy (addr.sun_path, path, len);
  if (addr.sun_path[0] == '@')
    addr.sun_path[0] = '\0';
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return FALSE;
  socklen_t addr_len = offsetof (struct sockaddr_un, sun_path) + len;
  ssize_t sent;
  do
    sent = sendto (fd, state, strlen (state), MSG_NOSIGNAL, (struct sockaddr *) &addr, addr_len);
  while (sent < 0 && errno == EINTR);
  close (fd);
  return sent >= 0;
}

gboolean
berth_sd_notifyf (const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *state = g_strdup_vprintf (format, args);
  va_end (args);
  return berth_sd_notify (state);
}

/* The variables are for this process only: $LISTEN_PID (and $WATCHDOG_PID) say which. */
static gboolean
for_this_process (const char *pid_variable)
{
  const char *pid = g_getenv (pid_variable);
  if (pid == NULL)
    return TRUE; /* systemd always sets it; be as lenient as sd_watchdog_enabled */
  guint64 value = 0;
  return g_ascii_string_to_unsigned (pid, 10, 1, G_MAXINT, &value, NULL) && (pid_t) value == getpid ();
}

int
berth_sd_listen_fds (void)
{
  const char *fds = g_getenv ("LISTEN_FDS");
  guint64 n = 0;
  int result = 0;
  if (fds != NULL && g_getenv ("LISTEN_PID") != NULL && for_this_process ("LISTEN_PID")
      && g_ascii_string_to_unsigned (fds, 10, 0, 1024, &n, NULL))
    {
      for (int fd = BERTH_SD_LISTEN_FDS_START; fd < BERTH_SD_LISTEN_FDS_START + (int) n; fd++)
        fcntl (fd, F_SETFD, FD_CLOEXEC);
      result = (int) n;
    }
  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_FDS");
  g_unsetenv ("LISTEN_FDNAMES");
  return result;
}

guint64
berth_sd_watchdog_usec (void)
{
  const char *usec = g_getenv ("WATCHDOG_USEC");
  guint64 value = 0;
  if (usec == NULL || !for_this_process ("WATCHDOG_PID")
      || !g_ascii_string_to_unsigned (usec, 10, 1, G_MAXUINT64 - 1, &value, NULL))
    return 0;
  return value;
}
