/* berth-image-store.c — blobs and image records shared by archive import and registry
 * pull: JSON and descriptor helpers, and the leased ingest operation. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>
#include "wire/berth-grpc.h"
#include "metadata/berth-metadata-schema.h"
#include "daemon/berth-gc.h"
#include "berth-image-store.h"
#include "github.com/containerd/containerd/api/events/image.pb-c.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"

#define INGEST_LEASE_SECONDS 3600

gboolean
berth_media_type_is_index (const char *media_type)
{
  return g_strcmp0 (media_type, BERTH_MT_OCI_INDEX) == 0 || g_strcmp0 (media_type, BERTH_MT_DOCKER_LIST) == 0;
}

gboolean
berth_media_type_is_manifest (const char *media_type)
{
  return g_strcmp0 (media_type, BERTH_MT_OCI_MANIFEST) == 0 || g_strcmp0 (media_type, BERTH_MT_DOCKER_MANIFEST) == 0;
}

BerthDescriptor *
berth_descriptor_from_json (JsonObject *object, const char *what, GError **error)
{
  const char *digest = object ? berth_json_member_string (object, "digest") : NULL;
  if (digest == NULL || !berth_digest_validate (digest, error))
    {
      if (digest == NULL)
        berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s: a descriptor without a digest", what);
      else
        g_prefix_error (error, "%s: ", what);
      return NULL;
    }
  return berth_descriptor_new ((berth_json_member_string (object, "mediaType") ?: ""), digest,
                               berth_json_member_int (object, "size"));
}

JsonNode *
berth_descriptor_to_json (const BerthDescriptor *desc)
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

/* ---------------- reading what is stored ---------------- */

GBytes *
berth_image_read_json_blob (BerthContentStore *store, const char *digest, GCancellable *cancellable, GError **error)
{
  return berth_content_store_read_all (store, digest, BERTH_MAX_JSON, cancellable, error);
}

static void
image_child_free (BerthImageChild *child)
{
  berth_descriptor_free (child->desc);
  g_free (child);
}

static gboolean
add_child (GPtrArray *children, BerthImageChildKind kind, guint index, JsonObject *object, const char *owner,
           GError **error)
{
  BerthDescriptor *desc = berth_descriptor_from_json (object, owner, error);
  if (desc == NULL)
    return FALSE;
  BerthImageChild *child = g_new0 (BerthImageChild, 1);
  *child = (BerthImageChild) { kind, index, desc };
  g_ptr_array_add (children, child);
  return TRUE;
}

GPtrArray *
berth_image_read_children (BerthContentStore *store, const BerthDescriptor *desc, GCancellable *cancellable,
                           GError **error)
{
  g_autoptr (GPtrArray) children = g_ptr_array_new_with_free_func ((GDestroyNotify) image_child_free);
  gboolean index = berth_media_type_is_index (desc->media_type);
  if (!index && !berth_media_type_is_manifest (desc->media_type))
    return g_steal_pointer (&children);
  g_autoptr (GBytes) bytes = berth_image_read_json_blob (store, desc->digest, cancellable, error);
  g_autoptr (JsonNode) root = bytes != NULL ? berth_json_parse_object (bytes, desc->digest, error) : NULL;
  if (root == NULL)
    return NULL;
  JsonObject *object = json_node_get_object (root);
  JsonArray *manifests = index ? berth_json_member_array (object, "manifests") : NULL;
  JsonArray *layers = index ? NULL : berth_json_member_array (object, "layers");
  guint n = berth_json_array_length (index ? manifests : layers);
  if (n > BERTH_IMAGE_MAX_CHILDREN)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s lists %u %s, over the limit of %d", desc->digest, n,
                        index ? "manifests" : "layers", BERTH_IMAGE_MAX_CHILDREN),
           NULL;
  if (index)
    {
      for (guint i = 0; i < berth_json_array_length (manifests); i++)
        if (!add_child (children, BERTH_IMAGE_CHILD_MANIFEST, i, berth_json_element_object (manifests, i),
                        desc->digest, error))
          return NULL;
      return g_steal_pointer (&children);
    }
  if (!add_child (children, BERTH_IMAGE_CHILD_CONFIG, 0, berth_json_member_object (object, "config"), desc->digest,
                  error))
    return NULL;
  for (guint i = 0; i < berth_json_array_length (layers); i++)
    if (!add_child (children, BERTH_IMAGE_CHILD_LAYER, i, berth_json_element_object (layers, i), desc->digest,
                    error))
      return NULL;
  return g_steal_pointer (&children);
}

