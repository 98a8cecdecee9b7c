/* berth-distribution-pull.c — pull: resolve a reference to a manifest for this platform,
 * fetch its config and layers into the content store (layers in parallel, unpacking as
 * they arrive), record the image. Part of the berth-registry-client module, on the
 * registry client of berth-distribution.c. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>
#include "berth-distribution-private.h"
#include "berth-image-store.h"
#include "berth-unpack.h"

/* ================= pull ================= */

typedef struct {
  BerthDaemon *daemon;
  Registry *reg;
  BerthReference *ref;
  char *scope;
  BerthImageIngest *ingest;
  BerthContentStore *store;
  Reporter *reporter;
  GCancellable *cancellable; /* cancelled when any part fails, so the others stop */
} Pull;

/* A manifest or index by tag or digest: its bytes, media type and digest. */
static GBytes *
fetch_manifest (Pull *pull, const char *reference, const char *expected, char **media_type_out, char **digest_out,
                GError **error)
{
  g_autofree char *url = dist_url_for (pull->reg, pull->ref->path, "manifests", reference);
  Request req = { "GET", url, ACCEPT_MANIFESTS, 0, NULL, NULL };
  g_autoptr (BerthHttpMessage) msg = NULL;
  g_autoptr (GInputStream) stream = dist_registry_send (pull->reg, pull->scope, dist_build_request, &req, &msg, error);
  if (stream == NULL)
    return NULL;
  g_autofree char *name = berth_reference_to_string (pull->ref);
  guint status = berth_http_message_get_status (msg);
  if (status != HTTP_OK)
    {
      g_autofree char *detail = dist_drain_detail (stream, pull->cancellable);
      if (status == HTTP_NOT_FOUND)
        return berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s: not found in the registry%s%s", name,
                            detail ? " — " : "", detail ? detail : ""),
               NULL;
      return dist_throw_status (error, msg, detail, name), NULL;
    }
  g_autoptr (GBytes) bytes = dist_read_limited (stream, BERTH_MAX_JSON, pull->cancellable, error);
  g_input_stream_close (stream, NULL, NULL);
  if (bytes == NULL)
    {
      g_prefix_error (error, "%s: manifest: ", name);
      return NULL;
    }
  g_autofree char *digest = berth_digest_bytes (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  const char *claimed = berth_http_message_get_header (msg, "Docker-Content-Digest");
  if ((expected != NULL && !g_str_equal (digest, expected)) || (claimed != NULL && g_str_has_prefix (claimed, "sha256:")
                                                                && !g_str_equal (digest, claimed)))
    return berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s: the registry sent a manifest that hashes to %s, not %s", name,
                        digest, expected ? expected : claimed),
           NULL;
  /* The media type: the document's own, else the Content-Type. */
  g_autoptr (GError) parse_error = NULL;
  g_autoptr (JsonNode) root = berth_json_parse_object (bytes, "manifest", &parse_error);
  if (root == NULL)
    return berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s: %s", name, parse_error->message), NULL;
  JsonObject *object = json_node_get_object (root);
  const char *media_type = berth_json_member_string (object, "mediaType");
  g_autofree char *content_type = berth_http_message_get_content_type (msg);
  if (media_type == NULL || *media_type == '\0')
    media_type = content_type;
  if ((media_type == NULL || (!berth_media_type_is_index (media_type) && !berth_media_type_is_manifest (media_type)))
      && berth_json_member_int (object, "schemaVersion") == 2)
    media_type = berth_json_member_array (object, "manifests") ? BERTH_MT_OCI_INDEX : BERTH_MT_OCI_MANIFEST;
  if (media_type == NULL || (!berth_media_type_is_index (media_type) && !berth_media_type_is_manifest (media_type)))
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "%s: a %s manifest, which berth does not pull (schema 1?)", name,
                        media_type ? media_type : "typeless"),
           NULL;
  *media_type_out = g_strdup (media_type);
  *digest_out = g_steal_pointer (&digest);
  return g_steal_pointer (&bytes);
}

