/* namespaces.c — containerd.services.namespaces.v1.Namespaces. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-identifiers.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "github.com/containerd/containerd/api/events/namespace.pb-c.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

typedef Containerd__Services__Namespaces__V1__Namespace Namespace;
#define NAMESPACE_DESC containerd__services__namespaces__v1__namespace__descriptor
#define LABELS_ENTRY_DESC containerd__services__namespaces__v1__namespace__labels_entry__descriptor

/* A response copy of a stored record, every pointer owned. */
static Namespace *
namespace_copy (const Namespace *record)
{
  Namespace *copy = berth_grpc_message_new (&NAMESPACE_DESC);
  copy->name = g_strdup (record->name);
  g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) record->labels, record->n_labels, NULL);
  berth_schema_labels_to_entries (labels, &LABELS_ENTRY_DESC, (void ***) &copy->labels, &copy->n_labels);
  return copy;
}

typedef struct {
  const char *name;
  Namespace *found;
} GetData;

static gboolean
get_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  GetData *data = user_data;
  g_autofree char *key = berth_schema_namespace_key (data->name);
  g_autoptr (GError) local_error = NULL;
  data->found = (Namespace *) berth_schema_get (txn, key, &NAMESPACE_DESC, &local_error);
  if (data->found == NULL)
    {
      if (local_error != NULL)
        g_propagate_error (error, g_steal_pointer (&local_error));
      else
        berth_throw (error, BERTH_ERROR_NOT_FOUND, "namespace %s: not found", data->name);
      return FALSE;
    }
  return TRUE;
}

static ProtobufCMessage *
namespaces_get (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Namespaces__V1__GetNamespaceRequest *req = (gpointer) request;
  GetData data = { req->name, NULL };
  g_autoptr (GError) local_error = NULL;
  if (!berth_metadata_read (berth_daemon_get_metadata (user_data), get_txn, &data, &local_error)
      && !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  Containerd__Services__Namespaces__V1__GetNamespaceResponse *response =
    berth_grpc_message_new (&containerd__services__namespaces__v1__get_namespace_response__descriptor);
  if (data.found != NULL)
    {
      response->namespace_ = namespace_copy (data.found);
      protobuf_c_message_free_unpacked (&data.found->base, NULL);
    }
  else
    {
      /* As containerd: a namespace nobody created yet has no labels, and asking is no
       * error. containerd's Go client (dockerd, nerdctl, buildkit, k3s) reads its default
       * namespace's labels when it connects, before anything created that namespace. */
      response->namespace_ = berth_grpc_message_new (&NAMESPACE_DESC);
      response->namespace_->name = g_strdup (req->name ? req->name : "");
    }
  return &response->base;
}

static ProtobufCMessage *
namespaces_list (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  if (!berth_schema_collect (berth_daemon_get_metadata (user_data), BERTH_SCHEMA_NAMESPACES_PREFIX, &NAMESPACE_DESC, NULL,
                             NULL, NULL, found, error))
    return NULL;
  Containerd__Services__Namespaces__V1__ListNamespacesResponse *response =
    berth_grpc_message_new (&containerd__services__namespaces__v1__list_namespaces_response__descriptor);
  response->n_namespaces = found->len;
  response->namespaces = (Namespace **) g_ptr_array_steal (found, NULL);
  return &response->base;
}

typedef struct {
  const Namespace *requested;
  char **paths; /* update mask, NULL for a create */
  gsize n_paths;
  Namespace *result;
} WriteData;

static gboolean
create_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  WriteData *data = user_data;
  g_autofree char *key = berth_schema_namespace_key (data->requested->name);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GBytes) existing = berth_metadata_txn_get (txn, key, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (existing != NULL)
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "namespace %s: already exists", data->requested->name);
  data->result = namespace_copy (data->requested);
  return berth_schema_put (txn, key, &data->result->base, error);
}

static gboolean
update_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  WriteData *data = user_data;
  GetData get = { data->requested->name, NULL };
  if (!get_txn (txn, &get, error))
    return FALSE;
  g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) get.found->labels, get.found->n_labels, NULL);
  protobuf_c_message_free_unpacked (&get.found->base, NULL);
  g_autoptr (GHashTable) update =
    berth_schema_labels_from_entries ((void *const *) data->requested->labels, data->requested->n_labels, error);
  if (update == NULL)
    return FALSE;
  if (data->n_paths == 0)
    {
      char *all[] = { (char *) "labels" };
      if (!berth_api_update_labels (labels, update, all, 1, NULL, error))
        return FALSE;
    }
  else if (!berth_api_update_labels (labels, update, data->paths, data->n_paths, NULL, error))
    return FALSE;
  data->result = berth_grpc_message_new (&NAMESPACE_DESC);
  data->result->name = g_strdup (data->requested->name);
  berth_schema_labels_to_entries (labels, &LABELS_ENTRY_DESC, (void ***) &data->result->labels, &data->result->n_labels);
  g_autofree char *key = berth_schema_namespace_key (data->requested->name);
  return berth_schema_put (txn, key, &data->result->base, error);
}

