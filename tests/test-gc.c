/* test-gc.c — garbage collection against a real daemon core (metadata store, the local
 * content store and the native snapshotter from the build tree): every kind of root and
 * reference containerd's model has, what survives and what goes. */
#include "config.h"

#include <string.h>
#include <time.h>
#include <utime.h>

#include <berth/berth.h>
#include "services/containerd/berth-api-util.h"
#include "daemon/berth-gc.h"
#include "test-daemon-util.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"

#define NS "ns"

typedef struct {
  char *tmp;
  BerthDaemon *daemon;
  BerthContentStore *store;
  BerthSnapshotter *snapshotter;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->daemon = test_daemon_new (&f->tmp);
  f->store = berth_daemon_get_content_store (f->daemon, &error);
  g_assert_no_error (error);
  f->snapshotter = berth_daemon_get_snapshotter (f->daemon, "native", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  berth_daemon_free (f->daemon);
  test_remove_tree (f->tmp);
  g_free (f->tmp);
}

/* ---- building the world ---- */

static char *
add_blob (Fixture *f, const char *text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthContentWriter) writer = berth_content_store_open_writer (f->store, text, 0, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (berth_content_writer_write (writer, (const guint8 *) text, strlen (text), NULL, &error));
  char *digest = berth_content_writer_commit (writer, 0, NULL, NULL, &error);
  if (g_error_matches (error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
    return berth_digest_bytes (text, strlen (text)); /* the same bytes for another namespace */
  g_assert_no_error (error);
  return digest;
}

typedef struct {
  const char *ns;
  const char *digest;
  gsize size;
  GHashTable *labels;
} RecordData;

static gboolean
record_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  RecordData *r = user_data;
  return berth_schema_content_record (txn, r->ns, NULL, r->digest, r->size, r->labels, error);
}

/* A blob made visible in @ns with labels given as key, value, …, NULL. */
static char *
add_content (Fixture *f, const char *ns, const char *text, ...)
{
  g_autoptr (GHashTable) labels = berth_labels_new ();
  va_list ap;
  va_start (ap, text);
  const char *key;
  while ((key = va_arg (ap, const char *)) != NULL)
    g_hash_table_insert (labels, g_strdup (key), g_strdup (va_arg (ap, const char *)));
  va_end (ap);
  char *digest = add_blob (f, text);
  RecordData r = { ns, digest, strlen (text), labels };
  g_autoptr (GError) error = NULL;
  g_assert_true (berth_metadata_write (berth_daemon_get_metadata (f->daemon), record_txn, &r, &error));
  g_assert_no_error (error);
  return digest;
}

typedef struct {
  const char *key;
  const ProtobufCMessage *message; /* NULL: an empty value */
} PutData;

static gboolean
put_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  PutData *p = user_data;
  if (!berth_schema_namespace_touch (txn, NS, error))
    return FALSE;
  if (p->message == NULL)
    return berth_metadata_txn_put (txn, p->key, "", 0, error);
  return berth_schema_put (txn, p->key, p->message, error);
}

static void
put (Fixture *f, const char *key, const ProtobufCMessage *message)
{
  PutData p = { key, message };
  g_autoptr (GError) error = NULL;
  g_assert_true (berth_metadata_write (berth_daemon_get_metadata (f->daemon), put_txn, &p, &error));
  g_assert_no_error (error);
}

static gboolean
exists_txn (BerthMetadataTxn *txn, gpointer key, GError **error)
{
  return berth_schema_exists (txn, key);
}

static gboolean
has_key (Fixture *f, const char *key)
{
  return berth_metadata_read (berth_daemon_get_metadata (f->daemon), exists_txn, (gpointer) key, NULL);
}

static gboolean
has_blob (Fixture *f, const char *digest)
{
  g_autoptr (BerthContentInfo) info = berth_content_store_info (f->store, digest, NULL, NULL);
  return info != NULL;
}

static gboolean
visible (Fixture *f, const char *ns, const char *digest)
{
  g_autofree char *key = berth_schema_content_key (ns, digest);
  return has_key (f, key);
}

static gboolean
has_snapshot (Fixture *f, const char *name)
{
  g_autoptr (BerthSnapshotInfo) info = berth_snapshotter_stat (f->snapshotter, name, NULL, NULL);
  return info != NULL;
}

static void
add_active (Fixture *f, const char *name, const char *parent)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) labels = berth_labels_new ();
  g_autoptr (GPtrArray) mounts = berth_snapshotter_prepare (f->snapshotter, name, parent, labels, NULL, &error);
  g_assert_no_error (error);
}

