/* berth-shim — supervises one container, outliving berthd.
 *
 *   berth-shim STATE_DIR RUNTIME ID BUNDLE STDIN STDOUT STDERR [--terminal]   ("-" for no stream)
 *
 * A stream is a FIFO path, file://PATH (appended to) or, for STDOUT and STDERR alike,
 * cri://PATH: init's output written to PATH in the CRI log format (cri-log.h).
 *
 * With --terminal the runtime hands the container's pty master over a console socket;
 * the shim copies STDIN → pty and pty → STDOUT, and "resize W H" sets its window size.
 *
 * Started by the OCI runtime plugin with a readiness pipe on fd 3. It detaches (new
 * session, double fork), becomes the child subreaper, runs `RUNTIME create` with the
 * given FIFOs as the container's stdio, answers "ok PID" or "err MESSAGE" on fd 3, and
 * then serves STATE_DIR/shim.sock: one request line per connection —
 *   start | kill SIGNAL ALL | wait | state | pause | resume | pids | update | resize W H | delete
 * answered with one line: "ok [PID]", "exit STATUS NSEC", "created|running|paused PID",
 * "stopped STATUS NSEC" or "err MESSAGE". The exit status is also written atomically to
 * STATE_DIR/exit, so it survives this process too. start, kill, wait, state and delete
 * take an exec id as their last word to address an exec'd process instead of init;
 * "add ID" announces an exec (so a wait may precede its start); "start ID" runs `RUNTIME exec` with STATE_DIR/exec-ID.json (the process) and the
 * stdio paths in STATE_DIR/exec-ID.io (three lines) that the runtime plugin wrote.
 *
 * Plain libc: no allocation after fork, O_CLOEXEC everywhere, every call checked.
 *
 * This file starts the container (detach, the runtime's create, the readiness answer)
 * and serves shim.sock; the runtime is run by shim-runtime.c, streams and terminals are
 * shim-stdio.c's, the requests shim-verbs.c's and exec'd processes shim-exec.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"

/* The shim's state (see shim.h), one container's. */
const char *state_dir, *runtime, *container_id, *bundle;
char runtime_root[4096], pid_file[4096], log_file[4096], exit_file[4096], sock_path[4096];
pid_t init_pid;
Console init_console = NO_CONSOLE;
int started, paused, exited, exit_status;
long long exited_at_ns;
Waiter waiters[MAX_WAITERS];
int n_waiters;
Exec execs[MAX_EXECS];
CriLogStream cri_streams[2] = { { .fd = -1 }, { .fd = -1 } };

/* Leaves berthd's process tree (berthd may die; we must not), becomes the subreaper of
 * what the runtime starts, and settles in STATE_DIR with the paths the shim uses. */
static void
detach (int ready)
{
  pid_t pid = fork ();
  if (pid < 0)
    die (ready, "fork: %s", strerror (errno));
  if (pid > 0)
    _exit (0);
  if (setsid () < 0)
    die (ready, "setsid: %s", strerror (errno));
  pid = fork ();
  if (pid < 0)
    die (ready, "fork: %s", strerror (errno));
  if (pid > 0)
    _exit (0);
  if (prctl (PR_SET_CHILD_SUBREAPER, 1) < 0)
    die (ready, "PR_SET_CHILD_SUBREAPER: %s", strerror (errno));
  if (chdir (state_dir) < 0)
    die (ready, "chdir %s: %s", state_dir, strerror (errno));

  snprintf (runtime_root, sizeof runtime_root, "%s/runtime", state_dir);
  snprintf (pid_file, sizeof pid_file, "%s/init.pid", state_dir);
  snprintf (log_file, sizeof log_file, "%s/runtime.log", state_dir);
  snprintf (exit_file, sizeof exit_file, "%s/exit", state_dir);
  snprintf (sock_path, sizeof sock_path, "%s/shim.sock", state_dir);
  if (mkdir (runtime_root, 0700) < 0 && errno != EEXIST)
    die (ready, "mkdir %s: %s", runtime_root, strerror (errno));
}