static void
publish_change (BerthDaemon *daemon, const char *topic, const ProtobufCMessageDescriptor *event_desc,
                const Namespace *ns)
{
  /* NamespaceCreate and NamespaceUpdate share this layout: name, labels. */
  Containerd__Events__NamespaceCreate event = CONTAINERD__EVENTS__NAMESPACE_CREATE__INIT;
  event.base.descriptor = event_desc;
  event.name = ns->name;
  event.n_labels = ns->n_labels;
  event.labels = (Containerd__Events__NamespaceCreate__LabelsEntry **) ns->labels;
  berth_events_publish (berth_daemon_get_events (daemon), ns->name, topic, &event.base);
}

static ProtobufCMessage *
namespaces_create (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Namespaces__V1__CreateNamespaceRequest *req = (gpointer) request;
  if (req->namespace_ == NULL || !berth_identifier_validate (BERTH_IDENTIFIER_NAMESPACE, req->namespace_->name, error))
    return req->namespace_ ? NULL : (berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no namespace given"), NULL);
  g_autoptr (GHashTable) labels =
    berth_schema_labels_from_entries ((void *const *) req->namespace_->labels, req->namespace_->n_labels, error);
  if (labels == NULL)
    return NULL;
  WriteData data = { req->namespace_, NULL, 0, NULL };
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), create_txn, &data, error))
    {
      berth_grpc_message_free ((ProtobufCMessage *) data.result);
      return NULL;
    }
  publish_change (user_data, "/namespaces/create", &containerd__events__namespace_create__descriptor, data.result);
  Containerd__Services__Namespaces__V1__CreateNamespaceResponse *response =
    berth_grpc_message_new (&containerd__services__namespaces__v1__create_namespace_response__descriptor);
  response->namespace_ = data.result;
  return &response->base;
}

static ProtobufCMessage *
namespaces_update (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Namespaces__V1__UpdateNamespaceRequest *req = (gpointer) request;
  if (req->namespace_ == NULL || req->namespace_->name == NULL || *req->namespace_->name == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no namespace given"), NULL;
  WriteData data = { req->namespace_, req->update_mask ? req->update_mask->paths : NULL,
                     req->update_mask ? req->update_mask->n_paths : 0, NULL };
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), update_txn, &data, error))
    {
      berth_grpc_message_free ((ProtobufCMessage *) data.result);
      return NULL;
    }
  publish_change (user_data, "/namespaces/update", &containerd__events__namespace_update__descriptor, data.result);
  Containerd__Services__Namespaces__V1__UpdateNamespaceResponse *response =
    berth_grpc_message_new (&containerd__services__namespaces__v1__update_namespace_response__descriptor);
  response->namespace_ = data.result;
  return &response->base;
}

static const char *const bucket_names[] = { BERTH_SCHEMA_BUCKET_IMAGES, BERTH_SCHEMA_BUCKET_CONTENT, BERTH_SCHEMA_BUCKET_LEASES,
                                            BERTH_SCHEMA_BUCKET_SNAPSHOTS, BERTH_SCHEMA_BUCKET_CONTAINERS, NULL };

static gboolean
delete_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  const char *name = user_data;
  GetData get = { name, NULL };
  if (!get_txn (txn, &get, error))
    return FALSE;
  protobuf_c_message_free_unpacked (&get.found->base, NULL);
  g_autoptr (GString) used = g_string_new (NULL);
  for (const char *const *bucket = bucket_names; *bucket; bucket++)
    {
      g_autofree char *prefix = berth_schema_bucket_prefix (name, *bucket);
      if (berth_metadata_txn_has_prefix (txn, prefix, NULL))
        g_string_append_printf (used, "%s%s", used->len ? ", " : "", *bucket);
    }
  if (used->len > 0)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "namespace %s must be empty, but it still has %s", name,
                        used->str);
  g_autofree char *key = berth_schema_namespace_key (name);
  return berth_metadata_txn_delete (txn, key, error);
}

static ProtobufCMessage *
namespaces_delete (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Namespaces__V1__DeleteNamespaceRequest *req = (gpointer) request;
  if (!berth_identifier_validate (BERTH_IDENTIFIER_NAMESPACE, req->name, error))
    return NULL;
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), delete_txn, req->name, error))
    return NULL;
  Containerd__Events__NamespaceDelete event = CONTAINERD__EVENTS__NAMESPACE_DELETE__INIT;
  event.name = req->name;
  berth_events_publish (berth_daemon_get_events (user_data), req->name, "/namespaces/delete", &event.base);
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

void
berth_api_register_namespaces (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Get", BERTH_GRPC_UNARY, namespaces_get, NULL },
    { "List", BERTH_GRPC_UNARY, namespaces_list, NULL },
    { "Create", BERTH_GRPC_UNARY, namespaces_create, NULL },
    { "Update", BERTH_GRPC_UNARY, namespaces_update, NULL },
    { "Delete", BERTH_GRPC_UNARY, namespaces_delete, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__namespaces__v1__namespaces__descriptor, methods, daemon);
}
