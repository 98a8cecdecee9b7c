/* berth-snapshotter.h — BerthSnapshotter: layered filesystems, containerd's semantics.
 *
 * Snapshots are named by keys. An *active* snapshot (Prepare) is writable; a *view*
 * (View) is read-only; Commit turns an active snapshot into a *committed* one under a
 * new name, which may then be the parent of others. Prepare and View return mounts; the
 * snapshotter never mounts them for the caller. Remove of a snapshot that still has
 * children fails with FAILED_PRECONDITION. Keys are per snapshotter; namespacing is the
 * core's business (it prefixes keys).
 */
#pragma once

#include <gio/gio.h>
#include <berth/berth-types.h>

G_BEGIN_DECLS

typedef enum {
  BERTH_SNAPSHOT_KIND_UNKNOWN = 0,
  BERTH_SNAPSHOT_KIND_VIEW = 1,
  BERTH_SNAPSHOT_KIND_ACTIVE = 2,
  BERTH_SNAPSHOT_KIND_COMMITTED = 3,
} BerthSnapshotKind; /* same numbers as containerd's snapshots.v1.Kind */

typedef struct {
  char *name;
  char *parent;       /* NULL for none */
  BerthSnapshotKind kind;
  GHashTable *labels; /* never NULL */
  gint64 created_at;  /* µs since the epoch */
  gint64 updated_at;
} BerthSnapshotInfo;

typedef struct {
  gint64 size;   /* bytes */
  gint64 inodes;
} BerthSnapshotUsage;

BerthSnapshotInfo *berth_snapshot_info_copy (const BerthSnapshotInfo *info);
void berth_snapshot_info_free (BerthSnapshotInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthSnapshotInfo, berth_snapshot_info_free)

/* Return FALSE to stop the walk. */
typedef gboolean (*BerthSnapshotWalkFunc) (const BerthSnapshotInfo *info, gpointer user_data);

#define BERTH_TYPE_SNAPSHOTTER (berth_snapshotter_get_type ())
G_DECLARE_INTERFACE (BerthSnapshotter, berth_snapshotter, BERTH, SNAPSHOTTER, GObject)

struct _BerthSnapshotterInterface {
  GTypeInterface g_iface;
  BerthSnapshotInfo *(*stat) (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error);
  /* Updates labels (fieldpaths "labels" or "labels.<k>"; NULL/empty: all labels). */
  BerthSnapshotInfo *(*update) (BerthSnapshotter *self, const BerthSnapshotInfo *info,
                                const char *const *fieldpaths, GCancellable *cancellable, GError **error);
  /* Committed snapshots may answer from a cache. */
  gboolean (*usage) (BerthSnapshotter *self, const char *key, BerthSnapshotUsage *usage,
                     GCancellable *cancellable, GError **error);
  /* GPtrArray of BerthMount for an active snapshot or view. */
  GPtrArray *(*mounts) (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error);
  /* @parent: a committed snapshot's name or NULL. ALREADY_EXISTS for a used key. */
  GPtrArray *(*prepare) (BerthSnapshotter *self, const char *key, const char *parent,
                         GHashTable *labels, GCancellable *cancellable, GError **error);
  GPtrArray *(*view) (BerthSnapshotter *self, const char *key, const char *parent,
                      GHashTable *labels, GCancellable *cancellable, GError **error);
  gboolean (*commit) (BerthSnapshotter *self, const char *name, const char *key,
                      GHashTable *labels, GCancellable *cancellable, GError **error);
  gboolean (*remove) (BerthSnapshotter *self, const char *key,
                      GCancellable *cancellable, GError **error);
  gboolean (*walk) (BerthSnapshotter *self, BerthSnapshotWalkFunc func, gpointer user_data,
                    GCancellable *cancellable, GError **error);
  /* Removes directories no snapshot record points to (left by a crash). */
  gboolean (*cleanup) (BerthSnapshotter *self, GCancellable *cancellable, GError **error);
};

BerthSnapshotInfo *berth_snapshotter_stat (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error);
BerthSnapshotInfo *berth_snapshotter_update (BerthSnapshotter *self, const BerthSnapshotInfo *info,
                                             const char *const *fieldpaths, GCancellable *cancellable, GError **error);
gboolean berth_snapshotter_usage (BerthSnapshotter *self, const char *key, BerthSnapshotUsage *usage,
                                  GCancellable *cancellable, GError **error);
GPtrArray *berth_snapshotter_mounts (BerthSnapshotter *self, const char *key, GCancellable *cancellable, GError **error);
GPtrArray *berth_snapshotter_prepare (BerthSnapshotter *self, const char *key, const char *parent,
                                      GHashTable *labels, GCancellable *cancellable, GError **error);
GPtrArray *berth_snapshotter_view (BerthSnapshotter *self, const char *key, const char *parent,
                                   GHashTable *labels, GCancellable *cancellable, GError **error);
gboolean berth_snapshotter_commit (BerthSnapshotter *self, const char *name, const char *key,
                                   GHashTable *labels, GCancellable *cancellable, GError **error);
gboolean berth_snapshotter_remove (BerthSnapshotter *self, const char *key,
                                   GCancellable *cancellable, GError **error);
gboolean berth_snapshotter_walk (BerthSnapshotter *self, BerthSnapshotWalkFunc func, gpointer user_data,
                                 GCancellable *cancellable, GError **error);
gboolean berth_snapshotter_cleanup (BerthSnapshotter *self, GCancellable *cancellable, GError **error);

G_END_DECLS
