/* berth-metadata.h — the daemon's metadata store, on LMDB (core-internal).
 *
 * One environment, one database, keys shaped like paths (built only by
 * berth-metadata-schema.h) so a namespace or a bucket is
 * a key prefix:
 *   "ns/<namespace>"                          namespace record (labels)
 *   "v1/<namespace>/images/<name>"            image
 *   "v1/<namespace>/content/<digest>"         content visible in the namespace (+ labels)
 *   "v1/<namespace>/leases/<id>"              lease; its resources under
 *   "v1/<namespace>/leases/<id>/r/<type>/<id>"
 *   "v1/<namespace>/snapshots/<snapshotter>/<key>"   snapshot reference
 *   "v1/<namespace>/containers/<id>"          container
 *   "meta/<name>"                             daemon-wide values (server uuid, schema)
 * Values are the service's own encoding — normally the packed protobuf message of the
 * containerd API type the record mirrors.
 *
 * It is a BerthKv (<berth/berth-kv.h>, the LMDB helper plugins use too): one write
 * transaction at a time, readers never block, a write function that returns FALSE aborts
 * the transaction. The names below say which store a caller works on.
 */
#pragma once

#include <glib.h>

#include <berth/berth-kv.h>

G_BEGIN_DECLS

typedef BerthKv BerthMetadata;
typedef BerthKvTxn BerthMetadataTxn;
typedef BerthKvTxnFunc BerthMetadataTxnFunc;
typedef BerthKvForeachFunc BerthMetadataForeachFunc;

/* Opens (creating) "<dir>/meta.lmdb". */
BerthMetadata *berth_metadata_open (const char *dir, GError **error);

/* The rest is BerthKv's, under the names the daemon's callers use. */
#define berth_metadata_close berth_kv_close
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthMetadata, berth_kv_close)
#define berth_metadata_read berth_kv_read
#define berth_metadata_write berth_kv_write
#define berth_metadata_txn_get berth_kv_txn_get
#define berth_metadata_txn_put berth_kv_txn_put
#define berth_metadata_txn_delete berth_kv_txn_delete
#define berth_metadata_txn_delete_prefix berth_kv_txn_delete_prefix
#define berth_metadata_txn_foreach berth_kv_txn_foreach
#define berth_metadata_txn_has_prefix berth_kv_txn_has_prefix

G_END_DECLS
