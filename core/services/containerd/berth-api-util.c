/* berth-api-util.c — conversions every service needs. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-types.h>
#include "berth-api-util.h"

gboolean
berth_api_update_labels (GHashTable *labels, GHashTable *update, char **paths, gsize n_paths,
                         const char *const *other_allowed, GError **error)
{
  for (gsize i = 0; i < n_paths; i++)
    {
      const char *path = paths[i];
      if (g_str_equal (path, "labels"))
        {
          g_hash_table_remove_all (labels);
          GHashTableIter iter;
          gpointer k, v;
          g_hash_table_iter_init (&iter, update);
          while (g_hash_table_iter_next (&iter, &k, &v))
            g_hash_table_insert (labels, g_strdup (k), g_strdup (v));
        }
      else if (g_str_has_prefix (path, "labels."))
        {
          const char *key = path + strlen ("labels.");
          const char *value = g_hash_table_lookup (update, key);
          if (value != NULL && *value != '\0')
            g_hash_table_insert (labels, g_strdup (key), g_strdup (value));
          else
            g_hash_table_remove (labels, key);
        }
      else if (other_allowed == NULL || !g_strv_contains (other_allowed, path))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "cannot update field \"%s\"", path);
    }
  return berth_labels_validate (labels, error);
}

gpointer
berth_api_message_unpack (const ProtobufCMessageDescriptor *descriptor, const guint8 *data, gsize len)
{
  return protobuf_c_message_unpack (descriptor, &berth_grpc_allocator, len, data);
}

gpointer
berth_api_message_copy (const ProtobufCMessage *message)
{
  gsize size = protobuf_c_message_get_packed_size (message);
  g_autofree guint8 *buf = g_malloc (size ? size : 1);
  protobuf_c_message_pack (message, buf);
  return berth_api_message_unpack (message->descriptor, buf, size);
}

BerthFilter *
berth_api_filter_parse (char **filters, size_t n_filters, GError **error)
{
  g_autofree const char **terminated = g_new0 (const char *, n_filters + 1);
  for (size_t i = 0; i < n_filters; i++)
    terminated[i] = filters[i];
  return berth_filter_parse (terminated, error);
}

gboolean
berth_api_strings_contain (char **strings, size_t n, const char *value)
{
  for (size_t i = 0; i < n; i++)
    if (g_str_equal (strings[i], value))
      return TRUE;
  return FALSE;
}


Containerd__Types__Mount **
berth_api_mounts_to (GPtrArray *mounts, size_t *n_out)
{
  *n_out = mounts->len;
  Containerd__Types__Mount **out = g_new0 (Containerd__Types__Mount *, mounts->len + 1);
  for (guint i = 0; i < mounts->len; i++)
    {
      BerthMount *m = mounts->pdata[i];
      Containerd__Types__Mount *mm = berth_grpc_message_new (&containerd__types__mount__descriptor);
      mm->type = g_strdup (m->type);
      mm->source = g_strdup (m->source);
      mm->target = g_strdup (m->target ? m->target : "");
      mm->n_options = g_strv_length (m->options);
      mm->options = g_strdupv (m->options);
      out[i] = mm;
    }
  return out;
}

const char *
berth_api_label_field (const char *const *fieldpath, void *const *entries, size_t n_entries)
{
  if (fieldpath[0] == NULL || !g_str_equal (fieldpath[0], "labels") || fieldpath[1] == NULL || fieldpath[2] != NULL)
    return NULL;
  for (size_t i = 0; i < n_entries; i++)
    {
      const BerthSchemaMapEntry *entry = entries[i];
      if (g_str_equal (entry->key, fieldpath[1]))
        return entry->value;
    }
  return NULL;
}

/* ---------------- waiting for exits ---------------- */

struct _BerthApiExitWaiter {
  gint refs; /* the signal handler's and the owner's */
  GMutex lock;
  gboolean done;
  BerthTask *task;
  char *exec_id; /* NULL: init */
  gulong handler;
  BerthApiExitFunc func;
  gpointer user_data;
};

static void
exit_waiter_unref (gpointer data, GClosure *closure)
{
  BerthApiExitWaiter *waiter = data;
  if (!g_atomic_int_dec_and_test (&waiter->refs))
    return;
  g_object_unref (waiter->task);
  g_free (waiter->exec_id);
  g_mutex_clear (&waiter->lock);
  g_free (waiter);
}

static void
exit_waiter_fire (BerthApiExitWaiter *waiter, const BerthExitStatus *exit, const GError *error)
{
  g_mutex_lock (&waiter->lock);
  if (!waiter->done)
    {
      waiter->done = TRUE;
      waiter->func (exit, error, waiter->user_data);
    }
  g_mutex_unlock (&waiter->lock);
}

static void
on_waited_exit (BerthTask *task, const char *exec_id, guint pid, guint exit_status, gint64 exited_at, gpointer data)
{
  BerthApiExitWaiter *waiter = data;
  if (g_strcmp0 (exec_id && *exec_id ? exec_id : NULL, waiter->exec_id) != 0)
    return;
  BerthExitStatus exit = { exit_status, exited_at };
  exit_waiter_fire (waiter, &exit, NULL);
}

BerthApiExitWaiter *
berth_api_wait_exit (BerthTask *task, const char *exec_id, BerthApiExitFunc func, gpointer user_data)
{
  BerthApiExitWaiter *waiter = g_new0 (BerthApiExitWaiter, 1);
  waiter->refs = 2;
  g_mutex_init (&waiter->lock);
  waiter->task = g_object_ref (task);
  waiter->exec_id = exec_id && *exec_id ? g_strdup (exec_id) : NULL;
  waiter->func = func;
  waiter->user_data = user_data;
  /* Connected before the state is asked: an exit in between is not missed. */
  waiter->handler = g_signal_connect_data (task, "exited", G_CALLBACK (on_waited_exit), waiter, exit_waiter_unref, 0);
  BerthExitStatus exit = { 0 };
  BerthTaskStatus status = berth_task_get_status (task, waiter->exec_id, &exit);
  if (status == BERTH_TASK_STATUS_STOPPED)
    exit_waiter_fire (waiter, &exit, NULL);
  else if (status == BERTH_TASK_STATUS_UNKNOWN && waiter->exec_id != NULL)
    {
      g_autoptr (GError) error = NULL;
      berth_throw (&error, BERTH_ERROR_NOT_FOUND, "process %s of task %s: not found", waiter->exec_id,
                   berth_task_get_id (task));
      exit_waiter_fire (waiter, NULL, error);
    }
  return waiter;
}

void
berth_api_exit_waiter_cancel (BerthApiExitWaiter *waiter)
{
  g_mutex_lock (&waiter->lock);
  waiter->done = TRUE;
  g_mutex_unlock (&waiter->lock);
  g_signal_handler_disconnect (waiter->task, waiter->handler);
  exit_waiter_unref (waiter, NULL);
}

void
berth_api_publish (BerthGrpcCall *call, const char *topic, const ProtobufCMessage *event)
{
  berth_events_publish (berth_daemon_get_events (berth_grpc_call_get_daemon (call)), berth_grpc_call_get_namespace (call),
                        topic, event);
}