/* os/arch[/variant] of this request, defaults filled in. */
typedef struct {
  char *os;
  char *arch;
  char *variant;
} Platform;

static void
platform_clear (Platform *p)
{
  g_free (p->os);
  g_free (p->arch);
  g_free (p->variant);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Platform, platform_clear)

static gboolean
platform_parse (const char *text, Platform *p, GError **error)
{
  if (text == NULL || *text == '\0')
    {
      p->os = g_strdup ("linux");
      p->arch = g_strdup (berth_host_architecture ());
      return TRUE;
    }
  g_auto (GStrv) parts = g_strsplit (text, "/", -1);
  guint n = g_strv_length (parts);
  if (n < 2 || n > 3 || *parts[0] == '\0' || *parts[1] == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "platform \"%s\": want OS/ARCH[/VARIANT]", text);
  p->os = g_strdup (parts[0]);
  p->arch = g_strdup (parts[1]);
  p->variant = n == 3 ? g_strdup (parts[2]) : NULL;
  return TRUE;
}

static BerthDescriptor *
pick_platform (Pull *pull, GBytes *index, const Platform *want, GError **error)
{
  g_autofree char *name = berth_reference_to_string (pull->ref);
  g_autoptr (JsonNode) root = berth_json_parse_object (index, name, error);
  if (root == NULL)
    return NULL;
  JsonArray *manifests = berth_json_member_array (json_node_get_object (root), "manifests");
  g_autoptr (GString) offered = g_string_new (NULL);
  for (guint i = 0; i < berth_json_array_length (manifests); i++)
    {
      JsonObject *entry = berth_json_element_object (manifests, i);
      JsonObject *platform = berth_json_member_object (entry, "platform");
      const char *os = berth_json_member_string (platform, "os") ?: "";
      const char *arch = berth_json_member_string (platform, "architecture") ?: "";
      const char *variant = berth_json_member_string (platform, "variant");
      g_string_append_printf (offered, "%s%s/%s%s%s", offered->len ? ", " : "", os, arch, variant ? "/" : "",
                              variant ? variant : "");
      if (g_str_equal (os, want->os) && g_str_equal (arch, want->arch)
          && (want->variant == NULL || g_strcmp0 (variant, want->variant) == 0))
        {
          BerthDescriptor *desc = berth_descriptor_from_json (entry, name, error);
          if (desc != NULL && !berth_media_type_is_manifest (desc->media_type))
            {
              berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "%s: the %s/%s entry is a %s", name, os, arch, desc->media_type);
              berth_descriptor_free (desc);
              return NULL;
            }
          return desc;
        }
    }
  berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s: no manifest for %s/%s%s%s in its index (it has %s)", name, want->os,
               want->arch, want->variant ? "/" : "", want->variant ? want->variant : "",
               offered->len ? offered->str : "none");
  return NULL;
}

typedef struct {
  Pull *pull;
  const BerthDescriptor *desc;
  const char *kind;
  gint64 offset;
  gint64 last_report;
} Fetch;

