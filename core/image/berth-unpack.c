/* berth-unpack.c — server-side unpack: prepare, apply through the differ, commit under
 * the layer's chain ID. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>
#include "berth-snapshots.h"
#include "berth-unpack.h"

struct _BerthUnpacker {
  BerthDaemon *daemon;
  char *ns;
  char *lease;
  BerthSnapshots snaps;
  char *chain_id;
};

BerthUnpacker *
berth_unpacker_new (BerthDaemon *daemon, const char *ns, const char *snapshotter, const char *lease, GError **error)
{
  g_autoptr (BerthUnpacker) unpacker = g_new0 (BerthUnpacker, 1);
  unpacker->daemon = daemon;
  unpacker->ns = g_strdup (ns);
  unpacker->lease = g_strdup (lease);
  if (!berth_snapshots_init (&unpacker->snaps, daemon, unpacker->ns, snapshotter, unpacker->lease, error))
    return NULL;
  /* The name outlives a snapshotter string borrowed from the caller. */
  unpacker->snaps.name = g_intern_string (unpacker->snaps.name);
  return g_steal_pointer (&unpacker);
}

void
berth_unpacker_free (BerthUnpacker *unpacker)
{
  if (unpacker == NULL)
    return;
  g_free (unpacker->ns);
  g_free (unpacker->lease);
  g_free (unpacker->chain_id);
  g_free (unpacker);
}

const char *
berth_unpacker_get_chain_id (BerthUnpacker *unpacker)
{
  return unpacker->chain_id;
}

const char *
berth_unpacker_get_snapshotter (BerthUnpacker *unpacker)
{
  return unpacker->snaps.name;
}

char *
berth_chain_id_next (const char *parent, const char *diff_id)
{
  if (parent == NULL)
    return g_strdup (diff_id);
  g_autofree char *text = g_strdup_printf ("%s %s", parent, diff_id);
  return berth_digest_bytes (text, strlen (text));
}

gboolean
berth_unpacker_apply (BerthUnpacker *unpacker, const BerthDescriptor *layer, const char *diff_id,
                      gboolean *applied_out, GCancellable *cancellable, GError **error)
{
  if (applied_out != NULL)
    *applied_out = FALSE;
  if (!berth_digest_validate (diff_id, error))
    {
      g_prefix_error (error, "layer %s: diff ID: ", layer->digest);
      return FALSE;
    }
  g_autofree char *chain_id = berth_chain_id_next (unpacker->chain_id, diff_id);
  g_autoptr (BerthSnapshotInfo) existing = berth_snapshots_stat (&unpacker->snaps, chain_id, NULL);
  if (existing != NULL && existing->kind == BERTH_SNAPSHOT_KIND_COMMITTED)
    {
      g_debug ("layer %s: snapshot %s exists", layer->digest, chain_id);
      g_free (unpacker->chain_id);
      unpacker->chain_id = g_steal_pointer (&chain_id);
      return TRUE;
    }
  BerthDiffer *differ = berth_daemon_get_differ (unpacker->daemon, NULL, error);
  if (differ == NULL)
    return FALSE;
  g_autofree char *key = g_strdup_printf ("extract-%08x %s", g_random_int (), chain_id);
  g_autoptr (GPtrArray) mounts = berth_snapshots_create (&unpacker->snaps, key, unpacker->chain_id, NULL, FALSE,
                                                         cancellable, error);
  if (mounts == NULL)
    return FALSE;
  g_autoptr (GError) local_error = NULL;
  gboolean already = FALSE;
  g_autoptr (BerthDescriptor) applied = berth_differ_apply (differ, layer, mounts, NULL, cancellable, &local_error);
  if (applied != NULL && g_strcmp0 (applied->digest, diff_id) != 0)
    berth_throw (&local_error, BERTH_ERROR_DATA_LOSS, "unpacks to diff ID %s, the image config says %s",
                 applied->digest, diff_id);
  else if (applied != NULL && !berth_snapshots_commit (&unpacker->snaps, chain_id, key, NULL, cancellable, &local_error)
           && g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
    {
      /* Someone unpacked the same layer meanwhile: theirs is as good. */
      g_clear_error (&local_error);
      already = TRUE;
    }
  if (local_error != NULL || already)
    berth_snapshots_remove (&unpacker->snaps, key, NULL, NULL);
  if (local_error != NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "layer %s: ", layer->digest);
      return FALSE;
    }
  g_free (unpacker->chain_id);
  unpacker->chain_id = g_steal_pointer (&chain_id);
  if (applied_out != NULL)
    *applied_out = TRUE;
  return TRUE;
}
