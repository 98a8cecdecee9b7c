/* berth-gc.h — garbage collection, containerd's model (core-internal).
 *
 * Roots: images (their targets), unexpired leases (every resource they hold), content
 * labelled containerd.io/gc.root, containers (their snapshot). References:
 * containerd.io/gc.ref.content* labels on content point at more content,
 * containerd.io/gc.ref.snapshot.<snapshotter> labels at snapshots; a kept snapshot keeps
 * its parents. Active snapshots and views are never collected. What no root reaches is removed from its namespace;
 * a blob that no namespace sees any more is removed from the content store. Leases
 * whose containerd.io/gc.expire time has passed are released first.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _BerthDaemon BerthDaemon;

typedef struct {
  guint leases_expired;
  guint content_records_removed;
  guint blobs_removed;
  guint snapshots_removed;
} BerthGcStats;

/* One full collection. Blocks: call it from a worker. */
gboolean berth_gc_run (BerthDaemon *daemon, GCancellable *cancellable, BerthGcStats *stats, GError **error);
/* Runs a collection every @interval_seconds on a worker (0: never). */
guint berth_gc_schedule (BerthDaemon *daemon, guint interval_seconds);

/* Held shared by whoever makes a blob and then records it in a namespace (two steps):
 * the sweep takes it exclusively, so it never sees a blob between the two. */
void berth_gc_hold (void);
void berth_gc_release (void);

G_END_DECLS
