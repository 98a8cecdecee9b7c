/* berth-snapshotter-base.c — records, directories and containerd's snapshot semantics, shared by
 * the directory-based snapshotters. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/berth-snapshotter-base.h>

#define RECORD_PREFIX "s/"
#define NEXT_ID_KEY "meta/next-id"
/* id, kind, parent, labels, created, updated, size, inodes */
#define RECORD_FORMAT "(tusa{ss}xxxx)"

struct _BerthSnapStore {
  char *root;
  const BerthSnapOps *ops;
  BerthKv *kv;
  GMutex write_lock; /* LMDB allows one writer; this also orders dir + record steps */
  gpointer data;
};

void
berth_snap_store_set_data (BerthSnapStore *store, gpointer data)
{
  store->data = data;
}

gpointer
berth_snap_store_get_data (BerthSnapStore *store)
{
  return store->data;
}

/* LMDB's key limit less the record prefix, checked up front so the message counts the
 * snapshot key the client sent. */
static gboolean
check_key (BerthSnapStore *store, const char *key, GError **error)
{
  gsize max = berth_kv_max_key_size (store->kv) - strlen (RECORD_PREFIX);
  if (strlen (key) > max)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "snapshot key of %zu bytes: over the limit of %zu bytes",
                        strlen (key), max);
  return TRUE;
}

char *
berth_snap_store_path (BerthSnapStore *store, guint64 id, const char *leaf)
{
  g_autofree char *name = g_strdup_printf ("%" G_GUINT64_FORMAT, id);
  return g_build_filename (store->root, "snapshots", name, leaf, NULL);
}

static void
record_free (BerthSnapRecord *record)
{
  if (record == NULL)
    return;
  g_free (record->key);
  g_free (record->parent);
  g_clear_pointer (&record->labels, g_hash_table_unref);
  g_free (record);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthSnapRecord, record_free)

static GBytes *
record_pack (const BerthSnapRecord *record)
{
  GVariantBuilder labels;
  g_variant_builder_init (&labels, G_VARIANT_TYPE ("a{ss}"));
  GHashTableIter iter;
  gpointer k, v;
  g_hash_table_iter_init (&iter, record->labels);
  while (g_hash_table_iter_next (&iter, &k, &v))
    g_variant_builder_add (&labels, "{ss}", k, v);
  g_autoptr (GVariant) value = g_variant_ref_sink (
    g_variant_new (RECORD_FORMAT, record->id, (guint32) record->kind, record->parent ? record->parent : "", &labels,
                   record->created_at, record->updated_at, record->size, record->inodes));
  return g_variant_get_data_as_bytes (value);
}

static BerthSnapRecord *
record_unpack (const char *key, const void *data, gsize len)
{
  g_autoptr (GBytes) bytes = g_bytes_new (data, len);
  g_autoptr (GVariant) value = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (RECORD_FORMAT), bytes, FALSE));
  BerthSnapRecord *record = g_new0 (BerthSnapRecord, 1);
  guint32 kind;
  const char *parent;
  g_autoptr (GVariantIter) labels = NULL;
  /* "&s": borrow the parent from the variant (it is copied below). */
  g_variant_get (value, "(tu&sa{ss}xxxx)", &record->id, &kind, &parent, &labels, &record->created_at, &record->updated_at,
                 &record->size, &record->inodes);
  record->kind = kind;
  record->key = g_strdup (key);
  record->parent = *parent ? g_strdup (parent) : NULL;
  record->labels = berth_labels_new ();
  const char *lk, *lv;
  while (g_variant_iter_next (labels, "{&s&s}", &lk, &lv))
    g_hash_table_insert (record->labels, g_strdup (lk), g_strdup (lv));
  return record;
}

/* ---------------- records in the store ---------------- */

typedef gboolean (*TxnFunc) (BerthSnapStore *store, BerthKvTxn *txn, gpointer data, GError **error);

typedef struct {
  BerthSnapStore *store;
  TxnFunc func;
  gpointer data;
} TxnCall;

static gboolean
txn_call (BerthKvTxn *txn, gpointer user_data, GError **error)
{
  TxnCall *call = user_data;
  return call->func (call->store, txn, call->data, error);
}

