/* test-image-archive.c — server-side import and export of image archives against a real
 * daemon core: OCI layout and docker save input, round trip through export, and
 * archives that lie (corrupt blob, missing blob, not a tar). */
#include "config.h"

#include <glib/gstdio.h>
#include <archive.h>
#include <archive_entry.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include <berth/berth.h>
#include "services/containerd/berth-api-util.h"
#include "daemon/berth-gc.h"
#include "image/berth-image-archive.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "test-daemon-util.h"

#define IMAGE "docker.io/library/busybox:latest"

static char *archive_dir;  /* archives shared by every test */
static char *oci_tar;
static char *manifest_digest, *config_digest, *layer_digest;

typedef struct {
  char *tmp;
  BerthDaemon *daemon;
  BerthContentStore *store;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->daemon = test_daemon_new (&f->tmp);
  f->store = berth_daemon_get_content_store (f->daemon, NULL);
  g_assert_nonnull (f->store);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  berth_daemon_free (f->daemon);
  test_remove_tree (f->tmp);
  g_free (f->tmp);
}

static char *
run (const char *const *argv)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("%s failed: %s", argv[1], err);
  return g_strstrip (g_steal_pointer (&out));
}

static char *
variant (const char *mode)
{
  g_autofree char *script = g_test_build_filename (G_TEST_DIST, "archive-variants.py", NULL);
  char *out = g_strdup_printf ("%s/%s.tar", archive_dir, mode);
  g_free (run ((const char *const[]) { "python3", script, mode, oci_tar, out, NULL }));
  return out;
}

static GPtrArray *
import_file (Fixture *f, const char *ns, const char *path, GError **error)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) in = g_file_read (file, NULL, NULL);
  g_assert_nonnull (in);
  return berth_image_archive_import (f->daemon, ns, G_INPUT_STREAM (in), NULL, NULL, error);
}

typedef struct {
  const char *key;
  const ProtobufCMessageDescriptor *descriptor;
  ProtobufCMessage *found;
} GetData;

static gboolean
get_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  GetData *data = user_data;
  data->found = berth_schema_get (txn, data->key, data->descriptor, error);
  return TRUE;
}

/* The record under @key, NULL when absent. */
static ProtobufCMessage *
get_record (Fixture *f, const char *key, const ProtobufCMessageDescriptor *descriptor)
{
  GetData data = { key, descriptor, NULL };
  g_assert_true (berth_metadata_read (berth_daemon_get_metadata (f->daemon), get_txn, &data, NULL));
  return data.found;
}

static Containerd__Services__Images__V1__Image *
get_image (Fixture *f, const char *ns, const char *name)
{
  g_autofree char *key = g_strdup_printf ("v1/%s/images/%s", ns, name);
  return (gpointer) get_record (f, key, &containerd__services__images__v1__image__descriptor);
}

static const char *
info_label (Containerd__Services__Content__V1__Info *info, const char *key)
{
  for (size_t i = 0; i < info->n_labels; i++)
    if (g_str_equal (info->labels[i]->key, key))
      return info->labels[i]->value;
  return NULL;
}

static Containerd__Services__Content__V1__Info *
get_info (Fixture *f, const char *ns, const char *digest)
{
  g_autofree char *key = berth_schema_content_key (ns, digest);
  return (gpointer) get_record (f, key, &containerd__services__content__v1__info__descriptor);
}

static gboolean
count_blob (const BerthContentInfo *info, gpointer count)
{
  (*(guint *) count)++;
  return TRUE;
}

static guint
blobs_in_store (Fixture *f)
{
  guint count = 0;
  g_assert_true (berth_content_store_walk (f->store, count_blob, &count, NULL, NULL));
  return count;
}

static gboolean
count_key (const char *key, const guint8 *value, gsize len, gpointer count)
{
  (*(guint *) count)++;
  return TRUE;
}

static gboolean
count_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  gpointer *args = user_data;
  return berth_metadata_txn_foreach (txn, args[0], count_key, args[1], error);
}

