/* berth-snapshots.c — namespaced snapshot operations with their metadata records and
 * events. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>
#include "wire/berth-grpc.h"
#include "metadata/berth-metadata-schema.h"
#include "daemon/berth-gc.h"
#include "berth-snapshots.h"
#include "github.com/containerd/containerd/api/events/snapshot.pb-c.h"

gboolean
berth_snapshots_init (BerthSnapshots *snaps, BerthDaemon *daemon, const char *ns, const char *snapshotter,
                      const char *lease, GError **error)
{
  snaps->daemon = daemon;
  snaps->ns = ns;
  snaps->name = snapshotter && *snapshotter ? snapshotter : berth_daemon_get_config (daemon)->default_snapshotter;
  snaps->lease = lease && *lease ? lease : NULL;
  snaps->backend = berth_daemon_get_snapshotter (daemon, snaps->name, error);
  return snaps->backend != NULL;
}

char *
berth_snapshots_backend_key (const BerthSnapshots *snaps, const char *key)
{
  return key && *key ? g_strdup_printf ("%s/%s", snaps->ns, key) : NULL;
}

const char *
berth_snapshots_client_key (const BerthSnapshots *snaps, const char *key)
{
  gsize len = strlen (snaps->ns);
  if (key == NULL || strncmp (key, snaps->ns, len) != 0 || key[len] != '/')
    return NULL;
  return key + len + 1;
}

typedef struct {
  const BerthSnapshots *snaps;
  const char *key;
  gboolean add;
} RecordData;

static gboolean
record_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  RecordData *r = user_data;
  const BerthSnapshots *snaps = r->snaps;
  g_autofree char *key = berth_schema_snapshot_key (snaps->ns, snaps->name, r->key);
  if (!r->add)
    {
      g_autoptr (GError) ignored = NULL;
      berth_metadata_txn_delete (txn, key, &ignored);
      return TRUE;
    }
  if (!berth_schema_namespace_touch (txn, snaps->ns, error) || !berth_metadata_txn_put (txn, key, "", 0, error))
    return FALSE;
  if (snaps->lease != NULL)
    {
      g_autofree char *resource = berth_schema_lease_snapshot_key (snaps->ns, snaps->lease, snaps->name, r->key);
      return berth_metadata_txn_put (txn, resource, "", 0, error);
    }
  return TRUE;
}

/* The snapshot already changed in the backend: a failed record is logged, not returned
 * (GC's conservative roots and namespace deletion cope with a missing record). */
static void
note_snapshot (const BerthSnapshots *snaps, const char *key, gboolean add)
{
  RecordData r = { snaps, key, add };
  g_autoptr (GError) error = NULL;
  if (!berth_metadata_write (berth_daemon_get_metadata (snaps->daemon), record_txn, &r, &error))
    g_warning ("recording snapshot %s: %s", key, error->message);
}

static void
publish (const BerthSnapshots *snaps, const char *topic, const ProtobufCMessage *event)
{
  berth_events_publish (berth_daemon_get_events (snaps->daemon), snaps->ns, topic, event);
}

GPtrArray *
berth_snapshots_create (const BerthSnapshots *snaps, const char *key, const char *parent, GHashTable *labels,
                        gboolean view, GCancellable *cancellable, GError **error)
{
  g_autofree char *bkey = berth_snapshots_backend_key (snaps, key);
  g_autofree char *bparent = berth_snapshots_backend_key (snaps, parent);
  g_autoptr (GHashTable) no_labels = labels ? NULL : berth_labels_new ();
  /* GC held off until the record (and the lease's resource) exists: a sweep between the
   * two steps would find an unrecorded snapshot and remove it. */
  berth_gc_hold ();
  GPtrArray *mounts = view ? berth_snapshotter_view (snaps->backend, bkey, bparent, labels ?: no_labels, cancellable, error)
                           : berth_snapshotter_prepare (snaps->backend, bkey, bparent, labels ?: no_labels, cancellable, error);
  if (mounts != NULL)
    note_snapshot (snaps, key, TRUE);
  berth_gc_release ();
  if (mounts == NULL)
    return NULL;
  Containerd__Events__SnapshotPrepare event = CONTAINERD__EVENTS__SNAPSHOT_PREPARE__INIT;
  event.key = (char *) key;
  event.parent = (char *) (parent ? parent : "");
  publish (snaps, "/snapshot/prepare", &event.base);
  return mounts;
}

gboolean
berth_snapshots_commit (const BerthSnapshots *snaps, const char *name, const char *key, GHashTable *labels,
                        GCancellable *cancellable, GError **error)
{
  g_autofree char *bkey = berth_snapshots_backend_key (snaps, key);
  g_autofree char *bname = berth_snapshots_backend_key (snaps, name);
  g_autoptr (GHashTable) no_labels = labels ? NULL : berth_labels_new ();
  /* As in create: the committed snapshot is unrecorded until note_snapshot. */
  berth_gc_hold ();
  gboolean ok = berth_snapshotter_commit (snaps->backend, bname, bkey, labels ?: no_labels, cancellable, error);
  if (ok)
    {
      note_snapshot (snaps, key, FALSE);
      note_snapshot (snaps, name, TRUE);
    }
  berth_gc_release ();
  if (!ok)
    return FALSE;
  Containerd__Events__SnapshotCommit event = CONTAINERD__EVENTS__SNAPSHOT_COMMIT__INIT;
  event.key = (char *) key;
  event.name = (char *) name;
  publish (snaps, "/snapshot/commit", &event.base);
  return TRUE;
}

gboolean
berth_snapshots_remove (const BerthSnapshots *snaps, const char *key, GCancellable *cancellable, GError **error)
{
  g_autofree char *bkey = berth_snapshots_backend_key (snaps, key);
  if (!berth_snapshotter_remove (snaps->backend, bkey, cancellable, error))
    return FALSE;
  note_snapshot (snaps, key, FALSE);
  Containerd__Events__SnapshotRemove event = CONTAINERD__EVENTS__SNAPSHOT_REMOVE__INIT;
  event.key = (char *) key;
  publish (snaps, "/snapshot/remove", &event.base);
  return TRUE;
}

BerthSnapshotInfo *
berth_snapshots_stat (const BerthSnapshots *snaps, const char *key, GError **error)
{
  g_autofree char *bkey = berth_snapshots_backend_key (snaps, key);
  return berth_snapshotter_stat (snaps->backend, bkey, NULL, error);
}