/* Streams the blob into @writer from its current offset; TRUE when it has every byte. */
static gboolean
download (Fetch *f, BerthContentWriter *writer, GError **error)
{
  Pull *pull = f->pull;
  g_autofree char *url = dist_url_for (pull->reg, pull->ref->path, "blobs", f->desc->digest);
  Request req = { "GET", url, NULL, f->offset, NULL, NULL };
  g_autoptr (BerthHttpMessage) msg = NULL;
  g_autoptr (GInputStream) stream = dist_registry_send (pull->reg, pull->scope, dist_build_request, &req, &msg, error);
  if (stream == NULL)
    return FALSE;
  guint status = berth_http_message_get_status (msg);
  if (status == HTTP_PARTIAL_CONTENT)
    {
      gint64 start = -1, end = -1, total = -1;
      if (!berth_http_message_get_content_range (msg, &start, &end, &total)
          || start != f->offset)
        {
          /* Not the part asked for: start over, without a range. */
          g_input_stream_close (stream, NULL, NULL);
          f->offset = 0;
          return berth_content_writer_truncate (writer, 0, error) && download (f, writer, error);
        }
      g_debug ("%s: resuming at %" G_GINT64_FORMAT, f->desc->digest, f->offset);
    }
  else if (status == HTTP_OK)
    {
      if (f->offset > 0)
        {
          g_debug ("%s: the registry ignored the range; starting over", f->desc->digest);
          f->offset = 0;
          if (!berth_content_writer_truncate (writer, 0, error))
            return FALSE;
        }
    }
  else
    {
      g_autofree char *detail = dist_drain_detail (stream, pull->cancellable);
      g_autofree char *what = g_strdup_printf ("%s %s", f->kind, f->desc->digest);
      return dist_throw_status (error, msg, detail, what);
    }
  g_autofree guint8 *buf = g_malloc (BLOB_BUFFER);
  for (;;)
    {
      gssize n = g_input_stream_read (stream, buf, BLOB_BUFFER, pull->cancellable, error);
      if (n < 0)
        return FALSE;
      if (n == 0)
        break;
      if (f->offset + n > f->desc->size)
        return berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s %s: the registry sent more than its %" G_GINT64_FORMAT
                            " bytes", f->kind, f->desc->digest, f->desc->size);
      if (!berth_content_writer_write (writer, buf, n, pull->cancellable, error))
        return FALSE;
      f->offset += n;
      gint64 now = g_get_monotonic_time ();
      if (now - f->last_report >= PROGRESS_INTERVAL_USEC)
        {
          f->last_report = now;
          dist_report (pull->reporter, f->desc->digest, f->kind, BERTH_TRANSFER_DOWNLOADING, f->offset, f->desc->size);
        }
    }
  g_input_stream_close (stream, NULL, NULL);
  /* A connection that ended early reads as a short body: resumable, not bad content. */
  if (f->offset < f->desc->size)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT, "the transfer ended at byte %" G_GINT64_FORMAT " of %"
                   G_GINT64_FORMAT, f->offset, f->desc->size);
      return FALSE;
    }
  return TRUE;
}

/* One blob into the store, recorded under the pull's lease: adopted when the store has
 * it, else downloaded (resuming an earlier partial ingest) and verified on commit. */
