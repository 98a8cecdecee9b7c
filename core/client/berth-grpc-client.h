/* berth-grpc-client.h — a blocking gRPC client over a unix socket (nghttp2 +
 * protobuf-c), for the berth CLI and tests. Framing is shared with the server
 * (berth-grpc-wire.h).
 *
 * One client is one HTTP/2 connection, driven by whichever thread calls into it;
 * it is not thread-safe: a program that needs two calls in flight from two threads
 * opens two clients. Within one thread several calls may be open at once (a Wait and
 * a stream of stdin, say): every blocking operation pumps the whole connection.
 *
 * Errors are BERTH_ERROR with the call's gRPC status as code and grpc-message as
 * message; a dead daemon is BERTH_ERROR_UNAVAILABLE.
 */
#pragma once

#include <glib.h>
#include <protobuf-c/protobuf-c.h>

G_BEGIN_DECLS

typedef struct _BerthGrpcClient BerthGrpcClient;
typedef struct _BerthGrpcClientCall BerthGrpcClientCall;

BerthGrpcClient *berth_grpc_client_connect (const char *socket_path, GError **error);
void berth_grpc_client_free (BerthGrpcClient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthGrpcClient, berth_grpc_client_free)

/* The containerd-namespace header of calls started after this (default "default"). */
void berth_grpc_client_set_namespace (BerthGrpcClient *client, const char *ns);
const char *berth_grpc_client_get_socket_path (BerthGrpcClient *client);

/* One request, one response (free it with protobuf_c_message_free_unpacked (m, NULL)). */
gpointer berth_grpc_client_unary (BerthGrpcClient *client, const char *path, const ProtobufCMessage *request,
                                  const ProtobufCMessageDescriptor *response_type, GError **error);

/* Streaming calls: start, send any number of requests, close the sending side, receive
 * until recv returns NULL (no error: the call ended OK). */
BerthGrpcClientCall *berth_grpc_client_call_start (BerthGrpcClient *client, const char *path,
                                                   const ProtobufCMessageDescriptor *response_type, GError **error);
gboolean berth_grpc_client_call_send (BerthGrpcClientCall *call, const ProtobufCMessage *request, GError **error);
gboolean berth_grpc_client_call_close_send (BerthGrpcClientCall *call, GError **error);
gpointer berth_grpc_client_call_recv (BerthGrpcClientCall *call, GError **error);
/* Resets the stream when it is still open. */
void berth_grpc_client_call_free (BerthGrpcClientCall *call);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthGrpcClientCall, berth_grpc_client_call_free)

G_END_DECLS
