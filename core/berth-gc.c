/* berth-gc.c — mark and sweep over the metadata store and the content store. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>
#include "api/berth-api-util.h"
#include "berth-daemon.h"
#include "berth-gc.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "berth-gc"

#define LABEL_ROOT "containerd.io/gc.root"
#define LABEL_EXPIRE "containerd.io/gc.expire"
#define LABEL_REF_CONTENT "containerd.io/gc.ref.content"
#define LABEL_REF_SNAPSHOT "containerd.io/gc.ref.snapshot."

static GRWLock sweep_lock;
static gint running;

void
berth_gc_hold (void)
{
  g_rw_lock_reader_lock (&sweep_lock);
}

void
berth_gc_release (void)
{
  g_rw_lock_reader_unlock (&sweep_lock);
}

typedef struct {
  const char *ns;
  gint64 now;
  GHashTable *marked;      /* digests reached in this namespace */
  GQueue pending;          /* digests to visit */
  GPtrArray *doomed;       /* keys to delete */
  GHashTable *visible;     /* digests kept in any namespace (all namespaces) */
  GHashTable *snapshots;   /* "<snapshotter>/<ns>/<key>" kept (all namespaces) */
  BerthGcStats *stats;
} Mark;

static void
mark_snapshot (Mark *m, const char *snapshotter, const char *key)
{
  if (snapshotter != NULL && *snapshotter && key != NULL && *key)
    g_hash_table_add (m->snapshots, g_strdup_printf ("%s/%s/%s", snapshotter, m->ns, key));
}

static void
mark (Mark *m, const char *digest)
{
  if (digest == NULL || g_hash_table_contains (m->marked, digest))
    return;
  char *copy = g_strdup (digest);
  g_hash_table_add (m->marked, copy);
  g_queue_push_tail (&m->pending, copy);
}

static gboolean
image_root (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  Containerd__Services__Images__V1__Image *image =
    (gpointer) protobuf_c_message_unpack (&containerd__services__images__v1__image__descriptor, NULL, len, value);
  if (image == NULL)
    return TRUE;
  if (image->target != NULL)
    mark (m, image->target->digest);
  protobuf_c_message_free_unpacked (&image->base, NULL);
  return TRUE;
}

static gboolean
lease_expired (const Containerd__Services__Leases__V1__Lease *lease, gint64 now)
{
  for (size_t i = 0; i < lease->n_labels; i++)
    if (g_str_equal (lease->labels[i]->key, LABEL_EXPIRE))
      {
        g_autoptr (GDateTime) when = g_date_time_new_from_iso8601 (lease->labels[i]->value, NULL);
        return when != NULL && g_date_time_to_unix (when) * G_USEC_PER_SEC < now;
      }
  return FALSE;
}

static gboolean
lease_walk (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  const char *r = strstr (key, "/r/");
  if (r != NULL)
    {
      /* A resource; its lease was checked before it (keys sort lease first). */
      g_autofree char *lease_key = g_strndup (key, r - key);
      if (g_ptr_array_find_with_equal_func (m->doomed, lease_key, g_str_equal, NULL))
        g_ptr_array_add (m->doomed, g_strdup (key));
      else if (g_str_has_prefix (r, "/r/content/"))
        mark (m, r + strlen ("/r/content/"));
      else if (g_str_has_prefix (r, "/r/snapshots/"))
        {
          const char *rest = r + strlen ("/r/snapshots/");
          const char *slash = strchr (rest, '/');
          if (slash != NULL)
            {
              g_autofree char *snapshotter = g_strndup (rest, slash - rest);
              mark_snapshot (m, snapshotter, slash + 1);
            }
        }
      return TRUE;
    }
  Containerd__Services__Leases__V1__Lease *lease =
    (gpointer) protobuf_c_message_unpack (&containerd__services__leases__v1__lease__descriptor, NULL, len, value);
  if (lease != NULL && lease_expired (lease, m->now))
    {
      g_debug ("lease %s in %s expired", lease->id, m->ns);
      g_ptr_array_add (m->doomed, g_strdup (key));
      m->stats->leases_expired++;
    }
  if (lease != NULL)
    protobuf_c_message_free_unpacked (&lease->base, NULL);
  return TRUE;
}