const char *
berth_image_child_kind_name (BerthImageChildKind kind)
{
  switch (kind)
    {
    case BERTH_IMAGE_CHILD_MANIFEST:
      return "manifest";
    case BERTH_IMAGE_CHILD_CONFIG:
      return "config";
    case BERTH_IMAGE_CHILD_LAYER:
      return "layer";
    }
  return "blob";
}

static gboolean
is_visible (BerthMetadataTxn *txn, gpointer key, GError **error)
{
  return berth_schema_exists (txn, key);
}

gboolean
berth_image_blob_visible (BerthDaemon *daemon, const char *ns, const char *digest)
{
  g_autofree char *key = berth_schema_content_key (ns, digest);
  return berth_metadata_read (berth_daemon_get_metadata (daemon), is_visible, key, NULL);
}

typedef struct {
  const char *ns;
  const char *name;
  const char *digest;
  BerthDescriptor *target;
  GHashTable *labels;
} LookupData;

static gboolean
target_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  LookupData *data = user_data;
  g_autofree char *key = berth_schema_image_key (data->ns, data->name);
  g_autoptr (GError) local_error = NULL;
  Containerd__Services__Images__V1__Image *image =
    (gpointer) berth_schema_get (txn, key, &containerd__services__images__v1__image__descriptor, &local_error);
  if (image == NULL)
    {
      if (local_error != NULL)
        g_propagate_error (error, g_steal_pointer (&local_error));
      else
        berth_throw (error, BERTH_ERROR_NOT_FOUND, "image \"%s\": not found", data->name);
      return FALSE;
    }
  gboolean ok = image->target != NULL && berth_digest_validate (image->target->digest, error);
  if (ok)
    data->target = berth_descriptor_new (image->target->media_type, image->target->digest, image->target->size);
  else if (error != NULL && *error == NULL)
    berth_throw (error, BERTH_ERROR_DATA_LOSS, "image %s has no target", data->name);
  protobuf_c_message_free_unpacked (&image->base, NULL);
  return ok;
}

BerthDescriptor *
berth_image_get_target (BerthDaemon *daemon, const char *ns, const char *name, GError **error)
{
  LookupData data = { ns, name, NULL, NULL, NULL };
  if (!berth_metadata_read (berth_daemon_get_metadata (daemon), target_txn, &data, error))
    return NULL;
  return data.target;
}

static gboolean
labels_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  LookupData *data = user_data;
  g_autofree char *key = berth_schema_content_key (data->ns, data->digest);
  g_autoptr (GError) local_error = NULL;
  Containerd__Services__Content__V1__Info *info =
    (gpointer) berth_schema_get (txn, key, &containerd__services__content__v1__info__descriptor, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  data->labels = info ? berth_schema_labels_from_entries ((void *const *) info->labels, info->n_labels, NULL)
                      : berth_labels_new ();
  if (info != NULL)
    protobuf_c_message_free_unpacked (&info->base, NULL);
  return TRUE;
}

GHashTable *
berth_image_blob_labels (BerthDaemon *daemon, const char *ns, const char *digest, GError **error)
{
  LookupData data = { ns, NULL, digest, NULL, NULL };
  if (!berth_metadata_read (berth_daemon_get_metadata (daemon), labels_txn, &data, error))
    return NULL;
  return data.labels;
}

/* ---------------- the leased ingest ---------------- */

struct _BerthImageIngest {
  BerthDaemon *daemon;
  BerthContentStore *store;
  char *ns;
  char *lease;
  GCancellable *cancellable;
  GHashTable *labels;  /* digest → labels table to add */
  GPtrArray *names;    /* image names */
  GPtrArray *targets;  /* BerthDescriptor per name */
  /* What this ingest has already done once, so that an index listing one child many
   * times (nested: K^depth paths) costs one visit per distinct document. */
  GHashTable *walked;  /* digests whose tree label_tree has labelled */
  GHashTable *adopted; /* digest → its size (gint64 *), recorded under the lease */
};

