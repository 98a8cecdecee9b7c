/* berth-interfaces.c — the GInterface types of the plugin contract and their dispatch.
 *
 * Every public method checks its instance, then forwards to the vtable; a plugin that
 * leaves a method NULL answers UNIMPLEMENTED instead of crashing the daemon.
 */
#include "config.h"

#include <berth/berth.h>

#define DISPATCH(IFACE, self, method, error, fallback, ...)                                     \
  G_STMT_START                                                                                  \
  {                                                                                             \
    __auto_type iface_ = IFACE (self);                                                          \
    if (iface_->method == NULL)                                                                 \
      {                                                                                         \
        berth_throw ((error), BERTH_ERROR_UNIMPLEMENTED, "%s does not implement " #method,     \
                     G_OBJECT_TYPE_NAME (self));                                                \
        return fallback;                                                                        \
      }                                                                                         \
    return iface_->method (self, __VA_ARGS__);                                                  \
  }                                                                                             \
  G_STMT_END

/* ---------------- content ---------------- */

G_DEFINE_INTERFACE (BerthContentWriter, berth_content_writer, G_TYPE_OBJECT)
static void berth_content_writer_default_init (BerthContentWriterInterface *iface) {}

G_DEFINE_INTERFACE (BerthContentStore, berth_content_store, G_TYPE_OBJECT)
static void berth_content_store_default_init (BerthContentStoreInterface *iface) {}

void
berth_content_info_free (BerthContentInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->digest);
  g_free (info);
}

void
berth_content_status_free (BerthContentStatus *status)
{
  if (status == NULL)
    return;
  g_free (status->ref);
  g_free (status->expected);
  g_free (status);
}

BerthContentStatus *
berth_content_writer_status (BerthContentWriter *self, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_WRITER (self), NULL);
  DISPATCH (BERTH_CONTENT_WRITER_GET_IFACE, self, status, error, NULL, error);
}

gboolean
berth_content_writer_write (BerthContentWriter *self, const guint8 *data, gsize len, GCancellable *cancellable,
                            GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_WRITER (self), FALSE);
  DISPATCH (BERTH_CONTENT_WRITER_GET_IFACE, self, write, error, FALSE, data, len, cancellable, error);
}

gboolean
berth_content_writer_truncate (BerthContentWriter *self, gint64 offset, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_WRITER (self), FALSE);
  DISPATCH (BERTH_CONTENT_WRITER_GET_IFACE, self, truncate, error, FALSE, offset, error);
}

char *
berth_content_writer_commit (BerthContentWriter *self, gint64 size, const char *expected,
                             GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_WRITER (self), NULL);
  DISPATCH (BERTH_CONTENT_WRITER_GET_IFACE, self, commit, error, NULL, size, expected, cancellable, error);
}

char *
berth_content_writer_digest (BerthContentWriter *self)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_WRITER (self), NULL);
  BerthContentWriterInterface *iface = BERTH_CONTENT_WRITER_GET_IFACE (self);
  return iface->digest ? iface->digest (self) : NULL;
}

BerthContentInfo *
berth_content_store_info (BerthContentStore *self, const char *digest, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_STORE (self), NULL);
  DISPATCH (BERTH_CONTENT_STORE_GET_IFACE, self, info, error, NULL, digest, cancellable, error);
}

gboolean
berth_content_store_walk (BerthContentStore *self, BerthContentWalkFunc func, gpointer user_data,
                          GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_STORE (self), FALSE);
  DISPATCH (BERTH_CONTENT_STORE_GET_IFACE, self, walk, error, FALSE, func, user_data, cancellable, error);
}

gboolean
berth_content_store_delete (BerthContentStore *self, const char *digest, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_STORE (self), FALSE);
  DISPATCH (BERTH_CONTENT_STORE_GET_IFACE, self, delete, error, FALSE, digest, cancellable, error);
}

GInputStream *
berth_content_store_open_reader (BerthContentStore *self, const char *digest, gint64 *size_out,
                                 GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_STORE (self), NULL);
  DISPATCH (BERTH_CONTENT_STORE_GET_IFACE, self, open_reader, error, NULL, digest, size_out, cancellable, error);
}

