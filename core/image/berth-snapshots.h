/* berth-snapshots.h — a namespace's view of one snapshotter (core-internal), shared by
 * the Snapshots service and server-side unpack.
 *
 * A namespace's key K is "<ns>/K" in the backend, so namespaces never see each other's
 * snapshots; "v1/<ns>/snapshots/<snapshotter>/<K>" records in the metadata store tell
 * namespace deletion, GC and leases what exists, and a snapshot made under a lease is
 * one of its resources. Changes publish containerd's /snapshot/... events.
 */
#pragma once

#include "daemon/berth-daemon.h"

G_BEGIN_DECLS

typedef struct {
  BerthDaemon *daemon;
  const char *ns;
  const char *name;          /* the snapshotter's name, default filled in */
  BerthSnapshotter *backend;
  const char *lease;         /* NULL: none */
} BerthSnapshots;

/* @snapshotter: NULL or "" for the configured default. The strings are borrowed. */
gboolean berth_snapshots_init (BerthSnapshots *snaps, BerthDaemon *daemon, const char *ns, const char *snapshotter,
                               const char *lease, GError **error);
/* "<ns>/<key>"; NULL for an empty key. */
char *berth_snapshots_backend_key (const BerthSnapshots *snaps, const char *key);
/* The namespace's own name for a backend key; NULL when it is another namespace's. */
const char *berth_snapshots_client_key (const BerthSnapshots *snaps, const char *backend_key);

/* Prepare (or View when @view): the mounts. */
GPtrArray *berth_snapshots_create (const BerthSnapshots *snaps, const char *key, const char *parent, GHashTable *labels,
                                   gboolean view, GCancellable *cancellable, GError **error);
gboolean berth_snapshots_commit (const BerthSnapshots *snaps, const char *name, const char *key, GHashTable *labels,
                                 GCancellable *cancellable, GError **error);
gboolean berth_snapshots_remove (const BerthSnapshots *snaps, const char *key, GCancellable *cancellable,
                                 GError **error);
BerthSnapshotInfo *berth_snapshots_stat (const BerthSnapshots *snaps, const char *key, GError **error);

G_END_DECLS
