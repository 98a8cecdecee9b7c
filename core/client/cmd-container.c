/* cmd-container.c — berth run|ps|exec|logs|stop|kill|rm. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include <berth/berth-types.h>
#include "berth-cli.h"
#include "wire/berth-grpc-wire.h"
#include "image/berth-json.h"
#include "image/berth-spec.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb-c.h"

#define SPEC_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#define PROCESS_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define RUNC_OPTIONS_TYPE_URL "containerd.runc.v1.Options"
#define RUNTIME_NAME "io.containerd.runc.v2"
#define LOG_PATH_LABEL "berth/log-path"
#define DEFAULT_LOG_DIR "/var/log/berth"
/* After the process exits, output still in flight is read until the pipe has been
 * quiet this long (a daemonized child may hold the pipe open forever). */
#define DRAIN_QUIET_MS 200

#define TASKS "/containerd.services.tasks.v1.Tasks/"
#define CONTAINERS "/containerd.services.containers.v1.Containers/"

/* ---------------- small calls ---------------- */

static Containerd__Services__Containers__V1__Container *
container_get (BerthCli *cli, const char *id, GError **error)
{
  Containerd__Services__Containers__V1__GetContainerRequest request = CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
  request.id = (char *) id;
  GError *local = NULL;
  Containerd__Services__Containers__V1__GetContainerResponse *response = cli_unary (
    cli, CONTAINERS "Get", &request.base, &containerd__services__containers__v1__get_container_response__descriptor, &local);
  if (response == NULL)
    {
      if (g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        {
          berth_throw (error, BERTH_ERROR_NOT_FOUND, "no container %s in namespace %s (see `berth ps -a`)", id, cli->ns);
          g_error_free (local);
        }
      else
        g_propagate_error (error, local);
      return NULL;
    }
  Containerd__Services__Containers__V1__Container *container = response->container;
  response->container = NULL;
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return container;
}

/* The task's process, NULL with no error when the container has no task. */
static Containerd__V1__Types__Process *
task_get (BerthCli *cli, BerthGrpcClient *client, const char *id, const char *exec_id, GError **error)
{
  Containerd__Services__Tasks__V1__GetRequest request = CONTAINERD__SERVICES__TASKS__V1__GET_REQUEST__INIT;
  request.container_id = (char *) id;
  request.exec_id = (char *) (exec_id ? exec_id : "");
  GError *local = NULL;
  Containerd__Services__Tasks__V1__GetResponse *response =
    client ? berth_grpc_client_unary (client, TASKS "Get", &request.base, &containerd__services__tasks__v1__get_response__descriptor, &local)
           : cli_unary (cli, TASKS "Get", &request.base, &containerd__services__tasks__v1__get_response__descriptor, &local);
  if (response == NULL)
    {
      if (!g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        g_propagate_error (error, local);
      else
        g_error_free (local);
      return NULL;
    }
  Containerd__V1__Types__Process *process = response->process;
  response->process = NULL;
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return process;
}

static gboolean
task_kill (BerthGrpcClient *client, const char *id, const char *exec_id, int signo, gboolean all, GError **error)
{
  Containerd__Services__Tasks__V1__KillRequest request = CONTAINERD__SERVICES__TASKS__V1__KILL_REQUEST__INIT;
  request.container_id = (char *) id;
  request.exec_id = (char *) (exec_id ? exec_id : "");
  request.signal = signo;
  request.all = all;
  ProtobufCMessage *response = berth_grpc_client_unary (client, TASKS "Kill", &request.base, &google__protobuf__empty__descriptor, error);
  if (response == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (response, NULL);
  return TRUE;
}

static gboolean
task_delete (BerthCli *cli, const char *id, guint32 *exit_status, GError **error)
{
  Containerd__Services__Tasks__V1__DeleteTaskRequest request = CONTAINERD__SERVICES__TASKS__V1__DELETE_TASK_REQUEST__INIT;
  request.container_id = (char *) id;
  Containerd__Services__Tasks__V1__DeleteResponse *response =
    cli_unary (cli, TASKS "Delete", &request.base, &containerd__services__tasks__v1__delete_response__descriptor, error);
  if (response == NULL)
    return FALSE;
  if (exit_status)
    *exit_status = response->exit_status;
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return TRUE;
}

static gboolean
unary_empty (BerthCli *cli, const char *path, const ProtobufCMessage *request, GError **error)
{
  ProtobufCMessage *response = cli_unary (cli, path, request, &google__protobuf__empty__descriptor, error);
  if (response == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (response, NULL);
  return TRUE;
}

/* Removes the container record (@id NULL: there is none) and its snapshot; what is
 * already gone is fine. */
static gboolean
container_remove (BerthCli *cli, const char *id, const char *snapshotter, const char *snapshot_key, GError **error)
{
  GError *local = NULL;
  Containerd__Services__Containers__V1__DeleteContainerRequest request = CONTAINERD__SERVICES__CONTAINERS__V1__DELETE_CONTAINER_REQUEST__INIT;
  request.id = (char *) id;
  if (id != NULL && !unary_empty (cli, CONTAINERS "Delete", &request.base, &local)
      && !g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  g_clear_error (&local);
  if (snapshot_key != NULL && *snapshot_key)
    {
      Containerd__Services__Snapshots__V1__RemoveSnapshotRequest remove = CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
      remove.snapshotter = (char *) snapshotter;
      remove.key = (char *) snapshot_key;
      if (!unary_empty (cli, "/containerd.services.snapshots.v1.Snapshots/Remove", &remove.base, &local)
          && !g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, local);
          return FALSE;
        }
      g_clear_error (&local);
    }
  return TRUE;
}

static const char *
container_label (Containerd__Services__Containers__V1__Container *container, const char *key)
{
  for (size_t i = 0; i < container->n_labels; i++)
    if (strcmp (container->labels[i]->key, key) == 0)
      return container->labels[i]->value;
  return NULL;
}

/* ---------------- stdio: FIFOs, terminal, signals ---------------- */

typedef struct {
  BerthCli *cli;
  char *id;
  char *exec_id; /* NULL for the init process */
  gboolean tty;
  gboolean interactive;
  char *dir;
  char *stdin_path, *stdout_path, *stderr_path;
  int out_fd, err_fd;
  GThread *out_thread, *err_thread, *in_thread, *signal_thread;
  gint exited; /* atomic */
  struct termios saved_termios;
  gboolean termios_saved;
  sigset_t signals;
} Attach;

static gboolean
attach_prepare (Attach *attach, GError **error)
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
  Attach *attach;
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
close_stdin (Attach *attach)
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
  Attach *attach = data;
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

static void
resize (Attach *attach, BerthGrpcClient *client)
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
  Attach *attach = data;
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
            resize (attach, client);
          continue;
        }
      task_kill (client, attach->id, attach->exec_id, signo, FALSE, NULL);
    }
  return NULL;
}

static void
attach_block_signals (Attach *attach)
{
  sigemptyset (&attach->signals);
  int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR2 };
  for (guint i = 0; i < G_N_ELEMENTS (forwarded); i++)
    sigaddset (&attach->signals, forwarded[i]);
  pthread_sigmask (SIG_BLOCK, &attach->signals, NULL);
}

