/* containers.c — containerd.services.containers.v1.Containers; records
 * "v1/<ns>/containers/<id>" are packed Container messages (and GC roots). */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-identifiers.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "berth-api-ops.h"
#include "github.com/containerd/containerd/api/events/container.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

typedef Containerd__Services__Containers__V1__Container Container;
#define CONTAINER_DESC containerd__services__containers__v1__container__descriptor

typedef struct {
  const char *ns;
  const Container *in;
  char **paths;
  gsize n_paths;
  const char *id;
  Container *result;
} Data;

static gboolean
get_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Data *d = user_data;
  d->result = berth_schema_container_get (txn, d->ns, d->id, error);
  return d->result != NULL;
}

static ProtobufCMessage *
containers_get (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Containers__V1__GetContainerRequest *req = (gpointer) request;
  Data d = { berth_grpc_call_get_namespace (call), NULL, NULL, 0, req->id, NULL };
  if (!berth_identifier_validate (BERTH_IDENTIFIER_CONTAINER, req->id, error) || !berth_metadata_read (berth_daemon_get_metadata (user_data), get_txn, &d, error))
    return NULL;
  Containerd__Services__Containers__V1__GetContainerResponse *response =
    berth_grpc_message_new (&containerd__services__containers__v1__get_container_response__descriptor);
  response->container = d.result;
  return &response->base;
}

static const char *
container_field (const char *const *fieldpath, gpointer object)
{
  const Container *c = object;
  if (fieldpath[0] == NULL)
    return NULL;
  if (fieldpath[1] == NULL)
    {
      if (g_str_equal (fieldpath[0], "id"))
        return c->id;
      if (g_str_equal (fieldpath[0], "image"))
        return c->image;
      if (g_str_equal (fieldpath[0], "snapshotter"))
        return c->snapshotter;
    }
  if (g_str_equal (fieldpath[0], "runtime") && fieldpath[1] && g_str_equal (fieldpath[1], "name") && c->runtime)
    return c->runtime->name;
  return berth_api_label_field (fieldpath, (void *const *) c->labels, c->n_labels);
}

static GPtrArray *
list_containers (BerthGrpcCall *call, gpointer daemon, char **filters, size_t n_filters, GError **error)
{
  g_autoptr (BerthFilter) filter = berth_api_filter_parse (filters, n_filters, error);
  if (filter == NULL)
    return NULL;
  g_autofree char *prefix = berth_schema_bucket_prefix (berth_grpc_call_get_namespace (call), BERTH_SCHEMA_BUCKET_CONTAINERS);
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  if (!berth_schema_collect (berth_daemon_get_metadata (daemon), prefix, &CONTAINER_DESC, filter, container_field, NULL, out,
                             error))
    {
      g_ptr_array_unref (out);
      return NULL;
    }
  return out;
}

static ProtobufCMessage *
containers_list (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Containers__V1__ListContainersRequest *req = (gpointer) request;
  g_autoptr (GPtrArray) out = list_containers (call, user_data, req->filters, req->n_filters, error);
  if (out == NULL)
    return NULL;
  Containerd__Services__Containers__V1__ListContainersResponse *response =
    berth_grpc_message_new (&containerd__services__containers__v1__list_containers_response__descriptor);
  response->n_containers = out->len;
  g_ptr_array_set_free_func (out, NULL);
  response->containers = (Container **) g_ptr_array_steal (out, NULL);
  return &response->base;
}

static gboolean
containers_list_stream (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Containers__V1__ListContainersRequest *req = (gpointer) request;
  g_autoptr (GPtrArray) out = list_containers (call, user_data, req->filters, req->n_filters, error);
  if (out == NULL)
    return FALSE;
  return berth_grpc_call_send_list (call, g_steal_pointer (&out), "container", 1);
}