static gboolean
fetch_blob (Pull *pull, const BerthDescriptor *desc, const char *kind, GError **error)
{
  /* The size bounds the download (download () stops there), so it must be known before
   * a byte is fetched: a descriptor without one would let a registry stream forever. */
  gint64 max = berth_daemon_get_config (pull->daemon)->max_blob_size;
  if (desc->size <= 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s %s: its descriptor declares a size of %" G_GINT64_FORMAT
                        " bytes; refusing to fetch a blob of unknown size", kind, desc->digest, desc->size);
  if (max > 0 && desc->size > max)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s %s: %" G_GINT64_FORMAT " bytes is over the "
                        "[berthd] max-blob-size of %" G_GINT64_FORMAT " bytes", kind, desc->digest, desc->size, max);
  g_autoptr (BerthContentInfo) info = berth_content_store_info (pull->store, desc->digest, NULL, NULL);
  if (info != NULL && info->size == desc->size)
    {
      if (!berth_image_ingest_adopt (pull->ingest, desc, kind, error))
        return FALSE;
      dist_report (pull->reporter, desc->digest, kind, BERTH_TRANSFER_EXISTS, info->size, info->size);
      return TRUE;
    }
  const char *ns = berth_image_ingest_get_namespace (pull->ingest);
  /* The same ref for every pull of this blob: an interrupted one is resumed. */
  g_autofree char *name = g_strdup_printf ("berth-pull-%s", desc->digest);
  g_autofree char *ref = g_strdup_printf ("%s/%s", ns, name);
  if (!berth_image_ingest_hold_ref (pull->ingest, name, error))
    return FALSE;
  g_autoptr (BerthContentWriter) writer = NULL;
  for (guint wait = 0;; wait++)
    {
      g_autoptr (GError) local_error = NULL;
      writer = berth_content_store_open_writer (pull->store, ref, desc->size, desc->digest, pull->cancellable, &local_error);
      if (writer != NULL)
        break;
      if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE) || wait > 6000)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      /* Another pull is writing it: wait for its commit, then take the blob. */
      g_usleep (100000);
      if (g_cancellable_set_error_if_cancelled (pull->cancellable, error))
        return FALSE;
      g_autoptr (BerthContentInfo) now = berth_content_store_info (pull->store, desc->digest, NULL, NULL);
      if (now != NULL)
        return fetch_blob (pull, desc, kind, error);
    }
  g_autoptr (BerthContentStatus) status = berth_content_writer_status (writer, error);
  if (status == NULL)
    return FALSE;
  Fetch f = { pull, desc, kind, status->offset, 0 };
  if (f.offset > desc->size)
    {
      f.offset = 0;
      if (!berth_content_writer_truncate (writer, 0, error))
        return FALSE;
    }
  dist_report (pull->reporter, desc->digest, kind, BERTH_TRANSFER_DOWNLOADING, f.offset, desc->size);
  g_autoptr (GError) local_error = NULL;
  for (guint attempt = 1; f.offset < desc->size; attempt++)
    {
      g_clear_error (&local_error);
      gint64 before = f.offset;
      if (download (&f, writer, &local_error))
        break;
      /* A connection dropped mid-blob: resume where it stopped. */
      gboolean moved = f.offset > before;
      if (local_error->domain == BERTH_ERROR || g_cancellable_is_cancelled (pull->cancellable)
          || !dist_retryable_error (local_error) || (attempt >= MAX_ATTEMPTS && !moved))
        break;
      g_debug ("%s: %s at %" G_GINT64_FORMAT "; resuming", desc->digest, local_error->message, f.offset);
      dist_report (pull->reporter, desc->digest, kind, BERTH_TRANSFER_RETRYING, f.offset, desc->size);
      if (moved)
        attempt = 0;
      else if (!dist_backoff (pull->reg, attempt, NULL))
        break;
    }
  if (local_error != NULL)
    {
      /* More bytes than declared: what came is not the blob, and no retry may resume it. */
      if (g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_DATA_LOSS))
        {
          g_clear_object (&writer);
          berth_content_store_abort (pull->store, ref, NULL, NULL);
        }
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s %s: ", kind, desc->digest);
      return FALSE;
    }
  g_autofree char *what = g_strdup_printf ("%s %s", kind, desc->digest);
  g_autofree char *digest = berth_image_ingest_commit (pull->ingest, writer, desc->size, desc->digest, what, &local_error);
  if (digest == NULL)
    {
      /* Bad bytes are dropped: a retry must not resume them. */
      g_clear_object (&writer);
      berth_content_store_abort (pull->store, ref, NULL, NULL);
      if (g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION))
        {
          berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s sent content that does not match its digest: %s",
                       pull->reg->domain, local_error->message);
          return FALSE;
        }
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  dist_report (pull->reporter, desc->digest, kind, BERTH_TRANSFER_DONE, desc->size, desc->size);
  return TRUE;
}

/* Layers fetched by workers while the pulling thread unpacks them in order. */
typedef struct {
  Pull *pull;
  GPtrArray *layers;   /* BerthDescriptor */
  GMutex lock;
  GCond cond;
  guint next;          /* next layer a worker takes */
  gboolean *done;      /* per layer */
  GError *error;       /* the first failure */
} Layers;