static gboolean
lease_create_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  BerthImageIngest *ingest = user_data;
  g_autoptr (GDateTime) expire = g_date_time_new_from_unix_utc (g_get_real_time () / G_USEC_PER_SEC + INGEST_LEASE_SECONDS);
  g_autofree char *expire_text = g_date_time_format (expire, "%Y-%m-%dT%H:%M:%SZ");
  Containerd__Services__Leases__V1__Lease lease = CONTAINERD__SERVICES__LEASES__V1__LEASE__INIT;
  Containerd__Services__Leases__V1__Lease__LabelsEntry label = CONTAINERD__SERVICES__LEASES__V1__LEASE__LABELS_ENTRY__INIT;
  Containerd__Services__Leases__V1__Lease__LabelsEntry *labels[] = { &label };
  label.key = (char *) "containerd.io/gc.expire";
  label.value = expire_text;
  lease.id = ingest->lease;
  lease.labels = labels;
  lease.n_labels = 1;
  g_autofree char *key = berth_schema_lease_key (ingest->ns, ingest->lease);
  return berth_schema_namespace_touch (txn, ingest->ns, error) && berth_schema_put (txn, key, &lease.base, error);
}

static gboolean
lease_delete_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  BerthImageIngest *ingest = user_data;
  g_autofree char *key = berth_schema_lease_key (ingest->ns, ingest->lease);
  g_autofree char *resources = berth_schema_lease_resources_prefix (ingest->ns, ingest->lease);
  g_autoptr (GError) ignored = NULL;
  berth_metadata_txn_delete (txn, key, &ignored);
  return berth_metadata_txn_delete_prefix (txn, resources, NULL, error);
}

BerthImageIngest *
berth_image_ingest_new (BerthDaemon *daemon, const char *ns, const char *purpose, GCancellable *cancellable,
                        GError **error)
{
  BerthContentStore *store = berth_daemon_get_content_store (daemon, error);
  if (store == NULL)
    return NULL;
  BerthImageIngest *ingest = g_new0 (BerthImageIngest, 1);
  ingest->daemon = daemon;
  ingest->store = store;
  ingest->ns = g_strdup (ns);
  ingest->lease = g_strdup_printf ("berth-%s-%" G_GINT64_FORMAT "-%08x", purpose, g_get_real_time (), g_random_int ());
  ingest->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  ingest->labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_hash_table_unref);
  ingest->names = g_ptr_array_new_with_free_func (g_free);
  ingest->targets = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_descriptor_free);
  ingest->walked = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  ingest->adopted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!berth_metadata_write (berth_daemon_get_metadata (daemon), lease_create_txn, ingest, error))
    {
      g_clear_pointer (&ingest->lease, g_free);
      berth_image_ingest_free (ingest);
      return NULL;
    }
  return ingest;
}

void
berth_image_ingest_free (BerthImageIngest *ingest)
{
  if (ingest == NULL)
    return;
  if (ingest->lease != NULL)
    {
      g_autoptr (GError) error = NULL;
      if (!berth_metadata_write (berth_daemon_get_metadata (ingest->daemon), lease_delete_txn, ingest, &error))
        g_warning ("releasing lease %s: %s", ingest->lease, error->message);
    }
  g_free (ingest->ns);
  g_free (ingest->lease);
  g_clear_object (&ingest->cancellable);
  g_hash_table_unref (ingest->labels);
  g_ptr_array_unref (ingest->names);
  g_ptr_array_unref (ingest->targets);
  g_hash_table_unref (ingest->walked);
  g_hash_table_unref (ingest->adopted);
  g_free (ingest);
}

BerthDaemon *
berth_image_ingest_get_daemon (BerthImageIngest *ingest)
{
  return ingest->daemon;
}

BerthContentStore *
berth_image_ingest_get_store (BerthImageIngest *ingest)
{
  return ingest->store;
}

const char *
berth_image_ingest_get_namespace (BerthImageIngest *ingest)
{
  return ingest->ns;
}

const char *
berth_image_ingest_get_lease (BerthImageIngest *ingest)
{
  return ingest->lease;
}

