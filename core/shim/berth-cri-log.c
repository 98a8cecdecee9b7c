/* berth-cri-log — containerd's binary:// logging driver, writing Kubernetes' CRI log
 * format (cri-log.h) for a CRI container whose shim is not berth-shim (a shim v2 such as
 * containerd-shim-runc-v2, which knows fifo://, file:// and binary:// stdio but not
 * berth-shim's cri://). The shim runs it as containerd documents:
 *
 *   berth-cri-log PATH [...]
 *
 * with the container's stdout on fd 3, its stderr on fd 4 and a readiness pipe on fd 5
 * (closed once the log is open). It exits when both streams have ended. PATH may be a
 * FIFO (berthd's output FIFO of a container without a log, read by Attach).
 * Plain libc, as berth-shim. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cri-log.h"

static CriLogStream streams[2];

int
main (int argc, char **argv)
{
  if (argc < 2)
    {
      fprintf (stderr, "usage: berth-cri-log PATH (stdout on fd 3, stderr on fd 4, readiness on fd 5)\n");
      return 2;
    }
  if (cri_log_open (argv[1]) < 0)
    {
      fprintf (stderr, "berth-cri-log: opening %s: %s\n", argv[1], strerror (errno));
      return 1;
    }
  streams[0] = (CriLogStream) { .fd = 3, .stream = "stdout" };
  streams[1] = (CriLogStream) { .fd = 4, .stream = "stderr" };
  for (int i = 0; i < 2; i++)
    if (fcntl (streams[i].fd, F_SETFL, fcntl (streams[i].fd, F_GETFL) | O_NONBLOCK) < 0)
      streams[i].fd = -1;
  close (5); /* ready: the shim's read of the pipe ends */
  while (streams[0].fd >= 0 || streams[1].fd >= 0)
    {
      struct pollfd fds[2] = { { streams[0].fd, POLLIN, 0 }, { streams[1].fd, POLLIN, 0 } };
      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          fprintf (stderr, "berth-cri-log: poll: %s\n", strerror (errno));
          return 1;
        }
      for (int i = 0; i < 2; i++)
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
          cri_log_pump (&streams[i]);
    }
  return 0;
}