/* After the process was created: start copying (and the terminal, signals). */
static void
attach_start (Attach *attach)
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

static void
attach_finish (Attach *attach)
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

static void
attach_clear (Attach *attach)
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

/* Blocks until the process exits; its status. */
static gboolean
wait_exit (BerthCli *cli, const char *id, const char *exec_id, guint32 *status, GError **error)
{
  Containerd__Services__Tasks__V1__WaitRequest request = CONTAINERD__SERVICES__TASKS__V1__WAIT_REQUEST__INIT;
  request.container_id = (char *) id;
  request.exec_id = (char *) (exec_id ? exec_id : "");
  Containerd__Services__Tasks__V1__WaitResponse *response =
    cli_unary (cli, TASKS "Wait", &request.base, &containerd__services__tasks__v1__wait_response__descriptor, error);
  if (response == NULL)
    return FALSE;
  *status = response->exit_status;
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return TRUE;
}

/* ---------------- run ---------------- */

static gboolean
parse_size (const char *text, gint64 *bytes)
{
  char *end = NULL;
  double value = g_ascii_strtod (text, &end);
  if (end == text || value < 0)
    return FALSE;
  gint64 unit = 1;
  switch (g_ascii_tolower (*end))
    {
    case 0: break;
    case 'b': unit = 1; break;
    case 'k': unit = 1024; break;
    case 'm': unit = 1024 * 1024; break;
    case 'g': unit = 1024 * 1024 * 1024; break;
    default: return FALSE;
    }
  if (*end != 0 && end[1] != 0 && !(g_ascii_tolower (end[1]) == 'b' && end[2] == 0))
    return FALSE;
  *bytes = (gint64) (value * unit);
  return TRUE;
}

static char *
random_id (void)
{
  return g_strdup_printf ("%08x%08x", g_random_int (), g_random_int ());
}

static char *
log_path_for (BerthCli *cli, const char *id, GError **error)
{
  const char *base = g_getenv ("BERTH_LOG_DIR");
  g_autofree char *dir = g_build_filename (base && *base ? base : DEFAULT_LOG_DIR, cli->ns, NULL);
  if (g_mkdir_with_parents (dir, 0750) < 0)
    {
      berth_throw_errno (error, "creating log directory %s (set BERTH_LOG_DIR to put logs elsewhere)", dir);
      return NULL;
    }
  g_autofree char *name = g_strdup_printf ("%s.log", id);
  return g_build_filename (dir, name, NULL);
}

static Google__Protobuf__Any *
any_new (const char *type_url, guint8 *data, gsize len)
{
  Google__Protobuf__Any *any = g_new0 (Google__Protobuf__Any, 1);
  google__protobuf__any__init (any);
  any->type_url = (char *) type_url;
  any->value.data = data;
  any->value.len = len;
  return any;
}

static char *
json_to_text (JsonNode *node, gsize *len)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_root (generator, node);
  return json_generator_to_data (generator, len);
}

/* ---------------- run ---------------- */

/* The container's writable snapshot @key on @parent, in @snapshotter. */
static Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *
run_prepare_snapshot (BerthCli *cli, const char *snapshotter, const char *key, const char *parent, GError **error)
{
  Containerd__Services__Snapshots__V1__PrepareSnapshotRequest prepare = CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
  prepare.snapshotter = (char *) snapshotter;
  prepare.key = (char *) key;
  prepare.parent = (char *) parent;
  return cli_unary (cli, "/containerd.services.snapshots.v1.Snapshots/Prepare", &prepare.base,
                    &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor, error);
}