GCancellable *
berth_image_ingest_get_cancellable (BerthImageIngest *ingest)
{
  return ingest->cancellable;
}

char *
berth_image_ingest_ref (BerthImageIngest *ingest, const char *name)
{
  return g_strdup_printf ("%s/%s/%s", ingest->ns, ingest->lease, name);
}

static gboolean
hold_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  const char *key = user_data;
  return berth_metadata_txn_put (txn, key, "", 0, error);
}

gboolean
berth_image_ingest_hold_ref (BerthImageIngest *ingest, const char *name, GError **error)
{
  g_autofree char *key = berth_schema_lease_ingest_key (ingest->ns, ingest->lease, name);
  return berth_metadata_write (berth_daemon_get_metadata (ingest->daemon), hold_txn, key, error);
}

typedef struct {
  BerthImageIngest *ingest;
  const char *digest;
  gint64 size;
} RecordData;

static gboolean
record_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  RecordData *r = user_data;
  return berth_schema_content_record (txn, r->ingest->ns, r->ingest->lease, r->digest, r->size, NULL, error);
}

static gboolean
record (BerthImageIngest *ingest, const char *digest, gint64 size, GError **error)
{
  RecordData r = { ingest, digest, size };
  return berth_metadata_write (berth_daemon_get_metadata (ingest->daemon), record_txn, &r, error);
}

char *
berth_image_ingest_commit (BerthImageIngest *ingest, BerthContentWriter *writer, gint64 size, const char *expected,
                           const char *what, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  berth_gc_hold ();
  g_autofree char *digest = berth_content_writer_commit (writer, size, expected, ingest->cancellable, &local_error);
  if (digest == NULL && g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
    {
      g_clear_error (&local_error);
      digest = berth_content_writer_digest (writer);
    }
  gboolean ok = digest != NULL && record (ingest, digest, size, &local_error);
  berth_gc_release ();
  if (!ok)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", what);
      return NULL;
    }
  return g_steal_pointer (&digest);
}

char *
berth_image_ingest_store_bytes (BerthImageIngest *ingest, const char *name, GBytes *bytes, const char *expected,
                                GError **error)
{
  g_autofree char *ref = berth_image_ingest_ref (ingest, name);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  g_autoptr (BerthContentWriter) writer = berth_content_store_open_writer (ingest->store, ref, len, expected,
                                                                           ingest->cancellable, error);
  if (writer == NULL)
    return NULL;
  char *digest = NULL;
  if (berth_content_writer_write (writer, data, len, ingest->cancellable, error))
    digest = berth_image_ingest_commit (ingest, writer, len, expected, name, error);
  if (digest == NULL)
    {
      g_clear_object (&writer);
      berth_content_store_abort (ingest->store, ref, NULL, NULL);
    }
  return digest;
}

gboolean
berth_image_ingest_adopt (BerthImageIngest *ingest, const BerthDescriptor *desc, const char *owner, GError **error)
{
  const gint64 *adopted = g_hash_table_lookup (ingest->adopted, desc->digest);
  if (adopted != NULL && (desc->size <= 0 || desc->size == *adopted))
    return TRUE;
  g_autoptr (BerthContentInfo) info = berth_content_store_info (ingest->store, desc->digest, ingest->cancellable, NULL);
  if (info == NULL)
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s names %s, which is not in the store", owner, desc->digest);
  if (desc->size > 0 && desc->size != info->size)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "%s gives %s a size of %" G_GINT64_FORMAT
                        " bytes, the blob has %" G_GINT64_FORMAT, owner, desc->digest, desc->size, info->size);
  /* Recorded with GC held off: the blob may have no namespace yet to keep it. */
  berth_gc_hold ();
  g_autoptr (BerthContentInfo) again = berth_content_store_info (ingest->store, desc->digest, NULL, NULL);
  gboolean ok = again != NULL ? record (ingest, desc->digest, again->size, error)
                              : berth_throw (error, BERTH_ERROR_ABORTED, "%s was removed meanwhile", desc->digest);
  berth_gc_release ();
  if (ok)
    g_hash_table_insert (ingest->adopted, g_strdup (desc->digest), g_memdup2 (&again->size, sizeof again->size));
  return ok;
}