BerthContentWriter *
berth_content_store_open_writer (BerthContentStore *self, const char *ref, gint64 total, const char *expected,
                                 GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_STORE (self), NULL);
  DISPATCH (BERTH_CONTENT_STORE_GET_IFACE, self, open_writer, error, NULL, ref, total, expected, cancellable, error);
}

BerthContentStatus *
berth_content_store_status (BerthContentStore *self, const char *ref, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_STORE (self), NULL);
  DISPATCH (BERTH_CONTENT_STORE_GET_IFACE, self, status, error, NULL, ref, cancellable, error);
}

GPtrArray *
berth_content_store_list_statuses (BerthContentStore *self, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_STORE (self), NULL);
  DISPATCH (BERTH_CONTENT_STORE_GET_IFACE, self, list_statuses, error, NULL, cancellable, error);
}

gboolean
berth_content_store_abort (BerthContentStore *self, const char *ref, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_CONTENT_STORE (self), FALSE);
  DISPATCH (BERTH_CONTENT_STORE_GET_IFACE, self, abort, error, FALSE, ref, cancellable, error);
}

GBytes *
berth_content_store_read_all (BerthContentStore *self, const char *digest, gsize max_size,
                              GCancellable *cancellable, GError **error)
{
  gint64 size = 0;
  g_autoptr (GInputStream) in = berth_content_store_open_reader (self, digest, &size, cancellable, error);
  if (in == NULL)
    return NULL;
  if (size < 0 || (guint64) size > max_size)
    {
      berth_throw (error, BERTH_ERROR_RESOURCE_EXHAUSTED, "blob %s is %" G_GINT64_FORMAT " bytes, more than the %zu allowed",
                   digest, size, max_size);
      return NULL;
    }
  g_autofree guint8 *buf = g_malloc (size > 0 ? size : 1);
  gsize got = 0;
  if (!g_input_stream_read_all (in, buf, size, &got, cancellable, error))
    return NULL;
  if ((gint64) got != size)
    {
      berth_throw (error, BERTH_ERROR_DATA_LOSS, "blob %s: short read (%zu of %" G_GINT64_FORMAT " bytes)", digest,
                   got, size);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&buf), size);
}

/* ---------------- snapshots ---------------- */

G_DEFINE_INTERFACE (BerthSnapshotter, berth_snapshotter, G_TYPE_OBJECT)
static void berth_snapshotter_default_init (BerthSnapshotterInterface *iface) {}

BerthSnapshotInfo *
berth_snapshot_info_copy (const BerthSnapshotInfo *info)
{
  BerthSnapshotInfo *copy = g_new0 (BerthSnapshotInfo, 1);
  copy->name = g_strdup (info->name);
  copy->parent = g_strdup (info->parent);
  copy->kind = info->kind;
  copy->labels = berth_labels_copy (info->labels);
  copy->created_at = info->created_at;
  copy->updated_at = info->updated_at;
  return copy;
}

void
berth_snapshot_info_free (BerthSnapshotInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->name);
  g_free (info->parent);
  g_clear_pointer (&info->labels, g_hash_table_unref);
  g_free (info);
}

BerthSnapshotInfo *
berth_snapshotter_stat (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), NULL);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, stat, error, NULL, key, cancellable, error);
}

BerthSnapshotInfo *
berth_snapshotter_update (BerthSnapshotter *self, const BerthSnapshotInfo *info, const char *const *fieldpaths, GCancellable *cancellable,
                          GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), NULL);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, update, error, NULL, info, fieldpaths, cancellable, error);
}

gboolean
berth_snapshotter_usage (BerthSnapshotter *self, const char *key, BerthSnapshotUsage *usage,
                         GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), FALSE);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, usage, error, FALSE, key, usage, cancellable, error);
}

GPtrArray *
berth_snapshotter_mounts (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), NULL);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, mounts, error, NULL, key, cancellable, error);
}

GPtrArray *
berth_snapshotter_prepare (BerthSnapshotter *self, const char *key, const char *parent, GHashTable *labels,
                           GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), NULL);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, prepare, error, NULL, key, parent, labels, cancellable, error);
}