static gboolean
container_root (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  Containerd__Services__Containers__V1__Container *c =
    (gpointer) protobuf_c_message_unpack (&containerd__services__containers__v1__container__descriptor, NULL, len, value);
  if (c == NULL)
    return TRUE;
  mark_snapshot (m, c->snapshotter, c->snapshot_key);
  protobuf_c_message_free_unpacked (&c->base, NULL);
  return TRUE;
}

static gboolean
labelled_root (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  Containerd__Services__Content__V1__Info *info =
    (gpointer) protobuf_c_message_unpack (&containerd__services__content__v1__info__descriptor, NULL, len, value);
  if (info == NULL)
    return TRUE;
  for (size_t i = 0; i < info->n_labels; i++)
    if (g_str_equal (info->labels[i]->key, LABEL_ROOT))
      mark (m, info->digest);
  protobuf_c_message_free_unpacked (&info->base, NULL);
  return TRUE;
}

/* Follows gc.ref.content labels from every marked digest. */
static gboolean
follow_refs (BerthMetadataTxn *txn, Mark *m, GError **error)
{
  char *digest;
  while ((digest = g_queue_pop_head (&m->pending)) != NULL)
    {
      g_autofree char *key = berth_api_content_key (m->ns, digest);
      g_autoptr (GBytes) bytes = berth_metadata_txn_get (txn, key, error);
      if (bytes == NULL)
        {
          if (error != NULL && *error != NULL)
            return FALSE;
          continue;
        }
      gsize len = 0;
      const guint8 *data = g_bytes_get_data (bytes, &len);
      Containerd__Services__Content__V1__Info *info =
        (gpointer) protobuf_c_message_unpack (&containerd__services__content__v1__info__descriptor, NULL, len, data);
      if (info == NULL)
        continue;
      for (size_t i = 0; i < info->n_labels; i++)
        if (g_str_has_prefix (info->labels[i]->key, LABEL_REF_CONTENT))
          mark (m, info->labels[i]->value);
        else if (g_str_has_prefix (info->labels[i]->key, LABEL_REF_SNAPSHOT))
          mark_snapshot (m, info->labels[i]->key + strlen (LABEL_REF_SNAPSHOT), info->labels[i]->value);
      protobuf_c_message_free_unpacked (&info->base, NULL);
    }
  return TRUE;
}

static gboolean
sweep_content (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  const char *digest = strrchr (key, '/') + 1;
  if (g_hash_table_contains (m->marked, digest))
    g_hash_table_add (m->visible, g_strdup (digest));
  else
    {
      g_ptr_array_add (m->doomed, g_strdup (key));
      m->stats->content_records_removed++;
    }
  return TRUE;
}

typedef struct {
  gint64 now;
  GHashTable *visible;
  GHashTable *snapshots;
  BerthGcStats *stats;
} Collect;

static gboolean
collect_namespace (BerthMetadataTxn *txn, const char *ns, Collect *c, GError **error)
{
  Mark m = { ns, c->now, g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL), G_QUEUE_INIT,
             g_ptr_array_new_with_free_func (g_free), c->visible, c->snapshots, c->stats };
  g_autofree char *images = g_strdup_printf ("v1/%s/images/", ns);
  g_autofree char *leases = g_strdup_printf ("v1/%s/leases/", ns);
  g_autofree char *content = g_strdup_printf ("v1/%s/content/", ns);
  g_autofree char *containers = g_strdup_printf ("v1/%s/containers/", ns);
  gboolean ok = berth_metadata_txn_foreach (txn, images, image_root, &m, error)
                && berth_metadata_txn_foreach (txn, containers, container_root, &m, error)
                && berth_metadata_txn_foreach (txn, leases, lease_walk, &m, error)
                && berth_metadata_txn_foreach (txn, content, labelled_root, &m, error)
                && follow_refs (txn, &m, error)
                && berth_metadata_txn_foreach (txn, content, sweep_content, &m, error);
  for (guint i = 0; ok && i < m.doomed->len; i++)
    ok = berth_metadata_txn_delete (txn, m.doomed->pdata[i], error);
  g_hash_table_unref (m.marked);
  g_queue_clear (&m.pending);
  g_ptr_array_unref (m.doomed);
  return ok;
}

