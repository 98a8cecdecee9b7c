/* berth-gc.c — mark and sweep over the metadata store, the content store and the
 * snapshotters. The model and its rules are in berth-gc.h. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>
#include "wire/berth-grpc.h"
#include "metadata/berth-metadata-schema.h"
#include "berth-daemon.h"
#include "berth-gc.h"
#include "berth-metrics.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"

#define LABEL_ROOT "containerd.io/gc.root"
#define LABEL_EXPIRE "containerd.io/gc.expire"
#define LABEL_REF_CONTENT "containerd.io/gc.ref.content"
#define LABEL_REF_SNAPSHOT "containerd.io/gc.ref.snapshot."
#define NODE_CONTENT "content:"
#define NODE_SNAPSHOT "snapshot:"
/* containerd's limit for an ingest that no lease holds. */
#define INGEST_MAX_IDLE_USEC (24 * G_TIME_SPAN_HOUR)

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

/* What one snapshotter holds, walked before the metadata transaction: snapshot calls
 * may block, and a transaction must stay short. */
typedef struct {
  char *name; /* the plugin name, as clients and labels say it */
  BerthSnapshotter *backend;
  GHashTable *infos; /* backend name ("<ns>/<key>") → BerthSnapshotInfo */
} SnapWorld;

static void
snap_world_free (SnapWorld *world)
{
  g_free (world->name);
  g_hash_table_unref (world->infos);
  g_free (world);
}

typedef struct {
  SnapWorld *world;
  char *ns;
  char *backend_name;
} DoomedSnapshot;

static void
doomed_snapshot_free (DoomedSnapshot *doomed)
{
  g_free (doomed->ns);
  g_free (doomed->backend_name);
  g_free (doomed);
}

typedef struct {
  gint64 now;
  GPtrArray *worlds;           /* SnapWorld */
  GHashTable *visible;         /* digests some namespace keeps */
  GPtrArray *doomed_snapshots; /* DoomedSnapshot */
  GHashTable *leased_ingests;  /* backend refs ("<ns>/<ref>") an unexpired lease holds */
  BerthGcStats *stats;
} Collect;

/* Marking within one namespace. Nodes are "content:<digest>" and
 * "snapshot:<snapshotter>/<key>", as containerd's GC names them. */
typedef struct {
  Collect *c;
  const char *ns;
  GHashTable *marked; /* node ids */
  GQueue pending;     /* node ids still to follow (owned by marked) */
  GPtrArray *doomed;  /* metadata keys to delete */
  GHashTable *live_leases; /* keys of the namespace's unexpired leases */
  char *corrupt;           /* a root record that does not parse: nothing is collected */
} Mark;

static SnapWorld *
find_world (Collect *c, const char *snapshotter)
{
  for (guint i = 0; i < c->worlds->len; i++)
    {
      SnapWorld *world = c->worlds->pdata[i];
      if (g_str_equal (world->name, snapshotter))
        return world;
    }
  return NULL;
}

static void
mark_node (Mark *m, char *node)
{
  if (g_hash_table_contains (m->marked, node))
    {
      g_free (node);
      return;
    }
  g_hash_table_add (m->marked, node);
  g_queue_push_tail (&m->pending, node);
}

static void
mark_content (Mark *m, const char *digest)
{
  if (digest != NULL && *digest != '\0')
    mark_node (m, g_strconcat (NODE_CONTENT, digest, NULL));
}

static void
mark_snapshot (Mark *m, const char *snapshotter, const char *key)
{
  if (snapshotter != NULL && *snapshotter != '\0' && key != NULL && *key != '\0')
    mark_node (m, g_strdup_printf (NODE_SNAPSHOT "%s/%s", snapshotter, key));
}

/* containerd.io/gc.ref.content, …content.<x>, …content/<x> → content;
 * containerd.io/gc.ref.snapshot.<snapshotter>[/<x>] → a snapshot of that snapshotter. */