GPtrArray *
berth_snapshotter_view (BerthSnapshotter *self, const char *key, const char *parent, GHashTable *labels,
                        GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), NULL);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, view, error, NULL, key, parent, labels, cancellable, error);
}

gboolean
berth_snapshotter_commit (BerthSnapshotter *self, const char *name, const char *key, GHashTable *labels,
                          GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), FALSE);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, commit, error, FALSE, name, key, labels, cancellable, error);
}

gboolean
berth_snapshotter_remove (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), FALSE);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, remove, error, FALSE, key, cancellable, error);
}

gboolean
berth_snapshotter_walk (BerthSnapshotter *self, BerthSnapshotWalkFunc func, gpointer user_data,
                        GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), FALSE);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, walk, error, FALSE, func, user_data, cancellable, error);
}

gboolean
berth_snapshotter_cleanup (BerthSnapshotter *self, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_SNAPSHOTTER (self), FALSE);
  DISPATCH (BERTH_SNAPSHOTTER_GET_IFACE, self, cleanup, error, FALSE, cancellable, error);
}

/* ---------------- differ ---------------- */

G_DEFINE_INTERFACE (BerthDiffer, berth_differ, G_TYPE_OBJECT)
static void berth_differ_default_init (BerthDifferInterface *iface) {}

BerthDescriptor *
berth_differ_apply (BerthDiffer *self, const BerthDescriptor *layer, GPtrArray *mounts, GHashTable *payloads,
                    GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_DIFFER (self), NULL);
  DISPATCH (BERTH_DIFFER_GET_IFACE, self, apply, error, NULL, layer, mounts, payloads, cancellable, error);
}

BerthDescriptor *
berth_differ_compare (BerthDiffer *self, GPtrArray *lower, GPtrArray *upper, const char *media_type,
                      const char *ref, GHashTable *labels, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_DIFFER (self), NULL);
  DISPATCH (BERTH_DIFFER_GET_IFACE, self, compare, error, NULL, lower, upper, media_type, ref, labels, cancellable,
            error);
}

/* ---------------- runtime and tasks ---------------- */

G_DEFINE_INTERFACE (BerthTask, berth_task, G_TYPE_OBJECT)

static void
berth_task_default_init (BerthTaskInterface *iface)
{
  g_signal_new ("exited", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 4,
                G_TYPE_STRING, G_TYPE_UINT, G_TYPE_UINT, G_TYPE_INT64);
}

const char *
berth_task_get_id (BerthTask *self)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), NULL);
  return BERTH_TASK_GET_IFACE (self)->get_id (self);
}

const char *
berth_task_get_namespace (BerthTask *self)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), NULL);
  return BERTH_TASK_GET_IFACE (self)->get_namespace (self);
}

guint32
berth_task_get_pid (BerthTask *self)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), 0);
  return BERTH_TASK_GET_IFACE (self)->get_pid (self);
}

BerthTaskStatus
berth_task_get_status (BerthTask *self, const char *exec_id, BerthExitStatus *exit_out)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), BERTH_TASK_STATUS_UNKNOWN);
  return BERTH_TASK_GET_IFACE (self)->get_status (self, exec_id, exit_out);
}

gboolean
berth_task_start (BerthTask *self, const char *exec_id, guint32 *pid_out, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, start, error, FALSE, exec_id, pid_out, cancellable, error);
}

gboolean
berth_task_kill (BerthTask *self, const char *exec_id, int signal, gboolean all, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, kill, error, FALSE, exec_id, signal, all, cancellable, error);
}

gboolean
berth_task_wait (BerthTask *self, const char *exec_id, BerthExitStatus *exit_out, GCancellable *cancellable,
                 GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, wait, error, FALSE, exec_id, exit_out, cancellable, error);
}

gboolean
berth_task_delete (BerthTask *self, const char *exec_id, BerthExitStatus *exit_out, GCancellable *cancellable,
                   GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, delete, error, FALSE, exec_id, exit_out, cancellable, error);
}

gboolean
berth_task_exec (BerthTask *self, const char *exec_id, GBytes *process_json, const BerthStdio *stdio,
                 GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, exec, error, FALSE, exec_id, process_json, stdio, cancellable, error);
}

