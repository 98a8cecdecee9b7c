/* berth-grpc-private.h — the gRPC server's shared state (core-internal to core/wire/):
 * the server, its connections and calls, and what the three parts give each other:
 *   berth-grpc.c        the server: methods, listening, stopping
 *   berth-grpc-http2.c  the main thread: HTTP/2 connections (nghttp2), requests in,
 *                       responses out, accepting
 *   berth-grpc-call.c   the calls: what handlers use (recv, send, defer, resume, pull),
 *                       and the worker pools that run them
 * (the threading model is described at the top of berth-grpc.c). Hidden symbols
 * (G_GNUC_INTERNAL): berthd exports none of them. */
#pragma once

#include <nghttp2/nghttp2.h>

#include "berth-grpc.h"

G_BEGIN_DECLS

/* What one stream may hold in each direction before the other side must wait. */
#define QUEUE_BUDGET (4 * 1024 * 1024)
/* A pulled server stream is pulled again while less than this is queued: enough to
 * keep a fast reader busy, little for a stalled one to hold. */
#define PULL_BUDGET (1 * 1024 * 1024)
/* One 1 MiB message with its gRPC and protobuf framing fits: containerd's clients write
 * content in 1 MiB messages, and a window of exactly 1 MiB left each message's last few
 * bytes waiting a round trip for a WINDOW_UPDATE. */
#define STREAM_WINDOW (1 * 1024 * 1024 + 64 * 1024)
#define CONNECTION_WINDOW (16 * 1024 * 1024)
/* Per connection (SETTINGS_MAX_CONCURRENT_STREAMS: the peer's extra streams are
 * refused by nghttp2) and for the whole server (RESOURCE_EXHAUSTED). */
#define MAX_CONCURRENT_STREAMS 1024
#define MAX_OPEN_CALLS 8192
/* Worker threads: cheap calls, unary calls and steps, server streams. With the main
 * thread and GLib's own, the daemon stays within 16 threads however many clients,
 * streams or containers there are. */
#define QUICK_THREADS 2
#define CALL_THREADS 6
#define STREAM_THREADS 4
/* Calls waiting for a worker past this are refused rather than queued without bound. */
#define MAX_QUEUED_JOBS 4096
/* accept() failing for lack of fds: stop listening this long (doubling up to the max). */
#define ACCEPT_BACKOFF_MIN_MS 50
#define ACCEPT_BACKOFF_MAX_MS 1000
#define READ_CHUNK (64 * 1024)
/* A request header block past this is reset: gRPC metadata is far smaller. */
#define MAX_HEADER_BYTES (64 * 1024)

typedef struct {
  char *path;
  BerthGrpcMethod method;
  const ProtobufCMessageDescriptor *input;
  const ProtobufCMessageDescriptor *output;
  gpointer user_data;
} MethodEntry;

typedef struct _Connection Connection;

struct _BerthGrpcServer {
  BerthDaemon *daemon;
  GMainContext *context;
  gsize max_message_size;
  GHashTable *methods; /* path → MethodEntry */
  BerthGrpcCallObserver observer; /* set before the server listens; NULL: none */
  GThreadPool *quick_pool;  /* Version, Health: never queued behind long work */
  GThreadPool *call_pool;   /* unary calls, resumed calls, client-stream steps */
  GThreadPool *stream_pool; /* server-streaming and blocking bidi handlers */
  GSocket *listener;
  int listen_fd;
  GSource *accept_source;
  GSource *accept_retry;
  guint accept_backoff_ms;
  gint64 accept_warned; /* monotonic µs of the last "out of fds" warning */
  GMutex retry_lock;
  GSource *pool_retry;  /* a pool could not start a thread: try again soon */
  char *socket_path;
  GHashTable *connections; /* Connection* set */
  guint open_calls;        /* main thread only */
  gboolean stopped;
};

struct _Connection {
  BerthGrpcServer *server;
  int fd;
  nghttp2_session *session;
  GSource *source;
  gpointer fd_tag;
  GByteArray *outbuf; /* bytes nghttp2 produced that the socket did not take yet */
  GHashTable *calls;  /* stream id → BerthGrpcCall* */
  gboolean closing;
  GSource *free_source;
};

