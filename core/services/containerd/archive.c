/* archive.c — berth.services.archive.v1.Archive, berth's extension: image archives
 * streamed to and from berth-image-archive. The call's message stream is adapted to a
 * GInputStream / GOutputStream so the archive code stays stream-agnostic. */
#include "config.h"

#include <berth/berth-error.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "image/berth-image-archive.h"
#include "berth/services/archive/v1/archive.pb-c.h"

#define EXPORT_CHUNK (256 * 1024)

/* ---- requests as an input stream ---- */

#define BERTH_TYPE_CALL_INPUT_STREAM (berth_call_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (BerthCallInputStream, berth_call_input_stream, BERTH, CALL_INPUT_STREAM, GInputStream)

struct _BerthCallInputStream {
  GInputStream parent;
  BerthGrpcCall *call;
  Berth__Services__Archive__V1__ImportRequest *current;
  gsize offset;
  gboolean eof;
  char *base_name; /* from the first message */
};

G_DEFINE_FINAL_TYPE (BerthCallInputStream, berth_call_input_stream, G_TYPE_INPUT_STREAM)

static void
free_request (BerthCallInputStream *self)
{
  if (self->current != NULL)
    protobuf_c_message_free_unpacked (&self->current->base, NULL);
  self->current = NULL;
  self->offset = 0;
}

/* Takes the next request; FALSE at the end of the stream or on error. */
static gboolean
next_request (BerthCallInputStream *self, GError **error)
{
  free_request (self);
  if (self->eof)
    return FALSE;
  ProtobufCMessage *message = berth_grpc_call_recv (self->call, error);
  if (message == NULL)
    {
      self->eof = TRUE;
      return FALSE;
    }
  self->current = (gpointer) message;
  if (self->base_name == NULL)
    self->base_name = g_strdup (self->current->base_name ? self->current->base_name : "");
  return TRUE;
}

static gssize
call_input_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
  (void) cancellable;
  BerthCallInputStream *self = BERTH_CALL_INPUT_STREAM (stream);
  while (self->current == NULL || self->offset >= self->current->data.len)
    {
      GError *local = NULL;
      if (!next_request (self, &local))
        {
          if (local != NULL)
            {
              g_propagate_error (error, local);
              return -1;
            }
          return 0;
        }
    }
  gsize n = MIN (count, self->current->data.len - self->offset);
  memcpy (buffer, self->current->data.data + self->offset, n);
  self->offset += n;
  return n;
}

static void
call_input_finalize (GObject *object)
{
  BerthCallInputStream *self = BERTH_CALL_INPUT_STREAM (object);
  free_request (self);
  g_free (self->base_name);
  G_OBJECT_CLASS (berth_call_input_stream_parent_class)->finalize (object);
}

static void
berth_call_input_stream_class_init (BerthCallInputStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = call_input_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = call_input_read;
}

static void
berth_call_input_stream_init (BerthCallInputStream *self)
{
  (void) self;
}

/* ---- responses as an output stream ---- */

#define BERTH_TYPE_CALL_OUTPUT_STREAM (berth_call_output_stream_get_type ())
G_DECLARE_FINAL_TYPE (BerthCallOutputStream, berth_call_output_stream, BERTH, CALL_OUTPUT_STREAM, GOutputStream)

struct _BerthCallOutputStream {
  GOutputStream parent;
  BerthGrpcCall *call;
};

G_DEFINE_FINAL_TYPE (BerthCallOutputStream, berth_call_output_stream, G_TYPE_OUTPUT_STREAM)

static gssize
call_output_write (GOutputStream *stream, const void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
  (void) cancellable;
  BerthCallOutputStream *self = BERTH_CALL_OUTPUT_STREAM (stream);
  gsize n = MIN (count, EXPORT_CHUNK);
  Berth__Services__Archive__V1__ExportResponse response = BERTH__SERVICES__ARCHIVE__V1__EXPORT_RESPONSE__INIT;
  response.data.data = (guint8 *) buffer;
  response.data.len = n;
  if (!berth_grpc_call_send (self->call, &response.base, error))
    return -1;
  return n;
}

static void
berth_call_output_stream_class_init (BerthCallOutputStreamClass *klass)
{
  G_OUTPUT_STREAM_CLASS (klass)->write_fn = call_output_write;
}

static void
berth_call_output_stream_init (BerthCallOutputStream *self)
{
  (void) self;
}

/* ---- handlers ---- */

typedef struct {
  BerthGrpcCall *call;
  GError *error; /* the first failed send; later progress is dropped */
} Progress;

static void
report_blob (const char *digest, gint64 size, gpointer user_data)
{
  Progress *progress = user_data;
  if (progress->error != NULL)
    return;
  Berth__Services__Archive__V1__ImportResponse response = BERTH__SERVICES__ARCHIVE__V1__IMPORT_RESPONSE__INIT;
  response.digest = (char *) digest;
  response.size = size;
  berth_grpc_call_send (progress->call, &response.base, &progress->error);
}

static gboolean
archive_import (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  (void) request;
  BerthDaemon *daemon = user_data;
  g_autoptr (BerthCallInputStream) input = g_object_new (BERTH_TYPE_CALL_INPUT_STREAM, NULL);
  input->call = call;
  /* The base name rides on the first message: read it before the archive starts. */
  if (!next_request (input, error))
    return (error && *error) ? FALSE : berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no archive data was sent");
  Progress progress = { call, NULL };
  g_autoptr (GPtrArray) names = berth_image_archive_import_full (
    daemon, berth_grpc_call_get_namespace (call), G_INPUT_STREAM (input), *input->base_name ? input->base_name : NULL,
    report_blob, &progress, berth_grpc_call_get_cancellable (call), error);
  if (progress.error != NULL)
    {
      g_clear_error (error);
      g_propagate_error (error, progress.error);
      return FALSE;
    }
  if (names == NULL)
    return FALSE;
  Berth__Services__Archive__V1__ImportResponse response = BERTH__SERVICES__ARCHIVE__V1__IMPORT_RESPONSE__INIT;
  response.images = (char **) names->pdata;
  response.n_images = names->len;
  return berth_grpc_call_send (call, &response.base, error);
}

static gboolean
archive_export (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Berth__Services__Archive__V1__ExportRequest *req = (gpointer) request;
  if (req->n_names == 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no image names to export");
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  for (gsize i = 0; i < req->n_names; i++)
    g_ptr_array_add (names, req->names[i]);
  g_ptr_array_add (names, NULL);
  g_autoptr (BerthCallOutputStream) output = g_object_new (BERTH_TYPE_CALL_OUTPUT_STREAM, NULL);
  output->call = call;
  return berth_image_archive_export (user_data, berth_grpc_call_get_namespace (call),
                                     (const char *const *) names->pdata, G_OUTPUT_STREAM (output),
                                     berth_grpc_call_get_cancellable (call), error);
}

void
berth_api_register_archive (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Import", BERTH_GRPC_BIDI_STREAMING, NULL, archive_import },
    { "Export", BERTH_GRPC_SERVER_STREAMING, NULL, archive_export },
    { NULL },
  };
  berth_grpc_server_add_service (server, &berth__services__archive__v1__archive__descriptor, methods, daemon);
}
