/* shim-exec.c — processes exec'd into the container: "add ID" announces one, "start
 * ID" runs `RUNTIME exec` with the process and stdio the runtime plugin left in
 * STATE_DIR/exec-ID.{json,io} (a terminal over a console socket when asked), and kill,
 * wait, state and delete address it by its id. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

int
find_exec (const char *id)
{
  for (int e = 0; e < MAX_EXECS; e++)
    if (execs[e].used && strcmp (execs[e].id, id) == 0)
      return e;
  return -1;
}

/* Reads the three stdio paths the plugin left for exec @id (paths[] point into @buf),
 * and whether it asked for a terminal (a fourth line "terminal"). */
static int
exec_stdio_paths (const char *id, char *buf, size_t size, char *paths[3], int *terminal)
{
  char path[4200];
  snprintf (path, sizeof path, "%s/exec-%s.io", state_dir, id);
  int f = open (path, O_RDONLY | O_CLOEXEC);
  if (f < 0)
    return -1;
  ssize_t n = read (f, buf, size - 1);
  close (f);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  char *save = NULL, *p = strtok_r (buf, "\n", &save);
  for (int i = 0; i < 3; i++, p = strtok_r (NULL, "\n", &save))
    {
      if (p == NULL)
        return -1;
      paths[i] = p;
    }
  *terminal = p != NULL && strcmp (p, "terminal") == 0;
  return 0;
}

/* Opens the three stdio paths the plugin left for exec @id. */
static int
exec_stdio (const char *id, int fds[3])
{
  char buf[3 * 1100 + 16], *paths[3];
  int terminal = 0;
  if (exec_stdio_paths (id, buf, sizeof buf, paths, &terminal) < 0)
    return -1;
  for (int i = 0; i < 3; i++)
    {
      fds[i] = open_stream (paths[i], i == 0 ? O_RDONLY | O_NONBLOCK : O_RDWR);
      if (fds[i] < 0)
        return -1;
      if (i == 0 && strcmp (paths[i], "-") != 0)
        fcntl (fds[0], F_SETFL, fcntl (fds[0], F_GETFL) & ~O_NONBLOCK);
    }
  return 0;
}

/* "add ID": the exec exists from now on, so a wait may come before its start. */
static int
add_exec (int fd, const char *id)
{
  if (find_exec (id) >= 0)
    return reply (fd, "err exec %s already exists", id), 0;
  for (int e = 0; e < MAX_EXECS; e++)
    if (!execs[e].used)
      {
        execs[e] = (Exec) { .used = 1, .console = NO_CONSOLE };
        snprintf (execs[e].id, sizeof execs[e].id, "%s", id);
        return reply (fd, "ok"), 0;
      }
  return reply (fd, "err too many exec processes"), 0;
}