static gboolean
with_txn (BerthSnapStore *store, gboolean write, TxnFunc func, gpointer data, GError **error)
{
  TxnCall call = { store, func, data };
  return (write ? berth_kv_write : berth_kv_read) (store->kv, txn_call, &call, error);
}

/* NOT_FOUND when @key has no record. */
static BerthSnapRecord *
txn_get (BerthSnapStore *store, BerthKvTxn *txn, const char *key, GError **error)
{
  g_autofree char *k = g_strconcat (RECORD_PREFIX, key, NULL);
  GError *local = NULL;
  g_autoptr (GBytes) value = berth_kv_txn_get (txn, k, &local);
  if (value == NULL)
    {
      if (local == NULL)
        berth_throw (&local, BERTH_ERROR_NOT_FOUND, "snapshot %s: not found", key);
      g_propagate_error (error, local);
      return NULL;
    }
  return record_unpack (key, g_bytes_get_data (value, NULL), g_bytes_get_size (value));
}

/* ALREADY_EXISTS when @key has a record. */
static gboolean
txn_check_absent (BerthSnapStore *store, BerthKvTxn *txn, const char *key, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (BerthSnapRecord) existing = txn_get (store, txn, key, &local);
  if (existing != NULL)
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "snapshot %s: already exists", key);
  if (!g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  return TRUE;
}

static gboolean
txn_put (BerthSnapStore *store, BerthKvTxn *txn, const BerthSnapRecord *record, GError **error)
{
  if (!check_key (store, record->key, error))
    return FALSE;
  g_autofree char *k = g_strconcat (RECORD_PREFIX, record->key, NULL);
  g_autoptr (GBytes) packed = record_pack (record);
  return berth_kv_txn_put (txn, k, g_bytes_get_data (packed, NULL), g_bytes_get_size (packed), error);
}

static gboolean
txn_del (BerthSnapStore *store, BerthKvTxn *txn, const char *key, GError **error)
{
  g_autofree char *k = g_strconcat (RECORD_PREFIX, key, NULL);
  return berth_kv_txn_delete (txn, k, error);
}

typedef struct {
  gboolean (*func) (BerthSnapRecord *record, gpointer data);
  gpointer data;
} RecordVisit;

static gboolean
visit_record (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  RecordVisit *visit = user_data;
  g_autoptr (BerthSnapRecord) record = record_unpack (key + strlen (RECORD_PREFIX), value, len);
  return visit->func (record, visit->data);
}

/* Calls @func on every record; stops when it returns FALSE. An LMDB error is an error,
 * never a short list: cleanup deletes the directory of every record it does not see. */
static gboolean
txn_foreach (BerthSnapStore *store, BerthKvTxn *txn, gboolean (*func) (BerthSnapRecord *record, gpointer data), gpointer data,
             GError **error)
{
  RecordVisit visit = { func, data };
  return berth_kv_txn_foreach (txn, RECORD_PREFIX, visit_record, &visit, error);
}