static guint
keys_under (Fixture *f, const char *prefix)
{
  guint count = 0;
  gpointer args[] = { (gpointer) prefix, &count };
  g_assert_true (berth_metadata_read (berth_daemon_get_metadata (f->daemon), count_txn, args, NULL));
  return count;
}

static void
run_gc (Fixture *f, BerthGcStats *stats)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (berth_gc_run (f->daemon, NULL, stats, &error));
  g_assert_no_error (error);
}

/* The image and its three blobs are in @ns, labelled so GC keeps them. */
static void
assert_imported (Fixture *f, const char *ns, const char *name, const char *manifest_type)
{
  g_autoptr (ProtobufCMessage) image = (ProtobufCMessage *) get_image (f, ns, name);
  g_assert_nonnull (image);
  Containerd__Services__Images__V1__Image *img = (gpointer) image;
  g_assert_cmpstr (img->target->media_type, ==, manifest_type);
  Containerd__Services__Content__V1__Info *manifest = get_info (f, ns, img->target->digest);
  g_assert_nonnull (manifest);
  g_assert_cmpstr (info_label (manifest, "containerd.io/gc.ref.content.config"), ==, config_digest);
  g_assert_cmpstr (info_label (manifest, "containerd.io/gc.ref.content.l.0"), ==, layer_digest);
  protobuf_c_message_free_unpacked (&manifest->base, NULL);
  /* The import's lease is gone, and GC keeps everything the image reaches. */
  g_autofree char *leases = g_strdup_printf ("v1/%s/leases/", ns);
  g_assert_cmpuint (keys_under (f, leases), ==, 0);
  BerthGcStats stats;
  run_gc (f, &stats);
  g_autofree char *content = g_strdup_printf ("v1/%s/content/", ns);
  g_assert_cmpuint (keys_under (f, content), ==, 3);
}

