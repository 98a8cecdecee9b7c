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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cri-log.h"
#include "shim-request.h"

#define MAX_WAITERS 64
#define LINE_MAX_LEN 512
/* `runc ps --format json` output read at most: some 500 000 pids. */
#define PIDS_MAX_OUTPUT (4 << 20)

static const char *state_dir, *runtime, *container_id, *bundle;
static char runtime_root[4096], pid_file[4096], log_file[4096], exit_file[4096], sock_path[4096];
static pid_t init_pid;
/* A process's terminal: the pty master and the client's FIFOs it is copied to/from. */
typedef struct {
  int master, in, out;
} Console;
#define NO_CONSOLE { -1, -1, -1 }
static Console init_console = NO_CONSOLE;
static int started, paused, exited, exit_status;
static long long exited_at_ns;
/* A waiter: a connection waiting for the exit of init (exec = -1) or an exec. */
typedef struct {
  int fd;
  int exec;
} Waiter;
static Waiter waiters[MAX_WAITERS];
static int n_waiters;

#define MAX_EXECS 64
typedef struct {
  char id[128];
  pid_t pid; /* 0 until started */
  int used, exited, status;
  long long exited_at;
  Console console;
} Exec;
static Exec execs[MAX_EXECS];
/* With cri://PATH as STDOUT/STDERR, init's output comes through these pipes and is
 * written to PATH in the CRI log format. */
static CriLogStream cri_streams[2] = { { .fd = -1 }, { .fd = -1 } };

static void die (int ready_fd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3), noreturn));
static void
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

static long long
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Runs the OCI runtime with @argv (argv[0] unused: runtime and --root are put first);
 * stdio as given. Returns its exit status, or -1. */
static int
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
static void
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

/* Receives the pty master the runtime sends over the console socket. */
static int
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
static int
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

static int
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

static void
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

/* A reply longer than a line (pids): the client reads as it comes (SO_SNDTIMEO bounds a
 * client that does not). */
static void
write_all (int fd, const char *data, size_t len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      data += n;
      len -= (size_t) n;
    }
}

