/* shim-stdio.c — the container's streams as berth-shim holds them: stdio paths opened
 * (FIFOs, file:// logs, "-"), data moved between descriptors without ever blocking on
 * a reader, and terminals: the console socket a runtime sends a pty master over. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"

/* Receives the pty master the runtime sends over the console socket. */
int
receive_pty (int listen_fd)
{
  int c = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0)
    return -1;
  char data[256];
  char control[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { data, sizeof data };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
  int fd = -1;
  if (recvmsg (c, &msg, MSG_CMSG_CLOEXEC) >= 0)
    for (struct cmsghdr *cm = CMSG_FIRSTHDR (&msg); cm != NULL; cm = CMSG_NXTHDR (&msg, cm))
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
        memcpy (&fd, CMSG_DATA (cm), sizeof fd);
  close (c);
  return fd;
}

/* Moves what is readable from @from to @to; FALSE at end of stream. */
int
pump (int from, int to)
{
  char buf[32768];
  ssize_t n = read (from, buf, sizeof buf);
  if (n <= 0)
    return n < 0 && errno == EAGAIN;
  for (ssize_t done = 0; done < n;)
    {
      ssize_t w = write (to, buf + done, n - done);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            return 1; /* a full attach FIFO: output nobody reads is dropped */
          return 0;
        }
      done += w;
    }
  return 1;
}

int
open_stream (const char *path, int flags)
{
  if (strcmp (path, "-") == 0)
    return open ("/dev/null", O_RDWR | O_CLOEXEC);
  /* containerd's file:// stdio: output appended to a log file (detached containers);
   * cri:// (the CRI log format) where the shim cannot format, e.g. a terminal's output. */
  if (strncmp (path, "file://", 7) == 0 || strncmp (path, "cri://", 6) == 0)
    {
      const char *file = strchr (path, ':') + 3;
      struct stat st;
      if ((flags & O_ACCMODE) == O_RDONLY)
        return open ("/dev/null", O_RDONLY | O_CLOEXEC);
      /* berthd's attach FIFO (a CRI container without a log): never wait for its reader;
       * what does not fit is dropped (see pump). */
      if (stat (file, &st) == 0 && S_ISFIFO (st.st_mode))
        return open (file, O_RDWR | O_NONBLOCK | O_CLOEXEC);
      return open (file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    }
  /* O_RDWR on a FIFO never blocks waiting for the other side. */
  return open (path, flags | O_CLOEXEC);
}

/* A fresh short path for a console socket: the state dir's can pass sun_path's 108
 * bytes, and a relative one breaks with runtimes that chdir into the bundle. */
int
console_socket_path (char *path, size_t size)
{
  char dir[] = "/tmp/berth-tty.XXXXXX";
  if (mkdtemp (dir) == NULL)
    return -1;
  snprintf (path, size, "%s/sock", dir);
  return 0;
}

void
console_socket_remove (const char *path)
{
  unlink (path);
  char dir[64];
  snprintf (dir, sizeof dir, "%.*s", (int) (strrchr (path, '/') - path), path);
  rmdir (dir);
}

/* A console socket at @path, listening. */
int
console_listen (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof addr.sun_path)
    return errno = ENAMETOOLONG, -1;
  strcpy (addr.sun_path, path);
  unlink (path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (fd, 1) < 0)
    {
      int saved = errno;
      if (fd >= 0)
        close (fd);
      errno = saved;
      return -1;
    }
  return fd;
}

void
console_close (Console *console)
{
  int *fds[] = { &console->master, &console->in, &console->out };
  for (int i = 0; i < 3; i++)
    if (*fds[i] >= 0)
      {
        close (*fds[i]);
        *fds[i] = -1;
      }
}