static void
mark_label (Mark *m, const char *key, const char *value)
{
  if (key == NULL || value == NULL)
    return;
  if (g_str_has_prefix (key, LABEL_REF_CONTENT))
    {
      char next = key[strlen (LABEL_REF_CONTENT)];
      if (next == '\0' || next == '.' || next == '/')
        mark_content (m, value);
    }
  else if (g_str_has_prefix (key, LABEL_REF_SNAPSHOT))
    {
      const char *rest = key + strlen (LABEL_REF_SNAPSHOT);
      g_autofree char *snapshotter = g_strndup (rest, strcspn (rest, "/"));
      mark_snapshot (m, snapshotter, value);
    }
}

static void
mark_entries (Mark *m, void *const *entries, size_t n_entries)
{
  for (size_t i = 0; i < n_entries; i++)
    {
      const BerthSchemaMapEntry *entry = entries[i];
      mark_label (m, entry->key, entry->value);
    }
}

static gboolean
entries_have (void *const *entries, size_t n_entries, const char *key)
{
  for (size_t i = 0; i < n_entries; i++)
    if (g_strcmp0 (((const BerthSchemaMapEntry *) entries[i])->key, key) == 0)
      return TRUE;
  return FALSE;
}

/* ---- roots ---- */

static gboolean
image_root (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  Containerd__Services__Images__V1__Image *image =
    (gpointer) protobuf_c_message_unpack (&containerd__services__images__v1__image__descriptor, NULL, len, value);
  if (image == NULL)
    {
      m->corrupt = g_strdup (key);
      return FALSE;
    }
  if (image->target != NULL)
    mark_content (m, image->target->digest);
  mark_entries (m, (void *const *) image->labels, image->n_labels);
  protobuf_c_message_free_unpacked (&image->base, NULL);
  return TRUE;
}

static gboolean
lease_expired (const Containerd__Services__Leases__V1__Lease *lease, gint64 now)
{
  for (size_t i = 0; i < lease->n_labels; i++)
    if (g_str_equal (lease->labels[i]->key, LABEL_EXPIRE))
      {
        /* An unparsable expiry is ignored, as containerd does: the lease stays. */
        g_autoptr (GDateTime) when = g_date_time_new_from_iso8601 (lease->labels[i]->value, NULL);
        return when != NULL && g_date_time_to_unix (when) * G_USEC_PER_SEC < now;
      }
  return FALSE;
}

static void
lease_resource_root (Mark *m, const char *resource)
{
  if (g_str_has_prefix (resource, BERTH_SCHEMA_RESOURCE_CONTENT "/"))
    mark_content (m, resource + strlen (BERTH_SCHEMA_RESOURCE_CONTENT "/"));
  else if (g_str_has_prefix (resource, BERTH_SCHEMA_RESOURCE_SNAPSHOTS "/"))
    {
      const char *rest = resource + strlen (BERTH_SCHEMA_RESOURCE_SNAPSHOTS "/");
      const char *slash = strchr (rest, '/');
      if (slash != NULL)
        {
          g_autofree char *snapshotter = g_strndup (rest, slash - rest);
          mark_snapshot (m, snapshotter, slash + 1);
        }
    }
  else if (g_str_has_prefix (resource, BERTH_SCHEMA_RESOURCE_INGESTS "/"))
    g_hash_table_add (m->c->leased_ingests,
                      g_strdup_printf ("%s/%s", m->ns, resource + strlen (BERTH_SCHEMA_RESOURCE_INGESTS "/")));
}

static gboolean
lease_walk (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  gsize lease_len = 0;
  const char *resource = berth_schema_lease_resource_of (key, &lease_len);
  if (resource != NULL)
    {
      /* A resource; its lease sorts before it (a key is a prefix of its resources').
       * One of an expired lease, or left without its lease, goes. */
      g_autofree char *lease_key = g_strndup (key, lease_len);
      if (g_hash_table_contains (m->live_leases, lease_key))
        lease_resource_root (m, resource);
      else
        g_ptr_array_add (m->doomed, g_strdup (key));
      return TRUE;
    }
  Containerd__Services__Leases__V1__Lease *lease =
    (gpointer) protobuf_c_message_unpack (&containerd__services__leases__v1__lease__descriptor, NULL, len, value);
  if (lease != NULL && lease_expired (lease, m->c->now))
    {
      g_debug ("lease %s in %s expired", lease->id, m->ns);
      g_ptr_array_add (m->doomed, g_strdup (key));
      m->c->stats->leases_expired++;
    }
  else
    g_hash_table_add (m->live_leases, g_strdup (key));
  if (lease != NULL)
    protobuf_c_message_free_unpacked (&lease->base, NULL);
  return TRUE;
}