static gboolean
allocate_id_txn (BerthSnapStore *store, BerthKvTxn *txn, gpointer data, GError **error)
{
  guint64 *id = data;
  GError *local = NULL;
  g_autoptr (GBytes) value = berth_kv_txn_get (txn, NEXT_ID_KEY, &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  *id = 1;
  /* Native-endian, as this store always wrote it. */
  if (value != NULL && g_bytes_get_size (value) == sizeof (guint64))
    memcpy (id, g_bytes_get_data (value, NULL), sizeof (guint64));
  guint64 next = *id + 1;
  return berth_kv_txn_put (txn, NEXT_ID_KEY, &next, sizeof next, error);
}

typedef struct {
  gboolean (*func) (BerthSnapRecord *record, gpointer data);
  gpointer data;
} ForeachData;

static gboolean
foreach_txn (BerthSnapStore *store, BerthKvTxn *txn, gpointer data, GError **error)
{
  ForeachData *f = data;
  return txn_foreach (store, txn, f->func, f->data, error);
}

gboolean
berth_snap_store_foreach (BerthSnapStore *store, gboolean (*func) (BerthSnapRecord *record, gpointer data), gpointer data,
                    GError **error)
{
  ForeachData f = { func, data };
  return with_txn (store, FALSE, foreach_txn, &f, error);
}

/* ---------------- filesystem helpers ---------------- */

static gboolean
remove_tree (const char *path, GError **error)
{
  return berth_remove_tree_at (AT_FDCWD, path, error);
}

static __thread gint64 usage_size, usage_inodes;
static __thread GHashTable *usage_seen;

static int
usage_visit (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  gint64 ino = (gint64) st->st_ino;
  if (st->st_nlink > 1 && !g_hash_table_add (usage_seen, g_memdup2 (&ino, sizeof ino)))
    return 0; /* a hardlink already counted */
  usage_inodes++;
  usage_size += (gint64) st->st_blocks * 512;
  return 0;
}

static void
disk_usage (const char *path, gint64 *size, gint64 *inodes)
{
  usage_size = usage_inodes = 0;
  usage_seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  nftw (path, usage_visit, 64, FTW_PHYS | FTW_MOUNT);
  g_hash_table_unref (usage_seen);
  usage_seen = NULL;
  *size = usage_size;
  *inodes = usage_inodes;
}

/* ---------------- the interface ---------------- */

static BerthSnapStore *
store_of (BerthSnapshotter *self)
{
  return ((BerthSnapObject *) self)->store;
}

static BerthSnapshotInfo *
info_of (const BerthSnapRecord *record)
{
  BerthSnapshotInfo *info = g_new0 (BerthSnapshotInfo, 1);
  info->name = g_strdup (record->key);
  info->parent = g_strdup (record->parent);
  info->kind = record->kind;
  info->labels = berth_labels_copy (record->labels);
  info->created_at = record->created_at;
  info->updated_at = record->updated_at;
  return info;
}

typedef struct {
  const char *key;
  BerthSnapRecord *record;
  GPtrArray *parents; /* BerthSnapRecord*, nearest first */
} Lookup;

static gboolean
lookup_txn (BerthSnapStore *store, BerthKvTxn *txn, gpointer data, GError **error)
{
  Lookup *l = data;
  l->record = txn_get (store, txn, l->key, error);
  if (l->record == NULL)
    return FALSE;
  l->parents = g_ptr_array_new_with_free_func ((GDestroyNotify) record_free);
  for (const char *p = l->record->parent; p != NULL;)
    {
      g_autoptr (GError) local = NULL;
      BerthSnapRecord *parent = txn_get (store, txn, p, &local);
      if (parent == NULL && g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return berth_throw (error, BERTH_ERROR_DATA_LOSS, "snapshot %s: parent %s is missing", l->key, p);
      if (parent == NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      g_ptr_array_add (l->parents, parent);
      p = parent->parent;
    }
  return TRUE;
}

static void
lookup_clear (Lookup *l)
{
  g_clear_pointer (&l->record, record_free);
  g_clear_pointer (&l->parents, g_ptr_array_unref);
}

static BerthSnapshotInfo *
snap_stat (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error)
{
  Lookup l = { key };
  if (!with_txn (store_of (self), FALSE, lookup_txn, &l, error))
    {
      lookup_clear (&l);
      return NULL;
    }
  BerthSnapshotInfo *info = info_of (l.record);
  lookup_clear (&l);
  return info;
}

typedef struct {
  const BerthSnapshotInfo *info;
  const char *const *fieldpaths;
  BerthSnapshotInfo *result;
} UpdateData;

static gboolean
update_txn (BerthSnapStore *store, BerthKvTxn *txn, gpointer data, GError **error)
{
  UpdateData *u = data;
  g_autoptr (BerthSnapRecord) record = txn_get (store, txn, u->info->name, error);
  if (record == NULL)
    return FALSE;
  gboolean all = u->fieldpaths == NULL || u->fieldpaths[0] == NULL;
  for (const char *const *p = u->fieldpaths; !all && *p != NULL; p++)
    {
      if (g_str_equal (*p, "labels"))
        all = TRUE;
      else if (g_str_has_prefix (*p, "labels."))
        {
          const char *k = *p + strlen ("labels.");
          const char *v = u->info->labels ? g_hash_table_lookup (u->info->labels, k) : NULL;
          if (v != NULL && *v != '\0')
            g_hash_table_insert (record->labels, g_strdup (k), g_strdup (v));
          else
            g_hash_table_remove (record->labels, k);
        }
      else
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "cannot update snapshot field \"%s\"", *p);
    }
  if (all)
    {
      g_hash_table_unref (record->labels);
      record->labels = berth_labels_copy (u->info->labels);
    }
  if (!berth_labels_validate (record->labels, error))
    return FALSE;
  record->updated_at = g_get_real_time ();
  u->result = info_of (record);
  return txn_put (store, txn, record, error);
}

static BerthSnapshotInfo *
snap_update (BerthSnapshotter *self, const BerthSnapshotInfo *info, const char *const *fieldpaths, GCancellable *cancellable, GError **error)
{
  UpdateData u = { info, fieldpaths, NULL };
  BerthSnapStore *store = store_of (self);
  g_mutex_lock (&store->write_lock);
  gboolean ok = with_txn (store, TRUE, update_txn, &u, error);
  g_mutex_unlock (&store->write_lock);
  if (!ok)
    g_clear_pointer (&u.result, berth_snapshot_info_free);
  return u.result;
}

static gboolean
snap_usage (BerthSnapshotter *self, const char *key, BerthSnapshotUsage *usage, GCancellable *cancellable,
            GError **error)
{
  Lookup l = { key };
  if (!with_txn (store_of (self), FALSE, lookup_txn, &l, error))
    {
      lookup_clear (&l);
      return FALSE;
    }
  BerthSnapStore *store = store_of (self);
  gboolean ok = TRUE;
  if (l.record->kind == BERTH_SNAPSHOT_KIND_COMMITTED && store->ops->usage != NULL)
    ok = store->ops->usage (store, l.record, usage, cancellable, error);
  else if (l.record->kind == BERTH_SNAPSHOT_KIND_COMMITTED && l.record->size >= 0)
    {
      usage->size = l.record->size;
      usage->inodes = l.record->inodes;
    }
  else
    {
      g_autofree char *fs = berth_snap_store_path (store, l.record->id, "fs");
      disk_usage (fs, &usage->size, &usage->inodes);
    }
  lookup_clear (&l);
  return ok;
}

static GPtrArray *
snap_mounts (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error)
{
  BerthSnapStore *store = store_of (self);
  Lookup l = { key };
  GPtrArray *mounts = NULL;
  if (with_txn (store, FALSE, lookup_txn, &l, error))
    {
      if (l.record->kind == BERTH_SNAPSHOT_KIND_COMMITTED)
        berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "snapshot %s is committed: only active snapshots and views have mounts", key);
      else
        mounts = store->ops->mounts (store, l.record, l.parents, error);
    }
  lookup_clear (&l);
  return mounts;
}

typedef struct {
  const char *key;
  const char *parent;
  BerthSnapshotKind kind;
  GHashTable *labels;
  guint64 id;
  BerthSnapRecord *record;
  GPtrArray *parents;
} CreateData;

static gboolean
check_create_txn (BerthSnapStore *store, BerthKvTxn *txn, gpointer data, GError **error)
{
  CreateData *c = data;
  if (!txn_check_absent (store, txn, c->key, error))
    return FALSE;
  c->parents = g_ptr_array_new_with_free_func ((GDestroyNotify) record_free);
  if (c->parent == NULL)
    return TRUE;
  Lookup l = { c->parent };
  if (!lookup_txn (store, txn, &l, error))
    {
      lookup_clear (&l);
      return FALSE;
    }
  if (l.record->kind != BERTH_SNAPSHOT_KIND_COMMITTED)
    {
      lookup_clear (&l);
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "parent %s is not a committed snapshot", c->parent);
    }
  g_ptr_array_add (c->parents, g_steal_pointer (&l.record));
  g_ptr_array_extend_and_steal (c->parents, g_steal_pointer (&l.parents));
  return TRUE;
}