static int
start_exec (int fd, const char *id)
{
  char err[600];
  int slot = find_exec (id);
  if (slot < 0)
    return reply (fd, "err exec %s: not found", id), 0;
  if (execs[slot].pid != 0)
    return reply (fd, "err exec %s already started", id), 0;
  char process[4200], pidpath[4200];
  snprintf (process, sizeof process, "%s/exec-%s.json", state_dir, id);
  snprintf (pidpath, sizeof pidpath, "%s/exec-%s.pid", state_dir, id);
  char pathbuf[3 * 1100 + 16], *paths[3];
  int terminal = 0;
  if (exec_stdio_paths (id, pathbuf, sizeof pathbuf, paths, &terminal) < 0)
    return reply (fd, "err exec %s: no stdio recorded", id), 0;
  int rc;
  Console console = NO_CONSOLE;
  if (terminal)
    {
      char console_path[64];
      if (console_socket_path (console_path, sizeof console_path) < 0)
        return reply (fd, "err console socket: %s", strerror (errno)), 0;
      int listener = console_listen (console_path);
      if (listener < 0)
        return reply (fd, "err console socket %s: %s", console_path, strerror (errno)), 0;
      char *argv[] = { (char *) "exec", (char *) "--detach", (char *) "--tty", (char *) "--console-socket", console_path,
                       (char *) "--pid-file", pidpath, (char *) "--process", process, (char *) container_id, NULL };
      int devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
      rc = run_runtime (argv, devnull, devnull, devnull);
      if (devnull >= 0)
        close (devnull);
      if (rc == 0)
        {
          console.master = receive_pty (listener);
          /* O_RDWR: a client that has not opened its end yet must not read as end of input. */
          console.in = strcmp (paths[0], "-") != 0 ? open (paths[0], O_RDWR | O_NONBLOCK | O_CLOEXEC) : -1;
          console.out = open_stream (paths[1], O_RDWR);
        }
      close (listener);
      console_socket_remove (console_path);
      if (rc == 0 && console.master < 0)
        {
          console_close (&console);
          return reply (fd, "err exec %s: the runtime sent no terminal", id), 0;
        }
    }
  else
    {
      int io[3] = { -1, -1, -1 };
      if (exec_stdio (id, io) < 0)
        return reply (fd, "err exec %s: no stdio recorded", id), 0;
      char *argv[] = { (char *) "exec", (char *) "--detach", (char *) "--pid-file", pidpath, (char *) "--process", process,
                       (char *) container_id, NULL };
      rc = run_runtime (argv, io[0], io[1], io[2]);
      for (int i = 0; i < 3; i++)
        close (io[i]);
    }
  if (rc != 0)
    {
      runtime_error (err, sizeof err);
      return reply (fd, "err %s", err), 0;
    }
  execs[slot].console = console;
  char buf[32] = "";
  int pfd = open (pidpath, O_RDONLY | O_CLOEXEC);
  ssize_t n = pfd >= 0 ? read (pfd, buf, sizeof buf - 1) : -1;
  if (pfd >= 0)
    close (pfd);
  if (n <= 0)
    return reply (fd, "err exec %s left no pid", id), 0;
  buf[n] = '\0';
  execs[slot].pid = (pid_t) atoi (buf);
  return reply (fd, "ok %d", (int) execs[slot].pid), 0;
}

/* Requests that name an exec: start ID | kill SIG ALL ID | wait ID | state ID | delete ID */
int
handle_exec (int fd, const char *verb, const char *id, int sig)
{
  if (strcmp (verb, "add") == 0)
    return add_exec (fd, id);
  if (strcmp (verb, "start") == 0)
    return start_exec (fd, id);
  int e = find_exec (id);
  if (e < 0)
    return reply (fd, "err exec %s: not found", id), 0;
  if (strcmp (verb, "kill") == 0)
    {
      if (execs[e].exited)
        return reply (fd, "err process already finished"), 0;
      if (execs[e].pid == 0)
        return reply (fd, "err exec %s is not started", id), 0;
      if (kill (execs[e].pid, sig) < 0)
        return reply (fd, "err kill exec %s: %s", id, strerror (errno)), 0;
      return reply (fd, "ok"), 0;
    }
  if (strcmp (verb, "wait") == 0)
    {
      if (execs[e].exited)
        return reply (fd, "exit %d %lld", execs[e].status, execs[e].exited_at), 0;
      if (n_waiters == MAX_WAITERS)
        return reply (fd, "err too many waiters"), 0;
      waiters[n_waiters++] = (Waiter) { fd, e };
      return -1;
    }
  if (strcmp (verb, "state") == 0)
    {
      if (execs[e].exited)
        return reply (fd, "stopped %d %lld", execs[e].status, execs[e].exited_at), 0;
      return reply (fd, "%s %d", execs[e].pid ? "running" : "created", (int) execs[e].pid), 0;
    }
  if (strcmp (verb, "delete") == 0)
    {
      if (!execs[e].exited && execs[e].pid != 0)
        return reply (fd, "err exec %s is still running", id), 0;
      reply (fd, "exit %d %lld", execs[e].status, execs[e].exited_at);
      console_close (&execs[e].console);
      execs[e].used = 0;
      return 0;
    }
  return reply (fd, "err unknown request %s", verb), 0;
}
