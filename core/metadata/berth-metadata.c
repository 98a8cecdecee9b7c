/* berth-metadata.c — the metadata store on LMDB. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include <berth/berth-error.h>
#include "berth-metadata.h"

/* Sparse; LMDB only uses what it writes. */
#define METADATA_MAP_SIZE (G_GUINT64_CONSTANT (4) << 30)

struct _BerthMetadata {
  MDB_env *env;
  MDB_dbi dbi;
  char *path;
};

struct _BerthMetadataTxn {
  BerthMetadata *md;
  MDB_txn *txn;
};

static gboolean
throw_mdb (GError **error, int rc, const char *what, const char *path)
{
  /* A key longer than LMDB takes is the caller's input, not a broken store. */
  BerthErrorCode code = rc == MDB_BAD_VALSIZE ? BERTH_ERROR_INVALID_ARGUMENT
                        : rc == MDB_MAP_FULL  ? BERTH_ERROR_RESOURCE_EXHAUSTED
                                              : BERTH_ERROR_INTERNAL;
  return berth_throw (error, code, "metadata %s (%s): %s", what, path, mdb_strerror (rc));
}

BerthMetadata *
berth_metadata_open (const char *dir, GError **error)
{
  g_autoptr (BerthMetadata) md = g_new0 (BerthMetadata, 1);
  md->path = g_build_filename (dir, "meta.lmdb", NULL);
  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      berth_throw_errno (error, "creating %s", dir);
      return NULL;
    }
  int rc = mdb_env_create (&md->env);
  if (rc == 0)
    rc = mdb_env_set_mapsize (md->env, METADATA_MAP_SIZE);
  /* NOSUBDIR: one file plus its -lock; NOTLS: read transactions are not bound to a
   * thread's TLS slot, so many worker threads can read at once. */
  if (rc == 0)
    rc = mdb_env_open (md->env, md->path, MDB_NOSUBDIR | MDB_NOTLS, 0600);
  if (rc != 0)
    {
      throw_mdb (error, rc, "open", md->path);
      return NULL;
    }
  MDB_txn *txn = NULL;
  rc = mdb_txn_begin (md->env, NULL, 0, &txn);
  if (rc == 0)
    rc = mdb_dbi_open (txn, NULL, 0, &md->dbi);
  if (rc == 0)
    rc = mdb_txn_commit (txn);
  else if (txn != NULL)
    mdb_txn_abort (txn);
  if (rc != 0)
    {
      throw_mdb (error, rc, "open database", md->path);
      return NULL;
    }
  g_debug ("metadata store %s open", md->path);
  return g_steal_pointer (&md);
}

void
berth_metadata_close (BerthMetadata *md)
{
  if (md == NULL)
    return;
  if (md->env != NULL)
    mdb_env_close (md->env);
  g_free (md->path);
  g_free (md);
}

static gboolean
run_txn (BerthMetadata *md, gboolean write, BerthMetadataTxnFunc func, gpointer user_data, GError **error)
{
  BerthMetadataTxn txn = { md, NULL };
  int rc = mdb_txn_begin (md->env, NULL, write ? 0 : MDB_RDONLY, &txn.txn);
  if (rc != 0)
    return throw_mdb (error, rc, "begin transaction", md->path);
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
    return throw_mdb (error, rc, "commit", md->path);
  return TRUE;
}

gboolean
berth_metadata_read (BerthMetadata *md, BerthMetadataTxnFunc func, gpointer user_data, GError **error)
{
  return run_txn (md, FALSE, func, user_data, error);
}

gboolean
berth_metadata_write (BerthMetadata *md, BerthMetadataTxnFunc func, gpointer user_data, GError **error)
{
  return run_txn (md, TRUE, func, user_data, error);
}

static MDB_val
key_val (const char *key)
{
  MDB_val val = { strlen (key), (void *) key };
  return val;
}