static gboolean
write_record_txn (BerthSnapStore *store, BerthKvTxn *txn, gpointer data, GError **error)
{
  CreateData *c = data;
  return txn_put (store, txn, c->record, error);
}

static GPtrArray *
create_snapshot (BerthSnapshotter *self, const char *key, const char *parent, GHashTable *labels,
                 BerthSnapshotKind kind, GError **error)
{
  BerthSnapStore *store = store_of (self);
  if (key == NULL || *key == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "snapshot key must not be empty"), NULL;
  if (!berth_labels_validate (labels, error))
    return NULL;
  CreateData c = { key, parent && *parent ? parent : NULL, kind, labels };
  GPtrArray *mounts = NULL;
  g_autofree char *dir = NULL, *fs = NULL, *work = NULL;
  g_mutex_lock (&store->write_lock);
  if (!with_txn (store, FALSE, check_create_txn, &c, error) || !with_txn (store, TRUE, allocate_id_txn, &c.id, error))
    goto out;
  dir = berth_snap_store_path (store, c.id, NULL);
  fs = berth_snap_store_path (store, c.id, "fs");
  work = berth_snap_store_path (store, c.id, "work");
  gint64 now = g_get_real_time ();
  c.record = g_new0 (BerthSnapRecord, 1);
  *c.record = (BerthSnapRecord) { c.id, kind, g_strdup (key), g_strdup (c.parent), berth_labels_copy (labels), now, now, -1, -1 };
  /* Directory first, record second: a crash in between leaves a dir cleanup removes. */
  if (g_mkdir_with_parents (fs, 0755) < 0 || g_mkdir_with_parents (work, 0700) < 0)
    {
      berth_throw_errno (error, "creating %s", dir);
      goto out;
    }
  if (!store->ops->populate (store, c.record, c.parents, error) || !with_txn (store, TRUE, write_record_txn, &c, error))
    {
      remove_tree (dir, NULL);
      goto out;
    }
  mounts = store->ops->mounts (store, c.record, c.parents, error);
out:
  g_mutex_unlock (&store->write_lock);
  record_free (c.record);
  g_clear_pointer (&c.parents, g_ptr_array_unref);
  return mounts;
}

