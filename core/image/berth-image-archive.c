/* berth-image-archive.c — import and export of OCI layout and `docker save` tars.
 * Built as the berth-image-archive module (libarchive), which berthd loads on the first
 * import or export; core/daemon/berth-modules.c holds the entry points the daemon calls. */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/utsname.h>

#include <berth/berth.h>
#include "daemon/berth-daemon.h"
#include "wire/berth-grpc.h"
#include "berth-image-archive.h"
#include "berth-image-store.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"

#define ANNOTATION_NAME "io.containerd.image.name"
#define ANNOTATION_REF "org.opencontainers.image.ref.name"

/* ================= import ================= */

typedef struct {
  BerthImageIngest *ingest; /* the lease, the blobs, the labels and the images */
  BerthContentStore *store;
  GCancellable *cancellable;
  GHashTable *files;      /* archive path → BerthDescriptor of the stored blob */
  GHashTable *meta;       /* top-level JSON documents → GBytes */
  BerthImageArchiveProgress progress;
  gpointer progress_data;
} Import;

static BerthDescriptor *
stored (Import *im, char *digest, gint64 size)
{
  if (digest == NULL)
    return NULL;
  if (im->progress != NULL)
    im->progress (digest, size, im->progress_data);
  BerthDescriptor *desc = berth_descriptor_new ("", digest, size);
  g_free (digest);
  return desc;
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
static BerthDescriptor *
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
  g_autofree char *ref = berth_image_ingest_ref (im->ingest, path);
  g_autoptr (BerthContentWriter) writer = berth_content_store_open_writer (im->store, ref, size, expected,
                                                                           im->cancellable, error);
  if (writer == NULL)
    return NULL;
  const void *buf;
  size_t len;
  la_int64_t offset;
  int r;
  BerthDescriptor *desc = NULL;
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
  desc = stored (im, berth_image_ingest_commit (im->ingest, writer, size, expected, path, error), size);
out:
  if (desc == NULL)
    {
      g_clear_object (&writer);
      berth_content_store_abort (im->store, ref, NULL, NULL);
    }
  return desc;
}

/* Stores bytes made here (a Docker manifest) like an archive entry. */
static BerthDescriptor *
store_bytes (Import *im, const char *name, const char *media_type, GBytes *bytes, GError **error)
{
  gsize len = g_bytes_get_size (bytes);
  BerthDescriptor *desc = stored (im, berth_image_ingest_store_bytes (im->ingest, name, bytes, NULL, error), len);
  if (desc == NULL)
    return NULL;
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
  if (size < 0 || size > BERTH_MAX_JSON)
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
          BerthDescriptor *desc = store_entry (im, a, path, size, error);
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

/* Makes sure the namespace sees @desc's blob: from the archive, or already in the store.
 * NOT_FOUND naming @owner when neither. */
static gboolean
ensure_blob (Import *im, const BerthDescriptor *desc, const char *owner, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  if (berth_image_ingest_adopt (im->ingest, desc, owner, &local_error))
    return TRUE;
  if (g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s names %s, which is neither in the archive nor in the store",
                        owner, desc->digest);
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

static gboolean
resolve_oci (Import *im, GBytes *index_json, const char *base_name, GError **error)
{
  g_autoptr (JsonNode) root = berth_json_parse_object (index_json, "index.json", error);
  if (root == NULL)
    return FALSE;
  JsonArray *manifests = berth_json_member_array (json_node_get_object (root), "manifests");
  for (guint i = 0; i < berth_json_array_length (manifests); i++)
    {
      JsonObject *entry = berth_json_element_object (manifests, i);
      g_autoptr (BerthDescriptor) desc = berth_descriptor_from_json (entry, "index.json", error);
      if (desc == NULL || !ensure_blob (im, desc, "index.json", error) || !berth_image_ingest_label_tree (im->ingest, desc, error))
        return FALSE;
      JsonObject *annotations = berth_json_member_object (entry, "annotations");
      const char *name = annotations ? berth_json_member_string (annotations, ANNOTATION_NAME) : NULL;
      const char *ref = annotations ? berth_json_member_string (annotations, ANNOTATION_REF) : NULL;
      if (name != NULL && *name != '\0')
        berth_image_ingest_add_image (im->ingest, name, desc);
      else if (ref != NULL && *ref != '\0' && base_name != NULL && *base_name != '\0')
        {
          g_autofree char *full = g_strdup_printf ("%s:%s", base_name, ref);
          berth_image_ingest_add_image (im->ingest, full, desc);
        }
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
    return BERTH_MT_DOCKER_LAYER_GZIP;
  if (got == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
    return BERTH_MT_OCI_LAYER_ZSTD;
  return BERTH_MT_DOCKER_LAYER;
}

static const BerthDescriptor *
docker_file (Import *im, const char *path, guint entry, GError **error)
{
  g_autofree char *clean = path ? clean_path (path) : NULL;
  const BerthDescriptor *desc = clean ? g_hash_table_lookup (im->files, clean) : NULL;
  if (desc == NULL)
    berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "manifest.json entry %u names %s, which the archive lacks", entry,
                 path ? path : "(nothing)");
  return desc;
}

/* One Docker schema 2 manifest per manifest.json entry, made here and stored. */
static gboolean
resolve_docker (Import *im, GBytes *manifest_json, GError **error)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (manifest_json, &len);
  g_autoptr (JsonNode) root = berth_json_parse (data, len, "manifest.json", error);
  if (root == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_ARRAY (root))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "manifest.json is not a JSON array");
  JsonArray *entries = json_node_get_array (root);
  for (guint i = 0; i < berth_json_array_length (entries); i++)
    {
      JsonObject *entry = berth_json_element_object (entries, i);
      if (entry == NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "manifest.json entry %u is not an object", i);
      const BerthDescriptor *config = docker_file (im, berth_json_member_string (entry, "Config"), i, error);
      if (config == NULL)
        return FALSE;
      g_autoptr (JsonBuilder) builder = json_builder_new ();
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "schemaVersion");
      json_builder_add_int_value (builder, 2);
      json_builder_set_member_name (builder, "mediaType");
      json_builder_add_string_value (builder, BERTH_MT_DOCKER_MANIFEST);
      json_builder_set_member_name (builder, "config");
      BerthDescriptor config_desc = { (char *) BERTH_MT_DOCKER_CONFIG, config->digest, config->size };
      json_builder_add_value (builder, berth_descriptor_to_json (&config_desc));
      json_builder_set_member_name (builder, "layers");
      json_builder_begin_array (builder);
      JsonArray *layers = berth_json_member_array (entry, "Layers");
      for (guint l = 0; l < berth_json_array_length (layers); l++)
        {
          const BerthDescriptor *layer = docker_file (im, berth_json_element_string (layers, l), i, error);
          if (layer == NULL)
            return FALSE;
          BerthDescriptor layer_desc = { (char *) layer_media_type (im, layer->digest), layer->digest, layer->size };
          json_builder_add_value (builder, berth_descriptor_to_json (&layer_desc));
        }
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      g_autoptr (JsonNode) manifest = json_builder_get_root (builder);
      gsize manifest_len = 0;
      char *text = berth_json_to_text (manifest, &manifest_len);
      g_autoptr (GBytes) bytes = g_bytes_new_take (text, manifest_len);
      g_autofree char *name = g_strdup_printf ("docker-manifest-%u", i);
      g_autoptr (BerthDescriptor) desc = store_bytes (im, name, BERTH_MT_DOCKER_MANIFEST, bytes, error);
      if (desc == NULL || !berth_image_ingest_label_tree (im->ingest, desc, error))
        return FALSE;
      JsonArray *tags = berth_json_member_array (entry, "RepoTags");
      for (guint t = 0; t < berth_json_array_length (tags); t++)
        {
          const char *tag = berth_json_element_string (tags, t);
          if (tag != NULL && *tag != '\0')
            {
              g_autofree char *full = normalize_docker_name (tag);
              berth_image_ingest_add_image (im->ingest, full, desc);
            }
        }
    }
  return TRUE;
}