/* A committed snapshot with labels given as key, value, …, NULL. */
static void
add_committed (Fixture *f, const char *name, const char *parent, ...)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) labels = berth_labels_new ();
  va_list ap;
  va_start (ap, parent);
  const char *key;
  while ((key = va_arg (ap, const char *)) != NULL)
    g_hash_table_insert (labels, g_strdup (key), g_strdup (va_arg (ap, const char *)));
  va_end (ap);
  g_autofree char *active = g_strconcat (name, "-active", NULL);
  add_active (f, active, parent);
  g_assert_true (berth_snapshotter_commit (f->snapshotter, name, active, labels, NULL, &error));
  g_assert_no_error (error);
}

static void
add_image (Fixture *f, const char *name, const char *target)
{
  Containerd__Types__Descriptor desc = CONTAINERD__TYPES__DESCRIPTOR__INIT;
  desc.media_type = (char *) "application/vnd.oci.image.manifest.v1+json";
  desc.digest = (char *) target;
  Containerd__Services__Images__V1__Image image = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
  image.name = (char *) name;
  image.target = &desc;
  g_autofree char *key = g_strdup_printf ("v1/" NS "/images/%s", name);
  put (f, key, &image.base);
}

static void
add_lease (Fixture *f, const char *id, const char *expire, const char *const *resources)
{
  Containerd__Services__Leases__V1__Lease lease = CONTAINERD__SERVICES__LEASES__V1__LEASE__INIT;
  Containerd__Services__Leases__V1__Lease__LabelsEntry label = CONTAINERD__SERVICES__LEASES__V1__LEASE__LABELS_ENTRY__INIT;
  Containerd__Services__Leases__V1__Lease__LabelsEntry *labels[] = { &label };
  lease.id = (char *) id;
  if (expire != NULL)
    {
      label.key = (char *) "containerd.io/gc.expire";
      label.value = (char *) expire;
      lease.labels = labels;
      lease.n_labels = 1;
    }
  g_autofree char *key = g_strdup_printf ("v1/" NS "/leases/%s", id);
  put (f, key, &lease.base);
  for (; *resources != NULL; resources++)
    {
      g_autofree char *resource = g_strdup_printf ("%s/r/%s", key, *resources);
      put (f, resource, NULL);
    }
}

static BerthGcStats
run_gc (Fixture *f)
{
  BerthGcStats stats = { 0 };
  g_autoptr (GError) error = NULL;
  g_assert_true (berth_gc_run (f->daemon, NULL, &stats, &error));
  g_assert_no_error (error);
  return stats;
}

/* ---- the tests ---- */

