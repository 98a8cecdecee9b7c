/* berth-grpc.h — the gRPC server (core-internal): HTTP/2 over a unix socket with
 * nghttp2, protobuf-c messages, a dispatch table from "/pkg.Service/Method" to handlers.
 *
 * Threading contract, so service code stays plain synchronous C:
 *  - nghttp2 sessions live on the daemon's main context and nothing else touches them.
 *  - Every handler runs in a worker thread, never on the main loop. It may block (disk,
 *    mounts, LMDB writes, fork/exec). A unary handler returns its response or sets a
 *    GError (mapped to a gRPC status by berth_error_to_code, message = error->message).
 *  - Streaming handlers get a BerthGrpcStream and call send/recv, which block. send
 *    blocks while the client's flow-control window is full and the per-stream queue is
 *    at its bound, so a slow reader never makes the daemon buffer unbounded data.
 *    Server streams that may be long (Content.Read, the List streams) pull instead
 *    (berth_grpc_call_pull): no thread waits for a slow reader.
 *  - A cancelled call (RST_STREAM, client gone, grpc-timeout passed) cancels the
 *    call's GCancellable; send/recv then fail with CANCELLED / DEADLINE_EXCEEDED.
 *
 * No call holds a thread while it only waits (ARCHITECTURE.md, "Concurrency model"):
 *  - Workers are bounded pools: a small one for cheap calls (Version, Health) so they
 *    answer while every other worker is busy, one for unary calls and client-stream
 *    steps, one for server-streaming and blocking bidi handlers. Calls queue when the
 *    pools are busy; past a bound, and past a global number of open calls, new calls
 *    are refused with RESOURCE_EXHAUSTED.
 *  - A handler that waits for an event (a task's exit, published events) defers the
 *    call (berth_grpc_call_defer), returns, and ends it later from any thread with
 *    berth_grpc_call_complete, or hands blocking follow-up work back to the workers
 *    with berth_grpc_call_resume.
 *  - Client/bidi streams with a step function get no thread of their own: the step runs
 *    on a worker for each request message as it arrives, one at a time per call.
 */
#pragma once

#include <gio/gio.h>
#include <protobuf-c/protobuf-c.h>

G_BEGIN_DECLS

typedef struct _BerthDaemon BerthDaemon;
typedef struct _BerthGrpcCall BerthGrpcCall;

/* What every handler can ask of the call it serves. */
/* The "containerd-namespace" header, "default" when absent; validated
 * ([A-Za-z0-9][A-Za-z0-9._-]*, ≤ 76 chars) before the handler runs. */
const char *berth_grpc_call_get_namespace (BerthGrpcCall *call);
/* Any request header (lower-case name), NULL when absent. */
const char *berth_grpc_call_get_header (BerthGrpcCall *call, const char *name);
GCancellable *berth_grpc_call_get_cancellable (BerthGrpcCall *call);
BerthDaemon *berth_grpc_call_get_daemon (BerthGrpcCall *call);
/* Full method path, "/containerd.services.version.v1.Version/Version". */
const char *berth_grpc_call_get_method (BerthGrpcCall *call);

/* Unary: returns a response (freed by the server with protobuf_c_message_free_unpacked
 * semantics — allocate it with berth_grpc_message_new / g_malloc'd fields, see below)
 * or NULL with @error set. */
typedef ProtobufCMessage *(*BerthGrpcUnaryFunc) (BerthGrpcCall *call, const ProtobufCMessage *request,
                                                 gpointer user_data, GError **error);

/* Streaming (server-, client- or bidi-): the handler pulls requests with recv and
 * pushes responses with send; returning TRUE ends the call with status OK, FALSE with
 * @error's status. For server-streaming the single request is passed as @request;
 * for client/bidi streaming @request is NULL and the handler calls recv. */
typedef gboolean (*BerthGrpcStreamFunc) (BerthGrpcCall *call, const ProtobufCMessage *request,
                                         gpointer user_data, GError **error);

/* Blocks for the next request message; returns NULL with no error at end of stream.
 * Free the result with protobuf_c_message_free_unpacked (msg, NULL). */
ProtobufCMessage *berth_grpc_call_recv (BerthGrpcCall *call, GError **error);
/* Queues one response message (serialised before it returns; @message stays the
 * caller's). Blocks under back-pressure. */
gboolean berth_grpc_call_send (BerthGrpcCall *call, const ProtobufCMessage *message, GError **error);
/* Sends response headers now (some clients, e.g. Events.Subscribe's, wait for them
 * before the first message). */
void berth_grpc_call_send_headers (BerthGrpcCall *call);

/* Deferred calls. From a handler (unary or streaming): the call stays open after the
 * handler returns (NULL / FALSE with no error). @end_func runs once on the main context
 * when the call is over for any reason (completed, client gone, deadline), after which
 * completing it does nothing; it is where the handler's triggers are disconnected. A
 * call that ended before it was deferred gets @end_func at once (on the main context). */
void berth_grpc_call_defer (BerthGrpcCall *call, GDestroyNotify end_func, gpointer end_data);
/* Ends a deferred call, from any thread: unary calls with @response (transfer full),
 * or with @error (transfer full; NULL for a streaming call's OK). Later calls do nothing. */
void berth_grpc_call_complete (BerthGrpcCall *call, ProtobufCMessage *response, GError *error);
/* Blocking follow-up work for a deferred call: @func runs on a worker and what it
 * returns ends the call as a unary handler's return would. @destroy frees @data. */
