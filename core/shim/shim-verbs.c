/* shim-verbs.c — berth-shim's answers on shim.sock: one request line parsed
 * (shim-request.c), dispatched through the table of verbs on the container (start,
 * kill, pause, resume, update, resize, pids, wait, state, delete) or to shim-exec.c
 * when it names an exec, and answered with one line; exits reaped and told to the
 * connections waiting for them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

/* `runc ps --format json` output read at most: some 500 000 pids. */
#define PIDS_MAX_OUTPUT (4 << 20)

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

void
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

void
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
int
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
