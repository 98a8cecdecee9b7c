/* berth-kv.c — the LMDB helper behind berthd's metadata and the snapshotter base.
 *
 * It lives in libberth-1 rather than a library of its own: LMDB is one small C library
 * with no dependencies of its own and berthd links it anyway, while a separate
 * libberth-kv would be a second soname, .pc file and ABI to keep for ~250 lines. The
 * header does not include <lmdb.h>, so a plugin compiles without LMDB's headers. */
#include "config.h"

#include <string.h>

#include <lmdb.h>

#include <berth/berth-error.h>
#include <berth/berth-kv.h>

struct _BerthKv {
  MDB_env *env;
  MDB_dbi dbi;
  char *path;
};

struct _BerthKvTxn {
  BerthKv *kv;
  MDB_txn *txn;
};

/* @subject: the file for whole-store steps, the key for a key's. */
static gboolean
throw_mdb (GError **error, int rc, const char *what, const char *subject)
{
  /* A key longer than LMDB takes is the caller's input, not a broken store. */
  BerthErrorCode code = rc == MDB_BAD_VALSIZE ? BERTH_ERROR_INVALID_ARGUMENT
                        : rc == MDB_MAP_FULL  ? BERTH_ERROR_RESOURCE_EXHAUSTED
                                              : BERTH_ERROR_INTERNAL;
  return berth_throw (error, code, "LMDB %s (%s): %s", what, subject, mdb_strerror (rc));
}

BerthKv *
berth_kv_open (const char *path, gsize map_size, GError **error)
{
  g_autoptr (BerthKv) kv = g_new0 (BerthKv, 1);
  kv->path = g_strdup (path);
  int rc = mdb_env_create (&kv->env);
  if (rc == 0)
    rc = mdb_env_set_mapsize (kv->env, map_size);
  /* NOSUBDIR: one file plus its -lock; NOTLS: read transactions are not bound to a
   * thread's TLS slot, so many worker threads can read at once. */
  if (rc == 0)
    rc = mdb_env_open (kv->env, path, MDB_NOSUBDIR | MDB_NOTLS, 0600);
  if (rc != 0)
    {
      throw_mdb (error, rc, "open", path);
      return NULL;
    }
  MDB_txn *txn = NULL;
  rc = mdb_txn_begin (kv->env, NULL, 0, &txn);
  if (rc == 0)
    rc = mdb_dbi_open (txn, NULL, 0, &kv->dbi);
  if (rc == 0)
    rc = mdb_txn_commit (txn);
  else if (txn != NULL)
    mdb_txn_abort (txn);
  if (rc != 0)
    {
      throw_mdb (error, rc, "open database", path);
      return NULL;
    }
  g_debug ("LMDB store %s open", path);
  return g_steal_pointer (&kv);
}

void
berth_kv_close (BerthKv *kv)
{
  if (kv == NULL)
    return;
  if (kv->env != NULL)
    mdb_env_close (kv->env);
  g_free (kv->path);
  g_free (kv);
}

gsize
berth_kv_max_key_size (BerthKv *kv)
{
  return (gsize) mdb_env_get_maxkeysize (kv->env);
}

static gboolean
run_txn (BerthKv *kv, gboolean write, BerthKvTxnFunc func, gpointer user_data, GError **error)
{
  BerthKvTxn txn = { kv, NULL };
  int rc = mdb_txn_begin (kv->env, NULL, write ? 0 : MDB_RDONLY, &txn.txn);
  if (rc != 0)
    return throw_mdb (error, rc, "begin transaction", kv->path);
  if (!func (&txn, user_data, error))
    {
      mdb_txn_abort (txn.txn);
      return FALSE;
    }
  if (!write)
    {
      mdb_txn_abort (txn.txn);
      return TRUE;
    }
  rc = mdb_txn_commit (txn.txn);
  if (rc != 0)
    return throw_mdb (error, rc, "commit", kv->path);
  return TRUE;
}

gboolean
berth_kv_read (BerthKv *kv, BerthKvTxnFunc func, gpointer user_data, GError **error)
{
  return run_txn (kv, FALSE, func, user_data, error);
}

gboolean
berth_kv_write (BerthKv *kv, BerthKvTxnFunc func, gpointer user_data, GError **error)
{
  return run_txn (kv, TRUE, func, user_data, error);
}

static MDB_val
key_val (const char *key)
{
  MDB_val val = { strlen (key), (void *) key };
  return val;
}