static gboolean
collect_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Collect *c = user_data;
  g_autoptr (GPtrArray) namespaces = g_ptr_array_new_with_free_func (g_free);
  if (!berth_api_list_namespaces (txn, namespaces, error))
    return FALSE;
  for (guint i = 0; i < namespaces->len; i++)
    if (!collect_namespace (txn, namespaces->pdata[i], c, error))
      return FALSE;
  return TRUE;
}

typedef struct {
  GHashTable *visible;
  GPtrArray *unseen;
} BlobWalk;

static gboolean
blob_unseen (const BerthContentInfo *info, gpointer user_data)
{
  BlobWalk *walk = user_data;
  if (!g_hash_table_contains (walk->visible, info->digest))
    g_ptr_array_add (walk->unseen, g_strdup (info->digest));
  return TRUE;
}

typedef struct {
  GHashTable *parents;   /* backend name → parent (committed or not) */
  GHashTable *removable; /* committed, unlabelled backend names */
} SnapWalk;

static gboolean
snapshot_seen (const BerthSnapshotInfo *info, gpointer user_data)
{
  SnapWalk *w = user_data;
  g_hash_table_insert (w->parents, g_strdup (info->name), g_strdup (info->parent));
  /* Active snapshots and views belong to someone at work: never collected. */
  if (info->kind == BERTH_SNAPSHOT_KIND_COMMITTED && !g_hash_table_contains (info->labels, LABEL_ROOT))
    g_hash_table_add (w->removable, g_strdup (info->name));
  return TRUE;
}

static gboolean
drop_snapshot_record (BerthMetadataTxn *txn, gpointer key, GError **error)
{
  g_autoptr (GError) ignored = NULL;
  berth_metadata_txn_delete (txn, key, &ignored);
  return TRUE;
}

/* Removes the committed snapshots of @snapshotter that nothing keeps. */
static void
sweep_snapshots (BerthDaemon *daemon, const char *snapshotter, BerthSnapshotter *backend, GHashTable *kept,
                 GCancellable *cancellable, BerthGcStats *stats)
{
  SnapWalk w = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free),
                 g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL) };
  g_autoptr (GHashTable) live = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer name, parent;
  if (!berth_snapshotter_walk (backend, snapshot_seen, &w, cancellable, NULL))
    goto out;
  /* Kept: what a root names, everything not removable, and every ancestor of those. */
  g_hash_table_iter_init (&iter, w.parents);
  while (g_hash_table_iter_next (&iter, &name, &parent))
    {
      g_autofree char *id = g_strdup_printf ("%s/%s", snapshotter, (char *) name);
      if (!g_hash_table_contains (w.removable, name) || g_hash_table_contains (kept, id))
        for (const char *n = name; n != NULL && !g_hash_table_contains (live, n); n = g_hash_table_lookup (w.parents, n))
          {
            gpointer stored_key = NULL;
            if (g_hash_table_lookup_extended (w.parents, n, &stored_key, NULL))
              g_hash_table_add (live, stored_key);
            else
              break;
          }
    }
  /* Children before parents: repeat until a pass removes nothing. */
  gboolean progress = TRUE;
  while (progress)
    {
      progress = FALSE;
      g_hash_table_iter_init (&iter, w.removable);
      while (g_hash_table_iter_next (&iter, &name, NULL))
        {
          if (g_hash_table_contains (live, name))
            continue;
          if (!berth_snapshotter_remove (backend, name, cancellable, NULL))
            continue;
          const char *slash = strchr (name, '/');
          if (slash != NULL)
            {
              g_autofree char *ns = g_strndup (name, slash - (char *) name);
              g_autofree char *record = g_strdup_printf ("v1/%s/snapshots/%s/%s", ns, snapshotter, slash + 1);
              berth_metadata_write (berth_daemon_get_metadata (daemon), drop_snapshot_record, record, NULL);
            }
          stats->snapshots_removed++;
          g_hash_table_iter_remove (&iter);
          progress = TRUE;
        }
    }