static gboolean
create_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Data *d = user_data;
  g_autofree char *key = berth_schema_container_key (d->ns, d->in->id);
  if (berth_schema_exists (txn, key))
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "container \"%s\": already exists", d->in->id);
  if (!berth_schema_namespace_touch (txn, d->ns, error))
    return FALSE;
  d->result = berth_api_message_copy (&d->in->base);
  gint64 now = g_get_real_time ();
  berth_grpc_message_free ((ProtobufCMessage *) d->result->created_at);
  berth_grpc_message_free ((ProtobufCMessage *) d->result->updated_at);
  d->result->created_at = berth_schema_timestamp_new (now);
  d->result->updated_at = berth_schema_timestamp_new (now);
  return berth_schema_put (txn, key, &d->result->base, error);
}


Container *
berth_api_ops_container_create (BerthDaemon *daemon, const char *ns, const Container *in, GError **error)
{
  if (in == NULL || !berth_identifier_validate (BERTH_IDENTIFIER_CONTAINER, in->id, error))
    return in ? NULL : (berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no container given"), NULL);
  if (in->spec == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "container %s has no spec", in->id), NULL;
  if (in->runtime == NULL || in->runtime->name == NULL || !*in->runtime->name)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "container %s names no runtime", in->id), NULL;
  g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) in->labels, in->n_labels, error);
  if (labels == NULL)
    return NULL;
  Data d = { ns, in, NULL, 0, NULL, NULL };
  if (!berth_metadata_write (berth_daemon_get_metadata (daemon), create_txn, &d, error))
    {
      berth_grpc_message_free ((ProtobufCMessage *) d.result);
      return NULL;
    }
  Containerd__Events__ContainerCreate event = CONTAINERD__EVENTS__CONTAINER_CREATE__INIT;
  Containerd__Events__ContainerCreate__Runtime runtime = CONTAINERD__EVENTS__CONTAINER_CREATE__RUNTIME__INIT;
  runtime.name = d.result->runtime->name;
  event.id = d.result->id;
  event.image = d.result->image;
  event.runtime = &runtime;
  berth_events_publish (berth_daemon_get_events (daemon), ns, "/containers/create", &event.base);
  return d.result;
}

static ProtobufCMessage *
containers_create (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Containers__V1__CreateContainerRequest *req = (gpointer) request;
  Container *created = berth_api_ops_container_create (user_data, berth_grpc_call_get_namespace (call), req->container, error);
  if (created == NULL)
    return NULL;
  Containerd__Services__Containers__V1__CreateContainerResponse *response =
    berth_grpc_message_new (&containerd__services__containers__v1__create_container_response__descriptor);
  response->container = created;
  return &response->base;
}

static gboolean
update_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Data *d = user_data;
  d->id = d->in->id;
  if (!get_txn (txn, d, error))
    return FALSE;
  Container *c = d->result;
  if (d->n_paths == 0)
    {
      /* Whole update: everything but id, creation time and snapshot binding. */
      Container *updated = berth_api_message_copy (&d->in->base);
      berth_grpc_message_free ((ProtobufCMessage *) updated->created_at);
      updated->created_at = c->created_at ? berth_api_message_copy (&c->created_at->base) : NULL;
      g_free (updated->snapshotter);
      updated->snapshotter = g_strdup (c->snapshotter);
      g_free (updated->snapshot_key);
      updated->snapshot_key = g_strdup (c->snapshot_key);
      berth_grpc_message_free (&c->base);
      d->result = c = updated;
    }
  else
    {
      g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) c->labels, c->n_labels, NULL);
      g_autoptr (GHashTable) given = berth_schema_labels_from_entries ((void *const *) d->in->labels, d->in->n_labels, error);
      static const char *const others[] = { "image", "spec", "runtime", "extensions", NULL };
      if (given == NULL || !berth_api_update_labels (labels, given, d->paths, d->n_paths, others, error))
        return FALSE;
      for (size_t i = 0; i < c->n_labels; i++)
        berth_grpc_message_free ((ProtobufCMessage *) c->labels[i]);
      g_free (c->labels);
      berth_schema_labels_to_entries (labels, &containerd__services__containers__v1__container__labels_entry__descriptor,
                                      (void ***) &c->labels, &c->n_labels);
      if (berth_api_strings_contain (d->paths, d->n_paths, "image"))
        {
          g_free (c->image);
          c->image = g_strdup (d->in->image);
        }
      if (berth_api_strings_contain (d->paths, d->n_paths, "spec") && d->in->spec)
        {
          berth_grpc_message_free ((ProtobufCMessage *) c->spec);
          c->spec = berth_api_message_copy (&d->in->spec->base);
        }
    }
  berth_grpc_message_free ((ProtobufCMessage *) c->updated_at);
  c->updated_at = berth_schema_timestamp_new (g_get_real_time ());
  g_autofree char *key = berth_schema_container_key (d->ns, c->id);
  return berth_schema_put (txn, key, &c->base, error);
}

