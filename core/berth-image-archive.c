/* berth-image-archive.c — import and export of OCI layout and `docker save` tars. */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/utsname.h>

#include <berth/berth.h>
#include "api/berth-api-util.h"
#include "berth-gc.h"
#include "berth-image-archive.h"
#include "github.com/containerd/containerd/api/events/image.pb-c.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "berth-archive"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define ANNOTATION_NAME "io.containerd.image.name"
#define ANNOTATION_REF "org.opencontainers.image.ref.name"
#define LABEL_REF "containerd.io/gc.ref.content."
#define MAX_JSON (8 << 20)
#define IMPORT_LEASE_SECONDS 3600

typedef struct {
  char *media_type;
  char *digest;
  gint64 size;
} Desc;

static Desc *
desc_new (const char *media_type, const char *digest, gint64 size)
{
  Desc *desc = g_new0 (Desc, 1);
  desc->media_type = g_strdup (media_type);
  desc->digest = g_strdup (digest);
  desc->size = size;
  return desc;
}

static void
desc_free (Desc *desc)
{
  g_free (desc->media_type);
  g_free (desc->digest);
  g_free (desc);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Desc, desc_free)

static gboolean
is_index (const char *media_type)
{
  return g_strcmp0 (media_type, MT_OCI_INDEX) == 0 || g_strcmp0 (media_type, MT_DOCKER_LIST) == 0;
}

static gboolean
is_manifest (const char *media_type)
{
  return g_strcmp0 (media_type, MT_OCI_MANIFEST) == 0 || g_strcmp0 (media_type, MT_DOCKER_MANIFEST) == 0;
}

/* Accessors that take any JSON: a member of the wrong type reads as absent (json-glib's
 * own getters complain loudly about hostile documents). */
static JsonNode *
member (JsonObject *object, const char *name)
{
  return object != NULL ? json_object_get_member (object, name) : NULL;
}

static JsonObject *
member_object (JsonObject *object, const char *name)
{
  JsonNode *node = member (object, name);
  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static JsonArray *
member_array (JsonObject *object, const char *name)
{
  JsonNode *node = member (object, name);
  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static const char *
node_string (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
           ? json_node_get_string (node)
           : NULL;
}

static const char *
member_string (JsonObject *object, const char *name)
{
  return node_string (member (object, name));
}

static gint64
member_int (JsonObject *object, const char *name)
{
  JsonNode *node = member (object, name);
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64
           ? json_node_get_int (node)
           : 0;
}

static guint
array_length (JsonArray *array)
{
  return array != NULL ? json_array_get_length (array) : 0;
}

static JsonObject *
element_object (JsonArray *array, guint i)
{
  JsonNode *node = json_array_get_element (array, i);
  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static const char *
element_string (JsonArray *array, guint i)
{
  return node_string (json_array_get_element (array, i));
}

/* A JSON document's root object (the node keeps it alive). */
static JsonNode *
parse_object (GBytes *bytes, const char *what, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local_error = NULL;
  gsize len = 0;
  const char *data = g_bytes_get_data (bytes, &len);
  if (!json_parser_load_from_data (parser, data, len, &local_error))
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s is not valid JSON: %s", what, local_error->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s is not a JSON object", what);
      return NULL;
    }
  return json_node_copy (root);
}

/* An OCI descriptor object → Desc; INVALID_ARGUMENT naming @what when malformed. */
static Desc *
desc_from_json (JsonObject *object, const char *what, GError **error)
{
  const char *digest = object ? member_string (object, "digest") : NULL;
  if (digest == NULL || !berth_digest_validate (digest, error))
    {
      if (digest == NULL)
        berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s: a descriptor without a digest", what);
      else
        g_prefix_error (error, "%s: ", what);
      return NULL;
    }
  return desc_new ((member_string (object, "mediaType") ?: ""), digest,
                   member_int (object, "size"));
}

static gboolean
is_visible (BerthMetadataTxn *txn, gpointer key, GError **error)
{
  return berth_api_key_exists (txn, key);
}

static gboolean
visible_in (BerthDaemon *daemon, const char *ns, const char *digest)
{
  g_autofree char *key = berth_api_content_key (ns, digest);
  return berth_metadata_read (berth_daemon_get_metadata (daemon), is_visible, key, NULL);
}

static GBytes *
read_json_blob (BerthContentStore *store, const char *digest, GCancellable *cancellable, GError **error)
{
  return berth_content_store_read_all (store, digest, MAX_JSON, cancellable, error);
}

/* ================= import ================= */

typedef struct {
  BerthDaemon *daemon;
  BerthContentStore *store;
  const char *ns;
  char *lease;            /* the import's own lease: holds everything until the images exist */
  GCancellable *cancellable;
  GHashTable *files;      /* archive path → Desc of the stored blob */
  GHashTable *meta;       /* top-level JSON documents → GBytes */
  GHashTable *labels;     /* digest → labels table to add */
  GPtrArray *names;       /* image names */
  GPtrArray *targets;     /* Desc per name */
  BerthImageArchiveProgress progress;
  gpointer progress_data;
} Import;

typedef struct {
  const char *ns;
  const char *lease;
  const char *digest;
  gint64 size;
  GHashTable *labels;
} RecordData;

static gboolean
record_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  RecordData *r = user_data;
  return berth_api_content_record (txn, r->ns, r->lease, r->digest, r->size, r->labels, error);
}

static gboolean
record (Import *im, const char *digest, gint64 size, GError **error)
{
  RecordData r = { im->ns, im->lease, digest, size, NULL };
  return berth_metadata_write (berth_daemon_get_metadata (im->daemon), record_txn, &r, error);
}

/* Commits @writer and records the blob in the namespace under the import's lease, with
 * GC held off between the two. */