static void reply (int fd, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
reply (int fd, const char *fmt, ...)
{
  char line[LINE_MAX_LEN + 64];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (line, sizeof line - 1, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  if (n > (int) sizeof line - 2)
    n = sizeof line - 2;
  line[n++] = '\n';
  ssize_t ignored = write (fd, line, n);
  (void) ignored;
}

static void
reap (void)
{
  int status;
  pid_t pid;
  while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
    {
      int code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
      int which = -2;
      if (pid == init_pid && !exited)
        {
          exited = 1;
          exit_status = code;
          exited_at_ns = now_ns ();
          write_exit_file ();
          which = -1;
        }
      for (int e = 0; e < MAX_EXECS && which == -2; e++)
        if (execs[e].used && execs[e].pid == pid && !execs[e].exited)
          {
            execs[e].exited = 1;
            execs[e].status = code;
            execs[e].exited_at = now_ns ();
            which = e;
          }
      if (which == -2)
        continue;
      for (int i = 0; i < n_waiters;)
        if (waiters[i].exec == which)
          {
            if (which < 0)
              reply (waiters[i].fd, "exit %d %lld", exit_status, exited_at_ns);
            else
              reply (waiters[i].fd, "exit %d %lld", execs[which].status, execs[which].exited_at);
            close (waiters[i].fd);
            waiters[i] = waiters[--n_waiters];
          }
        else
          i++;
    }
}

static int
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

/* A fresh short path for a console socket: the state dir's can pass sun_path's 108
 * bytes, and a relative one breaks with runtimes that chdir into the bundle. */
static int
console_socket_path (char *path, size_t size)
{
  char dir[] = "/tmp/berth-tty.XXXXXX";
  if (mkdtemp (dir) == NULL)
    return -1;
  snprintf (path, size, "%s/sock", dir);
  return 0;
}

static void
console_socket_remove (const char *path)
{
  unlink (path);
  char dir[64];
  snprintf (dir, sizeof dir, "%.*s", (int) (strrchr (path, '/') - path), path);
  rmdir (dir);
}

/* A console socket at @path, listening. */
static int
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

static void
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
static int
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

/* What each verb on the container (no exec id) does: 0 when done (the connection is
 * closed), -1 to keep the connection open, 1 when the shim should exit afterwards. */
typedef int (*VerbFunc) (int fd, const ShimRequest *req);

/* start: runs the runtime's start on the created container. */
static int
verb_start (int fd, const ShimRequest *req)
{
  char err[600];
  if (started)
    return reply (fd, "err task %s already started", container_id), 0;
  char *argv[] = { (char *) "start", (char *) container_id, NULL };
  if (run_runtime (argv, -1, -1, -1) != 0)
    {
      runtime_error (err, sizeof err);
      return reply (fd, "err %s", err), 0;
    }
  started = 1;
  return reply (fd, "ok %d", (int) init_pid), 0;
}

/* kill: signals the init (with --all every process), directly when the runtime refuses a created task. */
static int
verb_kill (int fd, const ShimRequest *req)
{
  char err[600];
  int sig = req->signal, all = req->all;
  if (exited)
    return reply (fd, "err process already finished"), 0;
  char signame[16];
  snprintf (signame, sizeof signame, "%d", sig);
  char *argv_all[] = { (char *) "kill", (char *) "--all", (char *) container_id, signame, NULL };
  char *argv_one[] = { (char *) "kill", (char *) container_id, signame, NULL };
  if (run_runtime (all ? argv_all : argv_one, -1, -1, -1) != 0 && !exited)
    {
      /* The runtime refuses to signal a created-but-not-started task: signal it directly. */
      if (kill (init_pid, sig) < 0)
        {
          runtime_error (err, sizeof err);
          return reply (fd, "err %s", err), 0;
        }
    }
  return reply (fd, "ok"), 0;
}

/* pause, resume: freezes or thaws the container. */
static int
verb_pause_resume (int fd, const ShimRequest *req)
{
  char err[600];
  if (exited)
    return reply (fd, "err process already finished"), 0;
  char *argv[] = { req->verb == SHIM_REQ_PAUSE ? (char *) "pause" : (char *) "resume", (char *) container_id, NULL };
  if (run_runtime (argv, -1, -1, -1) != 0)
    {
      runtime_error (err, sizeof err);
      return reply (fd, "err %s", err), 0;
    }
  paused = req->verb == SHIM_REQ_PAUSE;
  return reply (fd, "ok"), 0;
}

/* update: applies the LinuxResources the plugin left in STATE_DIR/resources.json. */
static int
verb_update (int fd, const ShimRequest *req)
{
  char err[600];
  /* The plugin left the new LinuxResources in STATE_DIR/resources.json. */
  char resources[4200];
  snprintf (resources, sizeof resources, "%s/resources.json", state_dir);
  if (exited)
    return reply (fd, "err process already finished"), 0;
  char *argv[] = { (char *) "update", (char *) "--resources", resources, (char *) container_id, NULL };
  if (run_runtime (argv, -1, -1, -1) != 0)
    {
      runtime_error (err, sizeof err);
      return reply (fd, "err %s", err), 0;
    }
  return reply (fd, "ok"), 0;
}

/* resize: the terminal of the init, or of exec @req->exec_id. */
static int
verb_resize (int fd, const ShimRequest *req)
{
  struct winsize ws = { 0 };
  unsigned w = req->width, h = req->height;
  int e = req->exec_id[0] ? find_exec (req->exec_id) : -1;
  if (req->exec_id[0] && e < 0)
    return reply (fd, "err exec %s: not found", req->exec_id), 0;
  int master = e >= 0 ? execs[e].console.master : init_console.master;
  if (master < 0)
    return reply (fd, "err %s has no terminal", e >= 0 ? req->exec_id : container_id), 0;
  ws.ws_col = w;
  ws.ws_row = h;
  if (ioctl (master, TIOCSWINSZ, &ws) < 0)
    return reply (fd, "err resize: %s", strerror (errno)), 0;
  return reply (fd, "ok"), 0;
}

/* pids: the runtime's `ps --format json`, on one reply line. */
static int
verb_pids (int fd, const ShimRequest *req)
{
  char err[600];
  /* `ps --format json` prints one line: a JSON array of host pids, some 8 bytes each,
   * so far longer than a reply line. Into a memfd, not a pipe: the runtime is waited
   * for before anything is read, and would block on a full pipe (64 KiB). */
  int out = memfd_create ("berth-ps", MFD_CLOEXEC);
  if (out < 0)
    return reply (fd, "err memfd: %s", strerror (errno)), 0;
  char *argv[] = { (char *) "ps", (char *) "--format", (char *) "json", (char *) container_id, NULL };
  int rc = run_runtime (argv, -1, out, -1);
  off_t size = lseek (out, 0, SEEK_END);
  if (rc != 0 || size < 0 || size > PIDS_MAX_OUTPUT)
    {
      close (out);
      if (rc == 0)
        return reply (fd, "err %s ps printed %lld bytes, over %d", runtime, (long long) size, PIDS_MAX_OUTPUT), 0;
      runtime_error (err, sizeof err);
      return reply (fd, "err %s", err), 0;
    }
  char *text = malloc ((size_t) size + 1);
  ssize_t n = text != NULL ? pread (out, text, (size_t) size, 0) : -1;
  close (out);
  if (n < 0)
    {
      free (text);
      return reply (fd, "err reading %s ps output: %s", runtime, strerror (errno)), 0;
    }
  text[n] = '\0';
  text[strcspn (text, "\n")] = '\0';
  write_all (fd, "ok ", 3);
  write_all (fd, text, strlen (text));
  write_all (fd, "\n", 1);
  free (text);
  return 0;
}

/* wait: answers at once if the init exited, else keeps the connection until it does. */
static int
verb_wait (int fd, const ShimRequest *req)
{
  if (exited)
    {
      reply (fd, "exit %d %lld", exit_status, exited_at_ns);
      return 0;
    }
  if (n_waiters == MAX_WAITERS)
    return reply (fd, "err too many waiters"), 0;
  waiters[n_waiters++] = (Waiter) { fd, -1 };
  return -1; /* keep the connection open */
}

/* state: created, running, paused or stopped, with the pid or the exit status. */
static int
verb_state (int fd, const ShimRequest *req)
{
  if (exited)
    reply (fd, "stopped %d %lld", exit_status, exited_at_ns);
  else
    reply (fd, "%s %d", paused ? "paused" : started ? "running" : "created", (int) init_pid);
  return 0;
}

/* delete: ends a never-started init, deletes the container; the shim exits after. */
static int
verb_delete (int fd, const ShimRequest *req)
{
  if (!exited && started)
    return reply (fd, "err task %s is still running", container_id), 0;
  if (!exited)
    {
      /* Never started: end the init the runtime left waiting. */
      kill (init_pid, SIGKILL);
      while (!exited)
        {
          int status;
          if (waitpid (init_pid, &status, 0) == init_pid)
            {
              exited = 1;
              exit_status = 128 + SIGKILL;
              exited_at_ns = now_ns ();
              write_exit_file ();
            }
          else if (errno != EINTR)
            break;
        }
    }
  char *argv[] = { (char *) "delete", (char *) "--force", (char *) container_id, NULL };
  run_runtime (argv, -1, -1, -1);
  reply (fd, "exit %d %lld", exit_status, exited_at_ns);
  return 1;
}

static const VerbFunc verbs[] = {
  [SHIM_REQ_START] = verb_start,
  [SHIM_REQ_KILL] = verb_kill,
  [SHIM_REQ_PAUSE] = verb_pause_resume,
  [SHIM_REQ_RESUME] = verb_pause_resume,
  [SHIM_REQ_UPDATE] = verb_update,
  [SHIM_REQ_RESIZE] = verb_resize,
  [SHIM_REQ_PIDS] = verb_pids,
  [SHIM_REQ_WAIT] = verb_wait,
  [SHIM_REQ_STATE] = verb_state,
  [SHIM_REQ_DELETE] = verb_delete,
};

/* Handles one request; returns 1 when the shim should exit afterwards. */
static int
handle (int fd, const char *buf, size_t len)
{
  ShimRequest req;
  const char *bad = NULL;
  if (shim_request_parse (buf, len, &req, &bad) < 0)
    {
      int shown = (int) strcspn (buf, "\n");
      return reply (fd, "err %s: \"%.*s\"", bad, shown > 64 ? 64 : shown, buf), 0;
    }
  static const char *const exec_verbs[] = { [SHIM_REQ_START] = "start", [SHIM_REQ_KILL] = "kill", [SHIM_REQ_WAIT] = "wait",
                                            [SHIM_REQ_STATE] = "state", [SHIM_REQ_DELETE] = "delete", [SHIM_REQ_ADD] = "add" };
  /* resize takes an exec id too, but answers for a terminal, not a process. */
  if (req.exec_id[0] != '\0' && req.verb != SHIM_REQ_RESIZE)
    return handle_exec (fd, exec_verbs[req.verb], req.exec_id, req.signal);
  if ((size_t) req.verb < sizeof verbs / sizeof verbs[0] && verbs[req.verb] != NULL)
    return verbs[req.verb](fd, &req);
  return reply (fd, "err unknown request"), 0;
}

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