static gboolean
container_root (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  const char *id = strrchr (key, '/');
  g_autofree char *expected = id ? berth_schema_container_key (m->ns, id + 1) : NULL;
  if (id == NULL || !g_str_equal (key, expected))
    return TRUE; /* something the containers service keeps below a container */
  Containerd__Services__Containers__V1__Container *container =
    (gpointer) protobuf_c_message_unpack (&containerd__services__containers__v1__container__descriptor, NULL, len, value);
  if (container == NULL)
    {
      m->corrupt = g_strdup (key);
      return FALSE;
    }
  mark_snapshot (m, container->snapshotter, container->snapshot_key);
  mark_entries (m, (void *const *) container->labels, container->n_labels);
  protobuf_c_message_free_unpacked (&container->base, NULL);
  return TRUE;
}

static gboolean
labelled_content_root (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  Containerd__Services__Content__V1__Info *info =
    (gpointer) protobuf_c_message_unpack (&containerd__services__content__v1__info__descriptor, NULL, len, value);
  if (info == NULL)
    return TRUE;
  if (entries_have ((void *const *) info->labels, info->n_labels, LABEL_ROOT))
    mark_content (m, info->digest);
  protobuf_c_message_free_unpacked (&info->base, NULL);
  return TRUE;
}

/* The namespace's key of a backend snapshot name, NULL when another namespace's. */
static const char *
snapshot_key_in (const char *ns, const char *backend_name)
{
  gsize len = strlen (ns);
  if (backend_name == NULL || strncmp (backend_name, ns, len) != 0 || backend_name[len] != '/')
    return NULL;
  return backend_name + len + 1;
}

/* Active snapshots and views are never collected (something may have them mounted),
 * nor are snapshots labelled gc.root. */
static void
snapshot_roots (Mark *m)
{
  for (guint i = 0; i < m->c->worlds->len; i++)
    {
      SnapWorld *world = m->c->worlds->pdata[i];
      GHashTableIter iter;
      gpointer name, value;
      g_hash_table_iter_init (&iter, world->infos);
      while (g_hash_table_iter_next (&iter, &name, &value))
        {
          const BerthSnapshotInfo *info = value;
          const char *key = snapshot_key_in (m->ns, name);
          if (key != NULL
              && (info->kind != BERTH_SNAPSHOT_KIND_COMMITTED || g_hash_table_contains (info->labels, LABEL_ROOT)))
            mark_snapshot (m, world->name, key);
        }
    }
}

/* ---- references ---- */