static Desc *
commit_and_record (Import *im, BerthContentWriter *writer, gint64 size, const char *expected, const char *path,
                   GError **error)
{
  g_autoptr (GError) local_error = NULL;
  berth_gc_hold ();
  g_autofree char *digest = berth_content_writer_commit (writer, size, expected, im->cancellable, &local_error);
  if (digest == NULL && g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
    {
      g_clear_error (&local_error);
      digest = berth_content_writer_digest (writer);
    }
  gboolean ok = digest != NULL && record (im, digest, size, &local_error);
  berth_gc_release ();
  if (!ok)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", path);
      return NULL;
    }
  if (im->progress != NULL)
    im->progress (digest, size, im->progress_data);
  return desc_new ("", digest, size);
}

static char *
ingest_ref (Import *im, const char *path)
{
  return g_strdup_printf ("%s/%s/%s", im->ns, im->lease, path);
}

/* A sparse entry's holes read as zeros. */
static gboolean
write_zeros (BerthContentWriter *writer, gint64 len, GCancellable *cancellable, GError **error)
{
  static const guint8 zeros[64 * 1024];
  for (gint64 done = 0; done < len;)
    {
      gsize n = MIN ((gint64) sizeof zeros, len - done);
      if (!berth_content_writer_write (writer, zeros, n, cancellable, error))
        return FALSE;
      done += n;
    }
  return TRUE;
}

/* Streams the current entry's data into the content store. */
static Desc *
store_entry (Import *im, struct archive *a, const char *path, gint64 size, GError **error)
{
  g_autofree char *expected = NULL;
  if (g_str_has_prefix (path, "blobs/sha256/"))
    {
      expected = g_strconcat ("sha256:", path + strlen ("blobs/sha256/"), NULL);
      if (!berth_digest_validate (expected, error))
        {
          g_prefix_error (error, "%s: ", path);
          return NULL;
        }
    }
  g_autofree char *ref = ingest_ref (im, path);
  g_autoptr (BerthContentWriter) writer = berth_content_store_open_writer (im->store, ref, size, expected,
                                                                           im->cancellable, error);
  if (writer == NULL)
    return NULL;
  const void *buf;
  size_t len;
  la_int64_t offset;
  int r;
  Desc *desc = NULL;
  gint64 written = 0;
  while ((r = archive_read_data_block (a, &buf, &len, &offset)) == ARCHIVE_OK)
    {
      if (!write_zeros (writer, offset - written, im->cancellable, error)
          || !berth_content_writer_write (writer, buf, len, im->cancellable, error))
        goto out;
      written = offset + len;
    }
  if (r != ARCHIVE_EOF)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "reading %s from the archive: %s", path, archive_error_string (a));
      goto out;
    }
  if (!write_zeros (writer, size - written, im->cancellable, error))
    goto out;
  desc = commit_and_record (im, writer, size, expected, path, error);
out:
  if (desc == NULL)
    {
      g_clear_object (&writer);
      berth_content_store_abort (im->store, ref, NULL);
    }
  return desc;
}

/* Stores bytes made here (a Docker manifest) like an archive entry. */
static Desc *
store_bytes (Import *im, const char *name, const char *media_type, GBytes *bytes, GError **error)
{
  g_autofree char *ref = ingest_ref (im, name);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  g_autoptr (BerthContentWriter) writer = berth_content_store_open_writer (im->store, ref, len, NULL, im->cancellable, error);
  if (writer == NULL)
    return NULL;
  Desc *desc = NULL;
  if (berth_content_writer_write (writer, data, len, im->cancellable, error))
    desc = commit_and_record (im, writer, len, NULL, name, error);
  if (desc == NULL)
    {
      g_clear_object (&writer);
      berth_content_store_abort (im->store, ref, NULL);
      return NULL;
    }
  g_free (desc->media_type);
  desc->media_type = g_strdup (media_type);
  return desc;
}

static gboolean
is_meta (const char *path)
{
  return g_str_equal (path, "index.json") || g_str_equal (path, "manifest.json") || g_str_equal (path, "oci-layout")
         || g_str_equal (path, "repositories");
}

static gboolean
read_meta (Import *im, struct archive *a, const char *path, gint64 size, GError **error)
{
  if (size < 0 || size > MAX_JSON)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s of %" G_GINT64_FORMAT " bytes is too large", path, size);
  g_autofree char *data = g_malloc (size + 1);
  la_ssize_t n = archive_read_data (a, data, size);
  if (n != size)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "reading %s from the archive: %s", path,
                        n < 0 ? archive_error_string (a) : "short read");
  g_hash_table_replace (im->meta, g_strdup (path), g_bytes_new_take (g_steal_pointer (&data), size));
  return TRUE;
}

/* "./a//b" → "a/b"; NULL for paths that climb ("..") or are empty. */
static char *
clean_path (const char *path)
{
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  g_autoptr (GPtrArray) kept = g_ptr_array_new ();
  for (char **p = parts; *p != NULL; p++)
    {
      if (**p == '\0' || g_str_equal (*p, "."))
        continue;
      if (g_str_equal (*p, ".."))
        return NULL;
      g_ptr_array_add (kept, *p);
    }
  if (kept->len == 0)
    return NULL;
  g_ptr_array_add (kept, NULL);
  return g_strjoinv ("/", (char **) kept->pdata);
}

typedef struct {
  GInputStream *input;
  GCancellable *cancellable;
  GError *error;
  guint8 buf[128 * 1024];
} Reader;

static la_ssize_t
reader_read (struct archive *a, void *user_data, const void **buffer)
{
  Reader *reader = user_data;
  *buffer = reader->buf;
  gssize n = g_input_stream_read (reader->input, reader->buf, sizeof reader->buf, reader->cancellable,
                                  reader->error ? NULL : &reader->error);
  if (n < 0)
    {
      archive_set_error (a, EIO, "%s", reader->error ? reader->error->message : "read error");
      return -1;
    }
  return n;
}

