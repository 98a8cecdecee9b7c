/* berth-snapshotter-base.h — libberth-snapshotter-1 (pkg-config berth-snapshotter-1): what
 * every directory-based snapshotter shares, as GStreamer's libgstbase is for elements.
 *
 * Records live in the plugin's own LMDB ("<root>/metadata.lmdb"); each snapshot owns
 * "<root>/snapshots/<id>/{fs,work}". A new snapshot's directory is made before its record
 * is written, and a removed one's record goes before its directory, so a crash leaves at
 * worst a directory without a record, which cleanup finds and removes.
 *
 * A plugin supplies only what differs: how a new snapshot's fs is filled (populate) and
 * which mounts an active snapshot or view gets (mounts). Its instance struct starts with
 * BerthSnapObject, its type implements BerthSnapshotter with berth_snap_store_iface_init,
 * and its init opens the store with berth_snap_store_open. examples/snapshotter-copyup in
 * berth's source is a complete one built out of tree.
 *
 * ABI: BerthSnapOps is allocated by the plugin, so later hooks take reserved slots;
 * BerthSnapRecord is allocated by the library and only read by plugins.
 *
 * Since: 0.2
 */
#pragma once

#include <berth/berth.h>

G_BEGIN_DECLS

typedef struct _BerthSnapStore BerthSnapStore;

typedef struct {
  guint64 id;
  BerthSnapshotKind kind;
  char *key;
  char *parent; /* NULL for none */
  GHashTable *labels;
  gint64 created_at, updated_at;
  gint64 size, inodes; /* cached when committed, else -1 */
} BerthSnapRecord;

typedef struct {
  /* Fills the fs dir of a new snapshot; @parents: the parent chain, nearest first. */
  gboolean (*populate) (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error);
  /* The mounts of an active snapshot or a view. */
  GPtrArray *(*mounts) (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error);
  /* The rest is optional (NULL: nothing to do). */
  /* Before an active snapshot's record turns committed; FALSE leaves it active. Runs
   * without the store's lock: it may take long. */
  gboolean (*commit) (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GCancellable *cancellable,
                      GError **error);
  /* After the record says committed; under the store's lock. */
  void (*committed) (BerthSnapStore *store, const BerthSnapRecord *record);
  /* After a snapshot's record and directory are gone; under the store's lock. */
  gboolean (*removed) (BerthSnapStore *store, const BerthSnapRecord *record, GCancellable *cancellable, GError **error);
  /* Usage of a committed snapshot, instead of the size cached at commit. */
  gboolean (*usage) (BerthSnapStore *store, const BerthSnapRecord *record, BerthSnapshotUsage *usage, GCancellable *cancellable,
                     GError **error);
  /* After cleanup removed orphan directories; under the store's lock. */
  gboolean (*cleanup) (BerthSnapStore *store, GCancellable *cancellable, GError **error);
  /*< private >*/
  gpointer _berth_reserved[BERTH_PADDING];
} BerthSnapOps;

/* The first member of every snapshotter instance built on this. */
typedef struct {
  GObject parent_instance;
  BerthSnapStore *store;
} BerthSnapObject;

BerthSnapStore *berth_snap_store_open (const char *root, const BerthSnapOps *ops, GError **error);
void berth_snap_store_free (BerthSnapStore *store);
/* "<root>/snapshots/<id>/<leaf>" */
char *berth_snap_store_path (BerthSnapStore *store, guint64 id, const char *leaf);

/* The plugin's own data, for the BerthSnapOps hooks. */
void berth_snap_store_set_data (BerthSnapStore *store, gpointer data);
gpointer berth_snap_store_get_data (BerthSnapStore *store);
/* Calls @func on every record (a consistent snapshot of them); stops when it returns FALSE. */
gboolean berth_snap_store_foreach (BerthSnapStore *store, gboolean (*func) (BerthSnapRecord *record, gpointer data), gpointer data,
                             GError **error);

/* Mounts over a stack of read-only layer dirs (@lowers, nearest first; may be empty):
 * a bind of the snapshot's fs or of the one lower when that does, else an overlay (with
 * the snapshot's fs and work as upper and work dir when it is active). */
GPtrArray *berth_snap_store_layer_mounts (BerthSnapStore *store, const BerthSnapRecord *record, const char *const *lowers);

/* Sets every BerthSnapshotter vfunc to the shared implementation. */
void berth_snap_store_iface_init (BerthSnapshotterInterface *iface);

G_END_DECLS
