/* snap-store.h — what every directory-based snapshotter shares (compiled into each).
 *
 * Records live in the plugin's own LMDB ("<root>/metadata.lmdb"); each snapshot owns
 * "<root>/snapshots/<id>/{fs,work}". A new snapshot's directory is made before its record
 * is written, and a removed one's record goes before its directory, so a crash leaves at
 * worst a directory without a record, which cleanup finds and removes.
 *
 * A plugin supplies only what differs: how a new snapshot's fs is filled and which
 * mounts an active snapshot or view gets. Its instance struct starts with SnapObject.
 */
#pragma once

#include <berth/berth.h>

G_BEGIN_DECLS

typedef struct _SnapStore SnapStore;

typedef struct {
  guint64 id;
  BerthSnapshotKind kind;
  char *key;
  char *parent; /* NULL for none */
  GHashTable *labels;
  gint64 created_at, updated_at;
  gint64 size, inodes; /* cached when committed, else -1 */
} SnapRecord;

typedef struct {
  /* Fills the fs dir of a new snapshot; @parents: the parent chain, nearest first. */
  gboolean (*populate) (SnapStore *store, const SnapRecord *record, GPtrArray *parents, GError **error);
  /* The mounts of an active snapshot or a view. */
  GPtrArray *(*mounts) (SnapStore *store, const SnapRecord *record, GPtrArray *parents, GError **error);
  /* The rest is optional (NULL: nothing to do). */
  /* Before an active snapshot's record turns committed; FALSE leaves it active. Runs
   * without the store's lock: it may take long. */
  gboolean (*commit) (SnapStore *store, const SnapRecord *record, GPtrArray *parents, GCancellable *cancellable,
                      GError **error);
  /* After the record says committed; under the store's lock. */
  void (*committed) (SnapStore *store, const SnapRecord *record);
  /* After a snapshot's record and directory are gone; under the store's lock. */
  gboolean (*removed) (SnapStore *store, const SnapRecord *record, GCancellable *cancellable, GError **error);
  /* Usage of a committed snapshot, instead of the size cached at commit. */
  gboolean (*usage) (SnapStore *store, const SnapRecord *record, BerthSnapshotUsage *usage, GCancellable *cancellable,
                     GError **error);
  /* After cleanup removed orphan directories; under the store's lock. */
  gboolean (*cleanup) (SnapStore *store, GCancellable *cancellable, GError **error);
} SnapOps;

/* The first member of every snapshotter instance built on this. */
typedef struct {
  GObject parent_instance;
  SnapStore *store;
} SnapObject;

SnapStore *snap_store_open (const char *root, const SnapOps *ops, GError **error);
void snap_store_free (SnapStore *store);
/* "<root>/snapshots/<id>/<leaf>" */
char *snap_store_path (SnapStore *store, guint64 id, const char *leaf);

/* The plugin's own data, for the SnapOps hooks. */
void snap_store_set_data (SnapStore *store, gpointer data);
gpointer snap_store_get_data (SnapStore *store);
/* Calls @func on every record (a consistent snapshot of them); stops when it returns FALSE. */
gboolean snap_store_foreach (SnapStore *store, gboolean (*func) (SnapRecord *record, gpointer data), gpointer data,
                             GError **error);

/* Mounts over a stack of read-only layer dirs (@lowers, nearest first; may be empty):
 * a bind of the snapshot's fs or of the one lower when that does, else an overlay (with
 * the snapshot's fs and work as upper and work dir when it is active). */
GPtrArray *snap_store_layer_mounts (SnapStore *store, const SnapRecord *record, const char *const *lowers);

/* Sets every BerthSnapshotter vfunc to the shared implementation. */
void snap_store_iface_init (BerthSnapshotterInterface *iface);

G_END_DECLS
