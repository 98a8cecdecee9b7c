/* berth-metadata-schema.c — metadata keys and records; the layout is in the header. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include "wire/berth-grpc.h"
#include "berth-metadata-schema.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"

#define V1 "v1/"
#define LEASE_RESOURCES "/r/"

/* ---------------- keys ---------------- */

char *
berth_schema_namespace_key (const char *ns)
{
  return g_strconcat (BERTH_SCHEMA_NAMESPACES_PREFIX, ns, NULL);
}

const char *
berth_schema_namespace_from_key (const char *key)
{
  return key + strlen (BERTH_SCHEMA_NAMESPACES_PREFIX);
}

char *
berth_schema_bucket_prefix (const char *ns, const char *bucket)
{
  return g_strconcat (V1, ns, "/", bucket, "/", NULL);
}

static char *
bucket_key (const char *ns, const char *bucket, const char *name)
{
  return g_strconcat (V1, ns, "/", bucket, "/", name, NULL);
}

char *
berth_schema_image_key (const char *ns, const char *name)
{
  return bucket_key (ns, BERTH_SCHEMA_BUCKET_IMAGES, name);
}

char *
berth_schema_content_key (const char *ns, const char *digest)
{
  return bucket_key (ns, BERTH_SCHEMA_BUCKET_CONTENT, digest);
}

char *
berth_schema_container_key (const char *ns, const char *id)
{
  return bucket_key (ns, BERTH_SCHEMA_BUCKET_CONTAINERS, id);
}

char *
berth_schema_lease_key (const char *ns, const char *id)
{
  return bucket_key (ns, BERTH_SCHEMA_BUCKET_LEASES, id);
}

char *
berth_schema_snapshot_key (const char *ns, const char *snapshotter, const char *key)
{
  return g_strconcat (V1, ns, "/" BERTH_SCHEMA_BUCKET_SNAPSHOTS "/", snapshotter, "/", key, NULL);
}

char *
berth_schema_lease_resources_prefix (const char *ns, const char *lease)
{
  return g_strconcat (V1, ns, "/" BERTH_SCHEMA_BUCKET_LEASES "/", lease, LEASE_RESOURCES, NULL);
}

char *
berth_schema_lease_resource_key (const char *ns, const char *lease, const char *type, const char *id)
{
  return g_strconcat (V1, ns, "/" BERTH_SCHEMA_BUCKET_LEASES "/", lease, LEASE_RESOURCES, type, "/", id, NULL);
}

char *
berth_schema_lease_content_key (const char *ns, const char *lease, const char *digest)
{
  return berth_schema_lease_resource_key (ns, lease, BERTH_SCHEMA_RESOURCE_CONTENT, digest);
}

char *
berth_schema_lease_snapshot_key (const char *ns, const char *lease, const char *snapshotter, const char *key)
{
  g_autofree char *type = g_strconcat (BERTH_SCHEMA_RESOURCE_SNAPSHOTS "/", snapshotter, NULL);
  return berth_schema_lease_resource_key (ns, lease, type, key);
}

char *
berth_schema_lease_ingest_key (const char *ns, const char *lease, const char *ref)
{
  return berth_schema_lease_resource_key (ns, lease, BERTH_SCHEMA_RESOURCE_INGESTS, ref);
}

const char *
berth_schema_lease_resource_of (const char *key, gsize *lease_len_out)
{
  /* Namespaces and lease ids hold no "/r/": the first one is the resources'. */
  const char *r = g_str_has_prefix (key, V1) ? strstr (key + strlen (V1), LEASE_RESOURCES) : NULL;
  if (r == NULL)
    return NULL;
  if (lease_len_out != NULL)
    *lease_len_out = r - key;
  return r + strlen (LEASE_RESOURCES);
}

char *
berth_schema_cri_key (const char *ns, const char *kind, const char *id)
{
  return g_strconcat ("cri/", ns, "/", kind, "/", id ? id : "", NULL);
}

/* ---------------- records ---------------- */

gboolean
berth_schema_put (BerthMetadataTxn *txn, const char *key, const ProtobufCMessage *message, GError **error)
{
  gsize size = protobuf_c_message_get_packed_size (message);
  g_autofree guint8 *buf = g_malloc (size ? size : 1);
  protobuf_c_message_pack (message, buf);
  return berth_metadata_txn_put (txn, key, buf, size, error);
}