static void
test_content (Fixture *f, gconstpointer data)
{
  g_autofree char *layer = add_content (f, NS, "layer", NULL);
  g_autofree char *config = add_content (f, NS, "config", NULL);
  g_autofree char *manifest = add_content (f, NS, "manifest", "containerd.io/gc.ref.content.config", config,
                                           "containerd.io/gc.ref.content.l.0", layer, NULL);
  g_autofree char *orphan = add_content (f, NS, "orphan", NULL);
  g_autofree char *rooted = add_content (f, NS, "rooted", "containerd.io/gc.root", "2024-01-01T00:00:00Z", NULL);
  g_autofree char *leased = add_content (f, NS, "leased", NULL);
  g_autofree char *expired = add_content (f, NS, "expired", NULL);
  /* A label that only looks like a reference ("contentious") is not one. */
  g_autofree char *lookalike = add_content (f, NS, "lookalike", NULL);
  g_autofree char *decoy = add_content (f, NS, "decoy", "containerd.io/gc.root", "yes",
                                        "containerd.io/gc.ref.contentious", lookalike, NULL);
  /* Seen by two namespaces: only "other" keeps it. */
  g_autofree char *shared = add_content (f, "other", "shared", "containerd.io/gc.root", "yes", NULL);
  g_autofree char *shared_again = add_content (f, NS, "shared", NULL);
  g_assert_cmpstr (shared, ==, shared_again);

  add_image (f, "docker.io/library/app:1", manifest);
  g_autofree char *leased_res = g_strconcat ("content/", leased, NULL);
  g_autofree char *expired_res = g_strconcat ("content/", expired, NULL);
  add_lease (f, "keep", "2999-01-01T00:00:00Z", (const char *const[]) { leased_res, "ingests/some-upload", NULL });
  add_lease (f, "old", "2001-01-01T00:00:00Z", (const char *const[]) { expired_res, NULL });

  BerthGcStats stats = run_gc (f);
  g_assert_cmpuint (stats.leases_expired, ==, 1);
  g_assert_cmpuint (stats.content_records_removed, ==, 4); /* orphan, expired, lookalike, shared in NS */
  g_assert_cmpuint (stats.blobs_removed, ==, 3);

  const char *kept[] = { layer, config, manifest, rooted, leased, decoy };
  for (guint i = 0; i < G_N_ELEMENTS (kept); i++)
    {
      g_assert_true (visible (f, NS, kept[i]));
      g_assert_true (has_blob (f, kept[i]));
    }
  const char *gone[] = { orphan, expired, lookalike };
  for (guint i = 0; i < G_N_ELEMENTS (gone); i++)
    {
      g_assert_false (visible (f, NS, gone[i]));
      g_assert_false (has_blob (f, gone[i]));
    }
  g_assert_false (visible (f, NS, shared));
  g_assert_true (visible (f, "other", shared));
  g_assert_true (has_blob (f, shared));
  g_assert_true (has_key (f, "v1/" NS "/leases/keep"));
  g_assert_false (has_key (f, "v1/" NS "/leases/old"));
  g_autofree char *old_res = g_strconcat ("v1/" NS "/leases/old/r/", expired_res, NULL);
  g_assert_false (has_key (f, old_res));

  /* The image goes: its whole tree follows; a second run finds nothing more. */
  g_autoptr (GError) error = NULL;
  g_assert_true (berth_schema_delete (berth_daemon_get_metadata (f->daemon), "v1/" NS "/images/docker.io/library/app:1", &error));
  stats = run_gc (f);
  g_assert_cmpuint (stats.content_records_removed, ==, 3);
  g_assert_cmpuint (stats.blobs_removed, ==, 3);
  g_assert_false (has_blob (f, manifest) || has_blob (f, config) || has_blob (f, layer));
  g_assert_true (has_blob (f, leased));
  stats = run_gc (f);
  g_assert_cmpuint (stats.content_records_removed + stats.blobs_removed + stats.leases_expired, ==, 0);
}

