/* berth-kv.h — a key-value store in one LMDB file: the one LMDB helper of berthd's
 * metadata and of plugins that keep records (libberth-snapshotter-1).
 *
 * One environment, one unnamed database; keys are strings, values bytes. Transactions
 * run through a callback: a write that returns FALSE is aborted, so a change is all or
 * nothing; a read never blocks and is never blocked. One write transaction at a time
 * (LMDB's rule: a second writer waits). Every LMDB failure becomes a GError in
 * BERTH_ERROR: a key over LMDB's limit is INVALID_ARGUMENT (the caller's input, not a
 * broken store), a full map RESOURCE_EXHAUSTED, the rest INTERNAL.
 *
 * Since: 0.2
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BerthKv BerthKv;
typedef struct _BerthKvTxn BerthKvTxn;

/* Runs inside a transaction; FALSE (with @error set) aborts it. */
typedef gboolean (*BerthKvTxnFunc) (BerthKvTxn *txn, gpointer user_data, GError **error);
/* Return FALSE to stop. @key and @value are valid only during the call. */
typedef gboolean (*BerthKvForeachFunc) (const char *key, const guint8 *value, gsize len, gpointer user_data);

/* Opens (creating) the file @path (its directory must exist; LMDB adds "@path-lock").
 * @map_size bounds the file; the map is sparse, so only what is written takes room.
 * Read transactions are not tied to a thread: any thread may run them. */
BerthKv *berth_kv_open (const char *path, gsize map_size, GError **error);
void berth_kv_close (BerthKv *kv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthKv, berth_kv_close)

/* The longest key LMDB accepts (511 bytes in Debian's build). */
gsize berth_kv_max_key_size (BerthKv *kv);

gboolean berth_kv_read (BerthKv *kv, BerthKvTxnFunc func, gpointer user_data, GError **error);
gboolean berth_kv_write (BerthKv *kv, BerthKvTxnFunc func, gpointer user_data, GError **error);

/* NULL without an error when absent. */
GBytes *berth_kv_txn_get (BerthKvTxn *txn, const char *key, GError **error);
/* @key: 1 to berth_kv_max_key_size() bytes, else INVALID_ARGUMENT. */
gboolean berth_kv_txn_put (BerthKvTxn *txn, const char *key, const void *value, gsize len, GError **error);
/* NOT_FOUND when absent. */
gboolean berth_kv_txn_delete (BerthKvTxn *txn, const char *key, GError **error);
/* Deletes every key starting with @prefix; how many in *count_out (may be NULL). */
gboolean berth_kv_txn_delete_prefix (BerthKvTxn *txn, const char *prefix, guint *count_out, GError **error);
/* Visits the keys starting with @prefix ("" for all) in byte order. An LMDB error is an
 * error, never a short walk. */
gboolean berth_kv_txn_foreach (BerthKvTxn *txn, const char *prefix, BerthKvForeachFunc func, gpointer user_data,
                               GError **error);
/* FALSE with @error unset when no key starts with @prefix. */
gboolean berth_kv_txn_has_prefix (BerthKvTxn *txn, const char *prefix, GError **error);

G_END_DECLS
