/* images.c — containerd.services.images.v1.Images; records "v1/<ns>/images/<name>". */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-identifiers.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "berth-api-ops.h"
#include "daemon/berth-gc.h"
#include "github.com/containerd/containerd/api/events/image.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

typedef Containerd__Services__Images__V1__Image Image;
#define IMAGE_DESC containerd__services__images__v1__image__descriptor

static char *
image_key (BerthGrpcCall *call, const char *name)
{
  return berth_schema_image_key (berth_grpc_call_get_namespace (call), name);
}

static gboolean
validate_image (const Image *image, gboolean need_target, GError **error)
{
  if (!berth_identifier_validate (BERTH_IDENTIFIER_IMAGE, image ? image->name : NULL, error))
    return FALSE;
  if (need_target && (image->target == NULL || !berth_digest_validate (image->target->digest, error)))
    return image->target ? FALSE : berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image %s has no target", image->name);
  if (need_target && (image->target->media_type == NULL || *image->target->media_type == '\0'))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image %s: target has no media type", image->name);
  g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) image->labels, image->n_labels, error);
  return labels != NULL;
}

static Image *
get_image (BerthMetadataTxn *txn, BerthGrpcCall *call, const char *name, GError **error)
{
  g_autofree char *key = image_key (call, name);
  g_autoptr (GBytes) bytes = berth_metadata_txn_get (txn, key, error);
  if (bytes == NULL)
    {
      if (error == NULL || *error == NULL)
        berth_throw (error, BERTH_ERROR_NOT_FOUND, "image \"%s\": not found", name);
      return NULL;
    }
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  Image *image = berth_api_message_unpack (&IMAGE_DESC, data, len);
  if (image == NULL)
    berth_throw (error, BERTH_ERROR_DATA_LOSS, "image record %s is corrupt", key);
  return image;
}

typedef struct {
  BerthGrpcCall *call;
  const Image *in;
  char **paths;
  gsize n_paths;
  Image *result;
} WriteData;

static gboolean
get_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  WriteData *data = user_data;
  data->result = get_image (txn, data->call, data->in->name, error);
  return data->result != NULL;
}

static ProtobufCMessage *
images_get (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Images__V1__GetImageRequest *req = (gpointer) request;
  Image query = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
  query.name = req->name;
  WriteData data = { call, &query, NULL, 0, NULL };
  if (!berth_metadata_read (berth_daemon_get_metadata (user_data), get_txn, &data, error))
    return NULL;
  Containerd__Services__Images__V1__GetImageResponse *response =
    berth_grpc_message_new (&containerd__services__images__v1__get_image_response__descriptor);
  response->image = data.result;
  return &response->base;
}

static gboolean
create_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  WriteData *data = user_data;
  g_autofree char *key = image_key (data->call, data->in->name);
  if (berth_schema_exists (txn, key))
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "image \"%s\": already exists", data->in->name);
  if (!berth_schema_namespace_touch (txn, berth_grpc_call_get_namespace (data->call), error))
    return FALSE;
  data->result = berth_api_message_copy (&data->in->base);
  gint64 now = g_get_real_time ();
  berth_grpc_message_free ((ProtobufCMessage *) data->result->created_at);
  berth_grpc_message_free ((ProtobufCMessage *) data->result->updated_at);
  data->result->created_at = berth_schema_timestamp_new (now);
  data->result->updated_at = berth_schema_timestamp_new (now);
  return berth_schema_put (txn, key, &data->result->base, error);
}

static gboolean
update_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  WriteData *data = user_data;
  g_autoptr (ProtobufCMessage) current = (ProtobufCMessage *) get_image (txn, data->call, data->in->name, error);
  if (current == NULL)
    return FALSE;
  Image *old = (Image *) current;
  Image *updated;
  if (data->n_paths == 0)
    {
      /* No mask: the whole image as given, creation time kept. */
      if (!validate_image (data->in, TRUE, error))
        return FALSE;
      updated = berth_api_message_copy (&data->in->base);
      berth_grpc_message_free ((ProtobufCMessage *) updated->created_at);
      updated->created_at = old->created_at ? berth_api_message_copy (&old->created_at->base) : NULL;
    }
  else
    {
      updated = berth_api_message_copy (current);
      g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) old->labels, old->n_labels, NULL);
      g_autoptr (GHashTable) given = berth_schema_labels_from_entries ((void *const *) data->in->labels, data->in->n_labels, error);
      static const char *const others[] = { "target", "annotations", NULL };
      if (given == NULL || !berth_api_update_labels (labels, given, data->paths, data->n_paths, others, error))
        {
          berth_grpc_message_free (&updated->base);
          return FALSE;
        }
      for (gsize i = 0; i < updated->n_labels; i++)
        berth_grpc_message_free ((ProtobufCMessage *) updated->labels[i]);
      g_free (updated->labels);
      berth_schema_labels_to_entries (labels, &containerd__services__images__v1__image__labels_entry__descriptor,
                                      (void ***) &updated->labels, &updated->n_labels);
      if (berth_api_strings_contain (data->paths, data->n_paths, "target"))
        {
          if (data->in->target == NULL || !berth_digest_validate (data->in->target->digest, error))
            {
              berth_grpc_message_free (&updated->base);
              return data->in->target ? FALSE : berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no target given");
            }
          berth_grpc_message_free ((ProtobufCMessage *) updated->target);
          updated->target = berth_api_message_copy (&data->in->target->base);
        }
    }
  berth_grpc_message_free ((ProtobufCMessage *) updated->updated_at);
  updated->updated_at = berth_schema_timestamp_new (g_get_real_time ());
  data->result = updated;
  g_autofree char *key = image_key (data->call, data->in->name);
  return berth_schema_put (txn, key, &updated->base, error);
}