static gboolean
read_archive (Import *im, GInputStream *input, GError **error)
{
  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  archive_read_support_filter_gzip (a);
  archive_read_support_filter_zstd (a);
  archive_read_support_filter_none (a);
  g_autofree Reader *reader = g_new0 (Reader, 1);
  reader->input = input;
  reader->cancellable = im->cancellable;
  gboolean ok = TRUE;
  if (archive_read_open (a, reader, NULL, reader_read, NULL) != ARCHIVE_OK)
    {
      ok = berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "not an image archive: %s", archive_error_string (a));
      goto out;
    }
  struct archive_entry *entry;
  int r;
  while (ok && (r = archive_read_next_header (a, &entry)) == ARCHIVE_OK)
    {
      g_autofree char *path = clean_path (archive_entry_pathname (entry));
      if (path == NULL || archive_entry_filetype (entry) != AE_IFREG)
        continue; /* directories, links, and paths we would never look up */
      gint64 size = archive_entry_size (entry);
      if (is_meta (path))
        ok = read_meta (im, a, path, size, error);
      else
        {
          Desc *desc = store_entry (im, a, path, size, error);
          ok = desc != NULL;
          if (ok)
            g_hash_table_replace (im->files, g_steal_pointer (&path), desc);
        }
    }
  if (ok && r != ARCHIVE_EOF)
    ok = berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "not a valid image archive: %s", archive_error_string (a));
out:
  /* The stream's own error says more than libarchive's echo of it. */
  if (!ok && reader->error != NULL)
    {
      g_clear_error (error);
      g_propagate_error (error, g_steal_pointer (&reader->error));
    }
  g_clear_error (&reader->error);
  archive_read_free (a);
  return ok;
}

/* Makes sure the namespace sees @desc's blob: from the archive, or already in the store
 * (then recorded here too). NOT_FOUND naming @owner when neither. */
static gboolean
ensure_blob (Import *im, const Desc *desc, const char *owner, GError **error)
{
  g_autoptr (BerthContentInfo) info = berth_content_store_info (im->store, desc->digest, im->cancellable, NULL);
  if (info == NULL)
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s names %s, which is neither in the archive nor in the store",
                        owner, desc->digest);
  if (desc->size > 0 && desc->size != info->size)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "%s gives %s a size of %" G_GINT64_FORMAT
                        " bytes, the blob has %" G_GINT64_FORMAT, owner, desc->digest, desc->size, info->size);
  /* Recorded with GC held off: the blob may have no namespace yet to keep it. */
  berth_gc_hold ();
  g_autoptr (BerthContentInfo) again = berth_content_store_info (im->store, desc->digest, NULL, NULL);
  gboolean ok = again != NULL ? record (im, desc->digest, again->size, error)
                              : berth_throw (error, BERTH_ERROR_ABORTED, "%s was removed during the import", desc->digest);
  berth_gc_release ();
  return ok;
}

static void
add_label (Import *im, const char *digest, const char *key, const char *value)
{
  GHashTable *labels = g_hash_table_lookup (im->labels, digest);
  if (labels == NULL)
    {
      labels = berth_labels_new ();
      g_hash_table_insert (im->labels, g_strdup (digest), labels);
    }
  g_hash_table_insert (labels, g_strdup (key), g_strdup (value));
}

/* Labels @desc's blob with references to its children, recursively: what GC follows
 * from an image to everything it needs. */
static gboolean
label_tree (Import *im, const Desc *desc, guint depth, GError **error)
{
  if (depth > 8)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "indexes nested deeper than 8 at %s", desc->digest);
  if (!is_index (desc->media_type) && !is_manifest (desc->media_type))
    return TRUE;
  g_autoptr (GBytes) bytes = read_json_blob (im->store, desc->digest, im->cancellable, error);
  if (bytes == NULL)
    return FALSE;
  g_autoptr (JsonNode) root = parse_object (bytes, desc->digest, error);
  if (root == NULL)
    return FALSE;
  JsonObject *object = json_node_get_object (root);
  if (is_index (desc->media_type))
    {
      JsonArray *manifests = member_array (object, "manifests");
      for (guint i = 0; i < array_length (manifests); i++)
        {
          g_autoptr (Desc) child = desc_from_json (element_object (manifests, i), desc->digest, error);
          if (child == NULL)
            return FALSE;
          /* A multi-platform index often ships only some platforms: the others are skipped. */
          if (!ensure_blob (im, child, desc->digest, NULL))
            continue;
          g_autofree char *key = g_strdup_printf (LABEL_REF "m.%u", i);
          add_label (im, desc->digest, key, child->digest);
          if (!label_tree (im, child, depth + 1, error))
            return FALSE;
        }
      return TRUE;
    }
  g_autoptr (Desc) config = desc_from_json (member_object (object, "config"),
                                            desc->digest, error);
  if (config == NULL || !ensure_blob (im, config, desc->digest, error))
    return FALSE;
  add_label (im, desc->digest, LABEL_REF "config", config->digest);
  JsonArray *layers = member_array (object, "layers");
  for (guint i = 0; i < array_length (layers); i++)
    {
      g_autoptr (Desc) layer = desc_from_json (element_object (layers, i), desc->digest, error);
      if (layer == NULL || !ensure_blob (im, layer, desc->digest, error))
        return FALSE;
      g_autofree char *key = g_strdup_printf (LABEL_REF "l.%u", i);
      add_label (im, desc->digest, key, layer->digest);
    }
  return TRUE;
}

static void
add_image (Import *im, char *name, const Desc *target)
{
  for (guint i = 0; i < im->names->len; i++)
    if (g_str_equal (im->names->pdata[i], name))
      {
        /* The last entry naming an image wins, as in containerd. */
        desc_free (im->targets->pdata[i]);
        im->targets->pdata[i] = desc_new (target->media_type, target->digest, target->size);
        g_free (name);
        return;
      }
  g_ptr_array_add (im->names, name);
  g_ptr_array_add (im->targets, desc_new (target->media_type, target->digest, target->size));
}

