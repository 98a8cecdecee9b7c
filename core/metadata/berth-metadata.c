/* berth-metadata.c — the daemon's metadata store: a BerthKv in "<dir>/meta.lmdb". */
#include "config.h"

#include <berth/berth-error.h>
#include "berth-metadata.h"

/* Sparse; LMDB only uses what it writes. */
#define METADATA_MAP_SIZE (G_GUINT64_CONSTANT (4) << 30)

BerthMetadata *
berth_metadata_open (const char *dir, GError **error)
{
  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      berth_throw_errno (error, "creating %s", dir);
      return NULL;
    }
  g_autofree char *path = g_build_filename (dir, "meta.lmdb", NULL);
  return berth_kv_open (path, METADATA_MAP_SIZE, error);
}
