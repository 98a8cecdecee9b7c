/* berth-runtime.h — BerthRuntime and BerthTask: running OCI containers.
 *
 * A runtime makes tasks from bundles. Each task is supervised out of process (berth's
 * shim) so it outlives a daemon restart; on start the core calls restore to reconnect
 * to every task that is still there. Task ids are unique per namespace; the core passes
 * the namespace with every call that creates or finds a task.
 */
#pragma once

#include <gio/gio.h>
#include <berth/berth-types.h>

G_BEGIN_DECLS

typedef enum {
  BERTH_TASK_STATUS_UNKNOWN = 0,
  BERTH_TASK_STATUS_CREATED = 1,
  BERTH_TASK_STATUS_RUNNING = 2,
  BERTH_TASK_STATUS_STOPPED = 3,
  BERTH_TASK_STATUS_PAUSED = 4,
  BERTH_TASK_STATUS_PAUSING = 5,
} BerthTaskStatus; /* same numbers as containerd's types.task.Status */

typedef struct {
  char *stdin_path;   /* FIFO paths as given by the client, or NULL */
  char *stdout_path;
  char *stderr_path;
  gboolean terminal;
} BerthStdio;

typedef struct {
  const char *namespace_;
  const char *id;
  GBytes *spec_json;        /* the OCI runtime spec (config.json) */
  GPtrArray *rootfs;        /* BerthMount list to mount as the bundle's rootfs */
  BerthStdio stdio;
  const char *runtime_name; /* e.g. "io.containerd.runc.v2" */
  const char *options_type_url; /* runtime options (Any), may be NULL */
  GBytes *options;
} BerthTaskCreateOptions;

typedef struct {
  guint32 exit_status;
  gint64 exited_at; /* µs since the epoch */
} BerthExitStatus;

typedef struct {
  guint32 pid;
  char *info_json; /* optional, NULL */
} BerthProcessInfo;

/* ---- BerthTask ---- */
#define BERTH_TYPE_TASK (berth_task_get_type ())
G_DECLARE_INTERFACE (BerthTask, berth_task, BERTH, TASK, GObject)

/* Signal: "exited" (const char *exec_id or NULL for init, guint pid, guint exit_status,
 * gint64 exited_at), emitted from any thread once per process. OOM kills are not the
 * runtime's to report: the core reads them from the task's memory cgroup at each exit,
 * so a runtime must leave the cgroup in place until the task is deleted. */
struct _BerthTaskInterface {
  GTypeInterface g_iface;
  const char *(*get_id) (BerthTask *self);
  const char *(*get_namespace) (BerthTask *self);
  guint32 (*get_pid) (BerthTask *self);
  /* @exec_id NULL: the init process. */
  BerthTaskStatus (*get_status) (BerthTask *self, const char *exec_id, BerthExitStatus *exit_out);
  gboolean (*start) (BerthTask *self, const char *exec_id, guint32 *pid_out,
                     GCancellable *cancellable, GError **error);
  gboolean (*kill) (BerthTask *self, const char *exec_id, int signal, gboolean all, GCancellable *cancellable, GError **error);
  /* Blocks until the process exits. */
  gboolean (*wait) (BerthTask *self, const char *exec_id, BerthExitStatus *exit_out,
                    GCancellable *cancellable, GError **error);
  /* Deletes an exited process (init: the whole task, its bundle and mounts). */
  gboolean (*delete) (BerthTask *self, const char *exec_id, BerthExitStatus *exit_out,
                      GCancellable *cancellable, GError **error);
  /* Adds process @exec_id from an OCI process spec (JSON); ALREADY_EXISTS on a clash. */
  gboolean (*exec) (BerthTask *self, const char *exec_id, GBytes *process_json, const BerthStdio *stdio,
                    GCancellable *cancellable, GError **error);
  gboolean (*resize_pty) (BerthTask *self, const char *exec_id, guint32 width, guint32 height, GCancellable *cancellable, GError **error);
  gboolean (*close_io) (BerthTask *self, const char *exec_id, GCancellable *cancellable, GError **error);
  gboolean (*pause) (BerthTask *self, GCancellable *cancellable, GError **error);
  gboolean (*resume) (BerthTask *self, GCancellable *cancellable, GError **error);
  /* GArray of BerthProcessInfo */
  GArray *(*pids) (BerthTask *self, GCancellable *cancellable, GError **error);
  /* Updates resources from an OCI LinuxResources JSON. */
  gboolean (*update) (BerthTask *self, GBytes *resources_json, GCancellable *cancellable, GError **error);
  /* cgroup statistics, encoded as containerd's io.containerd.cgroups.v1.Metrics (or
   * v2) protobuf; *type_url_out names which. */
  GBytes *(*metrics) (BerthTask *self, char **type_url_out, GCancellable *cancellable, GError **error);
  /* The stdio a process was created with (its client's FIFO paths), for a client that
   * attaches later (containerd's Tasks.Get). Optional. */
  gboolean (*get_stdio) (BerthTask *self, const char *exec_id, BerthStdio *stdio_out, GError **error);
};