static void
test_snapshots (Fixture *f, gconstpointer data)
{
  /* An unpacked image: config → chain via gc.ref.snapshot.native; chain → base by parent. */
  add_committed (f, NS "/base", NULL, NULL);
  add_committed (f, NS "/chain", NS "/base", NULL);
  g_autofree char *config = add_content (f, NS, "config", "containerd.io/gc.ref.snapshot.native", "chain", NULL);
  g_autofree char *manifest = add_content (f, NS, "manifest", "containerd.io/gc.ref.content.config", config, NULL);
  add_image (f, "img", manifest);

  /* Unreferenced, child before parent. */
  add_committed (f, NS "/orphan", NULL, NULL);
  add_committed (f, NS "/orphan-child", NS "/orphan", NULL);
  /* An active snapshot is kept, and so is its parent. */
  add_committed (f, NS "/under-active", NULL, NULL);
  add_active (f, NS "/work", NS "/under-active");
  /* Labelled root; one that references content by label. */
  add_committed (f, NS "/rooted", NULL, "containerd.io/gc.root", "x", NULL);
  g_autofree char *snapref = add_content (f, NS, "held by a snapshot", NULL);
  add_committed (f, NS "/labelled", NULL, "containerd.io/gc.root", "x", "containerd.io/gc.ref.content", snapref, NULL);
  /* Held by a lease; held by a container (which also references content by label). */
  add_committed (f, NS "/leased", NULL, NULL);
  add_lease (f, "unpack", NULL, (const char *const[]) { "snapshots/native/leased", NULL });
  add_committed (f, NS "/container-rootfs", NULL, NULL);
  g_autofree char *spec = add_content (f, NS, "spec", NULL);
  Containerd__Services__Containers__V1__Container container = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry label =
    CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry *labels[] = { &label };
  label.key = (char *) "containerd.io/gc.ref.content.spec";
  label.value = spec;
  container.id = (char *) "c1";
  container.snapshotter = (char *) "native";
  container.snapshot_key = (char *) "container-rootfs";
  container.labels = labels;
  container.n_labels = 1;
  put (f, "v1/" NS "/containers/c1", &container.base);
  /* Another snapshotter's reference to the same key does not hold this one. */
  add_committed (f, NS "/elsewhere", NULL, NULL);
  g_autofree char *wrong = add_content (f, NS, "wrong", "containerd.io/gc.root", "x",
                                        "containerd.io/gc.ref.snapshot.overlayfs", "elsewhere", NULL);
  /* Not in any known namespace, or not namespaced at all: never touched. */
  add_committed (f, "unknown-ns/thing", NULL, NULL);
  add_committed (f, "bare", NULL, NULL);
  put (f, "v1/" NS "/snapshots/native/orphan", NULL);

  BerthGcStats stats = run_gc (f);
  g_assert_cmpuint (stats.snapshots_removed, ==, 3);
  const char *kept[] = { NS "/base", NS "/chain", NS "/under-active", NS "/work", NS "/rooted", NS "/labelled",
                         NS "/leased", NS "/container-rootfs", "unknown-ns/thing", "bare" };
  for (guint i = 0; i < G_N_ELEMENTS (kept); i++)
    if (!has_snapshot (f, kept[i]))
      g_error ("snapshot %s was collected", kept[i]);
  g_assert_false (has_snapshot (f, NS "/orphan"));
  g_assert_false (has_snapshot (f, NS "/orphan-child"));
  g_assert_false (has_snapshot (f, NS "/elsewhere"));
  g_assert_false (has_key (f, "v1/" NS "/snapshots/native/orphan"));
  g_assert_true (has_blob (f, snapref));
  g_assert_true (has_blob (f, spec));

  /* The image goes: chain and base follow; the container's snapshot stays until it goes. */
  g_autoptr (GError) error = NULL;
  g_assert_true (berth_schema_delete (berth_daemon_get_metadata (f->daemon), "v1/" NS "/images/img", &error));
  stats = run_gc (f);
  g_assert_cmpuint (stats.snapshots_removed, ==, 2);
  g_assert_false (has_snapshot (f, NS "/chain") || has_snapshot (f, NS "/base"));
  g_assert_false (has_blob (f, config));
  g_assert_true (has_snapshot (f, NS "/container-rootfs"));
  g_assert_true (berth_schema_delete (berth_daemon_get_metadata (f->daemon), "v1/" NS "/containers/c1", &error));
  stats = run_gc (f);
  g_assert_false (has_snapshot (f, NS "/container-rootfs"));
  g_assert_false (has_blob (f, spec));
}

/* An ingest with data last written @age_hours ago: its data file's time and, once the
 * writer is closed (which records the last write's time beside the data), that record. */
