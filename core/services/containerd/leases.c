/* leases.c — containerd.services.leases.v1.Leases.
 *
 *   "v1/<ns>/leases/<id>"                    the lease (packed Lease)
 *   "v1/<ns>/leases/<id>/r/<type>/<rid>"     a resource it holds: content/<digest>,
 *                                            ingests/<ref>, snapshots/<snapshotter>/<key>
 * A lease is a GC root for everything it holds until it is deleted or expires
 * (label containerd.io/gc.expire, RFC 3339).
 */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-identifiers.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "daemon/berth-gc.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

typedef Containerd__Services__Leases__V1__Lease Lease;
#define LEASE_DESC containerd__services__leases__v1__lease__descriptor

static char *
lease_key (BerthGrpcCall *call, const char *id)
{
  return berth_schema_lease_key (berth_grpc_call_get_namespace (call), id);
}

/* Resource types as containerd names them; a snapshot names its snapshotter too. */
static gboolean
resource_key (BerthGrpcCall *call, const char *lease, const Containerd__Services__Leases__V1__Resource *res,
              char **key_out, GError **error)
{
  if (res == NULL || res->id == NULL || *res->id == '\0' || res->type == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "a resource needs an id and a type");
  if (!g_str_equal (res->type, BERTH_SCHEMA_RESOURCE_CONTENT) && !g_str_equal (res->type, BERTH_SCHEMA_RESOURCE_INGESTS)
      && !(g_str_has_prefix (res->type, BERTH_SCHEMA_RESOURCE_SNAPSHOTS "/")
           && strlen (res->type) > strlen (BERTH_SCHEMA_RESOURCE_SNAPSHOTS "/")))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "resource type \"%s\": want content, ingests or snapshots/<snapshotter>", res->type);
  if (g_str_equal (res->type, BERTH_SCHEMA_RESOURCE_CONTENT) && !berth_digest_validate (res->id, error))
    return FALSE;
  if (!g_str_equal (res->type, BERTH_SCHEMA_RESOURCE_CONTENT)
      && !berth_identifier_validate (g_str_equal (res->type, BERTH_SCHEMA_RESOURCE_INGESTS) ? BERTH_IDENTIFIER_CONTENT_REF : BERTH_IDENTIFIER_SNAPSHOT_KEY,
                                     res->id, error))
    return FALSE;
  *key_out = berth_schema_lease_resource_key (berth_grpc_call_get_namespace (call), lease, res->type, res->id);
  return TRUE;
}

typedef struct {
  BerthGrpcCall *call;
  const char *id;
  GHashTable *labels;
  Lease *result;
} CreateData;

static gboolean
create_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  CreateData *data = user_data;
  g_autofree char *key = lease_key (data->call, data->id);
  if (berth_schema_exists (txn, key))
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "lease %s: already exists", data->id);
  if (!berth_schema_namespace_touch (txn, berth_grpc_call_get_namespace (data->call), error))
    return FALSE;
  data->result = berth_grpc_message_new (&LEASE_DESC);
  data->result->id = g_strdup (data->id);
  data->result->created_at = berth_schema_timestamp_new (g_get_real_time ());
  berth_schema_labels_to_entries (data->labels, &containerd__services__leases__v1__lease__labels_entry__descriptor,
                                  (void ***) &data->result->labels, &data->result->n_labels);
  return berth_schema_put (txn, key, &data->result->base, error);
}

static ProtobufCMessage *
leases_create (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Leases__V1__CreateRequest *req = (gpointer) request;
  g_autofree char *generated = NULL;
  const char *id = req->id;
  if (id == NULL || *id == '\0')
    id = generated = g_strdup_printf ("berth-%" G_GINT64_FORMAT "-%08x", g_get_real_time (), g_random_int ());
  if (!berth_identifier_validate (BERTH_IDENTIFIER_LEASE, id, error))
    return NULL;
  g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) req->labels, req->n_labels, error);
  if (labels == NULL)
    return NULL;
  CreateData data = { call, id, labels, NULL };
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), create_txn, &data, error))
    {
      berth_grpc_message_free ((ProtobufCMessage *) data.result);
      return NULL;
    }
  Containerd__Services__Leases__V1__CreateResponse *response =
    berth_grpc_message_new (&containerd__services__leases__v1__create_response__descriptor);
  response->lease = data.result;
  return &response->base;
}