static gpointer
layer_worker (gpointer data)
{
  Layers *layers = data;
  for (;;)
    {
      g_mutex_lock (&layers->lock);
      guint i = layers->next++;
      gboolean stop = i >= layers->layers->len || layers->error != NULL;
      g_mutex_unlock (&layers->lock);
      if (stop)
        return NULL;
      GError *error = NULL;
      gboolean ok = fetch_blob (layers->pull, layers->layers->pdata[i], "layer", &error);
      g_mutex_lock (&layers->lock);
      if (ok)
        layers->done[i] = TRUE;
      else if (layers->error == NULL)
        layers->error = error, error = NULL;
      g_cond_broadcast (&layers->cond);
      g_mutex_unlock (&layers->lock);
      g_clear_error (&error);
      if (!ok)
        {
          g_cancellable_cancel (layers->pull->cancellable);
          return NULL;
        }
    }
}

/* Waits until layer @i is in the store; FALSE (error set) when the fetch failed. */
static gboolean
wait_layer (Layers *layers, guint i, GError **error)
{
  g_mutex_lock (&layers->lock);
  while (!layers->done[i] && layers->error == NULL)
    g_cond_wait (&layers->cond, &layers->lock);
  gboolean ok = layers->error == NULL;
  g_mutex_unlock (&layers->lock);
  return ok || berth_throw (error, BERTH_ERROR_ABORTED, "a layer fetch failed");
}

static void
forward_cancel (GCancellable *parent, gpointer child)
{
  g_cancellable_cancel (child);
}

static gboolean
pull_layers (Pull *pull, GPtrArray *layer_descs, JsonArray *diff_ids, BerthUnpacker *unpacker, guint workers,
             GError **error)
{
  Layers layers = { pull, layer_descs };
  g_mutex_init (&layers.lock);
  g_cond_init (&layers.cond);
  layers.done = g_new0 (gboolean, MAX (layer_descs->len, 1));
  for (guint i = 0; i < layer_descs->len; i++)
    {
      const BerthDescriptor *layer = layer_descs->pdata[i];
      dist_report (pull->reporter, layer->digest, "layer", BERTH_TRANSFER_WAITING, 0, layer->size);
    }
  g_autoptr (GPtrArray) threads = g_ptr_array_new ();
  for (guint w = 0; w < MIN (workers, layer_descs->len); w++)
    g_ptr_array_add (threads, g_thread_new ("berth-pull", layer_worker, &layers));
  g_autoptr (GError) local_error = NULL;
  for (guint i = 0; unpacker != NULL && i < layer_descs->len && local_error == NULL; i++)
    {
      const BerthDescriptor *layer = layer_descs->pdata[i];
      if (!wait_layer (&layers, i, &local_error))
        break;
      dist_report (pull->reporter, layer->digest, "layer", BERTH_TRANSFER_UNPACKING, layer->size, layer->size);
      gboolean applied = FALSE;
      if (!berth_unpacker_apply (unpacker, layer, berth_json_element_string (diff_ids, i), &applied, pull->cancellable,
                                 &local_error))
        {
          g_cancellable_cancel (pull->cancellable);
          break;
        }
      /* The differ computed the diff ID: it labels the layer as containerd's unpacker does. */
      berth_image_ingest_add_label (pull->ingest, layer->digest, BERTH_LABEL_UNCOMPRESSED,
                                    berth_json_element_string (diff_ids, i));
      dist_report (pull->reporter, layer->digest, "layer", BERTH_TRANSFER_UNPACKED, layer->size, layer->size);
    }
  for (guint t = 0; t < threads->len; t++)
    g_thread_join (threads->pdata[t]);
  /* A fetch's own error says more than the unpack's "cancelled". */
  if (layers.error != NULL)
    {
      g_clear_error (&local_error);
      local_error = g_steal_pointer (&layers.error);
    }
  g_free (layers.done);
  g_mutex_clear (&layers.lock);
  g_cond_clear (&layers.cond);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  return TRUE;
}