const char *berth_task_get_id (BerthTask *self);
const char *berth_task_get_namespace (BerthTask *self);
guint32 berth_task_get_pid (BerthTask *self);
BerthTaskStatus berth_task_get_status (BerthTask *self, const char *exec_id, BerthExitStatus *exit_out);
gboolean berth_task_start (BerthTask *self, const char *exec_id, guint32 *pid_out,
                           GCancellable *cancellable, GError **error);
gboolean berth_task_kill (BerthTask *self, const char *exec_id, int signal, gboolean all, GCancellable *cancellable, GError **error);
gboolean berth_task_wait (BerthTask *self, const char *exec_id, BerthExitStatus *exit_out,
                          GCancellable *cancellable, GError **error);
gboolean berth_task_delete (BerthTask *self, const char *exec_id, BerthExitStatus *exit_out,
                            GCancellable *cancellable, GError **error);
gboolean berth_task_exec (BerthTask *self, const char *exec_id, GBytes *process_json, const BerthStdio *stdio,
                          GCancellable *cancellable, GError **error);
gboolean berth_task_resize_pty (BerthTask *self, const char *exec_id, guint32 width, guint32 height, GCancellable *cancellable, GError **error);
gboolean berth_task_close_io (BerthTask *self, const char *exec_id, GCancellable *cancellable, GError **error);
gboolean berth_task_pause (BerthTask *self, GCancellable *cancellable, GError **error);
gboolean berth_task_resume (BerthTask *self, GCancellable *cancellable, GError **error);
GArray *berth_task_pids (BerthTask *self, GCancellable *cancellable, GError **error);
gboolean berth_task_update (BerthTask *self, GBytes *resources_json, GCancellable *cancellable, GError **error);
GBytes *berth_task_metrics (BerthTask *self, char **type_url_out, GCancellable *cancellable, GError **error);
/* Fills @stdio_out with newly allocated paths; free them with berth_stdio_clear. */
gboolean berth_task_get_stdio (BerthTask *self, const char *exec_id, BerthStdio *stdio_out, GError **error);
void berth_stdio_clear (BerthStdio *stdio);

/* For runtimes that keep their tasks in a table keyed "<namespace>/<id>" (a NULL value
 * reserves an id being created), guarded by @lock: the lookup and listing every runtime
 * needs. NOT_FOUND for no task (or one still being created). (transfer full) */
BerthTask *berth_task_table_lookup (GHashTable *tasks, GMutex *lock, const char *namespace_, const char *id,
                                    GError **error);
/* GPtrArray of BerthTask (transfer full): every task of @namespace_ (NULL: all). */
GPtrArray *berth_task_table_list (GHashTable *tasks, GMutex *lock, const char *namespace_);

/* ---- BerthRuntime ---- */
#define BERTH_TYPE_RUNTIME (berth_runtime_get_type ())
G_DECLARE_INTERFACE (BerthRuntime, berth_runtime, BERTH, RUNTIME, GObject)

struct _BerthRuntimeInterface {
  GTypeInterface g_iface;
  /* Writes the bundle, mounts the rootfs, starts a supervisor and creates the task
   * (not started). The runtime's stderr is relayed in the error on failure, and nothing
   * (shim, mount, cgroup) is left behind. */
  BerthTask *(*create) (BerthRuntime *self, const BerthTaskCreateOptions *options,
                        GCancellable *cancellable, GError **error);
  /* NOT_FOUND when there is no such task. (transfer full) */
  BerthTask *(*get) (BerthRuntime *self, const char *namespace_, const char *id, GError **error);
  /* GPtrArray of BerthTask (transfer full), every task of @namespace_ (NULL: all). */
  GPtrArray *(*list) (BerthRuntime *self, const char *namespace_, GError **error);
  /* Reconnects to the supervisors left by an earlier daemon; reconciles tasks that
   * exited meanwhile (they emit "exited") and cleans up dead ones. */
  gboolean (*restore) (BerthRuntime *self, GCancellable *cancellable, GError **error);
};

BerthTask *berth_runtime_create (BerthRuntime *self, const BerthTaskCreateOptions *options,
                                 GCancellable *cancellable, GError **error);
BerthTask *berth_runtime_get (BerthRuntime *self, const char *namespace_, const char *id, GError **error);
GPtrArray *berth_runtime_list (BerthRuntime *self, const char *namespace_, GError **error);
gboolean berth_runtime_restore (BerthRuntime *self, GCancellable *cancellable, GError **error);

G_END_DECLS