GPtrArray *
berth_image_archive_module_import (BerthDaemon *daemon, const char *ns, GInputStream *input, const char *base_name,
                                 BerthImageArchiveProgress progress, gpointer progress_data,
                                 GCancellable *cancellable, GError **error)
{
  g_autoptr (BerthImageIngest) ingest = berth_image_ingest_new (daemon, ns, "import", cancellable, error);
  if (ingest == NULL)
    return NULL;
  g_autoptr (GHashTable) files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) berth_descriptor_free);
  g_autoptr (GHashTable) meta = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_bytes_unref);
  Import im = { ingest, berth_image_ingest_get_store (ingest), cancellable, files, meta, progress, progress_data };
  if (!read_archive (&im, input, error))
    return NULL;
  GBytes *index_json = g_hash_table_lookup (im.meta, "index.json");
  GBytes *manifest_json = g_hash_table_lookup (im.meta, "manifest.json");
  gboolean resolved = index_json != NULL ? resolve_oci (&im, index_json, base_name, error)
                      : manifest_json != NULL
                        ? resolve_docker (&im, manifest_json, error)
                        : berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                                       "neither index.json nor manifest.json: not an OCI layout or docker save archive");
  if (!resolved)
    return NULL;
  return berth_image_ingest_finish (ingest, error);
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
  GPtrArray *blobs;   /* BerthDescriptor, in the order written */
  GHashTable *seen;   /* digests in blobs */
} Export;

