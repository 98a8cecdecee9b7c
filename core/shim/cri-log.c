/* cri-log.c — the CRI log format, for berth-shim (see cri-log.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cri-log.h"

static char log_path[4096];
static int log_fd = -1;
static int log_is_fifo;

/* A FIFO (berthd's attach FIFO of a container without a log path) is opened read-write
 * and non-blocking: opening it never waits for a reader, and a record that does not fit
 * is dropped instead of stalling the shim (output nobody attached to is not kept). */
static int
open_log (void)
{
  struct stat st;
  log_is_fifo = stat (log_path, &st) == 0 && S_ISFIFO (st.st_mode);
  if (log_is_fifo)
    return open (log_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  return open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int
cri_log_open (const char *path)
{
  if (strlen (path) >= sizeof log_path)
    return errno = ENAMETOOLONG, -1;
  strcpy (log_path, path);
  log_fd = open_log ();
  return log_fd < 0 ? -1 : 0;
}

/* Reopens when the path no longer names the file we write (rotated or removed). */
static void
follow_path (void)
{
  struct stat at_path, ours;
  if (log_fd >= 0 && stat (log_path, &at_path) == 0 && fstat (log_fd, &ours) == 0 && at_path.st_ino == ours.st_ino
      && at_path.st_dev == ours.st_dev)
    return;
  int fd = open_log ();
  if (fd < 0)
    return; /* keep writing the old file rather than lose the output */
  if (log_fd >= 0)
    close (log_fd);
  log_fd = fd;
}

static void
write_all (const char *data, size_t len)
{
  int queued = 0, size = log_is_fifo ? fcntl (log_fd, F_GETPIPE_SZ) : 0;
  /* Whole records only into a FIFO: a reader never sees half of one. */
  if (log_is_fifo && (size < 0 || ioctl (log_fd, FIONREAD, &queued) < 0 || len > (size_t) (size - queued)))
    return;
  while (len > 0)
    {
      ssize_t n = write (log_fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      data += n;
      len -= (size_t) n;
    }
}

static void
emit (const CriLogStream *s, const char *text, size_t len, int partial)
{
  struct timespec ts;
  struct tm tm;
  char head[96];
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  size_t n = strftime (head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t) snprintf (head + n, sizeof head - n, ".%09ldZ %s %c ", ts.tv_nsec, s->stream, partial ? 'P' : 'F');
  follow_path ();
  if (log_fd < 0)
    return;
  /* One write per record where it fits, so records of stdout and stderr never mix. */
  char record[sizeof head + CRI_LOG_LINE_MAX + 1];
  memcpy (record, head, n);
  memcpy (record + n, text, len);
  record[n + len] = '\n';
  write_all (record, n + len + 1);
}

int
cri_log_stream_init (CriLogStream *s, const char *stream)
{
  int fds[2];
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return -1;
  fcntl (fds[0], F_SETFL, fcntl (fds[0], F_GETFL) | O_NONBLOCK);
  s->fd = fds[0];
  s->stream = stream;
  s->len = 0;
  return fds[1];
}

int
cri_log_pump (CriLogStream *s)
{
  if (s->fd < 0)
    return 0;
  ssize_t n = read (s->fd, s->buf + s->len, sizeof s->buf - s->len);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return 1;
  if (n <= 0)
    {
      if (s->len > 0)
        emit (s, s->buf, s->len, 0);
      s->len = 0;
      close (s->fd);
      s->fd = -1;
      return 0;
    }
  s->len += (size_t) n;
  size_t start = 0;
  for (size_t i = s->len - (size_t) n; i < s->len; i++)
    if (s->buf[i] == '\n')
      {
        emit (s, s->buf + start, i - start, 0);
        start = i + 1;
      }
  if (start == 0 && s->len == sizeof s->buf)
    {
      emit (s, s->buf, s->len, 1);
      start = s->len;
    }
  /* Into a FIFO, a line's beginning goes at once: an attached client sees a prompt or an
   * `echo -n` as containerd's attach does, not when the line ends. */
  if (log_is_fifo && start < s->len)
    {
      emit (s, s->buf + start, s->len - start, 1);
      start = s->len;
    }
  memmove (s->buf, s->buf + start, s->len - start);
  s->len -= start;
  return 2;
}

void
cri_log_drain (CriLogStream *s)
{
  while (cri_log_pump (s) == 2)
    ;
}