static gboolean
resolve_oci (Import *im, GBytes *index_json, const char *base_name, GError **error)
{
  g_autoptr (JsonNode) root = parse_object (index_json, "index.json", error);
  if (root == NULL)
    return FALSE;
  JsonArray *manifests = member_array (json_node_get_object (root), "manifests");
  for (guint i = 0; i < array_length (manifests); i++)
    {
      JsonObject *entry = element_object (manifests, i);
      g_autoptr (Desc) desc = desc_from_json (entry, "index.json", error);
      if (desc == NULL || !ensure_blob (im, desc, "index.json", error) || !label_tree (im, desc, 0, error))
        return FALSE;
      JsonObject *annotations = member_object (entry, "annotations");
      const char *name = annotations ? member_string (annotations, ANNOTATION_NAME) : NULL;
      const char *ref = annotations ? member_string (annotations, ANNOTATION_REF) : NULL;
      if (name != NULL && *name != '\0')
        add_image (im, g_strdup (name), desc);
      else if (ref != NULL && *ref != '\0' && base_name != NULL && *base_name != '\0')
        add_image (im, g_strdup_printf ("%s:%s", base_name, ref), desc);
      else
        g_debug ("index.json entry %s has no image name; its blobs are imported unnamed", desc->digest);
    }
  return TRUE;
}

/* "busybox:1" → "docker.io/library/busybox:1", "me/app:1" → "docker.io/me/app:1". */
static char *
normalize_docker_name (const char *tag)
{
  const char *slash = strchr (tag, '/');
  g_autofree char *domain = slash ? g_strndup (tag, slash - tag) : NULL;
  g_autofree char *full = NULL;
  if (slash == NULL)
    full = g_strconcat ("docker.io/library/", tag, NULL);
  else if (strchr (domain, '.') != NULL || strchr (domain, ':') != NULL || g_str_equal (domain, "localhost"))
    full = g_strdup (tag);
  else
    full = g_strconcat ("docker.io/", tag, NULL);
  const char *last = strrchr (full, '/');
  if (strchr (last, ':') == NULL && strchr (last, '@') == NULL)
    return g_strconcat (full, ":latest", NULL);
  return g_steal_pointer (&full);
}

static const char *
layer_media_type (Import *im, const char *digest)
{
  guint8 magic[4] = { 0 };
  gsize got = 0;
  g_autoptr (GInputStream) in = berth_content_store_open_reader (im->store, digest, NULL, im->cancellable, NULL);
  if (in != NULL)
    g_input_stream_read_all (in, magic, sizeof magic, &got, im->cancellable, NULL);
  if (got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b)
    return MT_DOCKER_LAYER_GZIP;
  if (got == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
    return MT_OCI_LAYER_ZSTD;
  return MT_DOCKER_LAYER;
}

static JsonNode *
desc_to_json (const Desc *desc)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "mediaType");
  json_builder_add_string_value (builder, desc->media_type);
  json_builder_set_member_name (builder, "size");
  json_builder_add_int_value (builder, desc->size);
  json_builder_set_member_name (builder, "digest");
  json_builder_add_string_value (builder, desc->digest);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static const Desc *
docker_file (Import *im, const char *path, guint entry, GError **error)
{
  g_autofree char *clean = path ? clean_path (path) : NULL;
  const Desc *desc = clean ? g_hash_table_lookup (im->files, clean) : NULL;
  if (desc == NULL)
    berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "manifest.json entry %u names %s, which the archive lacks", entry,
                 path ? path : "(nothing)");
  return desc;
}

static char *
node_to_text (JsonNode *node, gsize *len)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_root (generator, node);
  return json_generator_to_data (generator, len);
}

/* One Docker schema 2 manifest per manifest.json entry, made here and stored. */
static gboolean
resolve_docker (Import *im, GBytes *manifest_json, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len = 0;
  const char *data = g_bytes_get_data (manifest_json, &len);
  g_autoptr (GError) parse_error = NULL;
  if (!json_parser_load_from_data (parser, data, len, &parse_error))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "manifest.json is not valid JSON: %s", parse_error->message);
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "manifest.json is not a JSON array");
  JsonArray *entries = json_node_get_array (root);
  for (guint i = 0; i < array_length (entries); i++)
    {
      JsonObject *entry = element_object (entries, i);
      if (entry == NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "manifest.json entry %u is not an object", i);
      const Desc *config = docker_file (im, member_string (entry, "Config"), i, error);
      if (config == NULL)
        return FALSE;
      g_autoptr (JsonBuilder) builder = json_builder_new ();
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "schemaVersion");
      json_builder_add_int_value (builder, 2);
      json_builder_set_member_name (builder, "mediaType");
      json_builder_add_string_value (builder, MT_DOCKER_MANIFEST);
      json_builder_set_member_name (builder, "config");
      Desc config_desc = { (char *) MT_DOCKER_CONFIG, config->digest, config->size };
      json_builder_add_value (builder, desc_to_json (&config_desc));
      json_builder_set_member_name (builder, "layers");
      json_builder_begin_array (builder);
      JsonArray *layers = member_array (entry, "Layers");
      for (guint l = 0; l < array_length (layers); l++)
        {
          const Desc *layer = docker_file (im, element_string (layers, l), i, error);
          if (layer == NULL)
            return FALSE;
          Desc layer_desc = { (char *) layer_media_type (im, layer->digest), layer->digest, layer->size };
          json_builder_add_value (builder, desc_to_json (&layer_desc));
        }
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      g_autoptr (JsonNode) manifest = json_builder_get_root (builder);
      gsize manifest_len = 0;
      char *text = node_to_text (manifest, &manifest_len);
      g_autoptr (GBytes) bytes = g_bytes_new_take (text, manifest_len);
      g_autofree char *name = g_strdup_printf ("docker-manifest-%u", i);
      g_autoptr (Desc) desc = store_bytes (im, name, MT_DOCKER_MANIFEST, bytes, error);
      if (desc == NULL || !label_tree (im, desc, 0, error))
        return FALSE;
      JsonArray *tags = member_array (entry, "RepoTags");
      for (guint t = 0; t < array_length (tags); t++)
        {
          const char *tag = element_string (tags, t);
          if (tag != NULL && *tag != '\0')
            add_image (im, normalize_docker_name (tag), desc);
        }
    }
  return TRUE;
}