out:
  g_hash_table_unref (w.parents);
  g_hash_table_unref (w.removable);
}

gboolean
berth_gc_run (BerthDaemon *daemon, GCancellable *cancellable, BerthGcStats *stats_out, GError **error)
{
  BerthGcStats stats = { 0 };
  g_autoptr (GHashTable) visible = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) snapshots = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Collect c = { g_get_real_time (), visible, snapshots, &stats };
  gint64 start = g_get_monotonic_time ();

  /* Exclusive from here to the last blob removal: no blob is between commit and record. */
  g_rw_lock_writer_lock (&sweep_lock);
  gboolean ok = berth_metadata_write (berth_daemon_get_metadata (daemon), collect_txn, &c, error);
  BerthContentStore *store = ok ? berth_daemon_get_content_store (daemon, NULL) : NULL;
  if (store != NULL)
    {
      g_autoptr (GPtrArray) unseen = g_ptr_array_new_with_free_func (g_free);
      BlobWalk walk = { visible, unseen };
      ok = berth_content_store_walk (store, blob_unseen, &walk, cancellable, error);
      for (guint i = 0; ok && i < unseen->len; i++)
        {
          g_autoptr (GError) local_error = NULL;
          if (berth_content_store_delete (store, unseen->pdata[i], cancellable, &local_error))
            stats.blobs_removed++;
          else if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
            g_warning ("gc: removing blob %s: %s", (char *) unseen->pdata[i], local_error->message);
        }
    }
  GPtrArray *plugins = ok ? berth_registry_get_plugins (berth_daemon_get_registry (daemon)) : NULL;
  for (guint i = 0; plugins != NULL && i < plugins->len; i++)
    {
      BerthPluginRecord *record = plugins->pdata[i];
      if (record->instance != NULL && BERTH_IS_SNAPSHOTTER (record->instance))
        sweep_snapshots (daemon, record->name, BERTH_SNAPSHOTTER (record->instance), snapshots, cancellable, &stats);
    }
  g_rw_lock_writer_unlock (&sweep_lock);
  g_debug ("gc: %u leases expired, %u content records, %u blobs and %u snapshots removed in %" G_GINT64_FORMAT " µs",
           stats.leases_expired, stats.content_records_removed, stats.blobs_removed, stats.snapshots_removed,
           g_get_monotonic_time () - start);
  if (stats_out != NULL)
    *stats_out = stats;
  return ok;
}

static void
gc_thread (GTask *task, gpointer source, gpointer daemon, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  if (!berth_gc_run (daemon, cancellable, NULL, &error))
    g_warning ("scheduled gc: %s", error->message);
  g_atomic_int_set (&running, 0);
  g_task_return_boolean (task, TRUE);
}

static gboolean
on_gc_timer (gpointer daemon)
{
  if (!g_atomic_int_compare_and_exchange (&running, 0, 1))
    return G_SOURCE_CONTINUE;
  g_autoptr (GTask) task = g_task_new (NULL, NULL, NULL, NULL);
  g_task_set_task_data (task, daemon, NULL);
  g_task_run_in_thread (task, gc_thread);
  return G_SOURCE_CONTINUE;
}

guint
berth_gc_schedule (BerthDaemon *daemon, guint interval_seconds)
{
  if (interval_seconds == 0)
    return 0;
  return g_timeout_add_seconds (interval_seconds, on_gc_timer, daemon);
}
