/* shim-runtime.c — how berth-shim runs the OCI runtime (runc, crun, …): each command
 * with --root and --log in the state directory and the stdio it is given, its error
 * taken from the last line it logged; the init's exit status written atomically to
 * STATE_DIR/exit; and how the shim dies before it is ready (a reason on the pipe). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

void
die (int ready_fd, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (ready_fd >= 0)
    dprintf (ready_fd, "err %s\n", msg);
  else
    fprintf (stderr, "berth-shim: %s\n", msg);
  _exit (1);
}

long long
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Runs the OCI runtime with @argv (argv[0] unused: runtime and --root are put first);
 * stdio as given. Returns its exit status, or -1. */
int
run_runtime (char *const argv[], int in, int out, int err)
{
  char *full[32];
  int n = 0;
  full[n++] = (char *) runtime;
  full[n++] = (char *) "--root";
  full[n++] = runtime_root;
  full[n++] = (char *) "--log";
  full[n++] = log_file;
  for (int i = 0; argv[i] != NULL && n < 31; i++)
    full[n++] = argv[i];
  full[n] = NULL;
  pid_t pid = fork ();
  if (pid < 0)
    return -1;
  if (pid == 0)
    {
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      if ((in >= 0 && dup2 (in, 0) < 0) || (out >= 0 && dup2 (out, 1) < 0) || (err >= 0 && dup2 (err, 2) < 0))
        _exit (127);
      execv (runtime, full);
      _exit (127);
    }
  int status;
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* The last line the runtime logged, for error messages: runc and crun log JSON lines
 * whose "msg" says what went wrong. */
void
runtime_error (char *buf, size_t size)
{
  snprintf (buf, size, "%s failed (no log)", runtime);
  int fd = open (log_file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  char data[8192];
  ssize_t n = read (fd, data, sizeof data - 1);
  close (fd);
  if (n <= 0)
    return;
  data[n] = '\0';
  while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
    data[--n] = '\0';
  char *line = strrchr (data, '\n');
  line = line ? line + 1 : data;
  char *msg = strstr (line, "\"msg\":\"");
  if (msg != NULL)
    {
      msg += 7;
      char *end = strstr (msg, "\",\"");
      if (end == NULL)
        end = strrchr (msg, '"');
      if (end != NULL)
        *end = '\0';
      line = msg;
    }
  size_t len = strlen (line);
  if (len >= size)
    len = size - 1; /* the tail of a long message is the least useful part */
  memcpy (buf, line, len);
  buf[len] = '\0';
  for (char *p = buf; *p; p++)
    if (*p == '\n')
      *p = ' ';
}

void
write_exit_file (void)
{
  char tmp[4200], text[64];
  snprintf (tmp, sizeof tmp, "%s.tmp", exit_file);
  int len = snprintf (text, sizeof text, "%d %lld\n", exit_status, exited_at_ns);
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  if (write (fd, text, len) != len || fsync (fd) < 0)
    {
      close (fd);
      return;
    }
  close (fd);
  rename (tmp, exit_file);
}