/* The container record: @spec, the runc options naming @runtime (NULL: the daemon's),
 * its snapshot (named @id) and, when detached, @log_path as its log label. */
static gboolean
run_create_container (BerthCli *cli, const char *id, const char *image_name, JsonNode *spec, const char *runtime,
                      const char *snap, const char *log_path, GError **error)
{
  gsize spec_len = 0;
  g_autofree char *spec_text = json_to_text (spec, &spec_len);
  Containerd__Runc__V1__Options runc = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  runc.binary_name = runtime ? (char *) runtime : (char *) "";
  gsize runc_len = protobuf_c_message_get_packed_size (&runc.base);
  g_autofree guint8 *runc_data = g_malloc (runc_len + 1);
  protobuf_c_message_pack (&runc.base, runc_data);
  g_autofree Google__Protobuf__Any *runc_any = any_new (RUNC_OPTIONS_TYPE_URL, runc_data, runc_len);
  g_autofree Google__Protobuf__Any *spec_any = any_new (SPEC_TYPE_URL, (guint8 *) spec_text, spec_len);
  Containerd__Services__Containers__V1__Container__Runtime rt = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
  rt.name = (char *) RUNTIME_NAME;
  rt.options = runc_any;
  Containerd__Services__Containers__V1__Container__LabelsEntry log_label = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry *labels[] = { &log_label };
  Containerd__Services__Containers__V1__Container container = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
  container.id = (char *) id;
  container.image = (char *) image_name;
  container.runtime = &rt;
  container.spec = spec_any;
  container.snapshotter = (char *) snap;
  container.snapshot_key = (char *) id;
  if (log_path != NULL)
    {
      log_label.key = (char *) LOG_PATH_LABEL;
      log_label.value = (char *) log_path;
      container.labels = labels;
      container.n_labels = 1;
    }
  Containerd__Services__Containers__V1__CreateContainerRequest create = CONTAINERD__SERVICES__CONTAINERS__V1__CREATE_CONTAINER_REQUEST__INIT;
  create.container = &container;
  ProtobufCMessage *created = cli_unary (cli, CONTAINERS "Create", &create.base,
                                         &containerd__services__containers__v1__create_container_response__descriptor, error);
  if (created == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (created, NULL);
  return TRUE;
}

/* The task on the prepared rootfs, with @attach's FIFOs as its stdio, or (@attach NULL:
 * detached) its output to @log_uri. */
static gboolean
run_create_task (BerthCli *cli, const char *id, Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *prepared,
                 Attach *attach, const char *log_uri, gboolean tty, GError **error)
{
  Containerd__Services__Tasks__V1__CreateTaskRequest create = CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_REQUEST__INIT;
  create.container_id = (char *) id;
  create.rootfs = prepared->mounts;
  create.n_rootfs = prepared->n_mounts;
  create.stdin = attach && attach->stdin_path ? attach->stdin_path : (char *) "";
  create.stdout = attach ? attach->stdout_path : (char *) log_uri;
  create.stderr = attach ? (attach->stderr_path ? attach->stderr_path : (char *) "") : (char *) log_uri;
  create.terminal = tty;
  ProtobufCMessage *task = cli_unary (cli, TASKS "Create", &create.base,
                                      &containerd__services__tasks__v1__create_task_response__descriptor, error);
  if (task == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (task, NULL);
  return TRUE;
}

int
cli_cmd_run (BerthCli *cli, int argc, char **argv)
{
  gboolean detach = FALSE, tty = FALSE, interactive = FALSE, rm = FALSE, read_only = FALSE, privileged = FALSE;
  g_autofree char *name = NULL, *workdir = NULL, *user = NULL, *memory = NULL, *runtime = NULL, *snapshotter = NULL;
  g_autofree char *hostname = NULL;
  double cpus = 0;
  gint64 pids_limit = 0;
  g_auto (GStrv) env = NULL, volumes = NULL, security_opts = NULL, cap_add = NULL, cap_drop = NULL;
  GOptionEntry entries[] = {
    { "detach", 'd', 0, G_OPTION_ARG_NONE, &detach, "run in the background, print the id; output goes to `berth logs`", NULL },
    { "tty", 't', 0, G_OPTION_ARG_NONE, &tty, "give the container a terminal", NULL },
    { "interactive", 'i', 0, G_OPTION_ARG_NONE, &interactive, "keep stdin open", NULL },
    { "rm", 0, 0, G_OPTION_ARG_NONE, &rm, "remove the container when it exits", NULL },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "container id (default: random)", "ID" },
    { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &env, "set an environment variable", "K=V" },
    { "volume", 'v', 0, G_OPTION_ARG_STRING_ARRAY, &volumes, "bind-mount a host path", "SRC:DST[:ro]" },
    { "workdir", 'w', 0, G_OPTION_ARG_STRING, &workdir, "working directory inside the container", "DIR" },
    { "user", 'u', 0, G_OPTION_ARG_STRING, &user, "user (name or uid[:gid]) to run as", "USER" },
    { "hostname", 'h', 0, G_OPTION_ARG_STRING, &hostname, "container host name", "NAME" },
    { "memory", 'm', 0, G_OPTION_ARG_STRING, &memory, "memory limit (e.g. 32m, 1g)", "SIZE" },
    { "cpus", 0, 0, G_OPTION_ARG_DOUBLE, &cpus, "CPU limit, in CPUs", "N" },
    { "pids-limit", 0, 0, G_OPTION_ARG_INT64, &pids_limit, "maximum number of processes", "N" },
    { "runtime", 0, 0, G_OPTION_ARG_STRING, &runtime, "OCI runtime binary: runc or crun (default: the daemon's)", "NAME" },
    { "snapshotter", 0, 0, G_OPTION_ARG_STRING, &snapshotter, "snapshotter (default: the daemon's)", "NAME" },
    { "read-only", 0, 0, G_OPTION_ARG_NONE, &read_only, "read-only root filesystem", NULL },
    { "privileged", 0, 0, G_OPTION_ARG_NONE, &privileged, "all capabilities and devices, no seccomp", NULL },
    { "security-opt", 0, 0, G_OPTION_ARG_STRING_ARRAY, &security_opts, "seccomp=unconfined or seccomp=PROFILE.json", "OPT" },
    { "cap-add", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cap_add, "add a capability", "CAP" },
    { "cap-drop", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cap_drop, "drop a capability", "CAP" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE [COMMAND [ARG…]] — run a command in a new container");
  g_option_context_set_help_enabled (context, FALSE); /* -h is --hostname, as in docker */
  g_option_context_set_strict_posix (context, TRUE);
  g_option_context_add_main_entries (context, entries, NULL);
  for (int i = 1; i < argc && argv[i][0] == '-'; i++)
    if (strcmp (argv[i], "--help") == 0)
      {
        g_autofree char *text = g_option_context_get_help (context, TRUE, NULL);
        g_print ("%s", text);
        return 0;
      }
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 2)
    return cli_usage (context, "run needs an IMAGE");
  const char *image_name = argv[1];
  BerthSpecOptions opts = { 0 };
  if (memory != NULL && !parse_size (memory, &opts.memory_limit))
    return cli_fail (NULL, "run: --memory %s is not a size like 32m or 1g", memory);
  if (runtime != NULL && strcmp (runtime, "runc") != 0 && strcmp (runtime, "crun") != 0 && !g_path_is_absolute (runtime))
    return cli_fail (NULL, "run: --runtime %s: use runc, crun or an absolute path to an OCI runtime", runtime);
  const char *seccomp = NULL;
  for (guint i = 0; security_opts && security_opts[i]; i++)
    {
      if (g_str_has_prefix (security_opts[i], "seccomp="))
        seccomp = security_opts[i] + 8;
      else
        return cli_fail (NULL, "run: unknown --security-opt %s (supported: seccomp=unconfined, seccomp=PROFILE)", security_opts[i]);
    }
  if (detach && rm)
    return cli_fail (NULL, "run: --rm and -d together are not supported; remove the container with `berth rm`");
  g_autofree char *id = name ? g_strdup (name) : random_id ();
  const char *snap = snapshotter ? snapshotter : cli_default_snapshotter (cli);

  g_autoptr (GError) error = NULL;
  g_autoptr (CliImage) image = cli_image_resolve (cli, image_name, &error);
  if (image == NULL || !cli_image_unpack (cli, image, snap, &error))
    return cli_fail (error, "run");
  const char *top = image->chain_ids->len ? image->chain_ids->pdata[image->chain_ids->len - 1] : "";

  /* The container's writable snapshot first: a name clash shows up before anything else exists. */
  Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *prepared = run_prepare_snapshot (cli, snap, id, top, &error);
  if (prepared == NULL)
    {
      if (g_error_matches (error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
        return cli_fail (NULL, "run: a container or snapshot named %s already exists (remove it with `berth rm %s`)", id, id);
      return cli_fail (error, "run");
    }
  g_autoptr (GPtrArray) mounts = berth_proto_mounts_to_list (prepared->mounts, prepared->n_mounts);

  /* ------- spec ------- */
  opts.args = argc > 2 ? argv + 2 : NULL;
  opts.env = env;
  opts.mounts = volumes;
  opts.cap_add = cap_add;
  opts.cap_drop = cap_drop;
  opts.workdir = workdir;
  opts.user = user;
  opts.hostname = hostname;
  opts.cpus = cpus;
  opts.pids_limit = pids_limit;
  opts.read_only = read_only;
  opts.privileged = privileged;
  opts.terminal = tty;
  opts.seccomp_profile = seccomp;
  opts.namespace = cli->ns;
  opts.id = id;
  opts.image_name = image->name;
  g_autoptr (JsonNode) image_config = json_node_init_object (json_node_alloc (), image->config);
  g_autoptr (JsonNode) spec = berth_spec_generate_on_mounts (&opts, image_config, mounts, &error);
  gboolean created_container = FALSE;
  int result = CLI_EXIT_ERROR;
  Attach attach = { .cli = cli, .id = id, .tty = tty, .interactive = interactive, .out_fd = -1, .err_fd = -1 };
  g_autofree char *log_path = NULL;
  g_autofree char *log_uri = NULL;
  if (spec == NULL)
    {
      result = cli_fail (error, "run %s", image_name);
      goto cleanup;
    }

  /* ------- container ------- */
  if (detach && (log_path = log_path_for (cli, id, &error)) == NULL)
    {
      result = cli_fail (error, "run");
      goto cleanup;
    }
  if (!run_create_container (cli, id, image->name, spec, runtime, snap, log_path, &error))
    {
      result = cli_fail (error, "run: creating container %s", id);
      goto cleanup;
    }
  created_container = TRUE;

  /* ------- task ------- */
  log_uri = log_path ? g_strdup_printf ("file://%s", log_path) : NULL;
  if (!detach && !attach_prepare (&attach, &error))
    {
      result = cli_fail (error, "run: setting up stdio");
      goto cleanup;
    }
  if (!detach)
    attach_block_signals (&attach);
  if (!run_create_task (cli, id, prepared, detach ? NULL : &attach, log_uri, tty, &error))
    {
      result = cli_fail (error, "run: starting container %s", id);
      goto cleanup;
    }
  if (!detach)
    attach_start (&attach);
  Containerd__Services__Tasks__V1__StartRequest start = CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
  start.container_id = id;
  ProtobufCMessage *started = cli_unary (cli, TASKS "Start", &start.base, &containerd__services__tasks__v1__start_response__descriptor, &error);
  if (started == NULL)
    {
      if (!detach)
        attach_finish (&attach);
      result = cli_fail (error, "run: starting container %s", id);
      task_delete (cli, id, NULL, NULL);
      goto cleanup;
    }
  protobuf_c_message_free_unpacked (started, NULL);
  /* The terminal exists once the process has started (an exec's only then). */
  if (tty && !detach && cli_client (cli, NULL) != NULL)
    resize (&attach, cli->client);
  if (detach)
    {
      g_print ("%s\n", id);
      protobuf_c_message_free_unpacked (&prepared->base, NULL);
      return 0;
    }

  guint32 status = 0;
  gboolean waited = wait_exit (cli, id, NULL, &status, &error);
  attach_finish (&attach);
  if (!waited)
    {
      result = cli_fail (error, "run: waiting for %s", id);
      goto cleanup;
    }
  task_delete (cli, id, NULL, NULL);
  result = status > 255 ? 255 : (int) status;
  if (!rm)
    {
      attach_clear (&attach);
      protobuf_c_message_free_unpacked (&prepared->base, NULL);
      return result;
    }

cleanup:
  attach_clear (&attach);
  {
    g_autoptr (GError) cleanup_error = NULL;
    if (!container_remove (cli, created_container ? id : NULL, snap, id, &cleanup_error))
      g_printerr ("berth: run: cleaning up %s: %s\n", id, cleanup_error->message);
  }
  protobuf_c_message_free_unpacked (&prepared->base, NULL);
  return result;
}

/* ---------------- exec ---------------- */

int
cli_cmd_exec (BerthCli *cli, int argc, char **argv)
{
  gboolean tty = FALSE, interactive = FALSE, detach = FALSE;
  g_autofree char *workdir = NULL, *exec_id = NULL;
  g_auto (GStrv) env = NULL;
  GOptionEntry entries[] = {
    { "tty", 't', 0, G_OPTION_ARG_NONE, &tty, "give the process a terminal", NULL },
    { "interactive", 'i', 0, G_OPTION_ARG_NONE, &interactive, "keep stdin open", NULL },
    { "detach", 'd', 0, G_OPTION_ARG_NONE, &detach, "do not wait for the process", NULL },
    { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &env, "set an environment variable", "K=V" },
    { "workdir", 'w', 0, G_OPTION_ARG_STRING, &workdir, "working directory", "DIR" },
    { "exec-id", 0, 0, G_OPTION_ARG_STRING, &exec_id, "id of the process (default: random)", "ID" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER COMMAND [ARG…] — run a command in a running container");
  g_option_context_set_strict_posix (context, TRUE);
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 3)
    return cli_usage (context, "exec needs a CONTAINER and a COMMAND");
  const char *id = argv[1];
  if (exec_id == NULL)
    exec_id = random_id ();
  g_autoptr (GError) error = NULL;
  Containerd__Services__Containers__V1__Container *container = container_get (cli, id, &error);
  if (container == NULL)
    return cli_fail (error, "exec");
  /* The process starts from the container's own: same user, env, capabilities. */
  g_autoptr (JsonNode) root = container->spec != NULL
                                ? berth_json_parse ((const char *) container->spec->value.data, container->spec->value.len,
                                                    "the container's spec", &error)
                                : NULL;
  protobuf_c_message_free_unpacked (&container->base, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root) || !json_object_has_member (json_node_get_object (root), "process"))
    return cli_fail (error, "exec: container %s has no usable spec", id);
  JsonObject *process = json_object_get_object_member (json_node_get_object (root), "process");
  JsonArray *args = json_array_new ();
  for (int i = 2; i < argc; i++)
    json_array_add_string_element (args, argv[i]);
  json_object_set_array_member (process, "args", args);
  json_object_set_boolean_member (process, "terminal", tty);
  if (workdir != NULL)
    json_object_set_string_member (process, "cwd", workdir);
  if (env != NULL)
    {
      JsonArray *process_env = json_object_has_member (process, "env") ? json_object_get_array_member (process, "env") : NULL;
      if (process_env == NULL)
        {
          process_env = json_array_new ();
          json_object_set_array_member (process, "env", process_env);
        }
      for (guint i = 0; env[i]; i++)
        json_array_add_string_element (process_env, env[i]);
    }
  g_autoptr (JsonNode) process_node = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (process_node, process);
  gsize len = 0;
  g_autofree char *process_text = json_to_text (process_node, &len);

  Attach attach = { .cli = cli, .id = (char *) id, .exec_id = exec_id, .tty = tty, .interactive = interactive,
                    .out_fd = -1, .err_fd = -1 };
  int result = CLI_EXIT_ERROR;
  if (!detach && !attach_prepare (&attach, &error))
    {
      result = cli_fail (error, "exec: setting up stdio");
      goto out;
    }
  if (!detach)
    attach_block_signals (&attach);
  {
    g_autofree Google__Protobuf__Any *spec_any = any_new (PROCESS_TYPE_URL, (guint8 *) process_text, len);
    Containerd__Services__Tasks__V1__ExecProcessRequest request = CONTAINERD__SERVICES__TASKS__V1__EXEC_PROCESS_REQUEST__INIT;
    request.container_id = (char *) id;
    request.exec_id = exec_id;
    request.stdin = attach.stdin_path ? attach.stdin_path : (char *) "";
    request.stdout = attach.stdout_path ? attach.stdout_path : (char *) "";
    request.stderr = attach.stderr_path ? attach.stderr_path : (char *) "";
    request.terminal = tty;
    request.spec = spec_any;
    if (!unary_empty (cli, TASKS "Exec", &request.base, &error))
      {
        result = cli_fail (error, "exec %s", id);
        goto out;
      }
  }
  if (!detach)
    attach_start (&attach);
  Containerd__Services__Tasks__V1__StartRequest start = CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
  start.container_id = (char *) id;
  start.exec_id = exec_id;
  ProtobufCMessage *started = cli_unary (cli, TASKS "Start", &start.base, &containerd__services__tasks__v1__start_response__descriptor, &error);
  if (started != NULL && tty && !detach && cli_client (cli, NULL) != NULL)
    resize (&attach, cli->client);
  guint32 status = 0;
  gboolean waited = started != NULL && (detach || wait_exit (cli, id, exec_id, &status, &error));
  if (started)
    protobuf_c_message_free_unpacked (started, NULL);
  if (!detach)
    attach_finish (&attach);
  if (!waited)
    result = cli_fail (error, "exec %s", id);
  else
    result = status > 255 ? 255 : (int) status;
  if (!detach)
    {
      Containerd__Services__Tasks__V1__DeleteProcessRequest del = CONTAINERD__SERVICES__TASKS__V1__DELETE_PROCESS_REQUEST__INIT;
      del.container_id = (char *) id;
      del.exec_id = exec_id;
      ProtobufCMessage *deleted = cli_unary (cli, TASKS "DeleteProcess", &del.base,
                                             &containerd__services__tasks__v1__delete_response__descriptor, NULL);
      if (deleted)
        protobuf_c_message_free_unpacked (deleted, NULL);
    }
out:
  attach_clear (&attach);
  return result;
}

/* ---------------- ps ---------------- */

static const char *
status_name (Containerd__V1__Types__Status status)
{
  switch (status)
    {
    case CONTAINERD__V1__TYPES__STATUS__CREATED: return "created";
    case CONTAINERD__V1__TYPES__STATUS__RUNNING: return "running";
    case CONTAINERD__V1__TYPES__STATUS__STOPPED: return "stopped";
    case CONTAINERD__V1__TYPES__STATUS__PAUSED: return "paused";
    case CONTAINERD__V1__TYPES__STATUS__PAUSING: return "pausing";
    default: return "unknown";
    }
}

static char *
spec_command (Containerd__Services__Containers__V1__Container *container)
{
  if (container->spec == NULL)
    return g_strdup ("");
  g_autoptr (JsonNode) root = berth_json_parse ((const char *) container->spec->value.data, container->spec->value.len,
                                                "the container's spec", NULL);
  JsonObject *process = root && JSON_NODE_HOLDS_OBJECT (root) && json_object_has_member (json_node_get_object (root), "process")
                          ? json_object_get_object_member (json_node_get_object (root), "process") : NULL;
  JsonArray *args = process && json_object_has_member (process, "args") ? json_object_get_array_member (process, "args") : NULL;
  g_autoptr (GString) text = g_string_new ("");
  for (guint i = 0; args && i < json_array_get_length (args); i++)
    g_string_append_printf (text, "%s%s", i ? " " : "", json_array_get_string_element (args, i));
  return g_string_free (g_steal_pointer (&text), FALSE);
}

int
cli_cmd_ps (BerthCli *cli, int argc, char **argv)
{
  gboolean all = FALSE, json = FALSE, quiet = FALSE;
  GOptionEntry entries[] = {
    { "all", 'a', 0, G_OPTION_ARG_NONE, &all, "also containers that are not running", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "print ids only", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("— list containers");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  Containerd__Services__Containers__V1__ListContainersRequest list = CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_REQUEST__INIT;
  Containerd__Services__Containers__V1__ListContainersResponse *containers = cli_unary (
    cli, CONTAINERS "List", &list.base, &containerd__services__containers__v1__list_containers_response__descriptor, &error);
  if (containers == NULL)
    return cli_fail (error, "ps");
  Containerd__Services__Tasks__V1__ListTasksRequest list_tasks = CONTAINERD__SERVICES__TASKS__V1__LIST_TASKS_REQUEST__INIT;
  Containerd__Services__Tasks__V1__ListTasksResponse *tasks = cli_unary (
    cli, TASKS "List", &list_tasks.base, &containerd__services__tasks__v1__list_tasks_response__descriptor, &error);
  if (tasks == NULL)
    {
      protobuf_c_message_free_unpacked (&containers->base, NULL);
      return cli_fail (error, "ps");
    }
  g_autoptr (GHashTable) by_id = g_hash_table_new (g_str_hash, g_str_equal);
  for (size_t i = 0; i < tasks->n_tasks; i++)
    g_hash_table_insert (by_id, tasks->tasks[i]->id, tasks->tasks[i]);
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_array (builder);
  if (!json && !quiet)
    g_print ("%-20s %-40s %-24s %-9s %s\n", "CONTAINER ID", "IMAGE", "COMMAND", "STATUS", "PID");
  for (size_t i = 0; i < containers->n_containers; i++)
    {
      Containerd__Services__Containers__V1__Container *c = containers->containers[i];
      Containerd__V1__Types__Process *task = g_hash_table_lookup (by_id, c->id);
      const char *status = task ? status_name (task->status) : "stopped";
      gboolean running = task && (task->status == CONTAINERD__V1__TYPES__STATUS__RUNNING || task->status == CONTAINERD__V1__TYPES__STATUS__PAUSED);
      if (!all && !running)
        continue;
      g_autofree char *command = spec_command (c);
      if (quiet)
        g_print ("%s\n", c->id);
      else if (json)
        {
          json_builder_begin_object (builder);
          cli_json_string (builder, "id", c->id);
          cli_json_string (builder, "image", c->image);
          cli_json_string (builder, "command", command);
          cli_json_string (builder, "status", status);
          cli_json_int (builder, "pid", task ? task->pid : 0);
          cli_json_string (builder, "runtime", c->runtime ? c->runtime->name : "");
          json_builder_end_object (builder);
        }
      else
        {
          g_autofree char *pid = task && task->pid ? g_strdup_printf ("%u", task->pid) : g_strdup ("-");
          g_print ("%-20s %-40s %-24.24s %-9s %s\n", c->id, c->image, command, status, pid);
        }
    }
  cli_json_finish (builder, json);
  protobuf_c_message_free_unpacked (&tasks->base, NULL);
  protobuf_c_message_free_unpacked (&containers->base, NULL);
  return 0;
}

/* ---------------- logs ---------------- */

int
cli_cmd_logs (BerthCli *cli, int argc, char **argv)
{
  gboolean follow = FALSE;
  GOptionEntry entries[] = {
    { "follow", 'f', 0, G_OPTION_ARG_NONE, &follow, "keep printing while the container runs", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER — print the output of a container started with run -d");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc != 2)
    return cli_usage (context, "logs takes one CONTAINER");
  const char *id = argv[1];
  g_autoptr (GError) error = NULL;
  Containerd__Services__Containers__V1__Container *container = container_get (cli, id, &error);
  if (container == NULL)
    return cli_fail (error, "logs");
  g_autofree char *path = g_strdup (container_label (container, LOG_PATH_LABEL));
  protobuf_c_message_free_unpacked (&container->base, NULL);
  if (path == NULL)
    return cli_fail (NULL, "logs: container %s was not started with -d, so its output went to the terminal that ran it", id);
  berth_autofd int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return 0; /* nothing written yet */
      return cli_fail (NULL, "logs: cannot open %s: %s", path, g_strerror (errno));
    }
  char buf[64 * 1024];
  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return cli_fail (NULL, "logs: reading %s: %s", path, g_strerror (errno));
      if (n > 0)
        {
          if (write (STDOUT_FILENO, buf, n) != n)
            return CLI_EXIT_ERROR;
          continue;
        }
      if (!follow)
        break;
      g_autoptr (GError) task_error = NULL;
      Containerd__V1__Types__Process *task = task_get (cli, NULL, id, NULL, &task_error);
      gboolean running = task && task->status != CONTAINERD__V1__TYPES__STATUS__STOPPED;
      if (task)
        protobuf_c_message_free_unpacked (&task->base, NULL);
      if (!running)
        {
          /* One last read: what was written just before the exit. */
          while ((n = read (fd, buf, sizeof buf)) > 0)
            if (write (STDOUT_FILENO, buf, n) != n)
              return CLI_EXIT_ERROR;
          break;
        }
      g_usleep (200000);
    }
  return 0;
}

/* ---------------- stop / kill / rm ---------------- */

static int
parse_signal (const char *text)
{
  static const struct { const char *name; int signo; } names[] = {
    { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
    { "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "WINCH", SIGWINCH },
  };
  char *end = NULL;
  long value = strtol (text, &end, 10);
  if (end != text && *end == 0 && value > 0 && value < 65)
    return (int) value;
  const char *name = g_str_has_prefix (text, "SIG") ? text + 3 : text;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (names[i].name, name) == 0)
      return names[i].signo;
  return -1;
}

/* Polls until the task has stopped or @timeout_ms passed. */
static gboolean
wait_stopped (BerthCli *cli, const char *id, gint64 timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;
  do
    {
      Containerd__V1__Types__Process *task = task_get (cli, NULL, id, NULL, NULL);
      gboolean stopped = task == NULL || task->status == CONTAINERD__V1__TYPES__STATUS__STOPPED;
      if (task)
        protobuf_c_message_free_unpacked (&task->base, NULL);
      if (stopped)
        return TRUE;
      g_usleep (50000);
    }
  while (g_get_monotonic_time () < deadline);
  return FALSE;
}

static gboolean
stop_one (BerthCli *cli, const char *id, gint64 timeout_s, GError **error)
{
  Containerd__V1__Types__Process *task = task_get (cli, NULL, id, NULL, error);
  if (task == NULL)
    {
      if (error && *error)
        return FALSE;
      Containerd__Services__Containers__V1__Container *container = container_get (cli, id, error);
      if (container == NULL)
        return FALSE;
      protobuf_c_message_free_unpacked (&container->base, NULL);
      return TRUE; /* no task: already stopped */
    }
  gboolean running = task->status != CONTAINERD__V1__TYPES__STATUS__STOPPED;
  protobuf_c_message_free_unpacked (&task->base, NULL);
  BerthGrpcClient *client = cli_client (cli, error);
  if (client == NULL)
    return FALSE;
  if (running)
    {
      if (!task_kill (client, id, NULL, SIGTERM, FALSE, error))
        return FALSE;
      if (!wait_stopped (cli, id, timeout_s * 1000))
        {
          if (!task_kill (client, id, NULL, SIGKILL, TRUE, error))
            return FALSE;
          if (!wait_stopped (cli, id, 10000))
            return berth_throw (error, BERTH_ERROR_DEADLINE_EXCEEDED, "%s did not stop after SIGKILL", id);
        }
    }
  GError *local = NULL;
  if (!task_delete (cli, id, NULL, &local) && !g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  g_clear_error (&local);
  return TRUE;
}

int
cli_cmd_stop (BerthCli *cli, int argc, char **argv)
{
  gint timeout = 10;
  GOptionEntry entries[] = {
    { "time", 't', 0, G_OPTION_ARG_INT, &timeout, "seconds to wait after SIGTERM before SIGKILL (default 10)", "SECONDS" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER… — stop containers");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 2)
    return cli_usage (context, "stop needs at least one CONTAINER");
  int result = 0;
  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GError) error = NULL;
      if (!stop_one (cli, argv[i], MAX (timeout, 0), &error))
        result = cli_fail (error, "stop %s", argv[i]);
      else
        g_print ("%s\n", argv[i]);
    }
  return result;
}

int
cli_cmd_kill (BerthCli *cli, int argc, char **argv)
{
  g_autofree char *signal_name = NULL;
  GOptionEntry entries[] = {
    { "signal", 's', 0, G_OPTION_ARG_STRING, &signal_name, "signal to send (default KILL)", "SIGNAL" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER… — send a signal to containers");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 2)
    return cli_usage (context, "kill needs at least one CONTAINER");
  int signo = parse_signal (signal_name ? signal_name : "KILL");
  if (signo < 0)
    return cli_fail (NULL, "kill: unknown signal %s", signal_name);
  g_autoptr (GError) error = NULL;
  BerthGrpcClient *client = cli_client (cli, &error);
  if (client == NULL)
    return cli_fail (error, "kill");
  int result = 0;
  for (int i = 1; i < argc; i++)
    {
      g_clear_error (&error);
      if (!task_kill (client, argv[i], NULL, signo, FALSE, &error))
        result = cli_fail (error, "kill %s", argv[i]);
      else
        g_print ("%s\n", argv[i]);
    }
  return result;
}

int
cli_cmd_rm (BerthCli *cli, int argc, char **argv)
{
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "kill running containers first", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER… — remove containers with their snapshots and logs");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 2)
    return cli_usage (context, "rm needs at least one CONTAINER");
  int result = 0;
  for (int i = 1; i < argc; i++)
    {
      const char *id = argv[i];
      g_autoptr (GError) error = NULL;
      Containerd__Services__Containers__V1__Container *container = container_get (cli, id, &error);
      if (container == NULL)
        {
          result = cli_fail (error, "rm");
          continue;
        }
      g_autofree char *snapshotter = g_strdup (container->snapshotter);
      g_autofree char *key = g_strdup (container->snapshot_key);
      g_autofree char *log_path = g_strdup (container_label (container, LOG_PATH_LABEL));
      protobuf_c_message_free_unpacked (&container->base, NULL);
      Containerd__V1__Types__Process *task = task_get (cli, NULL, id, NULL, &error);
      if (task != NULL)
        {
          gboolean stopped = task->status == CONTAINERD__V1__TYPES__STATUS__STOPPED;
          protobuf_c_message_free_unpacked (&task->base, NULL);
          if (!stopped && !force)
            {
              result = cli_fail (NULL, "rm: container %s is running: stop it first (`berth stop %s`) or use rm -f", id, id);
              continue;
            }
          if (!stop_one (cli, id, 0, &error))
            {
              result = cli_fail (error, "rm %s", id);
              continue;
            }
        }
      g_clear_error (&error);
      if (!container_remove (cli, id, snapshotter, key, &error))
        {
          result = cli_fail (error, "rm %s", id);
          continue;
        }
      if (log_path != NULL)
        unlink (log_path);
      g_print ("%s\n", id);
    }
  return result;
}