void
berth_image_ingest_add_label (BerthImageIngest *ingest, const char *digest, const char *key, const char *value)
{
  GHashTable *labels = g_hash_table_lookup (ingest->labels, digest);
  if (labels == NULL)
    {
      labels = berth_labels_new ();
      g_hash_table_insert (ingest->labels, g_strdup (digest), labels);
    }
  g_hash_table_insert (labels, g_strdup (key), g_strdup (value));
}

static gboolean
label_tree (BerthImageIngest *ingest, const BerthDescriptor *desc, guint depth, GError **error)
{
  if (depth > 8)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "indexes nested deeper than 8 at %s", desc->digest);
  /* Content-addressed: the same digest has the same children, labelled once. */
  if (!g_hash_table_add (ingest->walked, g_strdup (desc->digest)))
    return TRUE;
  g_autoptr (GPtrArray) children = berth_image_read_children (ingest->store, desc, ingest->cancellable, error);
  if (children == NULL)
    return FALSE;
  /* One label per distinct manifest is all GC needs; one per entry of an index listing
   * the same manifest hundreds of times would overflow the labels' size limit. */
  g_autoptr (GHashTable) listed = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < children->len; i++)
    {
      const BerthImageChild *child = children->pdata[i];
      g_autofree char *key = NULL;
      switch (child->kind)
        {
        case BERTH_IMAGE_CHILD_MANIFEST:
          if (!g_hash_table_add (listed, child->desc->digest))
            continue;
          /* A multi-platform index often comes with only some platforms: the others are skipped. */
          if (!berth_image_ingest_adopt (ingest, child->desc, desc->digest, NULL))
            continue;
          key = g_strdup_printf (BERTH_LABEL_REF_CONTENT "m.%u", child->index);
          berth_image_ingest_add_label (ingest, desc->digest, key, child->desc->digest);
          if (!label_tree (ingest, child->desc, depth + 1, error))
            return FALSE;
          break;
        case BERTH_IMAGE_CHILD_CONFIG:
        case BERTH_IMAGE_CHILD_LAYER:
          if (!berth_image_ingest_adopt (ingest, child->desc, desc->digest, error))
            return FALSE;
          key = child->kind == BERTH_IMAGE_CHILD_CONFIG
                  ? g_strdup (BERTH_LABEL_REF_CONTENT "config")
                  : g_strdup_printf (BERTH_LABEL_REF_CONTENT "l.%u", child->index);
          berth_image_ingest_add_label (ingest, desc->digest, key, child->desc->digest);
          break;
        }
    }
  return TRUE;
}

gboolean
berth_image_ingest_label_tree (BerthImageIngest *ingest, const BerthDescriptor *desc, GError **error)
{
  return label_tree (ingest, desc, 0, error);
}

void
berth_image_ingest_add_image (BerthImageIngest *ingest, const char *name, const BerthDescriptor *target)
{
  for (guint i = 0; i < ingest->names->len; i++)
    if (g_str_equal (ingest->names->pdata[i], name))
      {
        /* The last entry naming an image wins, as in containerd. */
        berth_descriptor_free (ingest->targets->pdata[i]);
        ingest->targets->pdata[i] = berth_descriptor_copy (target);
        return;
      }
  g_ptr_array_add (ingest->names, g_strdup (name));
  g_ptr_array_add (ingest->targets, berth_descriptor_copy (target));
}

/* "a,b" + "c" → "a,b,c"; a repository already listed is not repeated. */
static char *
merge_sources (const char *old, const char *add)
{
  if (old == NULL || *old == '\0')
    return g_strdup (add);
  g_auto (GStrv) have = g_strsplit (old, ",", -1);
  if (g_strv_contains ((const char *const *) have, add))
    return g_strdup (old);
  return g_strconcat (old, ",", add, NULL);
}

typedef struct {
  BerthImageIngest *ingest;
  GPtrArray *created; /* per name: TRUE when new (for the event) */
} ImagesData;