static ProtobufCMessage *
containers_update (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Containers__V1__UpdateContainerRequest *req = (gpointer) request;
  if (req->container == NULL || !berth_identifier_validate (BERTH_IDENTIFIER_CONTAINER, req->container->id, error))
    return req->container ? NULL : (berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no container given"), NULL);
  Data d = { berth_grpc_call_get_namespace (call), req->container, req->update_mask ? req->update_mask->paths : NULL,
             req->update_mask ? req->update_mask->n_paths : 0, NULL, NULL };
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), update_txn, &d, error))
    {
      berth_grpc_message_free ((ProtobufCMessage *) d.result);
      return NULL;
    }
  Containerd__Events__ContainerUpdate event = CONTAINERD__EVENTS__CONTAINER_UPDATE__INIT;
  event.id = d.result->id;
  event.image = d.result->image;
  berth_api_publish (call, "/containers/update", &event.base);
  Containerd__Services__Containers__V1__UpdateContainerResponse *response =
    berth_grpc_message_new (&containerd__services__containers__v1__update_container_response__descriptor);
  response->container = d.result;
  return &response->base;
}

static gboolean
delete_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  Data *d = user_data;
  g_autofree char *key = berth_schema_container_key (d->ns, d->id);
  if (!berth_metadata_txn_delete (txn, key, NULL))
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "container \"%s\": not found", d->id);
  return TRUE;
}

gboolean
berth_api_ops_container_delete (BerthDaemon *daemon, const char *ns, const char *id, GError **error)
{
  if (!berth_identifier_validate (BERTH_IDENTIFIER_CONTAINER, id, error))
    return FALSE;
  /* A container with a live task keeps it: containerd refuses too. */
  g_autoptr (BerthTask) task = berth_daemon_find_task (daemon, ns, id, NULL);
  if (task != NULL)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "container %s has a task; delete the task first", id);
  Data d = { ns, NULL, NULL, 0, id, NULL };
  if (!berth_metadata_write (berth_daemon_get_metadata (daemon), delete_txn, &d, error))
    return FALSE;
  Containerd__Events__ContainerDelete event = CONTAINERD__EVENTS__CONTAINER_DELETE__INIT;
  event.id = (char *) id;
  berth_events_publish (berth_daemon_get_events (daemon), ns, "/containers/delete", &event.base);
  return TRUE;
}

static ProtobufCMessage *
containers_delete (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Containers__V1__DeleteContainerRequest *req = (gpointer) request;
  if (!berth_api_ops_container_delete (user_data, berth_grpc_call_get_namespace (call), req->id, error))
    return NULL;
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

void
berth_api_register_containers (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Get", BERTH_GRPC_UNARY, containers_get, NULL },
    { "List", BERTH_GRPC_UNARY, containers_list, NULL },
    { "ListStream", BERTH_GRPC_SERVER_STREAMING, NULL, containers_list_stream },
    { "Create", BERTH_GRPC_UNARY, containers_create, NULL },
    { "Update", BERTH_GRPC_UNARY, containers_update, NULL },
    { "Delete", BERTH_GRPC_UNARY, containers_delete, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__containers__v1__containers__descriptor, methods, daemon);
}