static gboolean
follow_content (BerthMetadataTxn *txn, Mark *m, const char *digest, GError **error)
{
  g_autofree char *key = berth_schema_content_key (m->ns, digest);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GBytes) bytes = berth_metadata_txn_get (txn, key, &local_error);
  if (bytes == NULL)
    {
      if (local_error == NULL || g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  Containerd__Services__Content__V1__Info *info =
    (gpointer) protobuf_c_message_unpack (&containerd__services__content__v1__info__descriptor, NULL, len, data);
  if (info == NULL)
    return TRUE;
  mark_entries (m, (void *const *) info->labels, info->n_labels);
  protobuf_c_message_free_unpacked (&info->base, NULL);
  return TRUE;
}

static void
follow_snapshot (Mark *m, const char *node)
{
  const char *slash = strchr (node, '/');
  if (slash == NULL)
    return;
  g_autofree char *snapshotter = g_strndup (node, slash - node);
  SnapWorld *world = find_world (m->c, snapshotter);
  if (world == NULL)
    return;
  g_autofree char *backend_name = g_strdup_printf ("%s/%s", m->ns, slash + 1);
  const BerthSnapshotInfo *info = g_hash_table_lookup (world->infos, backend_name);
  if (info == NULL)
    return;
  mark_snapshot (m, snapshotter, snapshot_key_in (m->ns, info->parent));
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init (&iter, info->labels);
  while (g_hash_table_iter_next (&iter, &key, &value))
    mark_label (m, key, value);
}

static gboolean
follow_refs (BerthMetadataTxn *txn, Mark *m, GError **error)
{
  const char *node;
  while ((node = g_queue_pop_head (&m->pending)) != NULL)
    {
      if (g_str_has_prefix (node, NODE_CONTENT))
        {
          if (!follow_content (txn, m, node + strlen (NODE_CONTENT), error))
            return FALSE;
        }
      else
        follow_snapshot (m, node + strlen (NODE_SNAPSHOT));
    }
  return TRUE;
}

/* ---- sweep ---- */

static gboolean
sweep_content (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Mark *m = user_data;
  const char *digest = strrchr (key, '/') + 1;
  g_autofree char *node = g_strconcat (NODE_CONTENT, digest, NULL);
  if (g_hash_table_contains (m->marked, node))
    g_hash_table_add (m->c->visible, g_strdup (digest));
  else
    {
      g_ptr_array_add (m->doomed, g_strdup (key));
      m->c->stats->content_records_removed++;
    }
  return TRUE;
}

static void
sweep_snapshots (Mark *m)
{
  for (guint i = 0; i < m->c->worlds->len; i++)
    {
      SnapWorld *world = m->c->worlds->pdata[i];
      GHashTableIter iter;
      gpointer name;
      g_hash_table_iter_init (&iter, world->infos);
      while (g_hash_table_iter_next (&iter, &name, NULL))
        {
          const char *key = snapshot_key_in (m->ns, name);
          if (key == NULL)
            continue;
          g_autofree char *node = g_strdup_printf (NODE_SNAPSHOT "%s/%s", world->name, key);
          if (g_hash_table_contains (m->marked, node))
            continue;
          DoomedSnapshot *doomed = g_new0 (DoomedSnapshot, 1);
          doomed->world = world;
          doomed->ns = g_strdup (m->ns);
          doomed->backend_name = g_strdup (name);
          g_ptr_array_add (m->c->doomed_snapshots, doomed);
        }
    }
}

static gboolean
collect_namespace (BerthMetadataTxn *txn, const char *ns, Collect *c, GError **error)
{
  Mark m = { c, ns, g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL), G_QUEUE_INIT,
             g_ptr_array_new_with_free_func (g_free), g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL) };
  g_autofree char *images = berth_schema_bucket_prefix (ns, BERTH_SCHEMA_BUCKET_IMAGES);
  g_autofree char *leases = berth_schema_bucket_prefix (ns, BERTH_SCHEMA_BUCKET_LEASES);
  g_autofree char *containers = berth_schema_bucket_prefix (ns, BERTH_SCHEMA_BUCKET_CONTAINERS);
  g_autofree char *content = berth_schema_bucket_prefix (ns, BERTH_SCHEMA_BUCKET_CONTENT);
  gboolean ok = berth_metadata_txn_foreach (txn, images, image_root, &m, error)
                && berth_metadata_txn_foreach (txn, leases, lease_walk, &m, error)
                && berth_metadata_txn_foreach (txn, containers, container_root, &m, error)
                && berth_metadata_txn_foreach (txn, content, labelled_content_root, &m, error);
  if (ok && m.corrupt != NULL)
    ok = berth_throw (error, BERTH_ERROR_DATA_LOSS,
                      "gc: record %s does not parse; collecting nothing rather than what it may reference", m.corrupt);
  if (ok)
    {
      snapshot_roots (&m);
      ok = follow_refs (txn, &m, error) && berth_metadata_txn_foreach (txn, content, sweep_content, &m, error);
    }
  if (ok)
    sweep_snapshots (&m);
  for (guint i = 0; ok && i < m.doomed->len; i++)
    ok = berth_metadata_txn_delete (txn, m.doomed->pdata[i], error);
  g_hash_table_unref (m.marked);
  g_queue_clear (&m.pending);
  g_ptr_array_unref (m.doomed);
  g_hash_table_unref (m.live_leases);
  g_free (m.corrupt);
  return ok;
}