static void
test_oci (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = import_file (f, "a", oci_tar, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (names->len, ==, 1);
  g_assert_cmpstr (names->pdata[0], ==, IMAGE);
  g_autoptr (ProtobufCMessage) image = (ProtobufCMessage *) get_image (f, "a", IMAGE);
  g_assert_cmpstr (((Containerd__Services__Images__V1__Image *) image)->target->digest, ==, manifest_digest);
  assert_imported (f, "a", IMAGE, "application/vnd.oci.image.manifest.v1+json");
  g_assert_cmpuint (blobs_in_store (f), ==, 3);

  /* Again: the image is updated in place, nothing is stored twice. */
  g_autoptr (GPtrArray) again = import_file (f, "a", oci_tar, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (blobs_in_store (f), ==, 3);
  g_assert_cmpuint (keys_under (f, "v1/a/images/"), ==, 1);

  /* Another namespace does not see it. */
  g_assert_null (get_image (f, "b", IMAGE));
  g_assert_null (get_info (f, "b", manifest_digest));
}

static GHashTable *
list_tar (const char *path, char **manifest_json)
{
  GHashTable *entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  g_assert_cmpint (archive_read_open_filename (a, path, 65536), ==, ARCHIVE_OK);
  struct archive_entry *entry;
  while (archive_read_next_header (a, &entry) == ARCHIVE_OK)
    {
      const char *name = archive_entry_pathname (entry);
      g_hash_table_insert (entries, g_strdup (name), GINT_TO_POINTER ((int) archive_entry_size (entry)));
      if (g_str_equal (name, "manifest.json"))
        {
          gsize size = archive_entry_size (entry);
          *manifest_json = g_malloc0 (size + 1);
          g_assert_cmpint (archive_read_data (a, *manifest_json, size), ==, size);
        }
    }
  archive_read_free (a);
  return entries;
}

static void
test_export_roundtrip (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = import_file (f, "a", oci_tar, &error);
  g_assert_no_error (error);

  g_autofree char *out_path = g_build_filename (f->tmp, "export.tar", NULL);
  g_autoptr (GFile) out_file = g_file_new_for_path (out_path);
  g_autoptr (GFileOutputStream) out = g_file_replace (out_file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_no_error (error);
  const char *const export_names[] = { IMAGE, NULL };
  g_assert_true (berth_image_archive_export (f->daemon, "a", export_names, G_OUTPUT_STREAM (out), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error));

  g_autofree char *manifest_json = NULL;
  g_autoptr (GHashTable) entries = list_tar (out_path, &manifest_json);
  g_assert_true (g_hash_table_contains (entries, "oci-layout"));
  g_assert_true (g_hash_table_contains (entries, "index.json"));
  const char *digests[] = { manifest_digest, config_digest, layer_digest };
  for (guint i = 0; i < G_N_ELEMENTS (digests); i++)
    {
      g_autofree char *blob = g_strconcat ("blobs/sha256/", digests[i] + strlen ("sha256:"), NULL);
      g_assert_true (g_hash_table_contains (entries, blob));
    }
  /* docker load's view: the short name, config and layer by path. */
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, manifest_json, -1, NULL));
  JsonObject *docker = json_array_get_object_element (json_node_get_array (json_parser_get_root (parser)), 0);
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (docker, "RepoTags"), 0), ==, "busybox:latest");
  g_autofree char *config_path = g_strconcat ("blobs/sha256/", config_digest + strlen ("sha256:"), NULL);
  g_assert_cmpstr (json_object_get_string_member (docker, "Config"), ==, config_path);

  /* What was exported imports again, to the same digests, in another namespace. */
  g_autoptr (GPtrArray) back = import_file (f, "b", out_path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back->pdata[0], ==, IMAGE);
  g_autoptr (ProtobufCMessage) image = (ProtobufCMessage *) get_image (f, "b", IMAGE);
  g_assert_cmpstr (((Containerd__Services__Images__V1__Image *) image)->target->digest, ==, manifest_digest);
  assert_imported (f, "b", IMAGE, "application/vnd.oci.image.manifest.v1+json");

  /* Export refuses what the namespace does not have. */
  const char *const missing[] = { "docker.io/library/nothing:1", NULL };
  g_autoptr (GOutputStream) sink = g_memory_output_stream_new_resizable ();
  g_assert_false (berth_image_archive_export (f->daemon, "a", missing, sink, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND);
}

static void
test_docker (Fixture *f, gconstpointer data)
{
  g_autofree char *docker_tar = variant ("docker");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = import_file (f, "d", docker_tar, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (names->len, ==, 2);
  g_assert_cmpstr (names->pdata[0], ==, "docker.io/library/busybox:docker");
  g_assert_cmpstr (names->pdata[1], ==, "example.com/x/y:2");
  assert_imported (f, "d", "docker.io/library/busybox:docker",
                   "application/vnd.docker.distribution.manifest.v2+json");
  assert_imported (f, "d", "example.com/x/y:2", "application/vnd.docker.distribution.manifest.v2+json");

  /* The manifest made here names the layer with the media type its bytes have. */
  g_autoptr (ProtobufCMessage) image = (ProtobufCMessage *) get_image (f, "d", "example.com/x/y:2");
  g_autoptr (GBytes) manifest = berth_content_store_read_all (
    f->store, ((Containerd__Services__Images__V1__Image *) image)->target->digest, 1 << 20, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (manifest, NULL), g_bytes_get_size (manifest), NULL));
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  JsonObject *layer = json_array_get_object_element (json_object_get_array_member (root, "layers"), 0);
  g_autoptr (GBytes) layer_bytes = berth_content_store_read_all (f->store, layer_digest, 64 << 20, NULL, &error);
  gboolean gzipped = ((const guint8 *) g_bytes_get_data (layer_bytes, NULL))[0] == 0x1f;
  g_assert_cmpstr (json_object_get_string_member (layer, "mediaType"), ==,
                   gzipped ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.docker.image.rootfs.diff.tar");
  g_assert_cmpstr (json_object_get_string_member (layer, "digest"), ==, layer_digest);
}

static void
assert_nothing_left (Fixture *f, const char *ns)
{
  g_autofree char *images = g_strdup_printf ("v1/%s/images/", ns);
  g_autofree char *leases = g_strdup_printf ("v1/%s/leases/", ns);
  g_assert_cmpuint (keys_under (f, images), ==, 0);
  g_assert_cmpuint (keys_under (f, leases), ==, 0);
  BerthGcStats stats;
  run_gc (f, &stats);
  g_assert_cmpuint (blobs_in_store (f), ==, 0);
  g_autoptr (GPtrArray) ingests = berth_content_store_list_statuses (f->store, NULL, NULL);
  g_assert_cmpuint (ingests->len, ==, 0);
}

static void
test_corrupt (Fixture *f, gconstpointer data)
{
  g_autofree char *corrupt = variant ("corrupt");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = import_file (f, "c", corrupt, &error);
  g_assert_null (names);
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION);
  g_autofree char *expected = g_strdup_printf ("expected %s", layer_digest);
  g_assert_nonnull (strstr (error->message, expected));
  assert_nothing_left (f, "c");
}