static void
add_source_label (Pull *pull, const char *digest)
{
  /* containerd's key: the host without its port. */
  g_autofree char *host = g_strdup (pull->ref->domain);
  char *colon = strrchr (host, ':');
  if (colon != NULL && strchr (host, ']') < colon)
    *colon = '\0';
  g_autofree char *key = g_strconcat (BERTH_LABEL_DISTRIBUTION_SOURCE, host, NULL);
  berth_image_ingest_add_label (pull->ingest, digest, key, pull->ref->path);
}

char *
berth_distribution_module_pull (BerthDaemon *daemon, const char *ns, const BerthPullOptions *options,
                         BerthTransferProgressFunc progress, gpointer progress_data, char **target_out,
                         GCancellable *cancellable, GError **error)
{
  g_autoptr (BerthReference) ref = berth_reference_parse (options->reference, error);
  if (ref == NULL)
    return NULL;
  g_auto (Platform) platform = { 0 };
  if (!platform_parse (options->platform, &platform, error))
    return NULL;
  g_autofree char *name = berth_reference_to_string (ref);
  g_autoptr (GCancellable) op_cancellable = g_cancellable_new ();
  gulong handler = cancellable ? g_cancellable_connect (cancellable, G_CALLBACK (forward_cancel), op_cancellable, NULL) : 0;
  Reporter reporter = { progress, progress_data };
  g_mutex_init (&reporter.lock);
  g_autoptr (Registry) reg = dist_registry_new (daemon, ref->domain, options->plain_http, options->skip_verify,
                                           options->username, options->password, op_cancellable, error);
  g_autofree char *scope = g_strdup_printf ("repository:%s:pull", ref->path);
  Pull pull = { daemon, reg, ref, scope, NULL, NULL, &reporter, op_cancellable };
  g_autoptr (BerthImageIngest) ingest = NULL;
  g_autoptr (BerthUnpacker) unpacker = NULL;
  g_autoptr (GBytes) root_bytes = NULL;
  g_autoptr (GBytes) manifest_bytes = NULL;
  g_autoptr (BerthDescriptor) root = NULL;
  g_autoptr (BerthDescriptor) manifest = NULL;
  g_autoptr (BerthDescriptor) config = NULL;
  g_autoptr (GPtrArray) layers = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_descriptor_free);
  g_autoptr (JsonNode) config_root = NULL;
  char *result = NULL;
  g_autofree char *root_type = NULL, *root_digest = NULL;
  if (reg == NULL)
    goto out;
  g_debug ("pull %s from %s", name, reg->base);
  root_bytes = fetch_manifest (&pull, ref->digest ? ref->digest : ref->tag, ref->digest, &root_type, &root_digest, error);
  if (root_bytes == NULL)
    goto out;
  root = berth_descriptor_new (root_type, root_digest, g_bytes_get_size (root_bytes));
  dist_report (&reporter, root->digest, berth_media_type_is_index (root_type) ? "index" : "manifest", BERTH_TRANSFER_RESOLVED,
          root->size, root->size);
  ingest = berth_image_ingest_new (daemon, ns, "pull", op_cancellable, error);
  if (ingest == NULL)
    goto out;
  if (!options->no_unpack)
    {
      /* Its snapshots belong to the pull's lease until the config's label holds them. */
      unpacker = berth_unpacker_new (daemon, ns, options->snapshotter, berth_image_ingest_get_lease (ingest), error);
      if (unpacker == NULL)
        goto out;
    }
  pull.ingest = ingest;
  pull.store = berth_image_ingest_get_store (ingest);
  {
    g_autofree char *blob_name = g_strdup_printf ("manifest-%s", root->digest);
    g_autofree char *stored = berth_image_ingest_store_bytes (ingest, blob_name, root_bytes, root->digest, error);
    if (stored == NULL)
      goto out;
    add_source_label (&pull, root->digest);
  }
  if (berth_media_type_is_index (root->media_type))
    {
      manifest = pick_platform (&pull, root_bytes, &platform, error);
      if (manifest == NULL)
        goto out;
      g_autofree char *type = NULL, *digest = NULL;
      manifest_bytes = fetch_manifest (&pull, manifest->digest, manifest->digest, &type, &digest, error);
      if (manifest_bytes == NULL)
        goto out;
      g_autofree char *blob_name = g_strdup_printf ("manifest-%s", manifest->digest);
      g_autofree char *stored = berth_image_ingest_store_bytes (ingest, blob_name, manifest_bytes, manifest->digest, error);
      if (stored == NULL)
        goto out;
      add_source_label (&pull, manifest->digest);
      dist_report (&reporter, manifest->digest, "manifest", BERTH_TRANSFER_DONE, manifest->size, manifest->size);
    }
  else
    {
      manifest = berth_descriptor_copy (root);
      manifest_bytes = g_bytes_ref (root_bytes);
    }
  {
    g_autoptr (JsonNode) doc = berth_json_parse_object (manifest_bytes, manifest->digest, error);
    if (doc == NULL)
      goto out;
    JsonObject *object = json_node_get_object (doc);
    config = berth_descriptor_from_json (berth_json_member_object (object, "config"), manifest->digest, error);
    if (config == NULL)
      goto out;
    JsonArray *array = berth_json_member_array (object, "layers");
    if (berth_json_array_length (array) > BERTH_IMAGE_MAX_CHILDREN)
      {
        berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s lists %u layers, over the limit of %d", manifest->digest,
                     berth_json_array_length (array), BERTH_IMAGE_MAX_CHILDREN);
        goto out;
      }
    for (guint i = 0; i < berth_json_array_length (array); i++)
      {
        BerthDescriptor *layer = berth_descriptor_from_json (berth_json_element_object (array, i), manifest->digest, error);
        if (layer == NULL)
          goto out;
        g_ptr_array_add (layers, layer);
      }
  }
  if (!fetch_blob (&pull, config, "config", error))
    goto out;
  add_source_label (&pull, config->digest);
  JsonArray *diff_ids = NULL;
  {
    g_autoptr (GBytes) bytes = berth_image_read_json_blob (pull.store, config->digest, op_cancellable, error);
    config_root = bytes ? berth_json_parse_object (bytes, config->digest, error) : NULL;
    if (config_root == NULL)
      goto out;
    diff_ids = berth_json_member_array (berth_json_member_object (json_node_get_object (config_root), "rootfs"),
                                        "diff_ids");
    if (unpacker != NULL && berth_json_array_length (diff_ids) != layers->len)
      {
        berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s: config %s lists %u diff_ids for %u layers", name,
                     config->digest, berth_json_array_length (diff_ids), layers->len);
        goto out;
      }
  }
  guint workers = CLAMP (berth_daemon_get_config (daemon)->max_concurrent_downloads, 1, 32);
  if (!pull_layers (&pull, layers, diff_ids, unpacker, workers, error))
    goto out;
  for (guint i = 0; i < layers->len; i++)
    add_source_label (&pull, ((BerthDescriptor *) layers->pdata[i])->digest);
  if (unpacker != NULL && berth_unpacker_get_chain_id (unpacker) != NULL)
    {
      g_autofree char *key = g_strconcat (BERTH_LABEL_REF_SNAPSHOT, berth_unpacker_get_snapshotter (unpacker), NULL);
      berth_image_ingest_add_label (ingest, config->digest, key, berth_unpacker_get_chain_id (unpacker));
    }
  if (!berth_image_ingest_label_tree (ingest, root, error))
    goto out;
  berth_image_ingest_add_image (ingest, name, root);
  {
    g_autoptr (GPtrArray) names = berth_image_ingest_finish (ingest, error);
    if (names == NULL)
      goto out;
  }
  if (target_out != NULL)
    *target_out = g_strdup (root->digest);
  result = g_steal_pointer (&name);
out:
  if (handler != 0)
    g_cancellable_disconnect (cancellable, handler);
  if (result == NULL && error != NULL && *error != NULL && g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
      && cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    g_debug ("pull %s cancelled", options->reference);
  g_mutex_clear (&reporter.lock);
  return result;
}
