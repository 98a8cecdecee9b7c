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

/* Sets every BerthSnapshotter vfunc to the shared implementation. */
void snap_store_iface_init (BerthSnapshotterInterface *iface);

G_END_DECLS
