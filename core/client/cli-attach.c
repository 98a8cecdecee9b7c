/* cli-attach.c — a process's stdio for `berth run` and `berth exec` without -d: FIFOs
 * the shim opens as the process's stdin/stdout/stderr, threads that copy them to and
 * from the terminal, the local terminal in raw mode with its size passed on, and
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT forwarded to the process. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "cli-container.h"

/* After the process exits, output still in flight is read until the pipe has been
 * quiet this long (a daemonized child may hold the pipe open forever). */
#define DRAIN_QUIET_MS 200

gboolean
cli_attach_prepare (CliAttach *attach, GError **error)
{
  attach->out_fd = attach->err_fd = -1;
  attach->dir = g_dir_make_tmp ("berth-io-XXXXXX", error);
  if (attach->dir == NULL)
    return FALSE;
  attach->stdout_path = g_build_filename (attach->dir, "stdout", NULL);
  if (!attach->tty)
    attach->stderr_path = g_build_filename (attach->dir, "stderr", NULL);
  if (attach->interactive)
    attach->stdin_path = g_build_filename (attach->dir, "stdin", NULL);
  const char *paths[] = { attach->stdin_path, attach->stdout_path, attach->stderr_path };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    if (paths[i] != NULL && mkfifo (paths[i], 0600) < 0)
      return berth_throw_errno (error, "mkfifo %s", paths[i]);
  /* Readers open first, without blocking, so the shim's writers never wait on us. */
  attach->out_fd = open (attach->stdout_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (attach->out_fd < 0)
    return berth_throw_errno (error, "opening %s", attach->stdout_path);
  if (attach->stderr_path != NULL)
    {
      attach->err_fd = open (attach->stderr_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (attach->err_fd < 0)
        return berth_throw_errno (error, "opening %s", attach->stderr_path);
    }
  return TRUE;
}

typedef struct {
  CliAttach *attach;
  int from;
  int to;
} Copy;

/* Copies until end of file, or, once the process has exited, until the pipe is quiet. */
static gpointer
copy_out (gpointer data)
{
  g_autofree Copy *copy = data;
  char buf[32 * 1024];
  for (;;)
    {
      gboolean exited = g_atomic_int_get (&copy->attach->exited);
      struct pollfd pfd = { .fd = copy->from, .events = POLLIN };
      int ready = poll (&pfd, 1, exited ? DRAIN_QUIET_MS : 100);
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready == 0)
        {
          if (exited)
            break;
          continue;
        }
      ssize_t n = read (copy->from, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        {
          /* POLLHUP before any writer opened: nothing to read yet. */
          if (!exited)
            g_usleep (10000);
          continue;
        }
      if (n == 0)
        {
          /* End of file before the process ran means no writer has opened yet. */
          if (exited)
            break;
          g_usleep (10000);
          continue;
        }
      if (n < 0)
        break;
      for (ssize_t done = 0; done < n;)
        {
          ssize_t w = write (copy->to, buf + done, n - done);
          if (w < 0 && errno == EINTR)
            continue;
          if (w <= 0)
            return NULL;
          done += w;
        }
    }
  return NULL;
}

static void
close_stdin (CliAttach *attach)
{
  g_autoptr (BerthGrpcClient) client = cli_client_new (attach->cli, NULL);
  if (client == NULL)
    return;
  Containerd__Services__Tasks__V1__CloseIORequest request = CONTAINERD__SERVICES__TASKS__V1__CLOSE_IOREQUEST__INIT;
  request.container_id = attach->id;
  request.exec_id = attach->exec_id ? attach->exec_id : (char *) "";
  request.stdin = TRUE;
  ProtobufCMessage *response = berth_grpc_client_unary (client, TASKS "CloseIO", &request.base, &google__protobuf__empty__descriptor, NULL);
  if (response != NULL)
    protobuf_c_message_free_unpacked (response, NULL);
}

static gpointer
copy_in (gpointer data)
{
  CliAttach *attach = data;
  /* The shim holds the read end already, so this does not block. */
  int fifo = open (attach->stdin_path, O_WRONLY | O_CLOEXEC);
  if (fifo < 0)
    return NULL;
  char buf[32 * 1024];
  for (;;)
    {
      ssize_t n = read (STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      if (write (fifo, buf, n) != n)
        break;
    }
  close (fifo);
  /* With a terminal the shim keeps the pty open: tell it input has ended. */
  if (attach->tty && !g_atomic_int_get (&attach->exited))
    close_stdin (attach);
  return NULL;
}

void
cli_attach_resize (CliAttach *attach, BerthGrpcClient *client)
{
  struct winsize ws;
  if (ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
    return;
  Containerd__Services__Tasks__V1__ResizePtyRequest request = CONTAINERD__SERVICES__TASKS__V1__RESIZE_PTY_REQUEST__INIT;
  request.container_id = attach->id;
  request.exec_id = attach->exec_id ? attach->exec_id : (char *) "";
  request.width = ws.ws_col;
  request.height = ws.ws_row;
  ProtobufCMessage *response = berth_grpc_client_unary (client, TASKS "ResizePty", &request.base, &google__protobuf__empty__descriptor, NULL);
  if (response != NULL)
    protobuf_c_message_free_unpacked (response, NULL);
}

/* SIGWINCH resizes the pty; SIGINT/SIGTERM/SIGHUP/SIGQUIT are passed to the process
 * (docker's sig-proxy); SIGUSR2 from ourselves ends the thread. */
static gpointer
signal_loop (gpointer data)
{
  CliAttach *attach = data;
  g_autoptr (BerthGrpcClient) client = cli_client_new (attach->cli, NULL);
  if (client == NULL)
    return NULL;
  for (;;)
    {
      int signo = 0;
      if (sigwait (&attach->signals, &signo) != 0)
        continue;
      if (signo == SIGUSR2)
        break;
      if (signo == SIGWINCH)
        {
          if (attach->tty)
            cli_attach_resize (attach, client);
          continue;
        }
      cli_task_kill (client, attach->id, attach->exec_id, signo, FALSE, NULL);
    }
  return NULL;
}

void
cli_attach_block_signals (CliAttach *attach)
{
  sigemptyset (&attach->signals);
  int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR2 };
  for (guint i = 0; i < G_N_ELEMENTS (forwarded); i++)
    sigaddset (&attach->signals, forwarded[i]);
  pthread_sigmask (SIG_BLOCK, &attach->signals, NULL);
}

/* After the process was created: start copying (and the terminal, signals). */
void
cli_attach_start (CliAttach *attach)
{
  if (attach->tty && isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &attach->saved_termios) == 0)
    {
      struct termios raw = attach->saved_termios;
      cfmakeraw (&raw);
      raw.c_oflag |= OPOST; /* keep \n → \r\n for our own messages */
      attach->termios_saved = tcsetattr (STDIN_FILENO, TCSANOW, &raw) == 0;
    }
  Copy *out = g_new0 (Copy, 1);
  *out = (Copy) { attach, attach->out_fd, STDOUT_FILENO };
  attach->out_thread = g_thread_new ("stdout", copy_out, out);
  if (attach->err_fd >= 0)
    {
      Copy *err = g_new0 (Copy, 1);
      *err = (Copy) { attach, attach->err_fd, STDERR_FILENO };
      attach->err_thread = g_thread_new ("stderr", copy_out, err);
    }
  if (attach->stdin_path != NULL)
    attach->in_thread = g_thread_new ("stdin", copy_in, attach); /* never joined: it may sit in read(0) */
  attach->signal_thread = g_thread_new ("signals", signal_loop, attach);
}

void
cli_attach_finish (CliAttach *attach)
{
  g_atomic_int_set (&attach->exited, 1);
  if (attach->out_thread)
    g_thread_join (attach->out_thread);
  if (attach->err_thread)
    g_thread_join (attach->err_thread);
  if (attach->signal_thread)
    {
      kill (getpid (), SIGUSR2); /* every thread blocks it: only sigwait takes it */
      g_thread_join (attach->signal_thread);
    }
  if (attach->termios_saved)
    tcsetattr (STDIN_FILENO, TCSANOW, &attach->saved_termios);
  attach->out_thread = attach->err_thread = attach->signal_thread = NULL;
}

void
cli_attach_clear (CliAttach *attach)
{
  if (attach->out_fd >= 0)
    close (attach->out_fd);
  if (attach->err_fd >= 0)
    close (attach->err_fd);
  const char *paths[] = { attach->stdin_path, attach->stdout_path, attach->stderr_path };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    if (paths[i] != NULL)
      unlink (paths[i]);
  if (attach->dir != NULL)
    rmdir (attach->dir);
  g_free (attach->dir);
  g_free (attach->stdin_path);
  g_free (attach->stdout_path);
  g_free (attach->stderr_path);
}
