/* berth-pause — the process that holds a pod sandbox's namespaces.
 *
 * It is the sandbox container's init: it does nothing but wait, reaping any child that
 * is reparented to it (containers sharing the pod's PID namespace), until SIGTERM or
 * SIGINT ends it. Built static so that it runs from a root filesystem holding only
 * itself, which berthd prepares locally: no image comes from a registry.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  (void) argv;
  if (argc > 1)
    {
      fprintf (stderr, "usage: berth-pause (it takes no arguments)\n");
      return 2;
    }
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGCHLD);
  if (sigprocmask (SIG_BLOCK, &set, NULL) < 0)
    {
      perror ("sigprocmask");
      return 1;
    }
  for (;;)
    {
      int sig = 0;
      if (sigwait (&set, &sig) != 0)
        continue;
      if (sig == SIGCHLD)
        {
          while (waitpid (-1, NULL, WNOHANG) > 0)
            ;
          continue;
        }
      return 0;
    }
}
