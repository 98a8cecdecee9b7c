/* ttrpc.h — containerd's ttrpc over a unix socket, client and server, on protobuf-c.
 *
 * A frame is a 10-byte header (length u32 BE, stream id u32 BE, type u8: 1 request,
 * 2 response; flags u8) and a protobuf message: berth.ttrpc.Request {service, method,
 * payload, timeout_nano, metadata} or Response {google.rpc.Status status, payload}.
 *
 * The client makes one connection per call: calls then never wait behind one another
 * (a Wait lasts as long as its process), need no demultiplexing thread, and a shim that
 * dies fails exactly the calls it had.
 */
#pragma once

#include <gio/gio.h>
#include <protobuf-c/protobuf-c.h>

G_BEGIN_DECLS

#define SHIMV2_TTRPC_MAX_MESSAGE (4 << 20) /* ttrpc's messageLengthMax */

/* Calls @service/@method at @address ("unix:///path", "unix://@abstract" or a plain
 * path) and unpacks the reply as @reply_type (free with protobuf_c_message_free_unpacked).
 * @timeout_ms < 0: no deadline. A status in the reply becomes a BERTH_ERROR of the same
 * code; a connection that cannot be made, or is closed before the reply, UNAVAILABLE. */
ProtobufCMessage *shimv2_ttrpc_call (const char *address, const char *namespace_, const char *service,
                                     const char *method, const ProtobufCMessage *request,
                                     const ProtobufCMessageDescriptor *reply_type, int timeout_ms,
                                     GCancellable *cancellable, GError **error);

/* The first half of a call, for a reply awaited on a main loop: sends the request on a
 * new connection and returns its socket (-1 with @error). */
int shimv2_ttrpc_send (const char *address, const char *namespace_, const char *service, const char *method,
                       const ProtobufCMessage *request, int timeout_ms, GError **error);
/* The second half: TRUE once @buffer (what was read so far) holds the reply, which is
 * then in *reply_out (NULL with @error when it carries a status or is malformed). */
gboolean shimv2_ttrpc_take_reply (GByteArray *buffer, const ProtobufCMessageDescriptor *reply_type,
                                  ProtobufCMessage **reply_out, GError **error);

/* A request's handler: the reply's payload, or NULL with @error (sent as the status). */
typedef GBytes *(*ShimV2TtrpcHandler) (const char *service, const char *method, GBytes *payload,
                                       gpointer user_data, GError **error);

typedef struct _ShimV2TtrpcServer ShimV2TtrpcServer;

/* Listens on @path (replacing a stale socket) and serves requests on the global default
 * main context, where berthd's main loop runs: small, quick requests only. */
ShimV2TtrpcServer *shimv2_ttrpc_server_new (const char *path, ShimV2TtrpcHandler handler, gpointer user_data,
                                            GError **error);
void shimv2_ttrpc_server_free (ShimV2TtrpcServer *server);

G_END_DECLS
