/* oci-private.h — what the OCI runtime plugin's files share: its two objects, the
 * runtime (oci.c: creating tasks under berth-shim, finding and restoring them, the
 * plugin) and the task (oci-task.c: the BerthTask methods as shim requests), and what
 * talking to a shim (oci-shim.c) and watching exits (oci-exits.c) offer them. Private to
 * the plugin.
 */
#pragma once

#include <berth/berth.h>

G_BEGIN_DECLS

#define OCI_TYPE_RUNTIME (oci_runtime_get_type ())
G_DECLARE_FINAL_TYPE (OciRuntime, oci_runtime, OCI, RUNTIME, GObject)
#define OCI_TYPE_TASK (oci_task_get_type ())
G_DECLARE_FINAL_TYPE (OciTask, oci_task, OCI, TASK, GObject)

struct _OciRuntime {
  GObject parent_instance;
  char *state;
  char *shim;
  char *default_binary;
  GStrv allowed_binaries;
  GMutex lock;
  GHashTable *tasks; /* "<ns>/<id>" → OciTask (ref) */
};

struct _OciTask {
  GObject parent_instance;
  OciRuntime *runtime; /* not owned: the runtime outlives its tasks */
  char *namespace_;
  char *id;
  char *dir;
  char *rootfs;
  guint32 pid;
  /* Set (atomically) once Delete has asked the shim to go: from then on a shim that does
   * not answer is gone on purpose, not dead, and must not be reaped. */
  gint deleting;
};

/* oci-shim.c: talking to a task's berth-shim, one request line and one reply line. */
/* Connects to the task's shim and sends one request line; the socket, or -1. */
int oci_shim_send (OciTask *task, const char *request, GError **error);
/* Sends one request line and returns the reply line; blocks (cancellably). */
char *oci_shim_request (OciTask *task, const char *request, GCancellable *cancellable, GError **error);
/* "exit STATUS NSEC" / "stopped STATUS NSEC" → @exit_out */
gboolean oci_parse_exit (const char *line, BerthExitStatus *exit_out);
/* The exit file the shim leaves, for when the shim itself is gone. */
gboolean oci_read_exit_file (OciTask *task, BerthExitStatus *exit_out);
/* Cleans up after a shim that died without an exit file and records its exit. */
gboolean oci_reap_dead_shim (OciTask *task, BerthExitStatus *exit_out);

/* oci-exits.c: announces the exit of @exec_id (NULL: the init), pid @pid, with the
 * task's "exited" signal. */
void oci_exit_watch_start (OciTask *task, const char *exec_id, guint32 pid);

/* oci-task.c: the task object. */
OciTask *oci_task_new (OciRuntime *runtime, const char *ns, const char *id, const char *dir, guint32 pid);
void oci_task_register (GTypeModule *module);
/* Records a process's stdio for the shim ("<dir>/init.io" when @exec_id is NULL). */
gboolean oci_stdio_file_write (const char *dir, const char *exec_id, const BerthStdio *stdio, GError **error);
/* Removes @path and everything below it; a failure is logged. */
gboolean oci_remove_tree (const char *path);

G_END_DECLS