static GPtrArray *
snap_prepare (BerthSnapshotter *self, const char *key, const char *parent, GHashTable *labels,
              GCancellable *cancellable, GError **error)
{
  return create_snapshot (self, key, parent, labels, BERTH_SNAPSHOT_KIND_ACTIVE, error);
}

static GPtrArray *
snap_view (BerthSnapshotter *self, const char *key, const char *parent, GHashTable *labels, GCancellable *cancellable,
           GError **error)
{
  return create_snapshot (self, key, parent, labels, BERTH_SNAPSHOT_KIND_VIEW, error);
}

typedef struct {
  const char *name;
  const char *key;
  GHashTable *labels;
} CommitData;

static gboolean
commit_txn (BerthSnapStore *store, BerthKvTxn *txn, gpointer data, GError **error)
{
  CommitData *c = data;
  if (!txn_check_absent (store, txn, c->name, error))
    return FALSE;
  g_autoptr (BerthSnapRecord) record = txn_get (store, txn, c->key, error);
  if (record == NULL)
    return FALSE;
  if (record->kind != BERTH_SNAPSHOT_KIND_ACTIVE)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "snapshot %s is not active: only active snapshots can be committed", c->key);
  if (!txn_del (store, txn, c->key, error))
    return FALSE;
  g_autofree char *fs = berth_snap_store_path (store, record->id, "fs");
  disk_usage (fs, &record->size, &record->inodes);
  g_free (record->key);
  record->key = g_strdup (c->name);
  record->kind = BERTH_SNAPSHOT_KIND_COMMITTED;
  /* A commit is a new snapshot, as in containerd: created now, never updated yet. */
  record->created_at = record->updated_at = g_get_real_time ();
  if (c->labels != NULL && g_hash_table_size (c->labels) > 0)
    {
      g_hash_table_unref (record->labels);
      record->labels = berth_labels_copy (c->labels);
    }
  return txn_put (store, txn, record, error);
}