static gboolean
collect_blob (Export *ex, const BerthDescriptor *desc, const char *owner, gboolean optional, guint depth, GError **error)
{
  if (g_hash_table_contains (ex->seen, desc->digest))
    return TRUE;
  if (!berth_image_blob_visible (ex->daemon, ex->ns, desc->digest))
    return optional ? TRUE
                    : berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s names %s, which namespace %s does not have", owner,
                                   desc->digest, ex->ns);
  if (depth > 8)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "indexes nested deeper than 8 at %s", desc->digest);
  g_hash_table_add (ex->seen, g_strdup (desc->digest));
  g_ptr_array_add (ex->blobs, berth_descriptor_new (desc->media_type, desc->digest, desc->size));
  g_autoptr (GPtrArray) children = berth_image_read_children (ex->store, desc, ex->cancellable, error);
  if (children == NULL)
    return FALSE;
  for (guint i = 0; i < children->len; i++)
    {
      const BerthImageChild *child = children->pdata[i];
      /* Platforms never pulled are left out, as containerd's export does. */
      gboolean child_optional = child->kind == BERTH_IMAGE_CHILD_MANIFEST;
      if (!collect_blob (ex, child->desc, desc->digest, child_optional, depth + 1, error))
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
write_blob (struct archive *a, Export *ex, const BerthDescriptor *desc, GError **error)
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

/* The manifest `docker load` would use for @target: itself, or the host platform's
 * entry of an index when exported. */
static BerthDescriptor *
platform_manifest (Export *ex, const BerthDescriptor *target, GError **error)
{
  if (berth_media_type_is_manifest (target->media_type))
    return berth_descriptor_new (target->media_type, target->digest, target->size);
  if (!berth_media_type_is_index (target->media_type))
    return NULL;
  g_autoptr (GBytes) bytes = berth_image_read_json_blob (ex->store, target->digest, ex->cancellable, error);
  g_autoptr (JsonNode) root = bytes ? berth_json_parse_object (bytes, target->digest, error) : NULL;
  if (root == NULL)
    return NULL;
  JsonArray *manifests = berth_json_member_array (json_node_get_object (root), "manifests");
  for (guint i = 0; i < berth_json_array_length (manifests); i++)
    {
      JsonObject *entry = berth_json_element_object (manifests, i);
      JsonObject *platform = entry ? berth_json_member_object (entry, "platform") : NULL;
      const char *os = platform ? (berth_json_member_string (platform, "os") ?: "") : "";
      const char *arch = platform ? (berth_json_member_string (platform, "architecture") ?: "") : "";
      const char *digest = (berth_json_member_string (entry, "digest") ?: "");
      if (g_str_equal (os, "linux") && g_str_equal (arch, berth_host_architecture ()) && g_hash_table_contains (ex->seen, digest))
        return berth_descriptor_from_json (entry, target->digest, error);
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
add_docker_entry (Export *ex, JsonBuilder *builder, const char *name, const BerthDescriptor *target, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (BerthDescriptor) manifest = platform_manifest (ex, target, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (manifest == NULL)
    return TRUE; /* nothing docker could load for this host */
  g_autoptr (GBytes) bytes = berth_image_read_json_blob (ex->store, manifest->digest, ex->cancellable, error);
  g_autoptr (JsonNode) root = bytes ? berth_json_parse_object (bytes, manifest->digest, error) : NULL;
  if (root == NULL)
    return FALSE;
  JsonObject *object = json_node_get_object (root);
  JsonObject *config = berth_json_member_object (object, "config");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "Config");
  g_autofree char *config_path = g_strconcat ("blobs/sha256/", (berth_json_member_string (config, "digest") ?: "sha256:") + strlen ("sha256:"), NULL);
  json_builder_add_string_value (builder, config_path);
  json_builder_set_member_name (builder, "RepoTags");
  json_builder_begin_array (builder);
  if (strchr (name, '@') == NULL)
    json_builder_add_string_value (builder, familiar_name (name));
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "Layers");
  json_builder_begin_array (builder);
  JsonArray *layers = berth_json_member_array (object, "layers");
  for (guint i = 0; i < berth_json_array_length (layers); i++)
    {
      JsonObject *layer = berth_json_element_object (layers, i);
      const char *digest = layer ? (berth_json_member_string (layer, "digest") ?: "sha256:") : "sha256:";
      g_autofree char *path = g_strconcat ("blobs/sha256/", digest + strlen ("sha256:"), NULL);
      json_builder_add_string_value (builder, path);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
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
  json_builder_add_string_value (index, BERTH_MT_OCI_INDEX);
  json_builder_set_member_name (index, "manifests");
  json_builder_begin_array (index);
  json_builder_begin_array (docker);
  for (guint i = 0; i < targets->len; i++)
    {
      const BerthDescriptor *target = targets->pdata[i];
      JsonNode *entry = berth_descriptor_to_json (target);
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
  g_autofree char *index_text = berth_json_to_text (index_root, &index_len);
  g_autofree char *docker_text = berth_json_to_text (docker_root, &docker_len);
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
berth_image_archive_module_export (BerthDaemon *daemon, const char *ns, const char *const *names, GOutputStream *output,
                            GCancellable *cancellable, GError **error)
{
  if (names == NULL || names[0] == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "export needs at least one image name");
  BerthContentStore *store = berth_daemon_get_content_store (daemon, error);
  if (store == NULL)
    return FALSE;
  g_autoptr (GPtrArray) targets = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_descriptor_free);
  for (guint i = 0; names[i] != NULL; i++)
    {
      BerthDescriptor *target = berth_image_get_target (daemon, ns, names[i], error);
      if (target == NULL)
        return FALSE;
      g_ptr_array_add (targets, target);
    }
  g_autoptr (GPtrArray) blobs = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_descriptor_free);
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