ProtobufCMessage *
berth_schema_get (BerthMetadataTxn *txn, const char *key, const ProtobufCMessageDescriptor *descriptor, GError **error)
{
  g_autoptr (GBytes) bytes = berth_metadata_txn_get (txn, key, error);
  if (bytes == NULL)
    return NULL;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  ProtobufCMessage *message = protobuf_c_message_unpack (descriptor, NULL, len, data);
  if (message == NULL)
    berth_throw (error, BERTH_ERROR_DATA_LOSS, "metadata record %s is corrupt", key);
  return message;
}

gboolean
berth_schema_exists (BerthMetadataTxn *txn, const char *key)
{
  g_autoptr (GBytes) value = berth_metadata_txn_get (txn, key, NULL);
  return value != NULL;
}

typedef struct {
  const char *prefix;
  const ProtobufCMessageDescriptor *descriptor;
  BerthFilter *filter;
  BerthFieldLookup lookup;
  gboolean (*skip_key) (const char *key);
  GPtrArray *out;
} Collect;

static gboolean
collect_one (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  Collect *c = user_data;
  if (c->skip_key != NULL && c->skip_key (key))
    return TRUE;
  ProtobufCMessage *message = protobuf_c_message_unpack (c->descriptor, &berth_grpc_allocator, len, value);
  if (message != NULL && berth_filter_match (c->filter, c->lookup, message))
    g_ptr_array_add (c->out, message);
  else
    berth_grpc_message_free (message);
  return TRUE;
}

static gboolean
collect_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Collect *c = user_data;
  return berth_metadata_txn_foreach (txn, c->prefix, collect_one, c, error);
}

gboolean
berth_schema_collect (BerthMetadata *md, const char *prefix, const ProtobufCMessageDescriptor *descriptor,
                      BerthFilter *filter, BerthFieldLookup lookup, gboolean (*skip_key) (const char *key),
                      GPtrArray *out, GError **error)
{
  Collect c = { .prefix = prefix, .descriptor = descriptor, .filter = filter, .lookup = lookup,
                .skip_key = skip_key, .out = out };
  return berth_metadata_read (md, collect_txn, &c, error);
}

static gboolean
put_empty_txn (BerthMetadataTxn *txn, gpointer key, GError **error)
{
  return berth_metadata_txn_put (txn, key, "", 0, error);
}

gboolean
berth_schema_put_empty (BerthMetadata *md, const char *key, GError **error)
{
  return berth_metadata_write (md, put_empty_txn, (gpointer) key, error);
}

static gboolean
delete_txn (BerthMetadataTxn *txn, gpointer key, GError **error)
{
  return berth_metadata_txn_delete (txn, key, error);
}

gboolean
berth_schema_delete (BerthMetadata *md, const char *key, GError **error)
{
  return berth_metadata_write (md, delete_txn, (gpointer) key, error);
}

gboolean
berth_schema_namespace_touch (BerthMetadataTxn *txn, const char *ns, GError **error)
{
  g_autofree char *key = berth_schema_namespace_key (ns);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GBytes) existing = berth_metadata_txn_get (txn, key, &local_error);
  if (existing != NULL)
    return TRUE;
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  Containerd__Services__Namespaces__V1__Namespace record = CONTAINERD__SERVICES__NAMESPACES__V1__NAMESPACE__INIT;
  record.name = (char *) ns;
  return berth_schema_put (txn, key, &record.base, error);
}

static gboolean
collect_namespace (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  g_ptr_array_add (user_data, g_strdup (berth_schema_namespace_from_key (key)));
  return TRUE;
}

gboolean
berth_schema_list_namespaces (BerthMetadataTxn *txn, GPtrArray *names_out, GError **error)
{
  return berth_metadata_txn_foreach (txn, BERTH_SCHEMA_NAMESPACES_PREFIX, collect_namespace, names_out, error);
}