static BerthContentWriter *
add_ingest (Fixture *f, const char *ref, int age_hours, gboolean keep_open)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthContentWriter) writer = berth_content_store_open_writer (f->store, ref, 0, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (berth_content_writer_write (writer, (const guint8 *) "partial", 7, NULL, &error));
  if (!keep_open)
    g_clear_object (&writer);
  g_autofree char *hash = berth_digest_bytes (ref, strlen (ref));
  g_autofree char *dir = g_build_filename (f->tmp, "root", BERTH_PLUGIN_TYPE_CONTENT ".content", "ingest",
                                           hash + strlen ("sha256:"), NULL);
  g_autofree char *data = g_build_filename (dir, "data", NULL);
  time_t then = time (NULL) - age_hours * 3600;
  struct utimbuf times = { then, then };
  g_assert_no_errno (utime (data, &times));
  g_autofree char *updated = g_build_filename (dir, "updatedat", NULL);
  g_autofree char *updated_text = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) then * G_USEC_PER_SEC);
  if (!keep_open)
    g_assert_true (g_file_set_contents (updated, updated_text, -1, NULL));
  return g_steal_pointer (&writer);
}

static void
test_ingests (Fixture *f, gconstpointer data)
{
  add_ingest (f, NS "/fresh", 1, FALSE);
  add_ingest (f, NS "/stale", 48, FALSE);
  add_ingest (f, NS "/stale-leased", 48, FALSE);
  g_autoptr (BerthContentWriter) open = add_ingest (f, NS "/stale-open", 48, TRUE);
  add_lease (f, "upload", NULL, (const char *const[]) { "ingests/stale-leased", NULL });

  BerthGcStats stats = run_gc (f);
  g_assert_cmpuint (stats.ingests_removed, ==, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthContentStatus) gone = berth_content_store_status (f->store, NS "/stale", NULL, &error);
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND);
  const char *kept[] = { NS "/fresh", NS "/stale-leased", NS "/stale-open" };
  for (guint i = 0; i < G_N_ELEMENTS (kept); i++)
    {
      g_autoptr (BerthContentStatus) status = berth_content_store_status (f->store, kept[i], NULL, NULL);
      if (status == NULL)
        g_error ("ingest %s was aborted", kept[i]);
      g_assert_cmpint (status->offset, ==, 7);
    }

  /* Once the lease goes, the idle ingest it held goes too. */
  g_assert_true (berth_schema_delete (berth_daemon_get_metadata (f->daemon), "v1/" NS "/leases/upload", &error));
  stats = run_gc (f);
  g_assert_cmpuint (stats.ingests_removed, ==, 1);
}

static gboolean
put_garbage_txn (BerthMetadataTxn *txn, gpointer key, GError **error)
{
  static const guint8 garbage[] = { 0x0a, 0xff, 0xff, 0xff };
  return berth_metadata_txn_put (txn, key, garbage, sizeof garbage, error);
}

/* A root record that does not parse might reference anything: collect nothing. */
static void
test_corrupt_root (Fixture *f, gconstpointer data)
{
  g_autofree char *orphan = add_content (f, NS, "orphan", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (berth_metadata_write (berth_daemon_get_metadata (f->daemon), put_garbage_txn,
                                       (gpointer) "v1/" NS "/images/broken", &error));
  BerthGcStats stats = { 0 };
  g_assert_false (berth_gc_run (f->daemon, NULL, &stats, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_DATA_LOSS);
  g_assert_nonnull (strstr (error->message, "v1/" NS "/images/broken"));
  g_assert_true (visible (f, NS, orphan) && has_blob (f, orphan));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/gc/content", Fixture, NULL, fixture_setup, test_content, fixture_teardown);
  g_test_add ("/gc/snapshots", Fixture, NULL, fixture_setup, test_snapshots, fixture_teardown);
  g_test_add ("/gc/corrupt-root", Fixture, NULL, fixture_setup, test_corrupt_root, fixture_teardown);
  g_test_add ("/gc/ingests", Fixture, NULL, fixture_setup, test_ingests, fixture_teardown);
  return g_test_run ();
}