typedef struct {
  Import *im;
  GPtrArray *created; /* per name: TRUE when new (for the event) */
} ImagesData;

static gboolean
images_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  ImagesData *data = user_data;
  Import *im = data->im;
  /* Labels first: the images that reach the blobs appear in the same transaction. */
  GHashTableIter iter;
  gpointer digest, labels;
  g_hash_table_iter_init (&iter, im->labels);
  while (g_hash_table_iter_next (&iter, &digest, &labels))
    {
      g_autofree char *key = berth_api_content_key (im->ns, digest);
      Containerd__Services__Content__V1__Info *info =
        (gpointer) berth_api_get_message (txn, key, &containerd__services__content__v1__info__descriptor, error);
      if (info == NULL)
        return FALSE;
      g_autoptr (GHashTable) merged = berth_api_labels_from_entries ((void *const *) info->labels, info->n_labels, NULL);
      gint64 size = info->size;
      protobuf_c_message_free_unpacked (&info->base, NULL);
      GHashTableIter label_iter;
      gpointer k, v;
      g_hash_table_iter_init (&label_iter, labels);
      while (g_hash_table_iter_next (&label_iter, &k, &v))
        g_hash_table_replace (merged, g_strdup (k), g_strdup (v));
      if (!berth_labels_validate (merged, error)
          || !berth_api_content_record (txn, im->ns, NULL, digest, size, merged, error))
        return FALSE;
    }
  gint64 now = g_get_real_time ();
  for (guint i = 0; i < im->names->len; i++)
    {
      const char *name = im->names->pdata[i];
      const Desc *target = im->targets->pdata[i];
      g_autofree char *key = g_strdup_printf ("v1/%s/images/%s", im->ns, name);
      g_autoptr (GError) ignored = NULL;
      Containerd__Services__Images__V1__Image *old =
        (gpointer) berth_api_get_message (txn, key, &containerd__services__images__v1__image__descriptor, &ignored);
      Containerd__Services__Images__V1__Image *image = berth_grpc_message_new (&containerd__services__images__v1__image__descriptor);
      image->name = g_strdup (name);
      image->target = berth_grpc_message_new (&containerd__types__descriptor__descriptor);
      image->target->media_type = g_strdup (target->media_type);
      image->target->digest = g_strdup (target->digest);
      image->target->size = target->size;
      image->created_at = berth_api_timestamp_new (old ? berth_api_timestamp_to_usec (old->created_at) : now);
      image->updated_at = berth_api_timestamp_new (now);
      if (old != NULL)
        {
          /* An update keeps the image's labels. */
          g_autoptr (GHashTable) kept = berth_api_labels_from_entries ((void *const *) old->labels, old->n_labels, NULL);
          berth_api_labels_to_entries (kept, &containerd__services__images__v1__image__labels_entry__descriptor,
                                       (void ***) &image->labels, &image->n_labels);
        }
      g_ptr_array_add (data->created, GINT_TO_POINTER (old == NULL));
      if (old != NULL)
        protobuf_c_message_free_unpacked (&old->base, NULL);
      gboolean ok = berth_api_put_message (txn, key, &image->base, error);
      berth_grpc_message_free (&image->base);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

static gboolean
lease_create_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Import *im = user_data;
  g_autoptr (GDateTime) expire = g_date_time_new_from_unix_utc (g_get_real_time () / G_USEC_PER_SEC + IMPORT_LEASE_SECONDS);
  g_autofree char *expire_text = g_date_time_format (expire, "%Y-%m-%dT%H:%M:%SZ");
  Containerd__Services__Leases__V1__Lease lease = CONTAINERD__SERVICES__LEASES__V1__LEASE__INIT;
  Containerd__Services__Leases__V1__Lease__LabelsEntry label = CONTAINERD__SERVICES__LEASES__V1__LEASE__LABELS_ENTRY__INIT;
  Containerd__Services__Leases__V1__Lease__LabelsEntry *labels[] = { &label };
  label.key = (char *) "containerd.io/gc.expire";
  label.value = expire_text;
  lease.id = im->lease;
  lease.labels = labels;
  lease.n_labels = 1;
  g_autofree char *key = g_strdup_printf ("v1/%s/leases/%s", im->ns, im->lease);
  return berth_api_namespace_touch (txn, im->ns, error) && berth_api_put_message (txn, key, &lease.base, error);
}

static gboolean
lease_delete_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Import *im = user_data;
  g_autofree char *key = g_strdup_printf ("v1/%s/leases/%s", im->ns, im->lease);
  g_autofree char *resources = g_strconcat (key, "/r/", NULL);
  g_autoptr (GError) ignored = NULL;
  berth_metadata_txn_delete (txn, key, &ignored);
  return berth_metadata_txn_delete_prefix (txn, resources, NULL, error);
}