gboolean
berth_schema_content_record (BerthMetadataTxn *txn, const char *ns, const char *lease, const char *digest,
                             gint64 size, GHashTable *labels, GError **error)
{
  if (!berth_schema_namespace_touch (txn, ns, error))
    return FALSE;
  g_autofree char *key = berth_schema_content_key (ns, digest);
  g_autoptr (GError) local_error = NULL;
  Containerd__Services__Content__V1__Info *existing =
    (gpointer) berth_schema_get (txn, key, &containerd__services__content__v1__info__descriptor, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  gint64 now = g_get_real_time ();
  Containerd__Services__Content__V1__Info *record =
    berth_grpc_message_new (&containerd__services__content__v1__info__descriptor);
  record->digest = g_strdup (digest);
  record->size = size;
  record->created_at = berth_schema_timestamp_new (existing ? berth_schema_timestamp_to_usec (existing->created_at) : now);
  record->updated_at = berth_schema_timestamp_new (now);
  g_autoptr (GHashTable) kept = existing ? berth_schema_labels_from_entries ((void *const *) existing->labels,
                                                                             existing->n_labels, NULL)
                                         : berth_labels_new ();
  berth_schema_labels_to_entries (labels ? labels : kept, &containerd__services__content__v1__info__labels_entry__descriptor,
                                  (void ***) &record->labels, &record->n_labels);
  if (existing != NULL)
    protobuf_c_message_free_unpacked (&existing->base, NULL);
  gboolean ok = berth_schema_put (txn, key, &record->base, error);
  berth_grpc_message_free (&record->base);
  if (ok && lease != NULL && *lease != '\0')
    {
      g_autofree char *resource = berth_schema_lease_content_key (ns, lease, digest);
      ok = berth_metadata_txn_put (txn, resource, "", 0, error);
    }
  return ok;
}

Containerd__Services__Containers__V1__Container *
berth_schema_container_get (BerthMetadataTxn *txn, const char *ns, const char *id, GError **error)
{
  g_autofree char *key = berth_schema_container_key (ns, id);
  g_autoptr (GBytes) bytes = berth_metadata_txn_get (txn, key, error);
  if (bytes == NULL)
    {
      if (error == NULL || *error == NULL)
        berth_throw (error, BERTH_ERROR_NOT_FOUND, "container \"%s\" in namespace \"%s\": not found", id, ns);
      return NULL;
    }
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  return (gpointer) protobuf_c_message_unpack (&containerd__services__containers__v1__container__descriptor,
                                               &berth_grpc_allocator, len, data);
}

typedef struct {
  const char *ns;
  const char *id;
  Containerd__Services__Containers__V1__Container *found;
} ContainerRead;

static gboolean
container_read_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  ContainerRead *r = user_data;
  r->found = berth_schema_container_get (txn, r->ns, r->id, error);
  return r->found != NULL;
}

Containerd__Services__Containers__V1__Container *
berth_schema_container_read (BerthMetadata *metadata, const char *ns, const char *id, GError **error)
{
  ContainerRead r = { .ns = ns, .id = id };
  if (!berth_metadata_read (metadata, container_read_txn, &r, error))
    return NULL;
  return r.found;
}

/* ---------------- record fields ---------------- */

GHashTable *
berth_schema_labels_from_entries (void *const *entries, gsize n_entries, GError **error)
{
  g_autoptr (GHashTable) labels = berth_labels_new ();
  for (gsize i = 0; i < n_entries; i++)
    {
      const BerthSchemaMapEntry *entry = entries[i];
      g_hash_table_replace (labels, g_strdup (entry->key ? entry->key : ""), g_strdup (entry->value ? entry->value : ""));
    }
  if (!berth_labels_validate (labels, error))
    return NULL;
  return g_steal_pointer (&labels);
}

void
berth_schema_labels_to_entries (GHashTable *labels, const ProtobufCMessageDescriptor *entry_descriptor,
                                void ***entries_out, size_t *n_out)
{
  guint n = labels ? g_hash_table_size (labels) : 0;
  *n_out = n;
  *entries_out = n ? g_new0 (void *, n) : NULL;
  if (n == 0)
    return;
  g_autofree gpointer *keys = g_hash_table_get_keys_as_array (labels, NULL);
  for (guint i = 0; i < n; i++)
    {
      BerthSchemaMapEntry *entry = berth_grpc_message_new (entry_descriptor);
      entry->key = g_strdup (keys[i]);
      entry->value = g_strdup (g_hash_table_lookup (labels, keys[i]));
      (*entries_out)[i] = entry;
    }
}

Google__Protobuf__Timestamp *
berth_schema_timestamp_new (gint64 usec)
{
  Google__Protobuf__Timestamp *ts = berth_grpc_message_new (&google__protobuf__timestamp__descriptor);
  ts->seconds = usec / G_USEC_PER_SEC;
  ts->nanos = (usec % G_USEC_PER_SEC) * 1000;
  return ts;
}

gint64
berth_schema_timestamp_to_usec (const Google__Protobuf__Timestamp *timestamp)
{
  if (timestamp == NULL)
    return 0;
  return timestamp->seconds * G_USEC_PER_SEC + timestamp->nanos / 1000;
}
