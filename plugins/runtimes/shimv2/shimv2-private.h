/* shimv2-private.h — what the shim-v2 plugin's files share: its two objects, the
 * runtime (shimv2.c: creating, finding and restoring tasks, the events endpoint, the
 * plugin) and the task (shimv2-task.c: the BerthTask methods as containerd.task.v2.Task
 * calls), and what the shim process (shimv2-shim.c: running `SHIM start|delete`, its log,
 * its death) and the exit watchers (shimv2-exits.c) offer them. Private to the plugin.
 */
#pragma once

#include <berth/berth.h>

#include "ttrpc.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb-c.h"

G_BEGIN_DECLS

#define TASK_SERVICE "containerd.task.v2.Task"
#define CALL_TIMEOUT_MS (30 * 1000)
#define STATE_TIMEOUT_MS (5 * 1000)
#define START_TIMEOUT_MS (60 * 1000)
/* What a task whose shim died reports when even `SHIM delete` cannot tell, as containerd. */
#define DEAD_SHIM_EXIT_STATUS 255

#define SHIMV2_TYPE_RUNTIME (shimv2_runtime_get_type ())
G_DECLARE_FINAL_TYPE (ShimV2Runtime, shimv2_runtime, SHIMV2, RUNTIME, GObject)
#define SHIMV2_TYPE_TASK (shimv2_task_get_type ())
G_DECLARE_FINAL_TYPE (ShimV2Task, shimv2_task, SHIMV2, TASK, GObject)

struct _ShimV2Runtime {
  GObject parent_instance;
  char *state;
  char *address;       /* berthd's gRPC socket: -address */
  char *ttrpc_address; /* the events endpoint: TTRPC_ADDRESS */
  char *publish_binary;
  GHashTable *binaries; /* runtime name → absolute path, from config */
  GStrv names;          /* its keys, for the "runtime-names" property */
  ShimV2TtrpcServer *events;
  GMutex lock;
  GHashTable *tasks; /* "<ns>/<id>" → ShimV2Task (ref), NULL while being created */
};

struct _ShimV2Task {
  GObject parent_instance;
  ShimV2Runtime *runtime; /* not owned: the runtime outlives its tasks */
  char *namespace_;
  char *id;
  char *dir;
  char *binary;
  char *address; /* the shim's ttrpc socket */
  guint32 pid;
  GSource *log_source;
  GMutex lock;
  gboolean dead; /* the shim is gone and was cleaned up; exit holds what it left */
  gboolean init_exited; /* "exited" was emitted for the init */
  GHashTable *exec_pids; /* exec id → pid, for "exited" */
  BerthExitStatus exit;
};

static inline void
shimv2_free_unpacked (ProtobufCMessage *message)
{
  protobuf_c_message_free_unpacked (message, NULL);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ProtobufCMessage, shimv2_free_unpacked)

static inline gboolean
shimv2_is_exec (const char *exec_id)
{
  return exec_id != NULL && *exec_id != '\0';
}

static inline gint64
shimv2_timestamp_to_us (const Google__Protobuf__Timestamp *ts)
{
  return ts ? ts->seconds * G_USEC_PER_SEC + ts->nanos / 1000 : 0;
}

/* shimv2-shim.c: the shim process. */
/* Runs `SHIM … @action` in the bundle; its stdout in *out_out, stderr in *err_out. */
gboolean shimv2_run_shim (ShimV2Task *task, const char *action, GBytes *input, GBytes **out_out, char **err_out,
                          GCancellable *cancellable, GError **error);
/* Relays the shim's log (the FIFO "log" in its bundle) into berthd's, until closed. */
gboolean shimv2_open_log (ShimV2Task *task, GError **error);
void shimv2_close_log (ShimV2Task *task);
/* Whether the shim is gone and was cleaned up; then *exit_out is what it left. */
gboolean shimv2_is_dead (ShimV2Task *task, BerthExitStatus *exit_out);
/* Cleans up after a dead shim (once) and announces the init's exit. */
void shimv2_reap_dead_shim (ShimV2Task *task, BerthExitStatus *exit_out);
/* Whether the failed call's @error means the shim is gone, not only slow. */
gboolean shimv2_shim_is_gone (ShimV2Task *task, const GError *error);

/* shimv2-exits.c: each process's exit, watched on the main context. */
/* Emits the task's "exited" (for the init, once). */
void shimv2_emit_exit (ShimV2Task *task, const char *exec_id, const BerthExitStatus *exit);
/* Sends a Wait for @exec_id (NULL: the init) and announces its reply. */
void shimv2_exit_watch_start (ShimV2Task *task, const char *exec_id);

/* shimv2-task.c: the task object and its calls. */
/* Calls @method of the task's shim; NULL with @error, prefixed with the task's id. */
ProtobufCMessage *shimv2_call (ShimV2Task *task, const char *method, const ProtobufCMessage *request,
                               const ProtobufCMessageDescriptor *reply_type, int timeout_ms, GCancellable *cancellable,
                               GError **error);
/* An Any of @type_url around @json (borrowed: keep @json alive while it is used). */
Google__Protobuf__Any shimv2_json_any (const char *type_url, GBytes *json);
void shimv2_shutdown_shim (ShimV2Task *task, gboolean now);
/* Unmounts and removes the bundle and forgets the task in its runtime. */
void shimv2_task_cleanup (ShimV2Task *task);
ShimV2Task *shimv2_task_new (ShimV2Runtime *runtime, const char *ns, const char *id, const char *dir,
                             const char *binary);
void shimv2_task_register (GTypeModule *module);

G_END_DECLS