GBytes *
berth_metadata_txn_get (BerthMetadataTxn *txn, const char *key, GError **error)
{
  MDB_val k = key_val (key), v;
  int rc = mdb_get (txn->txn, txn->md->dbi, &k, &v);
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
berth_metadata_txn_put (BerthMetadataTxn *txn, const char *key, const void *value, gsize len, GError **error)
{
  if (*key == '\0' || strlen (key) > 511)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "metadata key of %zu bytes: must be 1 to 511 bytes",
                        strlen (key));
  MDB_val k = key_val (key), v = { len, (void *) value };
  int rc = mdb_put (txn->txn, txn->md->dbi, &k, &v, 0);
  if (rc != 0)
    return throw_mdb (error, rc, "put", key);
  return TRUE;
}

gboolean
berth_metadata_txn_delete (BerthMetadataTxn *txn, const char *key, GError **error)
{
  MDB_val k = key_val (key);
  int rc = mdb_del (txn->txn, txn->md->dbi, &k, NULL);
  if (rc == MDB_NOTFOUND)
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s: not found", key);
  if (rc != 0)
    return throw_mdb (error, rc, "delete", key);
  return TRUE;
}

/* Walks keys with @prefix; @func sees the cursor so deletion can happen in place. */
static gboolean
walk_prefix (BerthMetadataTxn *txn, const char *prefix,
             gboolean (*func) (MDB_cursor *cursor, MDB_val *k, MDB_val *v, gpointer data), gpointer data,
             GError **error)
{
  MDB_cursor *cursor = NULL;
  int rc = mdb_cursor_open (txn->txn, txn->md->dbi, &cursor);
  if (rc != 0)
    return throw_mdb (error, rc, "cursor", prefix);
  gsize plen = strlen (prefix);
  MDB_val k = key_val (prefix), v;
  rc = mdb_cursor_get (cursor, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
  while (rc == 0 && k.mv_size >= plen && memcmp (k.mv_data, prefix, plen) == 0)
    {
      if (!func (cursor, &k, &v, data))
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
  BerthMetadataForeachFunc func;
  gpointer user_data;
} ForeachData;

static gboolean
foreach_cb (MDB_cursor *cursor, MDB_val *k, MDB_val *v, gpointer data)
{
  ForeachData *fd = data;
  g_autofree char *key = g_strndup (k->mv_data, k->mv_size);
  return fd->func (key, v->mv_data, v->mv_size, fd->user_data);
}

gboolean
berth_metadata_txn_foreach (BerthMetadataTxn *txn, const char *prefix, BerthMetadataForeachFunc func,
                            gpointer user_data, GError **error)
{
  ForeachData fd = { func, user_data };
  return walk_prefix (txn, prefix, foreach_cb, &fd, error);
}

static gboolean
found_cb (MDB_cursor *cursor, MDB_val *k, MDB_val *v, gpointer data)
{
  *(gboolean *) data = TRUE;
  return FALSE;
}

gboolean
berth_metadata_txn_has_prefix (BerthMetadataTxn *txn, const char *prefix, GError **error)
{
  gboolean found = FALSE;
  if (!walk_prefix (txn, prefix, found_cb, &found, error))
    return FALSE;
  return found;
}

static gboolean
collect_key_cb (MDB_cursor *cursor, MDB_val *k, MDB_val *v, gpointer data)
{
  g_ptr_array_add (data, g_strndup (k->mv_data, k->mv_size));
  return TRUE;
}

gboolean
berth_metadata_txn_delete_prefix (BerthMetadataTxn *txn, const char *prefix, guint *count_out, GError **error)
{
  /* Collect first: deleting under a live cursor while walking is easy to get wrong. */
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  if (!walk_prefix (txn, prefix, collect_key_cb, keys, error))
    return FALSE;
  for (guint i = 0; i < keys->len; i++)
    if (!berth_metadata_txn_delete (txn, keys->pdata[i], error))
      return FALSE;
  if (count_out != NULL)
    *count_out = keys->len;
  return TRUE;
}