gboolean
berth_task_resize_pty (BerthTask *self, const char *exec_id, guint32 width, guint32 height, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, resize_pty, error, FALSE, exec_id, width, height, cancellable, error);
}

gboolean
berth_task_close_io (BerthTask *self, const char *exec_id, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, close_io, error, FALSE, exec_id, cancellable, error);
}

gboolean
berth_task_pause (BerthTask *self, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, pause, error, FALSE, cancellable, error);
}

gboolean
berth_task_resume (BerthTask *self, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, resume, error, FALSE, cancellable, error);
}

GArray *
berth_task_pids (BerthTask *self, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), NULL);
  DISPATCH (BERTH_TASK_GET_IFACE, self, pids, error, NULL, cancellable, error);
}

gboolean
berth_task_update (BerthTask *self, GBytes *resources_json, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, update, error, FALSE, resources_json, cancellable, error);
}

GBytes *
berth_task_metrics (BerthTask *self, char **type_url_out, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), NULL);
  DISPATCH (BERTH_TASK_GET_IFACE, self, metrics, error, NULL, type_url_out, cancellable, error);
}

gboolean
berth_task_get_stdio (BerthTask *self, const char *exec_id, BerthStdio *stdio_out, GError **error)
{
  g_return_val_if_fail (BERTH_IS_TASK (self), FALSE);
  DISPATCH (BERTH_TASK_GET_IFACE, self, get_stdio, error, FALSE, exec_id, stdio_out, error);
}

void
berth_stdio_clear (BerthStdio *stdio)
{
  g_clear_pointer (&stdio->stdin_path, g_free);
  g_clear_pointer (&stdio->stdout_path, g_free);
  g_clear_pointer (&stdio->stderr_path, g_free);
  stdio->terminal = FALSE;
}

BerthTask *
berth_task_table_lookup (GHashTable *tasks, GMutex *lock, const char *namespace_, const char *id, GError **error)
{
  g_autofree char *key = g_strdup_printf ("%s/%s", namespace_, id);
  g_mutex_lock (lock);
  BerthTask *task = g_hash_table_lookup (tasks, key);
  if (task != NULL)
    g_object_ref (task);
  g_mutex_unlock (lock);
  if (task == NULL)
    berth_throw (error, BERTH_ERROR_NOT_FOUND, "task %s: not found", id);
  return task;
}

GPtrArray *
berth_task_table_list (GHashTable *tasks, GMutex *lock, const char *namespace_)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_object_unref);
  g_mutex_lock (lock);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init (&iter, tasks);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (value != NULL && (namespace_ == NULL || g_str_equal (berth_task_get_namespace (value), namespace_)))
      g_ptr_array_add (out, g_object_ref (value));
  g_mutex_unlock (lock);
  return out;
}

G_DEFINE_INTERFACE (BerthRuntime, berth_runtime, G_TYPE_OBJECT)
static void berth_runtime_default_init (BerthRuntimeInterface *iface) {}

BerthTask *
berth_runtime_create (BerthRuntime *self, const BerthTaskCreateOptions *options, GCancellable *cancellable,
                      GError **error)
{
  g_return_val_if_fail (BERTH_IS_RUNTIME (self), NULL);
  DISPATCH (BERTH_RUNTIME_GET_IFACE, self, create, error, NULL, options, cancellable, error);
}

BerthTask *
berth_runtime_get (BerthRuntime *self, const char *namespace_, const char *id, GError **error)
{
  g_return_val_if_fail (BERTH_IS_RUNTIME (self), NULL);
  DISPATCH (BERTH_RUNTIME_GET_IFACE, self, get, error, NULL, namespace_, id, error);
}

GPtrArray *
berth_runtime_list (BerthRuntime *self, const char *namespace_, GError **error)
{
  g_return_val_if_fail (BERTH_IS_RUNTIME (self), NULL);
  DISPATCH (BERTH_RUNTIME_GET_IFACE, self, list, error, NULL, namespace_, error);
}

gboolean
berth_runtime_restore (BerthRuntime *self, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (BERTH_IS_RUNTIME (self), FALSE);
  DISPATCH (BERTH_RUNTIME_GET_IFACE, self, restore, error, FALSE, cancellable, error);
}
