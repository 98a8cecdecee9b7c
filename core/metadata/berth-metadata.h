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
 * One write transaction at a time (LMDB's rule); readers never block. A write function
 * that returns FALSE aborts the transaction, so a change is all or nothing.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BerthMetadata BerthMetadata;
typedef struct _BerthMetadataTxn BerthMetadataTxn;

typedef gboolean (*BerthMetadataTxnFunc) (BerthMetadataTxn *txn, gpointer user_data, GError **error);
/* Return FALSE to stop. @value is valid only during the call. */
typedef gboolean (*BerthMetadataForeachFunc) (const char *key, const guint8 *value, gsize len, gpointer user_data);

/* Opens (creating) "<dir>/meta.lmdb". */
BerthMetadata *berth_metadata_open (const char *dir, GError **error);
void berth_metadata_close (BerthMetadata *md);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthMetadata, berth_metadata_close)

gboolean berth_metadata_read (BerthMetadata *md, BerthMetadataTxnFunc func, gpointer user_data, GError **error);
gboolean berth_metadata_write (BerthMetadata *md, BerthMetadataTxnFunc func, gpointer user_data, GError **error);

/* NULL (no error) when absent. */
GBytes *berth_metadata_txn_get (BerthMetadataTxn *txn, const char *key, GError **error);
gboolean berth_metadata_txn_put (BerthMetadataTxn *txn, const char *key, const void *value, gsize len,
                                 GError **error);
/* NOT_FOUND when absent. */
gboolean berth_metadata_txn_delete (BerthMetadataTxn *txn, const char *key, GError **error);
/* Deletes every key starting with @prefix; returns how many in *count_out. */
gboolean berth_metadata_txn_delete_prefix (BerthMetadataTxn *txn, const char *prefix, guint *count_out,
                                           GError **error);
/* Visits keys starting with @prefix in order. */
gboolean berth_metadata_txn_foreach (BerthMetadataTxn *txn, const char *prefix, BerthMetadataForeachFunc func,
                                     gpointer user_data, GError **error);
gboolean berth_metadata_txn_has_prefix (BerthMetadataTxn *txn, const char *prefix, GError **error);

G_END_DECLS
