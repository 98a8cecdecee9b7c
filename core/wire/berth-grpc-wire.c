/* berth-grpc-wire.c — gRPC message framing shared by server and client. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-types.h>
#include "berth-grpc-wire.h"
#include "github.com/containerd/containerd/api/types/mount.pb-c.h"

GBytes *
berth_grpc_frame_message (const ProtobufCMessage *message, gsize max, GError **error)
{
  gsize size = protobuf_c_message_get_packed_size (message);
  if (size > max)
    {
      berth_throw (error, BERTH_ERROR_RESOURCE_EXHAUSTED,
                   "message of %zu bytes is larger than the maximum message size (%zu bytes)", size, max);
      return NULL;
    }
  guint8 *buf = g_malloc (BERTH_GRPC_PREFIX + size);
  buf[0] = 0;
  buf[1] = (size >> 24) & 0xff;
  buf[2] = (size >> 16) & 0xff;
  buf[3] = (size >> 8) & 0xff;
  buf[4] = size & 0xff;
  protobuf_c_message_pack (message, buf + BERTH_GRPC_PREFIX);
  return g_bytes_new_take (buf, BERTH_GRPC_PREFIX + size);
}

BerthGrpcFrameResult
berth_grpc_frame_next (GByteArray *buffer, gsize max, GBytes **message_out, GError **error)
{
  if (buffer->len < BERTH_GRPC_PREFIX)
    return BERTH_GRPC_FRAME_NEED_MORE;
  const guint8 *p = buffer->data;
  guint32 size = ((guint32) p[1] << 24) | ((guint32) p[2] << 16) | ((guint32) p[3] << 8) | p[4];
  if (p[0] != 0)
    {
      berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "compressed messages are not supported");
      return BERTH_GRPC_FRAME_ERROR;
    }
  if (size > max)
    {
      berth_throw (error, BERTH_ERROR_RESOURCE_EXHAUSTED, "received message larger than max (%u vs. %zu)", size, max);
      return BERTH_GRPC_FRAME_ERROR;
    }
  if (buffer->len < BERTH_GRPC_PREFIX + size)
    return BERTH_GRPC_FRAME_NEED_MORE;
  *message_out = g_bytes_new (p + BERTH_GRPC_PREFIX, size);
  g_byte_array_remove_range (buffer, 0, BERTH_GRPC_PREFIX + size);
  return BERTH_GRPC_FRAME_MESSAGE;
}

gboolean
berth_proto_message_fields_valid (const ProtobufCMessage *message)
{
  for (unsigned i = 0; i < message->n_unknown_fields; i++)
    if (message->unknown_fields[i].tag == 0)
      return FALSE;
  const ProtobufCMessageDescriptor *desc = message->descriptor;
  for (unsigned i = 0; i < desc->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &desc->fields[i];
      if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        continue;
      const char *base = (const char *) message;
      if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *) (base + f->quantifier_offset) != f->id)
        continue; /* the union holds another member */
      if (f->label == PROTOBUF_C_LABEL_REPEATED)
        {
          size_t n = *(const size_t *) (base + f->quantifier_offset);
          ProtobufCMessage *const *elements = *(ProtobufCMessage *const *const *) (base + f->offset);
          for (size_t k = 0; k < n; k++)
            if (elements[k] != NULL && !berth_proto_message_fields_valid (elements[k]))
              return FALSE;
        }
      else
        {
          const ProtobufCMessage *sub = *(const ProtobufCMessage *const *) (base + f->offset);
          if (sub != NULL && !berth_proto_message_fields_valid (sub))
            return FALSE;
        }
    }
  return TRUE;
}

char *
berth_grpc_status_message_encode (const char *message)
{
  return g_uri_escape_string (message ? message : "", " ", FALSE);
}

char *
berth_grpc_status_message_decode (const char *value)
{
  if (value == NULL)
    return NULL;
  char *decoded = g_uri_unescape_string (value, NULL);
  return decoded ? decoded : g_strdup (value);
}

GPtrArray *
berth_proto_mounts_to_list (Containerd__Types__Mount **mounts, size_t n)
{
  GPtrArray *out = berth_mount_list_new ();
  for (size_t i = 0; i < n; i++)
    {
      g_autofree const char **options = g_new0 (const char *, mounts[i]->n_options + 1);
      for (size_t j = 0; j < mounts[i]->n_options; j++)
        options[j] = mounts[i]->options[j];
      BerthMount *m = berth_mount_new (mounts[i]->type, mounts[i]->source, options);
      m->target = mounts[i]->target && *mounts[i]->target ? g_strdup (mounts[i]->target) : NULL;
      g_ptr_array_add (out, m);
    }
  return out;
}
