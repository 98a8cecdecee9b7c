/* fuzz-grpc.c — gRPC message framing and protobuf decoding of every request type the
 * server accepts. The methods come from the server's own table (berth_api_register_all
 * on a server that never listens), so a new service is fuzzed as soon as it is
 * registered. Input: one byte choosing the method, then a byte stream cut into frames
 * with berth_grpc_frame_next exactly as a connection's DATA is; each message is
 * unpacked as that method's request, packed again (the size must agree) and freed. */
#include "config.h"

#include <string.h>

#include "berth-grpc.h"
#include "berth-grpc-wire.h"
#include "api/berth-api.h"
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

static void
decode (const ProtobufCMessageDescriptor *input, GBytes *payload)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (payload, &len);
  ProtobufCMessage *message = protobuf_c_message_unpack (input, NULL, len, data);
  if (message == NULL)
    return;
  g_assert (protobuf_c_message_check (message));
  gsize packed_size = protobuf_c_message_get_packed_size (message);
  g_autofree guint8 *packed = g_malloc (packed_size + 1);
  g_assert_cmpuint (protobuf_c_message_pack (message, packed), ==, packed_size);
  /* What we pack must unpack again. */
  ProtobufCMessage *again = protobuf_c_message_unpack (input, NULL, packed_size, packed);
  g_assert_nonnull (again);
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
          decode (input, payload);
        }
    }
  return 0;
}