static void
publish (BerthGrpcCall *call, const char *topic, const ProtobufCMessageDescriptor *desc, const Image *image)
{
  /* ImageCreate and ImageUpdate share the layout: name, labels. */
  Containerd__Services__Images__V1__ImageCreate event = CONTAINERD__SERVICES__IMAGES__V1__IMAGE_CREATE__INIT;
  event.base.descriptor = desc;
  event.name = image->name;
  event.n_labels = image->n_labels;
  event.labels = (Containerd__Services__Images__V1__ImageCreate__LabelsEntry **) image->labels;
  berth_events_publish (berth_daemon_get_events (berth_grpc_call_get_daemon (call)), berth_grpc_call_get_namespace (call),
                        topic, &event.base);
}

static ProtobufCMessage *
images_create (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Images__V1__CreateImageRequest *req = (gpointer) request;
  if (!validate_image (req->image, TRUE, error))
    return NULL;
  WriteData data = { call, req->image, NULL, 0, NULL };
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), create_txn, &data, error))
    {
      berth_grpc_message_free ((ProtobufCMessage *) data.result);
      return NULL;
    }
  publish (call, "/images/create", &containerd__services__images__v1__image_create__descriptor, data.result);
  Containerd__Services__Images__V1__CreateImageResponse *response =
    berth_grpc_message_new (&containerd__services__images__v1__create_image_response__descriptor);
  response->image = data.result;
  return &response->base;
}

static ProtobufCMessage *
images_update (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Images__V1__UpdateImageRequest *req = (gpointer) request;
  if (!validate_image (req->image, FALSE, error))
    return NULL;
  WriteData data = { call, req->image, req->update_mask ? req->update_mask->paths : NULL,
                     req->update_mask ? req->update_mask->n_paths : 0, NULL };
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), update_txn, &data, error))
    {
      berth_grpc_message_free ((ProtobufCMessage *) data.result);
      return NULL;
    }
  publish (call, "/images/update", &containerd__services__images__v1__image_update__descriptor, data.result);
  Containerd__Services__Images__V1__UpdateImageResponse *response =
    berth_grpc_message_new (&containerd__services__images__v1__update_image_response__descriptor);
  response->image = data.result;
  return &response->base;
}

static const char *
image_field (const char *const *fieldpath, gpointer object)
{
  const Image *image = object;
  if (fieldpath[0] == NULL)
    return NULL;
  if (g_str_equal (fieldpath[0], "name") && fieldpath[1] == NULL)
    return image->name;
  if (g_str_equal (fieldpath[0], "target") && image->target != NULL && fieldpath[1] != NULL && fieldpath[2] == NULL)
    {
      if (g_str_equal (fieldpath[1], "digest"))
        return image->target->digest;
      if (g_str_equal (fieldpath[1], "mediatype"))
        return image->target->media_type;
    }
  return berth_api_label_field (fieldpath, (void *const *) image->labels, image->n_labels);
}

static ProtobufCMessage *
images_list (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Images__V1__ListImagesRequest *req = (gpointer) request;
  g_autoptr (BerthFilter) filter = berth_api_filter_parse (req->filters, req->n_filters, error);
  if (filter == NULL)
    return NULL;
  g_autofree char *prefix = berth_schema_bucket_prefix (berth_grpc_call_get_namespace (call), BERTH_SCHEMA_BUCKET_IMAGES);
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  if (!berth_schema_collect (berth_daemon_get_metadata (user_data), prefix, &IMAGE_DESC, filter, image_field, NULL, out, error))
    return NULL;
  Containerd__Services__Images__V1__ListImagesResponse *response =
    berth_grpc_message_new (&containerd__services__images__v1__list_images_response__descriptor);
  response->n_images = out->len;
  g_ptr_array_set_free_func (out, NULL);
  response->images = (Image **) g_ptr_array_steal (out, NULL);
  return &response->base;
}

typedef struct {
  const char *ns;
  const char *name;
} DeleteData;

static gboolean
ops_delete_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  DeleteData *data = user_data;
  g_autofree char *key = berth_schema_image_key (data->ns, data->name);
  if (!berth_metadata_txn_delete (txn, key, NULL))
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "image \"%s\": not found", data->name);
  return TRUE;
}

gboolean
berth_api_ops_image_delete (BerthDaemon *daemon, const char *ns, const char *name, GError **error)
{
  DeleteData data = { ns, name };
  if (!berth_metadata_write (berth_daemon_get_metadata (daemon), ops_delete_txn, &data, error))
    return FALSE;
  Containerd__Services__Images__V1__ImageDelete event = CONTAINERD__SERVICES__IMAGES__V1__IMAGE_DELETE__INIT;
  event.name = (char *) name;
  berth_events_publish (berth_daemon_get_events (daemon), ns, "/images/delete", &event.base);
  return TRUE;
}

static ProtobufCMessage *
images_delete (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Images__V1__DeleteImageRequest *req = (gpointer) request;
  Image query = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
  query.name = req->name;
  if (!validate_image (&query, FALSE, error))
    return NULL;
  if (!berth_api_ops_image_delete (user_data, berth_grpc_call_get_namespace (call), req->name, error))
    return NULL;
  if (req->sync && !berth_gc_run (user_data, berth_grpc_call_get_cancellable (call), NULL, error))
    return NULL;
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

void
berth_api_register_images (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Get", BERTH_GRPC_UNARY, images_get, NULL },
    { "List", BERTH_GRPC_UNARY, images_list, NULL },
    { "Create", BERTH_GRPC_UNARY, images_create, NULL },
    { "Update", BERTH_GRPC_UNARY, images_update, NULL },
    { "Delete", BERTH_GRPC_UNARY, images_delete, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__images__v1__images__descriptor, methods, daemon);
}