typedef struct {
  BerthGrpcCall *call;
  const char *id;
} DeleteData;

static gboolean
delete_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  DeleteData *data = user_data;
  g_autofree char *key = lease_key (data->call, data->id);
  if (!berth_metadata_txn_delete (txn, key, NULL))
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "lease %s: not found", data->id);
  g_autofree char *resources = berth_schema_lease_resources_prefix (berth_grpc_call_get_namespace (data->call), data->id);
  return berth_metadata_txn_delete_prefix (txn, resources, NULL, error);
}

static ProtobufCMessage *
leases_delete (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Leases__V1__DeleteRequest *req = (gpointer) request;
  if (!berth_identifier_validate (BERTH_IDENTIFIER_LEASE, req->id, error))
    return NULL;
  DeleteData data = { call, req->id };
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), delete_txn, &data, error))
    return NULL;
  if (req->sync && !berth_gc_run (user_data, berth_grpc_call_get_cancellable (call), NULL, error))
    return NULL;
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

static const char *
lease_field (const char *const *fieldpath, gpointer object)
{
  const Lease *lease = object;
  if (fieldpath[0] == NULL)
    return NULL;
  if (g_str_equal (fieldpath[0], "id") && fieldpath[1] == NULL)
    return lease->id;
  return berth_api_label_field (fieldpath, (void *const *) lease->labels, lease->n_labels);
}

/* Resources sit under their lease's key; a listing of leases passes them over. */
static gboolean
is_resource_key (const char *key)
{
  return berth_schema_lease_resource_of (key, NULL) != NULL;
}

static ProtobufCMessage *
leases_list (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Leases__V1__ListRequest *req = (gpointer) request;
  g_autoptr (BerthFilter) filter = berth_api_filter_parse (req->filters, req->n_filters, error);
  if (filter == NULL)
    return NULL;
  g_autoptr (GPtrArray) leases = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  g_autofree char *prefix = berth_schema_bucket_prefix (berth_grpc_call_get_namespace (call), BERTH_SCHEMA_BUCKET_LEASES);
  if (!berth_schema_collect (berth_daemon_get_metadata (user_data), prefix, &LEASE_DESC, filter, lease_field,
                             is_resource_key, leases, error))
    return NULL;
  Containerd__Services__Leases__V1__ListResponse *response =
    berth_grpc_message_new (&containerd__services__leases__v1__list_response__descriptor);
  response->n_leases = leases->len;
  g_ptr_array_set_free_func (leases, NULL);
  response->leases = (Lease **) g_ptr_array_steal (leases, NULL);
  return &response->base;
}

typedef struct {
  BerthGrpcCall *call;
  const char *lease;
  char *key;
  gboolean add;
} ResourceData;

static gboolean
resource_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  ResourceData *data = user_data;
  g_autofree char *lease = lease_key (data->call, data->lease);
  if (!berth_schema_exists (txn, lease))
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "lease %s: not found", data->lease);
  if (data->add)
    return berth_metadata_txn_put (txn, data->key, "", 0, error);
  g_autoptr (GError) ignored = NULL;
  berth_metadata_txn_delete (txn, data->key, &ignored); /* deleting what is not there is fine */
  return TRUE;
}

