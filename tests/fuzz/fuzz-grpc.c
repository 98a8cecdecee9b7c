/* fuzz-grpc.c — gRPC message framing and protobuf decoding of every request type the
 * server accepts. The methods come from the server's own table (berth_api_register_all
 * on a server that never listens), so a new service is fuzzed as soon as it is
 * registered. Input: one byte choosing the method, then a byte stream cut into frames
 * with berth_grpc_frame_next exactly as a connection's DATA is; each message is
 * unpacked as that method's request, walked field by field, packed again (the size must
 * agree) and freed. */
#include "config.h"

#include <string.h>

#include "wire/berth-grpc.h"
#include "wire/berth-grpc-wire.h"
#include "services/containerd/berth-api.h"
#include "fuzz.h"

#define MAX_MESSAGE (64 * 1024)

static BerthGrpcServer *server;
static GStrv methods;
static guint n_methods;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  server = berth_grpc_server_new (NULL, MAX_MESSAGE);
  berth_api_register_all (server, NULL);
  methods = berth_grpc_server_list_methods (server);
  n_methods = g_strv_length (methods);
  g_assert_cmpuint (n_methods, >, 50);
  return 0;
}

/* protobuf-c's decoder is the system library, built without coverage: libFuzzer would
 * see none of the message structure it reaches. So every decoded message is walked here
 * (reading every string and byte, for ASan), and each (message type, field, how many)
 * bumps one of these extra counters, which libFuzzer takes as coverage. */
__attribute__ ((used, section ("__libfuzzer_extra_counters"))) static uint8_t field_counters[1 << 14];

static void
bump (const ProtobufCMessageDescriptor *desc, unsigned field, size_t count)
{
  guint h = g_str_hash (desc->name) * 31u + field * 7u + (guint) MIN (count, 3);
  field_counters[h % G_N_ELEMENTS (field_counters)]++;
}

static gsize walked_bytes;

static void
walk (const ProtobufCMessage *message, guint depth)
{
  const ProtobufCMessageDescriptor *desc = message->descriptor;
  g_assert_cmpuint (desc->magic, ==, PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
  g_assert_cmpuint (depth, <, 200);
  for (unsigned i = 0; i < desc->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &desc->fields[i];
      const char *member = (const char *) message + f->offset;
      size_t n = 1;
      const char *const *elements = (const char *const *) member; /* pointer-typed members */
      gboolean repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
      if (repeated)
        {
          n = *(const size_t *) ((const char *) message + f->quantifier_offset);
          elements = *(const char *const *const *) member;
          g_assert_true (n == 0 || elements != NULL);
        }
      else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        n = *(const uint32_t *) ((const char *) message + f->quantifier_offset) == f->id;
      else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 && f->type != PROTOBUF_C_TYPE_MESSAGE
               && f->type != PROTOBUF_C_TYPE_STRING)
        n = *(const protobuf_c_boolean *) ((const char *) message + f->quantifier_offset);
      else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        n = elements[0] != NULL;
      bump (desc, i, n);
      if (n == 0)
        continue;
      switch (f->type)
        {
        case PROTOBUF_C_TYPE_MESSAGE:
          for (size_t k = 0; k < n; k++)
            if (elements[k] != NULL)
              walk ((const ProtobufCMessage *) elements[k], depth + 1);
          break;
        case PROTOBUF_C_TYPE_STRING:
          for (size_t k = 0; k < n; k++)
            if (elements[k] != NULL)
              walked_bytes += strlen (elements[k]);
          break;
        case PROTOBUF_C_TYPE_BYTES:
          for (size_t k = 0; k < n; k++)
            {
              const ProtobufCBinaryData *bd = repeated ? (const ProtobufCBinaryData *) elements + k
                                                       : (const ProtobufCBinaryData *) member;
              for (size_t b = 0; b < bd->len; b++)
                walked_bytes += bd->data[b] != 0;
            }
          break;
        default:
          break;
        }
    }
}

static void
decode (const char *path, const ProtobufCMessageDescriptor *input, GBytes *payload)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (payload, &len);
  ProtobufCMessage *message = protobuf_c_message_unpack (input, NULL, len, data);
  if (message == NULL)
    return;
  if (!berth_proto_message_fields_valid (message))
    {
      /* What the server refuses (see berth-grpc-wire.h) need not survive a copy. */
      protobuf_c_message_free_unpacked (message, NULL);
      return;
    }
  g_assert (protobuf_c_message_check (message));
  walk (message, 0);
  gsize packed_size = protobuf_c_message_get_packed_size (message);
  g_autofree guint8 *packed = g_malloc (packed_size + 1);
  g_assert_cmpuint (protobuf_c_message_pack (message, packed), ==, packed_size);
  /* What we pack must unpack again. */
  ProtobufCMessage *again = protobuf_c_message_unpack (input, NULL, packed_size, packed);
  if (again == NULL)
    {
      g_autofree char *in_hex = g_strndup ("", 0), *out_hex = NULL;
      GString *h = g_string_new (NULL);
      for (gsize i = 0; i < MIN (len, 64); i++)
        g_string_append_printf (h, "%02x", data[i]);
      g_string_append (h, " -> ");
      for (gsize i = 0; i < MIN (packed_size, 64); i++)
        g_string_append_printf (h, "%02x", packed[i]);
      out_hex = g_string_free (h, FALSE);
      FUZZ_FAIL ("%s: a %s packs to %zu bytes that do not unpack: %s", path, input->name, packed_size, out_hex);
    }
  g_assert_cmpuint (protobuf_c_message_get_packed_size (again), ==, packed_size);
  protobuf_c_message_free_unpacked (again, NULL);
  protobuf_c_message_free_unpacked (message, NULL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const char *path = methods[data[0] % n_methods];
  const ProtobufCMessageDescriptor *input = berth_grpc_server_get_input (server, path);
  g_assert_nonnull (input);

  g_autoptr (GByteArray) buffer = g_byte_array_new ();
  /* Arrive in pieces, as DATA frames do: the rest of the input in chunks of 1 + data[1] % 64. */
  gsize chunk = size > 1 ? 1 + data[1] % 64 : 1;
  for (gsize off = 1; off < size; off += chunk)
    {
      g_byte_array_append (buffer, data + off, MIN (chunk, size - off));
      for (;;)
        {
          g_autoptr (GBytes) payload = NULL;
          g_autoptr (GError) error = NULL;
          BerthGrpcFrameResult r = berth_grpc_frame_next (buffer, MAX_MESSAGE, &payload, &error);
          if (r == BERTH_GRPC_FRAME_NEED_MORE)
            break;
          if (r == BERTH_GRPC_FRAME_ERROR)
            {
              g_assert_nonnull (error);
              return 0; /* the server ends the call here */
            }
          decode (path, input, payload);
        }
    }
  return 0;
}