static gboolean
snap_commit (BerthSnapshotter *self, const char *name, const char *key, GHashTable *labels, GCancellable *cancellable,
             GError **error)
{
  BerthSnapStore *store = store_of (self);
  if (name == NULL || *name == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "commit needs a name");
  if (!berth_labels_validate (labels, error))
    return FALSE;
  CommitData c = { name, key, labels };
  Lookup l = { key };
  if (store->ops->commit != NULL)
    {
      /* Not active or not there: commit_txn below says so. */
      gboolean ok = !with_txn (store, FALSE, lookup_txn, &l, NULL) || l.record->kind != BERTH_SNAPSHOT_KIND_ACTIVE
                    || store->ops->commit (store, l.record, l.parents, cancellable, error);
      if (!ok)
        {
          lookup_clear (&l);
          return FALSE;
        }
    }
  g_mutex_lock (&store->write_lock);
  gboolean ok = with_txn (store, TRUE, commit_txn, &c, error);
  if (ok && store->ops->committed != NULL && l.record != NULL)
    store->ops->committed (store, l.record);
  g_mutex_unlock (&store->write_lock);
  lookup_clear (&l);
  return ok;
}

typedef struct {
  const char *key;
  const char *child;
} ChildSearch;

static gboolean
find_child (BerthSnapRecord *record, gpointer data)
{
  ChildSearch *s = data;
  if (record->parent != NULL && g_str_equal (record->parent, s->key))
    {
      s->child = g_intern_string (record->key);
      return FALSE;
    }
  return TRUE;
}

typedef struct {
  const char *key;
  BerthSnapRecord *record;
} RemoveData;

static gboolean
remove_txn (BerthSnapStore *store, BerthKvTxn *txn, gpointer data, GError **error)
{
  RemoveData *r = data;
  const char *key = r->key;
  g_autoptr (BerthSnapRecord) record = txn_get (store, txn, key, error);
  if (record == NULL)
    return FALSE;
  ChildSearch s = { key, NULL };
  if (!txn_foreach (store, txn, find_child, &s, error))
    return FALSE;
  if (s.child != NULL)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "cannot remove snapshot %s: %s is its child", key, s.child);
  if (!txn_del (store, txn, key, error))
    return FALSE;
  r->record = g_steal_pointer (&record);
  return TRUE;
}

static gboolean
snap_remove (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error)
{
  BerthSnapStore *store = store_of (self);
  RemoveData r = { key, NULL };
  g_mutex_lock (&store->write_lock);
  /* Record first, directory second: see the header. */
  gboolean ok = with_txn (store, TRUE, remove_txn, &r, error);
  g_mutex_unlock (&store->write_lock);
  if (!ok)
    return FALSE;
  g_autoptr (BerthSnapRecord) record = r.record;
  g_autofree char *dir = berth_snap_store_path (store, record->id, NULL);
  if (!remove_tree (dir, error))
    return FALSE;
  if (store->ops->removed == NULL)
    return TRUE;
  g_mutex_lock (&store->write_lock);
  ok = store->ops->removed (store, record, cancellable, error);
  g_mutex_unlock (&store->write_lock);
  return ok;
}

typedef struct {
  BerthSnapshotWalkFunc func;
  gpointer user_data;
} WalkData;

static gboolean
walk_one (BerthSnapRecord *record, gpointer data)
{
  WalkData *w = data;
  g_autoptr (BerthSnapshotInfo) info = info_of (record);
  return w->func (info, w->user_data);
}

static gboolean
snap_walk (BerthSnapshotter *self, BerthSnapshotWalkFunc func, gpointer user_data, GCancellable *cancellable,
           GError **error)
{
  WalkData w = { func, user_data };
  return berth_snap_store_foreach (store_of (self), walk_one, &w, error);
}

static gboolean
collect_id (BerthSnapRecord *record, gpointer data)
{
  g_autofree char *name = g_strdup_printf ("%" G_GUINT64_FORMAT, record->id);
  g_hash_table_add (data, g_steal_pointer (&name));
  return TRUE;
}

