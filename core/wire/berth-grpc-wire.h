/* berth-grpc-wire.h — the gRPC-over-HTTP/2 framing shared by the server (berth-grpc.c)
 * and the client (berth-grpc-client.c): length-prefixed messages, status trailers.
 * Core-internal. */
#pragma once

#include <glib.h>
#include <protobuf-c/protobuf-c.h>

G_BEGIN_DECLS

#define BERTH_GRPC_PREFIX 5

/* @message as one gRPC frame: flag byte 0, big-endian length, payload.
 * Fails with RESOURCE_EXHAUSTED when the message is larger than @max. */
GBytes *berth_grpc_frame_message (const ProtobufCMessage *message, gsize max, GError **error);

typedef enum {
  BERTH_GRPC_FRAME_NEED_MORE, /* @buffer holds no whole message yet */
  BERTH_GRPC_FRAME_MESSAGE,   /* *message_out is the next message's payload */
  BERTH_GRPC_FRAME_ERROR,     /* compressed or oversized: @error says which */
} BerthGrpcFrameResult;

/* Cuts the next whole message off the front of @buffer. */
BerthGrpcFrameResult berth_grpc_frame_next (GByteArray *buffer, gsize max, GBytes **message_out, GError **error);

/* FALSE when @message or a message inside it kept an unknown field numbered 0.
 * protobuf-c accepts field 0 in a multi-byte varint key ("80 00") but packs it as
 * "00", which it then refuses to unpack: a request carrying one would make every copy
 * or stored record of it unreadable. The server refuses such requests. */
gboolean berth_proto_message_fields_valid (const ProtobufCMessage *message);

/* grpc-message values are percent-encoded (the gRPC HTTP/2 spec). */
char *berth_grpc_status_message_encode (const char *message);
char *berth_grpc_status_message_decode (const char *value);

/* containerd.types.Mount messages (protobuf-c's counted string arrays) as a BerthMount
 * list (berth_mount_list_new), for the daemon's handlers and for clients alike. */
struct Containerd__Types__Mount;
GPtrArray *berth_proto_mounts_to_list (struct Containerd__Types__Mount **mounts, size_t n);

G_END_DECLS