static ProtobufCMessage *
change_resource (BerthGrpcCall *call, gpointer daemon, const char *lease, const Containerd__Services__Leases__V1__Resource *res,
                 gboolean add, GError **error)
{
  ResourceData data = { call, lease, NULL, add };
  if (!berth_identifier_validate (BERTH_IDENTIFIER_LEASE, lease, error) || !resource_key (call, lease, res, &data.key, error))
    return NULL;
  gboolean ok = berth_metadata_write (berth_daemon_get_metadata (daemon), resource_txn, &data, error);
  g_free (data.key);
  return ok ? berth_grpc_message_new (&google__protobuf__empty__descriptor) : NULL;
}

static ProtobufCMessage *
leases_add_resource (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Leases__V1__AddResourceRequest *req = (gpointer) request;
  return change_resource (call, user_data, req->id, req->resource, TRUE, error);
}

static ProtobufCMessage *
leases_delete_resource (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Leases__V1__DeleteResourceRequest *req = (gpointer) request;
  return change_resource (call, user_data, req->id, req->resource, FALSE, error);
}

typedef struct {
  gsize prefix_len;
  GPtrArray *out;
} ResourcesData;

static gboolean
resource_one (const char *key, const guint8 *value, gsize len, gpointer user_data)
{
  ResourcesData *data = user_data;
  const char *rest = key + data->prefix_len; /* "<type>/<id>", the type maybe "snapshots/<name>" */
  const char *slash = strchr (rest, '/');
  if (slash == NULL)
    return TRUE;
  if (g_str_has_prefix (rest, BERTH_SCHEMA_RESOURCE_SNAPSHOTS "/"))
    slash = strchr (slash + 1, '/');
  if (slash == NULL)
    return TRUE;
  Containerd__Services__Leases__V1__Resource *res =
    berth_grpc_message_new (&containerd__services__leases__v1__resource__descriptor);
  res->type = g_strndup (rest, slash - rest);
  res->id = g_strdup (slash + 1);
  g_ptr_array_add (data->out, res);
  return TRUE;
}

typedef struct {
  BerthGrpcCall *call;
  const char *lease;
  GPtrArray *out;
} ListResourcesData;

static gboolean
list_resources_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  ListResourcesData *data = user_data;
  g_autofree char *lease = lease_key (data->call, data->lease);
  if (!berth_schema_exists (txn, lease))
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "lease %s: not found", data->lease);
  g_autofree char *prefix = berth_schema_lease_resources_prefix (berth_grpc_call_get_namespace (data->call), data->lease);
  ResourcesData rd = { strlen (prefix), data->out };
  return berth_metadata_txn_foreach (txn, prefix, resource_one, &rd, error);
}

static ProtobufCMessage *
leases_list_resources (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Leases__V1__ListResourcesRequest *req = (gpointer) request;
  if (!berth_identifier_validate (BERTH_IDENTIFIER_LEASE, req->id, error))
    return NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  ListResourcesData data = { call, req->id, out };
  if (!berth_metadata_read (berth_daemon_get_metadata (user_data), list_resources_txn, &data, error))
    return NULL;
  Containerd__Services__Leases__V1__ListResourcesResponse *response =
    berth_grpc_message_new (&containerd__services__leases__v1__list_resources_response__descriptor);
  response->n_resources = out->len;
  g_ptr_array_set_free_func (out, NULL);
  response->resources = (Containerd__Services__Leases__V1__Resource **) g_ptr_array_steal (out, NULL);
  return &response->base;
}

void
berth_api_register_leases (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Create", BERTH_GRPC_UNARY, leases_create, NULL },
    { "Delete", BERTH_GRPC_UNARY, leases_delete, NULL },
    { "List", BERTH_GRPC_UNARY, leases_list, NULL },
    { "AddResource", BERTH_GRPC_UNARY, leases_add_resource, NULL },
    { "DeleteResource", BERTH_GRPC_UNARY, leases_delete_resource, NULL },
    { "ListResources", BERTH_GRPC_UNARY, leases_list_resources, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__leases__v1__leases__descriptor, methods, daemon);
}