static void
publish_images (Import *im, GPtrArray *created)
{
  for (guint i = 0; i < im->names->len; i++)
    {
      /* ImageCreate and ImageUpdate share their layout: name, labels. */
      gboolean is_new = GPOINTER_TO_INT (created->pdata[i]);
      Containerd__Services__Images__V1__ImageCreate event = CONTAINERD__SERVICES__IMAGES__V1__IMAGE_CREATE__INIT;
      if (!is_new)
        event.base.descriptor = &containerd__services__images__v1__image_update__descriptor;
      event.name = im->names->pdata[i];
      berth_events_publish (berth_daemon_get_events (im->daemon), im->ns, is_new ? "/images/create" : "/images/update",
                            &event.base);
    }
}

GPtrArray *
berth_image_archive_import (BerthDaemon *daemon, const char *ns, GInputStream *input, const char *base_name,
                            GCancellable *cancellable, GError **error)
{
  return berth_image_archive_import_full (daemon, ns, input, base_name, NULL, NULL, cancellable, error);
}

GPtrArray *
berth_image_archive_import_full (BerthDaemon *daemon, const char *ns, GInputStream *input, const char *base_name,
                                 BerthImageArchiveProgress progress, gpointer progress_data,
                                 GCancellable *cancellable, GError **error)
{
  BerthContentStore *store = berth_daemon_get_content_store (daemon, error);
  if (store == NULL)
    return NULL;
  BerthMetadata *md = berth_daemon_get_metadata (daemon);
  Import im = { daemon, store, ns, g_strdup_printf ("berth-import-%" G_GINT64_FORMAT "-%08x", g_get_real_time (), g_random_int ()),
                cancellable, g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) desc_free),
                g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_bytes_unref),
                g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_hash_table_unref),
                g_ptr_array_new_with_free_func (g_free), g_ptr_array_new_with_free_func ((GDestroyNotify) desc_free) };
  im.progress = progress;
  im.progress_data = progress_data;
  g_autoptr (GPtrArray) created = g_ptr_array_new ();
  GPtrArray *result = NULL;
  if (!berth_metadata_write (md, lease_create_txn, &im, error))
    goto out;
  if (!read_archive (&im, input, error))
    goto drop_lease;
  GBytes *index_json = g_hash_table_lookup (im.meta, "index.json");
  GBytes *manifest_json = g_hash_table_lookup (im.meta, "manifest.json");
  gboolean resolved = index_json != NULL ? resolve_oci (&im, index_json, base_name, error)
                      : manifest_json != NULL
                        ? resolve_docker (&im, manifest_json, error)
                        : berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                                       "neither index.json nor manifest.json: not an OCI layout or docker save archive");
  ImagesData data = { &im, created };
  if (!resolved || !berth_metadata_write (md, images_txn, &data, error))
    goto drop_lease;
  publish_images (&im, created);
  result = g_steal_pointer (&im.names);
drop_lease:
  {
    g_autoptr (GError) lease_error = NULL;
    if (!berth_metadata_write (md, lease_delete_txn, &im, &lease_error))
      g_warning ("import: releasing lease %s: %s", im.lease, lease_error->message);
  }
out:
  g_free (im.lease);
  g_hash_table_unref (im.files);
  g_hash_table_unref (im.meta);
  g_hash_table_unref (im.labels);
  if (im.names != NULL)
    g_ptr_array_unref (im.names);
  g_ptr_array_unref (im.targets);
  return result;
}

/* ================= export ================= */

typedef struct {
  GOutputStream *output;
  GCancellable *cancellable;
  GError *error;
} Writer;

static la_ssize_t
writer_write (struct archive *a, void *user_data, const void *buffer, size_t len)
{
  Writer *writer = user_data;
  gsize written = 0;
  if (!g_output_stream_write_all (writer->output, buffer, len, &written, writer->cancellable,
                                  writer->error ? NULL : &writer->error))
    {
      archive_set_error (a, EIO, "%s", writer->error ? writer->error->message : "write error");
      return -1;
    }
  return written;
}

typedef struct {
  BerthDaemon *daemon;
  BerthContentStore *store;
  const char *ns;
  GCancellable *cancellable;
  GPtrArray *blobs;   /* Desc, in the order written */
  GHashTable *seen;   /* digests in blobs */
} Export;

