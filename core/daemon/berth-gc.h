/* berth-gc.h — garbage collection, containerd's model (core-internal).
 *
 * Per namespace, the roots are: images (their target and their labels' references),
 * unexpired leases (everything they hold), containers (their snapshot and labels'
 * references), content and snapshots labelled containerd.io/gc.root, and — to be
 * conservative — every active snapshot and view. References are followed through
 * containerd.io/gc.ref.content[./…] and containerd.io/gc.ref.snapshot.<snapshotter>[/…]
 * labels on content and snapshots, and from a snapshot to its parent.
 *
 * What no root reaches is removed: content records of the namespace, expired leases,
 * committed snapshots (children before parents, through the snapshotter); then every
 * blob that no namespace sees any more. An ingest is aborted only when no unexpired
 * lease holds it and it has been idle for a day (containerd's rule); one a writer has
 * open is never touched. Backend
 * snapshots whose name is not "<known namespace>/<key>" are left alone.
 *
 * Hooking it into the daemon (core/daemon/berth-daemon.c): call berth_gc_schedule (daemon,
 * config->gc_interval_seconds) once the backends are loaded, keep the source id and
 * g_source_remove it on stop. Services call berth_gc_run from their worker thread when
 * a client asks for a synchronous delete.
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
  guint ingests_removed;
} BerthGcStats;

/* One full collection; @stats (may be NULL) gets what was removed. Blocks: call it from
 * a worker. Collections never overlap: a second caller waits for the first. */
gboolean berth_gc_run (BerthDaemon *daemon, GCancellable *cancellable, BerthGcStats *stats, GError **error);
/* Runs a collection every @interval_seconds on a worker (0: never). Returns the
 * GSource id (0 when disabled). */
guint berth_gc_schedule (BerthDaemon *daemon, guint interval_seconds);

/* Held shared by whoever makes a blob and then records it in a namespace (two steps):
 * the sweep takes it exclusively, so it never sees a blob between the two. */
void berth_gc_hold (void);
void berth_gc_release (void);

G_END_DECLS
