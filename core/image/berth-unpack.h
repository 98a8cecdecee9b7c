/* berth-unpack.h — layers applied into a snapshotter on the daemon's side
 * (core-internal), as containerd's unpacker does for a client: one committed snapshot
 * per layer, named by the layer's chain ID, so images sharing a base share snapshots.
 *
 * Layers are applied in order, one call each, so a caller can overlap the unpack of
 * layer N with the fetch of later ones. Each applied layer's diff ID is checked against
 * the one the image config lists. Snapshots are made under @lease (may be NULL), which
 * keeps them from GC until the image's config carries the gc.ref.snapshot label
 * (berth_unpacker_get_chain_id gives its value).
 */
#pragma once

#include "daemon/berth-daemon.h"

G_BEGIN_DECLS

typedef struct _BerthUnpacker BerthUnpacker;

/* @snapshotter: NULL for the configured default. */
BerthUnpacker *berth_unpacker_new (BerthDaemon *daemon, const char *ns, const char *snapshotter, const char *lease,
                                   GError **error);
void berth_unpacker_free (BerthUnpacker *unpacker);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthUnpacker, berth_unpacker_free)

/* Applies the next layer unless its chain's snapshot exists (*applied_out FALSE then). */
gboolean berth_unpacker_apply (BerthUnpacker *unpacker, const BerthDescriptor *layer, const char *diff_id,
                               gboolean *applied_out, GCancellable *cancellable, GError **error);
/* The chain ID of the layers applied so far (NULL before the first). */
const char *berth_unpacker_get_chain_id (BerthUnpacker *unpacker);
/* The snapshotter's name, default filled in. */
const char *berth_unpacker_get_snapshotter (BerthUnpacker *unpacker);

/* The OCI chain ID after layer @diff_id on @parent's chain (NULL for the first layer):
 * the first diff ID, then the sha256 of "PARENT-CHAIN DIFF-ID". */
char *berth_chain_id_next (const char *parent, const char *diff_id);

G_END_DECLS