static gboolean
collect_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Collect *c = user_data;
  g_autoptr (GPtrArray) namespaces = g_ptr_array_new_with_free_func (g_free);
  if (!berth_schema_list_namespaces (txn, namespaces, error))
    return FALSE;
  for (guint i = 0; i < namespaces->len; i++)
    if (!collect_namespace (txn, namespaces->pdata[i], c, error))
      return FALSE;
  return TRUE;
}

static gboolean
collect_snapshot (const BerthSnapshotInfo *info, gpointer infos)
{
  g_hash_table_replace (infos, g_strdup (info->name), berth_snapshot_info_copy (info));
  return TRUE;
}

/* Every loaded snapshotter's snapshots. A failed walk fails the collection: content
 * that only a snapshot's labels reference would otherwise look unreferenced. */
static gboolean
walk_snapshotters (BerthDaemon *daemon, GPtrArray *worlds, GCancellable *cancellable, GError **error)
{
  GPtrArray *plugins = berth_registry_get_plugins (berth_daemon_get_registry (daemon));
  for (guint i = 0; plugins != NULL && i < plugins->len; i++)
    {
      const BerthPluginRecord *record = plugins->pdata[i];
      if (record->status != BERTH_PLUGIN_STATUS_LOADED || !g_str_equal (record->type, BERTH_PLUGIN_TYPE_SNAPSHOTTER)
          || !BERTH_IS_SNAPSHOTTER (record->instance))
        continue;
      SnapWorld *world = g_new0 (SnapWorld, 1);
      world->name = g_strdup (record->name);
      world->backend = BERTH_SNAPSHOTTER (record->instance);
      world->infos = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) berth_snapshot_info_free);
      g_ptr_array_add (worlds, world);
      if (!berth_snapshotter_walk (world->backend, collect_snapshot, world->infos, cancellable, error))
        {
          g_prefix_error (error, "gc: walking snapshotter %s: ", record->name);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
has_children (SnapWorld *world, const char *backend_name)
{
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init (&iter, world->infos);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (g_strcmp0 (((const BerthSnapshotInfo *) value)->parent, backend_name) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
forget_snapshots_txn (BerthMetadataTxn *txn, gpointer removed, GError **error)
{
  GPtrArray *keys = removed;
  for (guint i = 0; i < keys->len; i++)
    {
      g_autoptr (GError) ignored = NULL;
      berth_metadata_txn_delete (txn, keys->pdata[i], &ignored);
    }
  return TRUE;
}

/* Removes the doomed snapshots, children before parents: leaves first, again while that
 * makes progress. A snapshot that gained a child since the walk stays. */
static void
remove_snapshots (BerthDaemon *daemon, Collect *c, GCancellable *cancellable)
{
  g_autoptr (GPtrArray) removed = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *pending = c->doomed_snapshots;
  gboolean progress = TRUE;
  while (progress && pending->len > 0)
    {
      progress = FALSE;
      for (guint i = 0; i < pending->len;)
        {
          DoomedSnapshot *doomed = pending->pdata[i];
          if (has_children (doomed->world, doomed->backend_name))
            {
              i++;
              continue;
            }
          g_autoptr (GError) local_error = NULL;
          if (berth_snapshotter_remove (doomed->world->backend, doomed->backend_name, cancellable, &local_error))
            {
              g_debug ("gc: removed snapshot %s from %s", doomed->backend_name, doomed->world->name);
              c->stats->snapshots_removed++;
              const char *key = doomed->backend_name + strlen (doomed->ns) + 1;
              g_ptr_array_add (removed, berth_schema_snapshot_key (doomed->ns, doomed->world->name, key));
            }
          else if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
            g_message ("gc: keeping snapshot %s of %s: %s", doomed->backend_name, doomed->world->name,
                       local_error->message);
          g_hash_table_remove (doomed->world->infos, doomed->backend_name);
          g_ptr_array_remove_index_fast (pending, i);
          progress = TRUE;
        }
    }
  g_autoptr (GError) error = NULL;
  if (removed->len > 0
      && !berth_metadata_write (berth_daemon_get_metadata (daemon), forget_snapshots_txn, removed, &error))
    g_warning ("gc: forgetting removed snapshots: %s", error->message);
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

/* Aborts ingests idle for a day that no lease holds, as containerd expires them. One
 * that a writer has open is busy, not idle, and stays. */
static void
remove_stale_ingests (BerthContentStore *store, Collect *c)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) statuses = berth_content_store_list_statuses (store, NULL, &error);
  if (statuses == NULL)
    {
      g_warning ("gc: listing ingests: %s", error->message);
      return;
    }
  for (guint i = 0; i < statuses->len; i++)
    {
      const BerthContentStatus *status = statuses->pdata[i];
      if (g_hash_table_contains (c->leased_ingests, status->ref) || status->updated_at > c->now - INGEST_MAX_IDLE_USEC)
        continue;
      g_autoptr (GError) local_error = NULL;
      if (berth_content_store_abort (store, status->ref, NULL, &local_error))
        {
          g_debug ("gc: aborted ingest %s, idle since %" G_GINT64_FORMAT, status->ref, status->updated_at);
          c->stats->ingests_removed++;
        }
      else
        g_debug ("gc: keeping ingest %s: %s", status->ref, local_error->message);
    }
}

static gboolean
remove_blobs (BerthContentStore *store, GHashTable *visible, BerthGcStats *stats, GCancellable *cancellable,
              GError **error)
{
  g_autoptr (GPtrArray) unseen = g_ptr_array_new_with_free_func (g_free);
  BlobWalk walk = { visible, unseen };
  if (!berth_content_store_walk (store, blob_unseen, &walk, cancellable, error))
    return FALSE;
  for (guint i = 0; i < unseen->len; i++)
    {
      g_autoptr (GError) local_error = NULL;
      if (berth_content_store_delete (store, unseen->pdata[i], cancellable, &local_error))
        stats->blobs_removed++;
      else if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        g_warning ("gc: removing blob %s: %s", (char *) unseen->pdata[i], local_error->message);
    }
  return TRUE;
}

gboolean
berth_gc_run (BerthDaemon *daemon, GCancellable *cancellable, BerthGcStats *stats_out, GError **error)
{
  BerthGcStats stats = { 0 };
  g_autoptr (GHashTable) visible = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) worlds = g_ptr_array_new_with_free_func ((GDestroyNotify) snap_world_free);
  g_autoptr (GPtrArray) doomed = g_ptr_array_new_with_free_func ((GDestroyNotify) doomed_snapshot_free);
  g_autoptr (GHashTable) leased_ingests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Collect c = { g_get_real_time (), worlds, visible, doomed, leased_ingests, &stats };
  gint64 start = g_get_monotonic_time ();

  /* Exclusive from here to the last blob removal: no blob is between commit and record,
   * and no two collections interleave. */
  g_rw_lock_writer_lock (&sweep_lock);
  gboolean ok = walk_snapshotters (daemon, worlds, cancellable, error)
                && berth_metadata_write (berth_daemon_get_metadata (daemon), collect_txn, &c, error);
  if (ok)
    remove_snapshots (daemon, &c, cancellable);
  BerthContentStore *store = ok ? berth_daemon_get_content_store (daemon, NULL) : NULL;
  if (store != NULL)
    {
      remove_stale_ingests (store, &c);
      ok = remove_blobs (store, visible, &stats, cancellable, error);
    }
  g_rw_lock_writer_unlock (&sweep_lock);

  gint64 took = g_get_monotonic_time () - start;
  berth_metrics_observe_gc (took, &stats);
  g_debug ("gc: %u leases expired, %u content records, %u blobs, %u snapshots and %u ingests removed in %" G_GINT64_FORMAT
           " us", stats.leases_expired, stats.content_records_removed, stats.blobs_removed, stats.snapshots_removed,
           stats.ingests_removed, took);
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
  /* A collection that takes longer than the interval is not stacked up behind. */
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