typedef ProtobufCMessage *(*BerthGrpcResumeFunc) (BerthGrpcCall *call, gpointer data, GError **error);
void berth_grpc_call_resume (BerthGrpcCall *call, BerthGrpcResumeFunc func, gpointer data, GDestroyNotify destroy);
/* Queues a response message without waiting: FALSE with RESOURCE_EXHAUSTED when the
 * client has not taken what was queued before (its queue is at its bound), or with
 * CANCELLED when the call is over. For feeds that must not block (events). */
gboolean berth_grpc_call_try_send (BerthGrpcCall *call, const ProtobufCMessage *message, GError **error);
/* Server streams without a thread while the client is slow. From a server-streaming
 * handler: @pull runs on a worker whenever the call's response queue has room (never
 * two at once), sends the next message(s) with berth_grpc_call_send — which then never
 * waits — and returns TRUE while there is more; FALSE ends the call, with @error's
 * status or OK. @destroy frees @data when the stream is over for any reason. The call
 * is deferred: the handler returns FALSE with no error. So N stalled readers hold no
 * thread and at most the queue's bound (4 MB) plus one pull's output each. */
typedef gboolean (*BerthGrpcPullFunc) (BerthGrpcCall *call, gpointer data, GError **error);
void berth_grpc_call_pull (BerthGrpcCall *call, BerthGrpcPullFunc func, gpointer data, GDestroyNotify destroy);
/* A list already in memory, pulled: @items (transfer full) go out as the client reads,
 * @batch per response in the response type's repeated message field @field (or one per
 * response when @field is a single message). Returns FALSE with no error: the
 * handler's return value. */
gboolean berth_grpc_call_send_list (BerthGrpcCall *call, GPtrArray *items, const char *field, guint batch);
BerthGrpcCall *berth_grpc_call_ref (BerthGrpcCall *call);
void berth_grpc_call_unref (BerthGrpcCall *call);

/* Client/bidi streaming without a thread per stream: @step runs on a worker for each
 * request message (NULL at the end of the client's stream), never two at once for one
 * call. *@state starts NULL and is the handler's; the method's @state_free frees it
 * when the call is over. Return TRUE to take the next message; FALSE ends the call,
 * with @error's status or OK when @error is not set. */
typedef gboolean (*BerthGrpcStepFunc) (BerthGrpcCall *call, const ProtobufCMessage *message, gpointer *state,
                                       gpointer user_data, GError **error);

typedef enum {
  BERTH_GRPC_UNARY,
  BERTH_GRPC_SERVER_STREAMING,
  BERTH_GRPC_CLIENT_STREAMING,
  BERTH_GRPC_BIDI_STREAMING,
} BerthGrpcMethodKind;

typedef struct {
  const char *name;    /* method name within the service, e.g. "Version" */
  BerthGrpcMethodKind kind;
  BerthGrpcUnaryFunc unary;   /* for BERTH_GRPC_UNARY */
  BerthGrpcStreamFunc stream; /* for the streaming kinds */
  BerthGrpcStepFunc step;     /* client/bidi streaming instead of @stream */
  GDestroyNotify state_free;  /* frees a step's state */
} BerthGrpcMethod;

/* Memory of unary responses: the server frees a response with
 * protobuf_c_message_free_unpacked (response, &berth_grpc_allocator); build responses
 * so that every pointer in them is owned and g_malloc'd (g_strdup, g_new0, …).
 * berth_grpc_message_free frees such a tree. */
extern ProtobufCAllocator berth_grpc_allocator;
void berth_grpc_message_free (ProtobufCMessage *message);
/* g_malloc0 + protobuf init for @descriptor. */
gpointer berth_grpc_message_new (const ProtobufCMessageDescriptor *descriptor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ProtobufCMessage, berth_grpc_message_free)

typedef struct _BerthGrpcServer BerthGrpcServer;

BerthGrpcServer *berth_grpc_server_new (BerthDaemon *daemon, gsize max_message_size);
/* Registers the methods of @service (protoc-c descriptor: gives the full service name
 * and each method's input/output types); @methods is terminated by a { NULL } entry;
 * methods of the service not listed answer UNIMPLEMENTED. */
/* Called once per finished call, from any thread, with the method's path (NULL for a
 * path no service has), the gRPC status code and how long the call took: how the
 * metrics count calls without the transport knowing the exporter. Set it before the
 * server listens. */
typedef void (*BerthGrpcCallObserver) (const char *method, guint code, gint64 duration_usec);
void berth_grpc_server_set_call_observer (BerthGrpcServer *server, BerthGrpcCallObserver observer);
void berth_grpc_server_add_service (BerthGrpcServer *server, const ProtobufCServiceDescriptor *service,
                                    const BerthGrpcMethod *methods, gpointer user_data);
/* The paths of every registered method, sorted ("/pkg.Service/Method"), and the request
 * type a method's messages are unpacked as (NULL for an unknown path). For tests and
 * the request fuzz target (tests/fuzz/fuzz-grpc.c). */
GStrv berth_grpc_server_list_methods (BerthGrpcServer *server);
const ProtobufCMessageDescriptor *berth_grpc_server_get_input (BerthGrpcServer *server, const char *path);
/* Listens on @path (unlinks a stale socket first), mode 0660, group @group (NULL:
 * keep). Or, under socket activation, adopt @fd. */
gboolean berth_grpc_server_listen (BerthGrpcServer *server, const char *path, const char *group, GError **error);
gboolean berth_grpc_server_adopt_fd (BerthGrpcServer *server, int fd, GError **error);
/* Stops accepting, cancels every call, closes every connection, removes the socket. */
void berth_grpc_server_stop (BerthGrpcServer *server);
void berth_grpc_server_free (BerthGrpcServer *server);

G_END_DECLS
