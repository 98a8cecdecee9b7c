/* cli-container.h — what the container commands (cmd-run.c, cmd-exec.c,
 * cmd-container.c) share: the Containers/Tasks calls of cli-container-calls.c and the
 * attached stdio of cli-attach.c. */
#pragma once

#include <signal.h>
#include <termios.h>

#include "berth-cli.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"

G_BEGIN_DECLS

#define TASKS "/containerd.services.tasks.v1.Tasks/"
#define CONTAINERS "/containerd.services.containers.v1.Containers/"
/* Where a detached container's output goes, as a label of its record (`berth logs`). */
#define LOG_PATH_LABEL "berth/log-path"

/* ---------------- calls (cli-container-calls.c) ---------------- */

/* NOT_FOUND naming the namespace when there is no container @id. */
Containerd__Services__Containers__V1__Container *cli_container_get (BerthCli *cli, const char *id, GError **error);
/* The task's process, NULL with no error when the container has no task. Through
 * @client when given (another thread's), else the CLI's connection. */
Containerd__V1__Types__Process *cli_task_get (BerthCli *cli, BerthGrpcClient *client, const char *id,
                                              const char *exec_id, GError **error);
gboolean cli_task_kill (BerthGrpcClient *client, const char *id, const char *exec_id, int signo, gboolean all,
                        GError **error);
gboolean cli_task_delete (BerthCli *cli, const char *id, guint32 *exit_status, GError **error);
/* Blocks until the process exits; its status. */
gboolean cli_task_wait (BerthCli *cli, const char *id, const char *exec_id, guint32 *status, GError **error);
/* A call answering google.protobuf.Empty. */
gboolean cli_unary_empty (BerthCli *cli, const char *path, const ProtobufCMessage *request, GError **error);
/* Removes the container record (@id NULL: there is none) and its snapshot; what is
 * already gone is fine. */
gboolean cli_container_remove (BerthCli *cli, const char *id, const char *snapshotter, const char *snapshot_key,
                               GError **error);
const char *cli_container_label (Containerd__Services__Containers__V1__Container *container, const char *key);
/* 16 hex digits, for container and exec ids nobody named. */
char *cli_random_id (void);
/* An Any pointing at @data (not copied); g_free() it. */
Google__Protobuf__Any *cli_any_new (const char *type_url, guint8 *data, gsize len);
char *cli_json_to_text (JsonNode *node, gsize *len);

/* ---------------- attached stdio (cli-attach.c) ---------------- */

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
} CliAttach;

/* Before the process is created: the FIFOs (stdin only when interactive, no stderr
 * with a terminal), their read ends open. */
gboolean cli_attach_prepare (CliAttach *attach, GError **error);
/* Before any thread starts: the signals the signal thread takes with sigwait. */
void cli_attach_block_signals (CliAttach *attach);
/* After the process was created: start copying (and the terminal, signals). */
void cli_attach_start (CliAttach *attach);
/* The process's terminal gets the local terminal's size. */
void cli_attach_resize (CliAttach *attach, BerthGrpcClient *client);
/* After the process exited: drains its output, restores the terminal. */
void cli_attach_finish (CliAttach *attach);
/* Closes and removes the FIFOs. */
void cli_attach_clear (CliAttach *attach);

G_END_DECLS