static void
test_missing (Fixture *f, gconstpointer data)
{
  g_autofree char *missing = variant ("missing");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = import_file (f, "m", missing, &error);
  g_assert_null (names);
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, layer_digest));
  assert_nothing_left (f, "m");
}

static void
test_not_an_archive (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  static const char junk[] = "this is not a tar archive, not even close............................";
  g_autoptr (GInputStream) in = g_memory_input_stream_new_from_data (junk, sizeof junk, NULL);
  g_assert_null (berth_image_archive_import (f->daemon, "x", in, NULL, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* A valid tar without index.json or manifest.json. */
  g_autofree char *path = g_build_filename (f->tmp, "plain.tar", NULL);
  g_autofree char *dir = g_build_filename (f->tmp, "plain", NULL);
  g_assert_no_errno (g_mkdir (dir, 0700));
  g_autofree char *file = g_build_filename (dir, "hello", NULL);
  g_assert_true (g_file_set_contents (file, "hi", -1, NULL));
  g_free (run ((const char *const[]) { "tar", "-cf", path, "-C", dir, "hello", NULL }));
  g_autoptr (GPtrArray) names = import_file (f, "x", path, &error);
  g_assert_null (names);
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "neither index.json nor manifest.json"));
  assert_nothing_left (f, "x");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  archive_dir = g_dir_make_tmp ("berth-archives-XXXXXX", &error);
  g_assert_no_error (error);
  oci_tar = g_build_filename (archive_dir, "busybox.tar", NULL);
  g_autofree char *make_image = g_test_build_filename (G_TEST_DIST, "make-image.py", NULL);
  g_free (run ((const char *const[]) { "python3", make_image, oci_tar, "--busybox", "--name", IMAGE, NULL }));
  g_autofree char *script = g_test_build_filename (G_TEST_DIST, "archive-variants.py", NULL);
  g_autofree char *info = run ((const char *const[]) { "python3", script, "info", oci_tar, NULL });
  g_auto (GStrv) digests = g_strsplit (info, " ", 3);
  g_assert_cmpuint (g_strv_length (digests), ==, 3);
  manifest_digest = digests[0];
  config_digest = digests[1];
  layer_digest = digests[2];

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/image-archive/oci", test_oci);
  ADD ("/image-archive/export-roundtrip", test_export_roundtrip);
  ADD ("/image-archive/docker", test_docker);
  ADD ("/image-archive/corrupt", test_corrupt);
  ADD ("/image-archive/missing", test_missing);
  ADD ("/image-archive/not-an-archive", test_not_an_archive);
  int status = g_test_run ();
  test_remove_tree (archive_dir);
  g_free (archive_dir);
  g_free (oci_tar);
  return status;
}