static gboolean
snap_cleanup (BerthSnapshotter *self, GCancellable *cancellable, GError **error)
{
  BerthSnapStore *store = store_of (self);
  g_autoptr (GHashTable) known = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_mutex_lock (&store->write_lock);
  gboolean ok = berth_snap_store_foreach (store, collect_id, known, error);
  g_autofree char *dir = g_build_filename (store->root, "snapshots", NULL);
  g_autoptr (GDir) listing = ok ? g_dir_open (dir, 0, error) : NULL;
  const char *name;
  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL && ok)
    if (!g_hash_table_contains (known, name))
      {
        g_autofree char *orphan = g_build_filename (dir, name, NULL);
        g_debug ("cleanup: removing orphan snapshot dir %s", orphan);
        ok = remove_tree (orphan, error);
      }
  if (ok && listing != NULL && store->ops->cleanup != NULL)
    ok = store->ops->cleanup (store, cancellable, error);
  g_mutex_unlock (&store->write_lock);
  return ok && listing != NULL;
}

GPtrArray *
berth_snap_store_layer_mounts (BerthSnapStore *store, const BerthSnapRecord *record, const char *const *lowers)
{
  GPtrArray *mounts = berth_mount_list_new ();
  gboolean active = record->kind == BERTH_SNAPSHOT_KIND_ACTIVE;
  guint n_lowers = lowers ? g_strv_length ((char **) lowers) : 0;
  if (n_lowers == 0 || (!active && n_lowers == 1))
    {
      /* One layer: a bind mount does, read-only for a view. */
      g_autofree char *fs = n_lowers ? g_strdup (lowers[0]) : berth_snap_store_path (store, record->id, "fs");
      const char *options[] = { active ? "rw" : "ro", "rbind", NULL };
      g_ptr_array_add (mounts, berth_mount_new ("bind", fs, options));
      return mounts;
    }
  g_autofree char *lower = g_strjoinv (":", (char **) lowers);
  g_autoptr (GPtrArray) options = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (options, g_strdup ("index=off"));
  if (active)
    {
      g_autofree char *fs = berth_snap_store_path (store, record->id, "fs");
      g_autofree char *work = berth_snap_store_path (store, record->id, "work");
      g_ptr_array_add (options, g_strdup_printf ("workdir=%s", work));
      g_ptr_array_add (options, g_strdup_printf ("upperdir=%s", fs));
    }
  g_ptr_array_add (options, g_strconcat ("lowerdir=", lower, NULL));
  g_ptr_array_add (options, NULL);
  g_ptr_array_add (mounts, berth_mount_new ("overlay", "overlay", (const char *const *) options->pdata));
  return mounts;
}

void
berth_snap_store_iface_init (BerthSnapshotterInterface *iface)
{
  iface->stat = snap_stat;
  iface->update = snap_update;
  iface->usage = snap_usage;
  iface->mounts = snap_mounts;
  iface->prepare = snap_prepare;
  iface->view = snap_view;
  iface->commit = snap_commit;
  iface->remove = snap_remove;
  iface->walk = snap_walk;
  iface->cleanup = snap_cleanup;
}

BerthSnapStore *
berth_snap_store_open (const char *root, const BerthSnapOps *ops, GError **error)
{
  BerthSnapStore *store = g_new0 (BerthSnapStore, 1);
  store->root = g_strdup (root);
  store->ops = ops;
  g_mutex_init (&store->write_lock);
  g_autofree char *snapshots = g_build_filename (root, "snapshots", NULL);
  g_autofree char *db = g_build_filename (root, "metadata.lmdb", NULL);
  if (g_mkdir_with_parents (snapshots, 0700) < 0)
    {
      berth_throw_errno (error, "creating %s", snapshots);
      berth_snap_store_free (store);
      return NULL;
    }
  store->kv = berth_kv_open (db, (gsize) 1 << 30, error);
  if (store->kv == NULL)
    {
      berth_snap_store_free (store);
      return NULL;
    }
  return store;
}

void
berth_snap_store_free (BerthSnapStore *store)
{
  if (store == NULL)
    return;
  berth_kv_close (store->kv);
  g_mutex_clear (&store->write_lock);
  g_free (store->root);
  g_free (store);
}