GBytes *
berth_kv_txn_get (BerthKvTxn *txn, const char *key, GError **error)
{
  MDB_val k = key_val (key), v;
  int rc = mdb_get (txn->txn, txn->kv->dbi, &k, &v);
  if (rc == MDB_NOTFOUND)
    return NULL;
  if (rc != 0)
    {
      throw_mdb (error, rc, "get", key);
      return NULL;
    }
  return g_bytes_new (v.mv_data, v.mv_size);
}

gboolean
berth_kv_txn_put (BerthKvTxn *txn, const char *key, const void *value, gsize len, GError **error)
{
  gsize max = berth_kv_max_key_size (txn->kv);
  if (*key == '\0' || strlen (key) > max)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "key of %zu bytes: must be 1 to %zu bytes", strlen (key),
                        max);
  MDB_val k = key_val (key), v = { len, (void *) value };
  int rc = mdb_put (txn->txn, txn->kv->dbi, &k, &v, 0);
  if (rc != 0)
    return throw_mdb (error, rc, "put", key);
  return TRUE;
}

gboolean
berth_kv_txn_delete (BerthKvTxn *txn, const char *key, GError **error)
{
  MDB_val k = key_val (key);
  int rc = mdb_del (txn->txn, txn->kv->dbi, &k, NULL);
  if (rc == MDB_NOTFOUND)
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s: not found", key);
  if (rc != 0)
    return throw_mdb (error, rc, "delete", key);
  return TRUE;
}

/* Walks the keys with @prefix until @func returns FALSE. */
static gboolean
walk_prefix (BerthKvTxn *txn, const char *prefix, gboolean (*func) (MDB_val *k, MDB_val *v, gpointer data),
             gpointer data, GError **error)
{
  MDB_cursor *cursor = NULL;
  int rc = mdb_cursor_open (txn->txn, txn->kv->dbi, &cursor);
  if (rc != 0)
    return throw_mdb (error, rc, "cursor", prefix);
  gsize plen = strlen (prefix);
  MDB_val k = key_val (prefix), v;
  rc = mdb_cursor_get (cursor, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
  while (rc == 0 && k.mv_size >= plen && memcmp (k.mv_data, prefix, plen) == 0)
    {
      if (!func (&k, &v, data))
        {
          rc = MDB_NOTFOUND;
          break;
        }
      rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    }
  mdb_cursor_close (cursor);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return throw_mdb (error, rc, "iterate", prefix);
  return TRUE;
}

typedef struct {
  BerthKvForeachFunc func;
  gpointer user_data;
} ForeachData;

static gboolean
foreach_cb (MDB_val *k, MDB_val *v, gpointer data)
{
  ForeachData *fd = data;
  g_autofree char *key = g_strndup (k->mv_data, k->mv_size);
  return fd->func (key, v->mv_data, v->mv_size, fd->user_data);
}

gboolean
berth_kv_txn_foreach (BerthKvTxn *txn, const char *prefix, BerthKvForeachFunc func, gpointer user_data,
                      GError **error)
{
  ForeachData fd = { func, user_data };
  return walk_prefix (txn, prefix, foreach_cb, &fd, error);
}

static gboolean
found_cb (MDB_val *k, MDB_val *v, gpointer data)
{
  *(gboolean *) data = TRUE;
  return FALSE;
}

gboolean
berth_kv_txn_has_prefix (BerthKvTxn *txn, const char *prefix, GError **error)
{
  gboolean found = FALSE;
  if (!walk_prefix (txn, prefix, found_cb, &found, error))
    return FALSE;
  return found;
}

static gboolean
collect_key_cb (MDB_val *k, MDB_val *v, gpointer data)
{
  g_ptr_array_add (data, g_strndup (k->mv_data, k->mv_size));
  return TRUE;
}

gboolean
berth_kv_txn_delete_prefix (BerthKvTxn *txn, const char *prefix, guint *count_out, GError **error)
{
  /* Collect first: deleting under a live cursor while walking is easy to get wrong. */
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  if (!walk_prefix (txn, prefix, collect_key_cb, keys, error))
    return FALSE;
  for (guint i = 0; i < keys->len; i++)
    if (!berth_kv_txn_delete (txn, keys->pdata[i], error))
      return FALSE;
  if (count_out != NULL)
    *count_out = keys->len;
  return TRUE;
}