static gboolean
collect_blob (Export *ex, const Desc *desc, const char *owner, gboolean optional, guint depth, GError **error)
{
  if (g_hash_table_contains (ex->seen, desc->digest))
    return TRUE;
  if (!visible_in (ex->daemon, ex->ns, desc->digest))
    return optional ? TRUE
                    : berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s names %s, which namespace %s does not have", owner,
                                   desc->digest, ex->ns);
  if (depth > 8)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "indexes nested deeper than 8 at %s", desc->digest);
  g_hash_table_add (ex->seen, g_strdup (desc->digest));
  g_ptr_array_add (ex->blobs, desc_new (desc->media_type, desc->digest, desc->size));
  if (!is_index (desc->media_type) && !is_manifest (desc->media_type))
    return TRUE;
  g_autoptr (GBytes) bytes = read_json_blob (ex->store, desc->digest, ex->cancellable, error);
  if (bytes == NULL)
    return FALSE;
  g_autoptr (JsonNode) root = parse_object (bytes, desc->digest, error);
  if (root == NULL)
    return FALSE;
  JsonObject *object = json_node_get_object (root);
  if (is_index (desc->media_type))
    {
      JsonArray *manifests = member_array (object, "manifests");
      for (guint i = 0; i < array_length (manifests); i++)
        {
          g_autoptr (Desc) child = desc_from_json (element_object (manifests, i), desc->digest, error);
          /* Platforms never pulled are left out, as containerd's export does. */
          if (child == NULL || !collect_blob (ex, child, desc->digest, TRUE, depth + 1, error))
            return FALSE;
        }
      return TRUE;
    }
  g_autoptr (Desc) config = desc_from_json (member_object (object, "config"),
                                            desc->digest, error);
  if (config == NULL || !collect_blob (ex, config, desc->digest, FALSE, depth + 1, error))
    return FALSE;
  JsonArray *layers = member_array (object, "layers");
  for (guint i = 0; i < array_length (layers); i++)
    {
      g_autoptr (Desc) layer = desc_from_json (element_object (layers, i), desc->digest, error);
      if (layer == NULL || !collect_blob (ex, layer, desc->digest, FALSE, depth + 1, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
archive_fail (struct archive *a, const char *what, GError **error)
{
  return berth_throw (error, BERTH_ERROR_INTERNAL, "writing %s: %s", what, archive_error_string (a));
}

static gboolean
write_header (struct archive *a, const char *path, gint64 size, GError **error)
{
  struct archive_entry *entry = archive_entry_new ();
  archive_entry_set_pathname (entry, path);
  archive_entry_set_filetype (entry, size < 0 ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm (entry, size < 0 ? 0755 : 0644);
  archive_entry_set_size (entry, size < 0 ? 0 : size);
  archive_entry_set_mtime (entry, 0, 0); /* reproducible archives */
  int r = archive_write_header (a, entry);
  archive_entry_free (entry);
  return r == ARCHIVE_OK || archive_fail (a, path, error);
}

static gboolean
write_bytes (struct archive *a, const char *path, const char *data, gsize len, GError **error)
{
  if (!write_header (a, path, len, error))
    return FALSE;
  return len == 0 || archive_write_data (a, data, len) == (la_ssize_t) len || archive_fail (a, path, error);
}

static gboolean
write_blob (struct archive *a, Export *ex, const Desc *desc, GError **error)
{
  g_autofree char *path = g_strconcat ("blobs/sha256/", desc->digest + strlen ("sha256:"), NULL);
  gint64 size = 0;
  g_autoptr (GInputStream) in = berth_content_store_open_reader (ex->store, desc->digest, &size, ex->cancellable, error);
  if (in == NULL || !write_header (a, path, size, error))
    return FALSE;
  g_autofree guint8 *buf = g_malloc (1 << 20);
  for (gint64 done = 0; done < size;)
    {
      gssize n = g_input_stream_read (in, buf, MIN (1 << 20, size - done), ex->cancellable, error);
      if (n < 0)
        return FALSE;
      if (n == 0)
        return berth_throw (error, BERTH_ERROR_DATA_LOSS, "blob %s ended at %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                            " bytes", desc->digest, done, size);
      if (archive_write_data (a, buf, n) != n)
        return archive_fail (a, path, error);
      done += n;
    }
  return TRUE;
}

static const char *
host_arch (void)
{
  struct utsname u;
  if (uname (&u) < 0)
    return "amd64";
  if (g_str_equal (u.machine, "x86_64"))
    return "amd64";
  if (g_str_equal (u.machine, "aarch64"))
    return "arm64";
  return "unknown";
}

/* The manifest `docker load` would use for @target: itself, or the host platform's
 * entry of an index when exported. */
static Desc *
platform_manifest (Export *ex, const Desc *target, GError **error)
{
  if (is_manifest (target->media_type))
    return desc_new (target->media_type, target->digest, target->size);
  if (!is_index (target->media_type))
    return NULL;
  g_autoptr (GBytes) bytes = read_json_blob (ex->store, target->digest, ex->cancellable, error);
  g_autoptr (JsonNode) root = bytes ? parse_object (bytes, target->digest, error) : NULL;
  if (root == NULL)
    return NULL;
  JsonArray *manifests = member_array (json_node_get_object (root), "manifests");
  for (guint i = 0; i < array_length (manifests); i++)
    {
      JsonObject *entry = element_object (manifests, i);
      JsonObject *platform = entry ? member_object (entry, "platform") : NULL;
      const char *os = platform ? (member_string (platform, "os") ?: "") : "";
      const char *arch = platform ? (member_string (platform, "architecture") ?: "") : "";
      const char *digest = (member_string (entry, "digest") ?: "");
      if (g_str_equal (os, "linux") && g_str_equal (arch, host_arch ()) && g_hash_table_contains (ex->seen, digest))
        return desc_from_json (entry, target->digest, error);
    }
  return NULL;
}

/* "docker.io/library/busybox:1" → "busybox:1", as docker prints names. */
static const char *
familiar_name (const char *name)
{
  if (g_str_has_prefix (name, "docker.io/library/"))
    return name + strlen ("docker.io/library/");
  if (g_str_has_prefix (name, "docker.io/"))
    return name + strlen ("docker.io/");
  return name;
}

static gboolean
add_docker_entry (Export *ex, JsonBuilder *builder, const char *name, const Desc *target, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (Desc) manifest = platform_manifest (ex, target, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (manifest == NULL)
    return TRUE; /* nothing docker could load for this host */
  g_autoptr (GBytes) bytes = read_json_blob (ex->store, manifest->digest, ex->cancellable, error);
  g_autoptr (JsonNode) root = bytes ? parse_object (bytes, manifest->digest, error) : NULL;
  if (root == NULL)
    return FALSE;
  JsonObject *object = json_node_get_object (root);
  JsonObject *config = member_object (object, "config");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "Config");
  g_autofree char *config_path = g_strconcat ("blobs/sha256/", (member_string (config, "digest") ?: "sha256:") + strlen ("sha256:"), NULL);
  json_builder_add_string_value (builder, config_path);
  json_builder_set_member_name (builder, "RepoTags");
  json_builder_begin_array (builder);
  if (strchr (name, '@') == NULL)
    json_builder_add_string_value (builder, familiar_name (name));
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "Layers");
  json_builder_begin_array (builder);
  JsonArray *layers = member_array (object, "layers");
  for (guint i = 0; i < array_length (layers); i++)
    {
      JsonObject *layer = element_object (layers, i);
      const char *digest = layer ? (member_string (layer, "digest") ?: "sha256:") : "sha256:";
      g_autofree char *path = g_strconcat ("blobs/sha256/", digest + strlen ("sha256:"), NULL);
      json_builder_add_string_value (builder, path);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  return TRUE;
}

typedef struct {
  const char *ns;
  const char *const *names;
  GPtrArray *targets; /* Desc per name */
} TargetsData;

static gboolean
targets_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  TargetsData *data = user_data;
  for (guint i = 0; data->names[i] != NULL; i++)
    {
      g_autofree char *key = g_strdup_printf ("v1/%s/images/%s", data->ns, data->names[i]);
      g_autoptr (GError) local_error = NULL;
      Containerd__Services__Images__V1__Image *image =
        (gpointer) berth_api_get_message (txn, key, &containerd__services__images__v1__image__descriptor, &local_error);
      if (image == NULL)
        {
          if (local_error != NULL)
            g_propagate_error (error, g_steal_pointer (&local_error));
          else
            berth_throw (error, BERTH_ERROR_NOT_FOUND, "image \"%s\": not found", data->names[i]);
          return FALSE;
        }
      if (image->target == NULL || !berth_digest_validate (image->target->digest, error))
        {
          protobuf_c_message_free_unpacked (&image->base, NULL);
          return error != NULL && *error != NULL
                   ? FALSE
                   : berth_throw (error, BERTH_ERROR_DATA_LOSS, "image %s has no target", data->names[i]);
        }
      g_ptr_array_add (data->targets, desc_new (image->target->media_type, image->target->digest, image->target->size));
      protobuf_c_message_free_unpacked (&image->base, NULL);
    }
  return TRUE;
}

static gboolean
write_layout (struct archive *a, Export *ex, const char *const *names, GPtrArray *targets, GError **error)
{
  static const char oci_layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
  g_autoptr (JsonBuilder) index = json_builder_new ();
  g_autoptr (JsonBuilder) docker = json_builder_new ();
  json_builder_begin_object (index);
  json_builder_set_member_name (index, "schemaVersion");
  json_builder_add_int_value (index, 2);
  json_builder_set_member_name (index, "mediaType");
  json_builder_add_string_value (index, MT_OCI_INDEX);
  json_builder_set_member_name (index, "manifests");
  json_builder_begin_array (index);
  json_builder_begin_array (docker);
  for (guint i = 0; i < targets->len; i++)
    {
      const Desc *target = targets->pdata[i];
      JsonNode *entry = desc_to_json (target);
      JsonObject *object = json_node_get_object (entry);
      JsonObject *annotations = json_object_new ();
      json_object_set_string_member (annotations, ANNOTATION_NAME, names[i]);
      const char *tag = strrchr (names[i], ':');
      if (tag != NULL && strchr (tag, '/') == NULL && strchr (names[i], '@') == NULL)
        json_object_set_string_member (annotations, ANNOTATION_REF, tag + 1);
      json_object_set_object_member (object, "annotations", annotations);
      json_builder_add_value (index, entry);
      if (!add_docker_entry (ex, docker, names[i], target, error))
        return FALSE;
    }
  json_builder_end_array (index);
  json_builder_end_object (index);
  json_builder_end_array (docker);
  g_autoptr (JsonNode) index_root = json_builder_get_root (index);
  g_autoptr (JsonNode) docker_root = json_builder_get_root (docker);
  gsize index_len = 0, docker_len = 0;
  g_autofree char *index_text = node_to_text (index_root, &index_len);
  g_autofree char *docker_text = node_to_text (docker_root, &docker_len);
  if (!write_bytes (a, "oci-layout", oci_layout, strlen (oci_layout), error)
      || !write_bytes (a, "index.json", index_text, index_len, error)
      || !write_bytes (a, "manifest.json", docker_text, docker_len, error) || !write_header (a, "blobs", -1, error)
      || !write_header (a, "blobs/sha256", -1, error))
    return FALSE;
  for (guint i = 0; i < ex->blobs->len; i++)
    if (!write_blob (a, ex, ex->blobs->pdata[i], error))
      return FALSE;
  return TRUE;
}

gboolean
berth_image_archive_export (BerthDaemon *daemon, const char *ns, const char *const *names, GOutputStream *output,
                            GCancellable *cancellable, GError **error)
{
  if (names == NULL || names[0] == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "export needs at least one image name");
  BerthContentStore *store = berth_daemon_get_content_store (daemon, error);
  if (store == NULL)
    return FALSE;
  g_autoptr (GPtrArray) targets = g_ptr_array_new_with_free_func ((GDestroyNotify) desc_free);
  TargetsData data = { ns, names, targets };
  if (!berth_metadata_read (berth_daemon_get_metadata (daemon), targets_txn, &data, error))
    return FALSE;
  g_autoptr (GPtrArray) blobs = g_ptr_array_new_with_free_func ((GDestroyNotify) desc_free);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Export ex = { daemon, store, ns, cancellable, blobs, seen };
  for (guint i = 0; i < targets->len; i++)
    if (!collect_blob (&ex, targets->pdata[i], names[i], FALSE, 0, error))
      return FALSE;

  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  g_autofree Writer *writer = g_new0 (Writer, 1);
  writer->output = output;
  writer->cancellable = cancellable;
  gboolean ok = archive_write_open (a, writer, NULL, writer_write, NULL) == ARCHIVE_OK
                  ? write_layout (a, &ex, names, targets, error)
                  : archive_fail (a, "the archive", error);
  if (archive_write_close (a) != ARCHIVE_OK && ok)
    ok = archive_fail (a, "the archive", error);
  archive_write_free (a);
  if (!ok && writer->error != NULL)
    {
      g_clear_error (error);
      g_propagate_error (error, g_steal_pointer (&writer->error));
    }
  g_clear_error (&writer->error);
  return ok;
}