/* shim.sock, where berthd's requests come. */
static int
listen_shim_socket (int ready)
{
  int lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  /* Relative to STATE_DIR, our working directory: an absolute path there can pass
   * sun_path's 108 bytes (CRI ids are 64 characters). */
  strcpy (addr.sun_path, "shim.sock");
  unlink (sock_path);
  if (lfd < 0 || bind (lfd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (lfd, 16) < 0)
    die (ready, "listening on %s: %s", sock_path, strerror (errno));
  return lfd;
}

/* The init's pid, as the runtime's create wrote it. */
static pid_t
read_init_pid (int ready)
{
  char buf[32] = "";
  int pfd = open (pid_file, O_RDONLY | O_CLOEXEC);
  ssize_t n = pfd >= 0 ? read (pfd, buf, sizeof buf - 1) : -1;
  if (pfd >= 0)
    close (pfd);
  pid_t pid = n > 0 ? (pid_t) atoi (buf) : 0;
  if (pid <= 0)
    die (ready, "%s create left no pid in %s", runtime, pid_file);
  return pid;
}

/* One request from berthd on shim.sock; returns 1 when the shim is to exit. */
static int
serve_client (int lfd)
{
  int cfd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
  if (cfd < 0)
    return 0;
  struct timeval tv = { 5, 0 };
  setsockopt (cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  char line[LINE_MAX_LEN];
  ssize_t len = read (cfd, line, sizeof line - 1);
  if (len <= 0)
    {
      close (cfd);
      return 0;
    }
  line[len] = '\0';
  reap (); /* answer from the freshest state */
  int done = handle (cfd, line, (size_t) len);
  if (done >= 0)
    close (cfd);
  if (done == 1)
    {
      cri_log_drain (&cri_streams[0]);
      cri_log_drain (&cri_streams[1]);
      unlink (sock_path);
      return 1;
    }
  return 0;
}

/* Until a delete: pumps the CRI log pipes and terminals, reaps on SIGCHLD and answers
 * requests. Returns the shim's exit code. */
static int
serve (int lfd, int sfd)
{
  for (;;)
    {
      /* The sockets, the CRI log pipes, then each live terminal's master and input. */
      struct pollfd fds[4 + 2 * (MAX_EXECS + 1)] = { { lfd, POLLIN, 0 }, { sfd, POLLIN, 0 },
                                                      { cri_streams[0].fd, POLLIN, 0 }, { cri_streams[1].fd, POLLIN, 0 } };
      Console *owners[4 + 2 * (MAX_EXECS + 1)] = { NULL, NULL, NULL, NULL };
      int nfds = 4;
      for (int c = -1; c < MAX_EXECS; c++)
        {
          Console *console = c < 0 ? &init_console : execs[c].used ? &execs[c].console : NULL;
          if (console == NULL || console->master < 0)
            continue;
          owners[nfds] = console;
          fds[nfds++] = (struct pollfd) { console->master, POLLIN, 0 };
          if (console->in >= 0)
            {
              owners[nfds] = console;
              fds[nfds++] = (struct pollfd) { console->in, POLLIN, 0 };
            }
        }
      if (poll (fds, nfds, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return 1;
        }
      for (int i = 2; i < 4; i++)
        if (fds[i].revents & (POLLIN | POLLHUP))
          cri_log_pump (&cri_streams[i - 2]);
      for (int i = 4; i < nfds; i++)
        {
          Console *console = owners[i];
          if (!(fds[i].revents & (POLLIN | POLLHUP)))
            continue;
          if (fds[i].fd == console->master && !pump (console->master, console->out))
            /* The process's side of the terminal is closed: it has exited. */
            console_close (console);
          else if (fds[i].fd == console->in && console->in >= 0 && !pump (console->in, console->master))
            {
              close (console->in);
              console->in = -1;
            }
        }
      if (fds[1].revents & POLLIN)
        {
          struct signalfd_siginfo si;
          while (read (sfd, &si, sizeof si) == sizeof si)
            ;
          reap ();
        }
      if ((fds[0].revents & POLLIN) && serve_client (lfd))
        return 0;
    }
}

int
main (int argc, char **argv)
{
  int terminal = argc == 9 && strcmp (argv[8], "--terminal") == 0;
  if (argc != 8 && !terminal)
    {
      fprintf (stderr, "usage: berth-shim STATE_DIR RUNTIME ID BUNDLE STDIN STDOUT STDERR [--terminal]\n");
      return 2;
    }
  state_dir = argv[1];
  runtime = argv[2];
  container_id = argv[3];
  bundle = argv[4];
  int ready = 3;
  /* The readiness pipe must reach neither the runtime nor the container. */
  if (fcntl (ready, F_SETFD, FD_CLOEXEC) < 0)
    ready = -1;

  detach (ready);

  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGPIPE);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  sigdelset (&mask, SIGPIPE);
  int sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0)
    die (ready, "signalfd: %s", strerror (errno));

  int in = open_stream (argv[5], O_RDONLY | O_NONBLOCK);
  int out, err_fd;
  if (!terminal && strncmp (argv[6], "cri://", 6) == 0)
    {
      if (cri_log_open (argv[6] + 6) < 0)
        die (ready, "opening log %s: %s", argv[6] + 6, strerror (errno));
      out = cri_log_stream_init (&cri_streams[0], "stdout");
      err_fd = strcmp (argv[7], argv[6]) == 0 ? cri_log_stream_init (&cri_streams[1], "stderr")
                                              : open_stream (argv[7], O_RDWR);
    }
  else
    {
      out = open_stream (argv[6], O_RDWR);
      err_fd = open_stream (argv[7], O_RDWR);
    }
  if (in < 0 || out < 0 || err_fd < 0)
    die (ready, "opening the container's stdio: %s", strerror (errno));
  if (strcmp (argv[5], "-") != 0)
    fcntl (in, F_SETFL, fcntl (in, F_GETFL) & ~O_NONBLOCK);

  int lfd = listen_shim_socket (ready);

  char console_path[4200];
  int console_fd = -1;
  if (terminal)
    {
      struct sockaddr_un caddr = { .sun_family = AF_UNIX };
      if (console_socket_path (console_path, sizeof console_path) < 0)
        die (ready, "console socket: %s", strerror (errno));
      if (strlen (console_path) >= sizeof caddr.sun_path)
        die (ready, "console socket path %s is too long", console_path);
      strcpy (caddr.sun_path, console_path);
      unlink (console_path);
      console_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (console_fd < 0 || bind (console_fd, (struct sockaddr *) &caddr, sizeof caddr) < 0 || listen (console_fd, 1) < 0)
        die (ready, "console socket %s: %s", console_path, strerror (errno));
    }
  char *create_plain[] = { (char *) "create", (char *) "--bundle", (char *) bundle, (char *) "--pid-file", pid_file,
                           (char *) container_id, NULL };
  char *create_tty[] = { (char *) "create", (char *) "--bundle", (char *) bundle, (char *) "--pid-file", pid_file,
                         (char *) "--console-socket", console_path, (char *) container_id, NULL };
  int devnull_in = terminal ? open ("/dev/null", O_RDWR | O_CLOEXEC) : -1;
  int create_rc = terminal ? run_runtime (create_tty, devnull_in, devnull_in, devnull_in)
                           : run_runtime (create_plain, in, out, err_fd);
  if (devnull_in >= 0)
    close (devnull_in);
  if (terminal && create_rc == 0)
    {
      init_console.master = receive_pty (console_fd);
      close (console_fd);
      console_socket_remove (console_path);
      if (init_console.master < 0)
        die (ready, "the runtime sent no terminal over %s", console_path);
      /* O_RDWR: a client that has not opened its end yet must not read as end of input. */
      init_console.in = strcmp (argv[5], "-") != 0 ? open (argv[5], O_RDWR | O_NONBLOCK | O_CLOEXEC) : -1;
      init_console.out = dup (out);
    }
  if (create_rc != 0)
    {
      char msg[600];
      runtime_error (msg, sizeof msg);
      unlink (sock_path);
      if (terminal)
        console_socket_remove (console_path);
      die (ready, "%s", msg);
    }
  close (in);
  close (out);
  close (err_fd);
  init_pid = read_init_pid (ready);
  if (ready >= 0)
    {
      dprintf (ready, "ok %d\n", (int) init_pid);
      close (ready);
    }
  int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0)
    {
      dup2 (devnull, 0);
      dup2 (devnull, 1);
      dup2 (devnull, 2);
      close (devnull);
    }

  return serve (lfd, sfd);
}