typedef enum { CALL_OPEN, CALL_FINISHED, CALL_GONE } CallState;

struct _BerthGrpcCall {
  gint refcount;
  BerthGrpcServer *server;
  Connection *conn; /* main thread only; NULL once the stream is closed */
  int32_t stream_id;
  MethodEntry *entry;
  char *path;
  GHashTable *headers;
  char *namespace_;
  GCancellable *cancellable;
  GSource *deadline_source;
  gboolean deadline_passed;
  gint64 started;  /* monotonic µs at the request headers */
  gint recorded;   /* counted in the metrics (atomic: main and worker may both end it) */
  gboolean counted; /* in server->open_calls (main thread only) */

  /* main thread only */
  GByteArray *inbuf;        /* DATA bytes not yet a whole message */
  gsize owed_consume;       /* bytes received but not yet acknowledged to the peer */
  gboolean dispatched;
  gboolean response_submitted;
  gboolean rejected;        /* answered before the request was complete: ignore the rest */
  gsize header_bytes;       /* of the request's header block, against MAX_HEADER_BYTES */

  GMutex lock;
  GCond cond;
  /* requests, main → worker */
  GQueue in_queue; /* GBytes* messages */
  gsize in_bytes;
  gboolean in_closed; /* END_STREAM seen */
  /* responses, worker → main */
  GQueue out_queue; /* GBytes* frames, prefix included */
  gsize out_bytes;
  gsize out_offset; /* into the head of out_queue */
  gboolean headers_wanted;
  CallState state;
  int status;
  char *status_message;
  /* hand-offs to main, coalesced into one pending idle */
  gboolean wake_pending;
  gsize wake_consumed;
  /* deferred calls */
  gboolean deferred;
  gboolean ended; /* end_func scheduled */
  GDestroyNotify end_func;
  gpointer end_data;
  /* step streams: one step at a time, the state freed by the last job */
  gboolean step_running;
  gboolean step_done;
  gpointer step_state;
  /* pulled server streams: one pull at a time, while the out queue has room */
  BerthGrpcPullFunc pull_func;
  gpointer pull_data;
  GDestroyNotify pull_destroy;
  gboolean pull_running;
  gboolean pull_done;
};

typedef enum { JOB_HANDLER, JOB_STEP, JOB_RESUME, JOB_PULL } JobKind;

typedef struct {
  JobKind kind;
  BerthGrpcCall *call; /* a reference */
  BerthGrpcResumeFunc func;
  gpointer data;
  GDestroyNotify destroy;
} Job;

/* ---------------- calls (berth-grpc-call.c) ---------------- */

G_GNUC_INTERNAL BerthGrpcCall *call_ref (BerthGrpcCall *call);
G_GNUC_INTERNAL void call_unref (BerthGrpcCall *call);
G_GNUC_INTERNAL void call_end (BerthGrpcCall *call);
G_GNUC_INTERNAL void call_record (BerthGrpcCall *call, guint code);
G_GNUC_INTERNAL void run_job (gpointer data, gpointer pool_data);
G_GNUC_INTERNAL gboolean pool_retry (gpointer data);
G_GNUC_INTERNAL void server_push_job (BerthGrpcServer *server, GThreadPool *pool, Job *job);
G_GNUC_INTERNAL gboolean method_is_quick (const char *path);
G_GNUC_INTERNAL void call_pull_kick (BerthGrpcCall *call);
G_GNUC_INTERNAL void call_kick (BerthGrpcCall *call);

/* ---------------- connections (berth-grpc-http2.c) ---------------- */

G_GNUC_INTERNAL void call_respond_error_main (BerthGrpcCall *call, BerthErrorCode code, const char *message);
G_GNUC_INTERNAL void connection_flush (Connection *conn);
G_GNUC_INTERNAL void connection_close (Connection *conn);
G_GNUC_INTERNAL void connection_free (Connection *conn);
G_GNUC_INTERNAL void accept_watch (BerthGrpcServer *server);

G_END_DECLS