static gboolean
images_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  ImagesData *data = user_data;
  BerthImageIngest *ingest = data->ingest;
  /* Labels first: the images that reach the blobs appear in the same transaction. */
  GHashTableIter iter;
  gpointer digest, labels;
  g_hash_table_iter_init (&iter, ingest->labels);
  while (g_hash_table_iter_next (&iter, &digest, &labels))
    {
      g_autofree char *key = berth_schema_content_key (ingest->ns, digest);
      Containerd__Services__Content__V1__Info *info =
        (gpointer) berth_schema_get (txn, key, &containerd__services__content__v1__info__descriptor, error);
      if (info == NULL)
        return error && *error ? FALSE : berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s is not recorded", (char *) digest);
      g_autoptr (GHashTable) merged = berth_schema_labels_from_entries ((void *const *) info->labels, info->n_labels, NULL);
      gint64 size = info->size;
      protobuf_c_message_free_unpacked (&info->base, NULL);
      GHashTableIter label_iter;
      gpointer k, v;
      g_hash_table_iter_init (&label_iter, labels);
      while (g_hash_table_iter_next (&label_iter, &k, &v))
        g_hash_table_replace (merged, g_strdup (k),
                              g_str_has_prefix (k, BERTH_LABEL_DISTRIBUTION_SOURCE)
                                ? merge_sources (g_hash_table_lookup (merged, k), v)
                                : g_strdup (v));
      if (!berth_labels_validate (merged, error)
          || !berth_schema_content_record (txn, ingest->ns, NULL, digest, size, merged, error))
        return FALSE;
    }
  gint64 now = g_get_real_time ();
  for (guint i = 0; i < ingest->names->len; i++)
    {
      const char *name = ingest->names->pdata[i];
      const BerthDescriptor *target = ingest->targets->pdata[i];
      g_autofree char *key = berth_schema_image_key (ingest->ns, name);
      g_autoptr (GError) ignored = NULL;
      Containerd__Services__Images__V1__Image *old =
        (gpointer) berth_schema_get (txn, key, &containerd__services__images__v1__image__descriptor, &ignored);
      Containerd__Services__Images__V1__Image *image = berth_grpc_message_new (&containerd__services__images__v1__image__descriptor);
      image->name = g_strdup (name);
      image->target = berth_grpc_message_new (&containerd__types__descriptor__descriptor);
      image->target->media_type = g_strdup (target->media_type);
      image->target->digest = g_strdup (target->digest);
      image->target->size = target->size;
      image->created_at = berth_schema_timestamp_new (old ? berth_schema_timestamp_to_usec (old->created_at) : now);
      image->updated_at = berth_schema_timestamp_new (now);
      if (old != NULL)
        {
          /* An update keeps the image's labels. */
          g_autoptr (GHashTable) kept = berth_schema_labels_from_entries ((void *const *) old->labels, old->n_labels, NULL);
          berth_schema_labels_to_entries (kept, &containerd__services__images__v1__image__labels_entry__descriptor,
                                          (void ***) &image->labels, &image->n_labels);
        }
      g_ptr_array_add (data->created, GINT_TO_POINTER (old == NULL));
      if (old != NULL)
        protobuf_c_message_free_unpacked (&old->base, NULL);
      gboolean ok = berth_schema_put (txn, key, &image->base, error);
      berth_grpc_message_free (&image->base);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

GPtrArray *
berth_image_ingest_finish (BerthImageIngest *ingest, GError **error)
{
  g_autoptr (GPtrArray) created = g_ptr_array_new ();
  ImagesData data = { ingest, created };
  if (!berth_metadata_write (berth_daemon_get_metadata (ingest->daemon), images_txn, &data, error))
    return NULL;
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < ingest->names->len; i++)
    {
      /* ImageCreate and ImageUpdate share their layout: name, labels. */
      gboolean is_new = GPOINTER_TO_INT (created->pdata[i]);
      Containerd__Services__Images__V1__ImageCreate event = CONTAINERD__SERVICES__IMAGES__V1__IMAGE_CREATE__INIT;
      if (!is_new)
        event.base.descriptor = &containerd__services__images__v1__image_update__descriptor;
      event.name = ingest->names->pdata[i];
      berth_events_publish (berth_daemon_get_events (ingest->daemon), ingest->ns,
                            is_new ? "/images/create" : "/images/update", &event.base);
      g_ptr_array_add (names, g_strdup (ingest->names->pdata[i]));
    }
  return names;
}
