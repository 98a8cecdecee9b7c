/* berth-grpc.c — gRPC over HTTP/2 (nghttp2) on a unix socket, on the GLib main loop.
 *
 * The main context owns every nghttp2 session. Each call's handler runs in a worker
 * thread; the two sides meet in the call's mutex-protected queues:
 *  - requests:  main parses DATA frames into messages and queues them; the worker pops.
 *    Bytes are acknowledged to the peer (window update) only while the queue is under
 *    its budget, so a client cannot make us buffer without bound.
 *  - responses: the worker serialises a message into the out queue and waits while the
 *    queue is over its budget; main's data provider drains it as the peer's flow-control
 *    window allows, deferring (NGHTTP2_ERR_DEFERRED) when the queue is empty.
 * Worker → main hand-offs go through g_main_context_invoke.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>
#include <nghttp2/nghttp2.h>

#include <berth/berth-error.h>
#include "berth-identifiers.h"
#include "berth-grpc.h"
#include "berth-grpc-wire.h"
#include "berth-metrics.h"

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "berth-api"

/* What one stream may hold in each direction before the other side must wait. */
#define QUEUE_BUDGET (4 * 1024 * 1024)
#define STREAM_WINDOW (1 * 1024 * 1024)
#define CONNECTION_WINDOW (16 * 1024 * 1024)
#define MAX_CONCURRENT_STREAMS 1000
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
  GThreadPool *unary_pool;
  GSocket *listener;
  GSource *accept_source;
  char *socket_path;
  GHashTable *connections; /* Connection* set */
  gboolean stopped;
  GMutex streams_lock;
  GCond streams_done;
  guint active_streams; /* streaming handlers still running in their threads */
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
};

static void connection_flush (Connection *conn);
static void connection_close (Connection *conn);
static void call_respond_error_main (BerthGrpcCall *call, BerthErrorCode code, const char *message);

/* ---------------- calls ---------------- */

static BerthGrpcCall *
call_ref (BerthGrpcCall *call)
{
  g_atomic_int_inc (&call->refcount);
  return call;
}

static void
call_unref (BerthGrpcCall *call)
{
  if (!g_atomic_int_dec_and_test (&call->refcount))
    return;
  g_free (call->path);
  g_clear_pointer (&call->headers, g_hash_table_unref);
  g_free (call->namespace_);
  g_clear_object (&call->cancellable);
  if (call->deadline_source != NULL)
    {
      g_source_destroy (call->deadline_source);
      g_source_unref (call->deadline_source);
    }
  g_clear_pointer (&call->inbuf, g_byte_array_unref);
  g_queue_clear_full (&call->in_queue, (GDestroyNotify) g_bytes_unref);
  g_queue_clear_full (&call->out_queue, (GDestroyNotify) g_bytes_unref);
  g_free (call->status_message);
  g_mutex_clear (&call->lock);
  g_cond_clear (&call->cond);
  g_free (call);
}

const char *
berth_grpc_call_get_namespace (BerthGrpcCall *call)
{
  return call->namespace_;
}

const char *
berth_grpc_call_get_header (BerthGrpcCall *call, const char *name)
{
  return g_hash_table_lookup (call->headers, name);
}

GCancellable *
berth_grpc_call_get_cancellable (BerthGrpcCall *call)
{
  return call->cancellable;
}

BerthDaemon *
berth_grpc_call_get_daemon (BerthGrpcCall *call)
{
  return call->server->daemon;
}

const char *
berth_grpc_call_get_method (BerthGrpcCall *call)
{
  return call->path;
}

/* ---------------- messages ---------------- */

static void *
allocator_alloc (void *data, size_t size)
{
  return g_malloc (size);
}

static void
allocator_free (void *data, void *pointer)
{
  g_free (pointer);
}

ProtobufCAllocator berth_grpc_allocator = { allocator_alloc, allocator_free, NULL };

void
berth_grpc_message_free (ProtobufCMessage *message)
{
  if (message != NULL)
    protobuf_c_message_free_unpacked (message, &berth_grpc_allocator);
}

gpointer
berth_grpc_message_new (const ProtobufCMessageDescriptor *descriptor)
{
  ProtobufCMessage *message = g_malloc0 (descriptor->sizeof_message);
  protobuf_c_message_init (descriptor, message);
  return message;
}

/* ---------------- worker → main ---------------- */

typedef struct {
  BerthGrpcCall *call;
  gsize consumed; /* request bytes the worker took off the queue */
} Wakeup;

static gboolean
wakeup_main (gpointer data)
{
  Wakeup *wakeup = data;
  BerthGrpcCall *call = wakeup->call;
  Connection *conn = call->conn;
  if (conn != NULL && !conn->closing)
    {
      if (wakeup->consumed > 0 && call->owed_consume > 0)
        {
          /* The worker made room: acknowledge what we held back. */
          gsize n = call->owed_consume;
          call->owed_consume = 0;
          nghttp2_session_consume (conn->session, call->stream_id, n);
        }
      g_mutex_lock (&call->lock);
      gboolean want_response = call->headers_wanted || call->out_queue.length > 0 || call->state == CALL_FINISHED;
      g_mutex_unlock (&call->lock);
      if (want_response && !call->response_submitted)
        call_respond_error_main (call, 0, NULL);
      else if (call->response_submitted)
        nghttp2_session_resume_data (conn->session, call->stream_id);
      connection_flush (conn);
    }
  call_unref (call);
  g_free (wakeup);
  return G_SOURCE_REMOVE;
}

static void
wake_main (BerthGrpcCall *call, gsize consumed)
{
  Wakeup *wakeup = g_new0 (Wakeup, 1);
  wakeup->call = call_ref (call);
  wakeup->consumed = consumed;
  g_main_context_invoke (call->server->context, wakeup_main, wakeup);
}

static gboolean
call_check_alive (BerthGrpcCall *call, GError **error)
{
  if (call->deadline_passed)
    return berth_throw (error, BERTH_ERROR_DEADLINE_EXCEEDED, "deadline exceeded");
  if (call->state == CALL_GONE || g_cancellable_is_cancelled (call->cancellable))
    return berth_throw (error, BERTH_ERROR_CANCELLED, "the client cancelled the call");
  return TRUE;
}

ProtobufCMessage *
berth_grpc_call_recv (BerthGrpcCall *call, GError **error)
{
  g_mutex_lock (&call->lock);
  while (call->in_queue.length == 0 && !call->in_closed && call->state == CALL_OPEN
         && !g_cancellable_is_cancelled (call->cancellable))
    g_cond_wait (&call->cond, &call->lock);
  GBytes *bytes = g_queue_pop_head (&call->in_queue);
  gsize n = bytes ? g_bytes_get_size (bytes) : 0;
  call->in_bytes -= n;
  g_mutex_unlock (&call->lock);
  if (bytes == NULL)
    {
      if (!call_check_alive (call, error))
        return NULL;
      return NULL; /* end of stream */
    }
  wake_main (call, n);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  ProtobufCMessage *message = protobuf_c_message_unpack (call->entry->input, NULL, len, data);
  g_bytes_unref (bytes);
  if (message != NULL && !berth_proto_message_fields_valid (message))
    {
      protobuf_c_message_free_unpacked (message, NULL);
      message = NULL;
    }
  if (message == NULL)
    berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "malformed %s message for %s", call->entry->input->name,
                 call->path);
  return message;
}

static gboolean
queue_frame (BerthGrpcCall *call, GBytes *frame, GError **error)
{
  g_mutex_lock (&call->lock);
  while (call->out_bytes > QUEUE_BUDGET && call->state == CALL_OPEN && !g_cancellable_is_cancelled (call->cancellable))
    g_cond_wait (&call->cond, &call->lock);
  gboolean alive = call->state == CALL_OPEN && !g_cancellable_is_cancelled (call->cancellable);
  if (alive)
    {
      call->out_bytes += g_bytes_get_size (frame);
      g_queue_push_tail (&call->out_queue, g_bytes_ref (frame));
    }
  g_mutex_unlock (&call->lock);
  if (!alive)
    return call_check_alive (call, error) ? berth_throw (error, BERTH_ERROR_CANCELLED, "call ended") : FALSE;
  wake_main (call, 0);
  return TRUE;
}

gboolean
berth_grpc_call_send (BerthGrpcCall *call, const ProtobufCMessage *message, GError **error)
{
  g_autoptr (GBytes) frame = berth_grpc_frame_message (message, call->server->max_message_size, error);
  if (frame == NULL)
    return FALSE;
  return queue_frame (call, frame, error);
}

void
berth_grpc_call_send_headers (BerthGrpcCall *call)
{
  g_mutex_lock (&call->lock);
  call->headers_wanted = TRUE;
  g_mutex_unlock (&call->lock);
  wake_main (call, 0);
}

/* Counts the call in the metrics once, with the status of whichever side ended it. */
static void
call_record (BerthGrpcCall *call, guint code)
{
  if (g_atomic_int_compare_and_exchange (&call->recorded, FALSE, TRUE))
    berth_metrics_observe_grpc (call->entry ? call->entry->path : NULL, code, g_get_monotonic_time () - call->started);
}

/* Ends the call from the worker: status 0 = OK. */
static void
call_finish (BerthGrpcCall *call, const GError *error)
{
  gboolean ended_here = FALSE;
  guint code = 0;
  g_mutex_lock (&call->lock);
  if (call->state == CALL_OPEN)
    {
      call->state = CALL_FINISHED;
      if (error != NULL)
        {
          call->status = call->deadline_passed ? BERTH_ERROR_DEADLINE_EXCEEDED : berth_error_to_code (error);
          call->status_message = g_strdup (error->message);
        }
      ended_here = TRUE;
      code = call->status;
    }
  else if (call->state == CALL_GONE)
    {
      /* The client went away before the handler was done. */
      ended_here = TRUE;
      code = BERTH_ERROR_CANCELLED;
    }
  g_mutex_unlock (&call->lock);
  if (ended_here)
    call_record (call, code);
  wake_main (call, 0);
}

/* ---------------- handlers in workers ---------------- */

static void
run_unary (gpointer data, gpointer pool_data)
{
  BerthGrpcCall *call = data;
  g_autoptr (GError) error = NULL;
  ProtobufCMessage *request = NULL;
  if (call_check_alive (call, &error))
    request = berth_grpc_call_recv (call, &error);
  if (request == NULL && error == NULL)
    berth_throw (&error, BERTH_ERROR_INVALID_ARGUMENT, "%s: the request carried no message", call->path);
  if (request != NULL && call->entry->method.kind == BERTH_GRPC_UNARY)
    {
      ProtobufCMessage *response = call->entry->method.unary (call, request, call->entry->user_data, &error);
      if (response != NULL)
        {
          g_autoptr (GBytes) frame = berth_grpc_frame_message (response, call->server->max_message_size, &error);
          berth_grpc_message_free (response);
          if (frame != NULL)
            queue_frame (call, frame, &error);
        }
      else if (error == NULL)
        berth_throw (&error, BERTH_ERROR_INTERNAL, "%s returned no response", call->path);
    }
  else if (request != NULL)
    {
      if (!call->entry->method.stream (call, request, call->entry->user_data, &error) && error == NULL)
        berth_throw (&error, BERTH_ERROR_INTERNAL, "%s failed without saying why", call->path);
    }
  if (request != NULL)
    protobuf_c_message_free_unpacked (request, NULL);
  if (error != NULL && error->domain == BERTH_ERROR && error->code == BERTH_ERROR_CANCELLED && call->deadline_passed)
    g_clear_error (&error), berth_throw (&error, BERTH_ERROR_DEADLINE_EXCEEDED, "deadline exceeded");
  call_finish (call, error);
  call_unref (call);
}

static gpointer
run_streaming (gpointer data)
{
  BerthGrpcCall *call = data;
  BerthGrpcServer *server = call->server;
  g_autoptr (GError) error = NULL;
  if (!call->entry->method.stream (call, NULL, call->entry->user_data, &error) && error == NULL)
    berth_throw (&error, BERTH_ERROR_INTERNAL, "%s failed without saying why", call->path);
  call_finish (call, error);
  call_unref (call);
  g_mutex_lock (&server->streams_lock);
  if (--server->active_streams == 0)
    g_cond_broadcast (&server->streams_done);
  g_mutex_unlock (&server->streams_lock);
  return NULL;
}

/* ---------------- main thread: responses ---------------- */

static ssize_t
data_source_read (nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
                  nghttp2_data_source *source, void *user_data)
{
  BerthGrpcCall *call = source->ptr;
  gsize copied = 0;
  gboolean finished;
  g_mutex_lock (&call->lock);
  while (copied < length && call->out_queue.length > 0)
    {
      GBytes *head = g_queue_peek_head (&call->out_queue);
      gsize size = 0;
      const guint8 *data = g_bytes_get_data (head, &size);
      gsize n = MIN (length - copied, size - call->out_offset);
      memcpy (buf + copied, data + call->out_offset, n);
      copied += n;
      call->out_offset += n;
      if (call->out_offset == size)
        {
          g_bytes_unref (g_queue_pop_head (&call->out_queue));
          call->out_offset = 0;
          call->out_bytes -= size;
        }
    }
  finished = call->state == CALL_FINISHED && call->out_queue.length == 0;
  g_cond_broadcast (&call->cond);
  int status = call->status;
  g_autofree char *message = g_strdup (call->status_message);
  g_mutex_unlock (&call->lock);

  if (finished)
    {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      g_autofree char *status_text = g_strdup_printf ("%d", status);
      g_autofree char *escaped = message ? berth_grpc_status_message_encode (message) : NULL;
      nghttp2_nv trailers[] = {
        { (uint8_t *) "grpc-status", (uint8_t *) status_text, 11, strlen (status_text), NGHTTP2_NV_FLAG_NONE },
        { (uint8_t *) "grpc-message", (uint8_t *) (escaped ? escaped : ""), 12, escaped ? strlen (escaped) : 0,
          NGHTTP2_NV_FLAG_NONE },
      };
      nghttp2_submit_trailer (session, stream_id, trailers, escaped ? 2 : 1);
      return copied;
    }
  if (copied == 0)
    return NGHTTP2_ERR_DEFERRED;
  return copied;
}

#define NV(name, value) { (uint8_t *) (name), (uint8_t *) (value), strlen (name), strlen (value), NGHTTP2_NV_FLAG_NONE }

/* Starts the response. With @code ≠ 0 it is a trailers-only error answered from main;
 * otherwise headers now and data as the worker produces it. */
static void
call_respond_error_main (BerthGrpcCall *call, BerthErrorCode code, const char *message)
{
  Connection *conn = call->conn;
  if (conn == NULL || call->response_submitted)
    return;
  call->response_submitted = TRUE;
  if (code != 0)
    {
      g_mutex_lock (&call->lock);
      if (call->state == CALL_OPEN)
        call->state = CALL_FINISHED;
      g_cond_broadcast (&call->cond);
      g_mutex_unlock (&call->lock);
      g_cancellable_cancel (call->cancellable);
      g_autofree char *status_text = g_strdup_printf ("%d", code);
      g_autofree char *escaped = berth_grpc_status_message_encode (message);
      nghttp2_nv headers[] = { NV (":status", "200"), NV ("content-type", "application/grpc"),
                               NV ("grpc-status", status_text), NV ("grpc-message", escaped) };
      nghttp2_submit_response (conn->session, call->stream_id, headers, G_N_ELEMENTS (headers), NULL);
      g_debug ("%s: status %d: %s", call->path, code, message ? message : "");
      call_record (call, code);
      return;
    }
  nghttp2_data_provider provider = { .source.ptr = call, .read_callback = data_source_read };
  nghttp2_nv headers[] = { NV (":status", "200"), NV ("content-type", "application/grpc") };
  nghttp2_submit_response (conn->session, call->stream_id, headers, G_N_ELEMENTS (headers), &provider);
}

/* Rejects a request that may still be arriving: answer now; whatever else the peer
 * sends on the stream is acknowledged and dropped. (An RST_STREAM after the answer
 * makes Go clients report the reset instead of our status.) */
static void
call_reject (BerthGrpcCall *call, BerthErrorCode code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
call_reject (BerthGrpcCall *call, BerthErrorCode code, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  call->rejected = TRUE;
  g_byte_array_set_size (call->inbuf, 0);
  call_respond_error_main (call, code, message);
}

/* ---------------- main thread: requests ---------------- */

static gboolean
on_deadline (gpointer data)
{
  BerthGrpcCall *call = data;
  call->deadline_passed = TRUE;
  g_cancellable_cancel (call->cancellable);
  g_mutex_lock (&call->lock);
  g_cond_broadcast (&call->cond);
  g_mutex_unlock (&call->lock);
  if (!call->response_submitted)
    call_reject (call, BERTH_ERROR_DEADLINE_EXCEEDED, "deadline exceeded");
  else if (call->conn != NULL)
    nghttp2_submit_rst_stream (call->conn->session, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
  if (call->conn != NULL)
    connection_flush (call->conn);
  g_clear_pointer (&call->deadline_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* "grpc-timeout: 100m" → µs; -1 when malformed. */
static gint64
parse_timeout (const char *text)
{
  char *end = NULL;
  guint64 value = g_ascii_strtoull (text, &end, 10);
  if (end == text || end == NULL || end[0] == '\0' || end[1] != '\0' || end - text > 8)
    return -1;
  switch (*end)
    {
    case 'H': return value * 3600 * G_USEC_PER_SEC;
    case 'M': return value * 60 * G_USEC_PER_SEC;
    case 'S': return value * G_USEC_PER_SEC;
    case 'm': return value * 1000;
    case 'u': return value;
    case 'n': return value / 1000;
    default: return -1;
    }
}

static void
call_dispatch (BerthGrpcCall *call)
{
  if (call->dispatched || call->rejected)
    return;
  call->dispatched = TRUE;
  call_ref (call);
  if (call->entry->method.kind == BERTH_GRPC_UNARY || call->entry->method.kind == BERTH_GRPC_SERVER_STREAMING)
    g_thread_pool_push (call->server->unary_pool, call, NULL);
  else
    {
      g_mutex_lock (&call->server->streams_lock);
      call->server->active_streams++;
      g_mutex_unlock (&call->server->streams_lock);
      g_autofree char *name = g_strdup_printf ("grpc-%d", call->stream_id);
      g_thread_unref (g_thread_new (name, run_streaming, call));
    }
}

static void
on_request_headers_done (Connection *conn, BerthGrpcCall *call)
{
  const char *method = g_hash_table_lookup (call->headers, ":method");
  if (g_strcmp0 (method, "POST") != 0)
    {
      call_reject (call, BERTH_ERROR_UNIMPLEMENTED, "HTTP method \"%s\": gRPC takes POST", method ? method : "");
      return;
    }
  const char *content_type = g_hash_table_lookup (call->headers, "content-type");
  if (content_type == NULL || !g_str_has_prefix (content_type, "application/grpc"))
    {
      call_reject (call, BERTH_ERROR_INVALID_ARGUMENT, "content-type \"%s\" is not application/grpc",
                   content_type ? content_type : "");
      return;
    }
  const char *path = g_hash_table_lookup (call->headers, ":path");
  call->path = g_strdup (path ? path : "");
  call->entry = g_hash_table_lookup (conn->server->methods, call->path);
  if (call->entry == NULL)
    {
      call_reject (call, BERTH_ERROR_UNIMPLEMENTED, "unknown method %s", call->path);
      return;
    }
  const char *ns = g_hash_table_lookup (call->headers, "containerd-namespace");
  call->namespace_ = g_strdup (ns ? ns : "default");
  g_autoptr (GError) ns_error = NULL;
  if (!berth_identifier_validate (BERTH_IDENTIFIER_NAMESPACE, call->namespace_, &ns_error))
    {
      call_reject (call, BERTH_ERROR_INVALID_ARGUMENT, "%s", ns_error->message);
      return;
    }
  const char *timeout = g_hash_table_lookup (call->headers, "grpc-timeout");
  if (timeout != NULL)
    {
      gint64 usec = parse_timeout (timeout);
      if (usec < 0)
        {
          call_reject (call, BERTH_ERROR_INVALID_ARGUMENT, "malformed grpc-timeout \"%s\"", timeout);
          return;
        }
      call->deadline_source = g_timeout_source_new (MAX (usec / 1000, 1));
      g_source_set_callback (call->deadline_source, on_deadline, call, NULL);
      g_source_attach (call->deadline_source, conn->server->context);
    }
  if (call->entry->method.kind == BERTH_GRPC_CLIENT_STREAMING || call->entry->method.kind == BERTH_GRPC_BIDI_STREAMING)
    call_dispatch (call);
}

static void
on_request_message (BerthGrpcCall *call, GBytes *message)
{
  g_mutex_lock (&call->lock);
  call->in_bytes += g_bytes_get_size (message);
  g_queue_push_tail (&call->in_queue, message);
  g_cond_broadcast (&call->cond);
  g_mutex_unlock (&call->lock);
}

/* Cuts whole gRPC messages out of the DATA bytes received so far. */
static void
parse_inbuf (BerthGrpcCall *call)
{
  while (!call->rejected)
    {
      GBytes *message = NULL;
      g_autoptr (GError) error = NULL;
      switch (berth_grpc_frame_next (call->inbuf, call->server->max_message_size, &message, &error))
        {
        case BERTH_GRPC_FRAME_NEED_MORE:
          return;
        case BERTH_GRPC_FRAME_ERROR:
          call_reject (call, error->code, "%s", error->message);
          return;
        case BERTH_GRPC_FRAME_MESSAGE:
          break;
        }
      on_request_message (call, message);
      if ((call->entry->method.kind == BERTH_GRPC_UNARY || call->entry->method.kind == BERTH_GRPC_SERVER_STREAMING)
          && call->in_queue.length > 1)
        {
          call_reject (call, BERTH_ERROR_INVALID_ARGUMENT, "%s takes exactly one request message", call->path);
          return;
        }
    }
}

static int
on_begin_headers (nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
  Connection *conn = user_data;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  BerthGrpcCall *call = g_new0 (BerthGrpcCall, 1);
  call->refcount = 1;
  call->server = conn->server;
  call->conn = conn;
  call->stream_id = frame->hd.stream_id;
  call->started = g_get_monotonic_time ();
  call->headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  call->cancellable = g_cancellable_new ();
  call->inbuf = g_byte_array_new ();
  g_mutex_init (&call->lock);
  g_cond_init (&call->cond);
  g_hash_table_insert (conn->calls, GINT_TO_POINTER (call->stream_id), call);
  nghttp2_session_set_stream_user_data (session, call->stream_id, call);
  return 0;
}

static int
on_header (nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
           const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
  BerthGrpcCall *call = nghttp2_session_get_stream_user_data (session, frame->hd.stream_id);
  if (call == NULL || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  /* A repeated header keeps its first value: grpc-go puts the newest metadata first
   * and containerd uses it (e.g. two containerd-namespace values). */
  call->header_bytes += namelen + valuelen + 32;
  if (call->header_bytes > MAX_HEADER_BYTES)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  g_autofree char *key = g_strndup ((const char *) name, namelen);
  if (!g_hash_table_contains (call->headers, key))
    g_hash_table_insert (call->headers, g_steal_pointer (&key), g_strndup ((const char *) value, valuelen));
  return 0;
}

static int
on_data_chunk (nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
               void *user_data)
{
  BerthGrpcCall *call = nghttp2_session_get_stream_user_data (session, stream_id);
  if (call == NULL || call->rejected || call->entry == NULL)
    {
      nghttp2_session_consume (session, stream_id, len);
      return 0;
    }
  g_byte_array_append (call->inbuf, data, len);
  parse_inbuf (call);
  /* Acknowledge now unless the worker is behind: then later, as it catches up. */
  g_mutex_lock (&call->lock);
  gboolean behind = call->in_bytes > QUEUE_BUDGET;
  g_mutex_unlock (&call->lock);
  if (behind && !call->rejected)
    call->owed_consume += len;
  else
    nghttp2_session_consume (session, stream_id, len);
  return 0;
}

static int
on_frame_recv (nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
  Connection *conn = user_data;
  BerthGrpcCall *call = nghttp2_session_get_stream_user_data (session, frame->hd.stream_id);
  if (call == NULL)
    return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    on_request_headers_done (conn, call);
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)
      && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !call->rejected && call->entry != NULL)
    {
      if (call->inbuf->len > 0)
        {
          call_reject (call, BERTH_ERROR_INVALID_ARGUMENT, "truncated message: %u bytes left over at end of stream",
                       call->inbuf->len);
          return 0;
        }
      g_mutex_lock (&call->lock);
      call->in_closed = TRUE;
      g_cond_broadcast (&call->cond);
      g_mutex_unlock (&call->lock);
      call_dispatch (call);
    }
  return 0;
}

/* The stream is gone: wake and cancel the handler, forget the deadline. */
static void
call_abandon (BerthGrpcCall *call)
{
  call->conn = NULL;
  g_mutex_lock (&call->lock);
  call->state = CALL_GONE;
  g_cond_broadcast (&call->cond);
  g_mutex_unlock (&call->lock);
  g_cancellable_cancel (call->cancellable);
  if (call->deadline_source != NULL)
    {
      g_source_destroy (call->deadline_source);
      g_clear_pointer (&call->deadline_source, g_source_unref);
    }
}

static int
on_stream_close (nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
  Connection *conn = user_data;
  BerthGrpcCall *call = nghttp2_session_get_stream_user_data (session, stream_id);
  if (call == NULL)
    return 0;
  call_abandon (call);
  g_hash_table_remove (conn->calls, GINT_TO_POINTER (stream_id));
  call_unref (call);
  return 0;
}

/* ---------------- connections ---------------- */

static void
connection_update_watch (Connection *conn)
{
  GIOCondition cond = G_IO_IN | G_IO_HUP | G_IO_ERR;
  if (conn->outbuf->len > 0)
    cond |= G_IO_OUT;
  g_source_modify_unix_fd (conn->source, conn->fd_tag, cond);
}

/* Writes what nghttp2 has to send; keeps what the socket does not take. */
static void
connection_flush (Connection *conn)
{
  if (conn->closing)
    return;
  for (;;)
    {
      if (conn->outbuf->len == 0)
        {
          const uint8_t *data = NULL;
          ssize_t n = nghttp2_session_mem_send (conn->session, &data);
          if (n < 0)
            {
              g_debug ("connection %d: nghttp2: %s", conn->fd, nghttp2_strerror (n));
              connection_close (conn);
              return;
            }
          if (n == 0)
            break;
          g_byte_array_append (conn->outbuf, data, n);
        }
      ssize_t w = send (conn->fd, conn->outbuf->data, conn->outbuf->len, MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (w < 0)
        {
          g_debug ("connection %d: send: %s", conn->fd, g_strerror (errno));
          connection_close (conn);
          return;
        }
      g_byte_array_remove_range (conn->outbuf, 0, w);
    }
  if (conn->outbuf->len == 0 && !nghttp2_session_want_read (conn->session) && !nghttp2_session_want_write (conn->session))
    {
      connection_close (conn);
      return;
    }
  connection_update_watch (conn);
}

static gboolean
on_connection_io (gpointer data)
{
  Connection *conn = data;
  guint8 buf[READ_CHUNK];
  GIOCondition ready = g_source_query_unix_fd (conn->source, conn->fd_tag);
  if (ready & (G_IO_IN | G_IO_HUP | G_IO_ERR))
    {
      for (;;)
        {
          ssize_t n = recv (conn->fd, buf, sizeof buf, 0);
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
          if (n <= 0)
            {
              connection_close (conn);
              return G_SOURCE_REMOVE;
            }
          ssize_t used = nghttp2_session_mem_recv (conn->session, buf, n);
          if (used < 0)
            {
              g_debug ("connection %d: bad HTTP/2 from client: %s", conn->fd, nghttp2_strerror (used));
              /* Let nghttp2 send its GOAWAY, then close. */
              connection_flush (conn);
              connection_close (conn);
              return G_SOURCE_REMOVE;
            }
          if (conn->closing)
            return G_SOURCE_REMOVE;
        }
    }
  connection_flush (conn);
  return conn->closing ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static gboolean
connection_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  return callback (user_data);
}

static GSourceFuncs connection_source_funcs = { NULL, NULL, connection_dispatch, NULL, NULL, NULL };

static void
calls_cancel (gpointer key, gpointer value, gpointer data)
{
  call_abandon (value);
  call_unref (value);
}

static void connection_free (Connection *conn);

static gboolean
connection_free_idle (gpointer data)
{
  connection_free (data);
  return G_SOURCE_REMOVE;
}

static void
connection_close (Connection *conn)
{
  if (conn->closing)
    return;
  conn->closing = TRUE;
  g_debug ("connection %d closed", conn->fd);
  /* Calls still running in workers see CALL_GONE and a cancelled cancellable. */
  g_hash_table_foreach (conn->calls, calls_cancel, NULL);
  g_hash_table_steal_all (conn->calls);
  g_source_destroy (conn->source);
  /* Freed from an idle: callers up the stack still hold the pointer. */
  g_hash_table_steal (conn->server->connections, conn);
  GSource *idle = g_idle_source_new ();
  g_source_set_callback (idle, connection_free_idle, conn, NULL);
  g_source_attach (idle, conn->server->context);
  g_source_unref (idle);
}

static void
connection_free (Connection *conn)
{
  g_source_unref (conn->source);
  nghttp2_session_del (conn->session);
  close (conn->fd);
  g_byte_array_unref (conn->outbuf);
  g_hash_table_unref (conn->calls);
  g_free (conn);
}

static void
connection_new (BerthGrpcServer *server, int fd)
{
  Connection *conn = g_new0 (Connection, 1);
  conn->server = server;
  conn->fd = fd;
  conn->outbuf = g_byte_array_new ();
  conn->calls = g_hash_table_new (g_direct_hash, g_direct_equal);

  nghttp2_session_callbacks *callbacks;
  nghttp2_session_callbacks_new (&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback (callbacks, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback (callbacks, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback (callbacks, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback (callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback (callbacks, on_stream_close);
  nghttp2_option *option;
  nghttp2_option_new (&option);
  nghttp2_option_set_no_auto_window_update (option, 1);
  /* grpc-go dialling a unix socket sends the socket's path (or its percent-encoded
   * form) as :authority, which nghttp2's HTTP messaging rules reject; containerd
   * accepts any authority. The gRPC layer checks what it relies on itself
   * (:method, :path, content-type). */
  nghttp2_option_set_no_http_messaging (option, 1);
  nghttp2_session_server_new2 (&conn->session, callbacks, conn, option);
  nghttp2_option_del (option);
  nghttp2_session_callbacks_del (callbacks);

  nghttp2_settings_entry settings[] = {
    { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS },
    { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
  };
  nghttp2_submit_settings (conn->session, NGHTTP2_FLAG_NONE, settings, G_N_ELEMENTS (settings));
  nghttp2_session_set_local_window_size (conn->session, NGHTTP2_FLAG_NONE, 0, CONNECTION_WINDOW);

  conn->source = g_source_new (&connection_source_funcs, sizeof (GSource));
  g_source_set_name (conn->source, "berth-grpc-connection");
  conn->fd_tag = g_source_add_unix_fd (conn->source, fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_callback (conn->source, on_connection_io, conn, NULL);
  g_source_attach (conn->source, server->context);
  g_hash_table_add (server->connections, conn);
  g_debug ("connection %d accepted", fd);
  connection_flush (conn);
}

static gboolean
on_accept (int listen_fd, GIOCondition condition, gpointer data)
{
  BerthGrpcServer *server = data;
  for (;;)
    {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            g_warning ("accept on %s: %s", server->socket_path ? server->socket_path : "socket", g_strerror (errno));
          break;
        }
      connection_new (server, fd);
    }
  return G_SOURCE_CONTINUE;
}

/* ---------------- the server ---------------- */

static void
method_entry_free (MethodEntry *entry)
{
  g_free (entry->path);
  g_free (entry);
}

BerthGrpcServer *
berth_grpc_server_new (BerthDaemon *daemon, gsize max_message_size)
{
  BerthGrpcServer *server = g_new0 (BerthGrpcServer, 1);
  server->daemon = daemon;
  server->context = g_main_context_ref_thread_default ();
  server->max_message_size = max_message_size;
  server->methods = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) method_entry_free);
  server->connections = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify) connection_free);
  /* Handlers may block on disk and child processes: enough threads that a few slow
   * calls do not queue everyone else behind them. */
  server->unary_pool = g_thread_pool_new (run_unary, server, 32, FALSE, NULL);
  g_mutex_init (&server->streams_lock);
  g_cond_init (&server->streams_done);
  return server;
}

void
berth_grpc_server_add_service (BerthGrpcServer *server, const ProtobufCServiceDescriptor *service,
                               const BerthGrpcMethod *methods, gpointer user_data)
{
  for (const BerthGrpcMethod *m = methods; m->name != NULL; m++)
    {
      const ProtobufCMethodDescriptor *desc = NULL;
      for (unsigned i = 0; i < service->n_methods; i++)
        if (g_str_equal (service->methods[i].name, m->name))
          desc = &service->methods[i];
      g_return_if_fail (desc != NULL);
      MethodEntry *entry = g_new0 (MethodEntry, 1);
      entry->path = g_strdup_printf ("/%s/%s", service->name, m->name);
      entry->method = *m;
      entry->input = desc->input;
      entry->output = desc->output;
      entry->user_data = user_data;
      g_hash_table_replace (server->methods, entry->path, entry);
    }
}

static int
compare_paths (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

GStrv
berth_grpc_server_list_methods (BerthGrpcServer *server)
{
  guint n = 0;
  char **paths = (char **) g_hash_table_get_keys_as_array (server->methods, &n);
  for (guint i = 0; i < n; i++)
    paths[i] = g_strdup (paths[i]);
  qsort (paths, n, sizeof *paths, compare_paths);
  return paths;
}

const ProtobufCMessageDescriptor *
berth_grpc_server_get_input (BerthGrpcServer *server, const char *path)
{
  MethodEntry *entry = g_hash_table_lookup (server->methods, path);
  return entry ? entry->input : NULL;
}

static gboolean
start_accepting (BerthGrpcServer *server, int fd, GError **error)
{
  if (!g_unix_set_fd_nonblocking (fd, TRUE, error))
    return FALSE;
  server->listener = g_socket_new_from_fd (fd, error);
  if (server->listener == NULL)
    return FALSE;
  server->accept_source = g_unix_fd_source_new (fd, G_IO_IN);
  g_source_set_callback (server->accept_source, (GSourceFunc) (void (*) (void)) on_accept, server, NULL);
  g_source_attach (server->accept_source, server->context);
  return TRUE;
}

gboolean
berth_grpc_server_listen (BerthGrpcServer *server, const char *path, const char *group, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof addr.sun_path)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "socket path %s is longer than %zu bytes", path,
                        sizeof addr.sun_path - 1);
  strcpy (addr.sun_path, path);
  berth_autofd int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return berth_throw_errno (error, "socket");
  /* A socket left by a daemon that died; the root lock says nobody serves it now. */
  if (unlink (path) < 0 && errno != ENOENT)
    return berth_throw_errno (error, "removing stale socket %s", path);
  mode_t old_umask = umask (0117);
  int rc = bind (fd, (struct sockaddr *) &addr, sizeof addr);
  umask (old_umask);
  if (rc < 0)
    return berth_throw_errno (error, "binding %s", path);
  if (group != NULL && *group != '\0')
    {
      struct group *gr = getgrnam (group);
      if (gr == NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "address-group \"%s\" does not exist", group);
      if (chown (path, 0, gr->gr_gid) < 0)
        return berth_throw_errno (error, "giving %s to group %s", path, group);
    }
  if (listen (fd, 512) < 0)
    return berth_throw_errno (error, "listening on %s", path);
  if (!start_accepting (server, fd, error))
    return FALSE;
  fd = -1; /* owned by the GSocket now */
  server->socket_path = g_strdup (path);
  return TRUE;
}

gboolean
berth_grpc_server_adopt_fd (BerthGrpcServer *server, int fd, GError **error)
{
  return start_accepting (server, fd, error);
}

void
berth_grpc_server_stop (BerthGrpcServer *server)
{
  if (server->stopped)
    return;
  server->stopped = TRUE;
  if (server->accept_source != NULL)
    {
      g_source_destroy (server->accept_source);
      g_clear_pointer (&server->accept_source, g_source_unref);
    }
  if (server->listener != NULL)
    {
      g_socket_close (server->listener, NULL);
      g_clear_object (&server->listener);
    }
  if (server->socket_path != NULL)
    unlink (server->socket_path);
  GList *conns = g_hash_table_get_keys (server->connections);
  for (GList *l = conns; l != NULL; l = l->next)
    connection_close (l->data);
  g_list_free (conns);
  /* Handlers see cancelled calls; wait for them so nothing outlives the daemon. */
  g_thread_pool_free (server->unary_pool, FALSE, TRUE);
  server->unary_pool = NULL;
  g_mutex_lock (&server->streams_lock);
  while (server->active_streams > 0)
    g_cond_wait (&server->streams_done, &server->streams_lock);
  g_mutex_unlock (&server->streams_lock);
  /* Let queued hand-offs and connection frees run before the server goes. */
  while (g_main_context_iteration (server->context, FALSE))
    ;
}

void
berth_grpc_server_free (BerthGrpcServer *server)
{
  if (server == NULL)
    return;
  berth_grpc_server_stop (server);
  g_hash_table_unref (server->connections);
  g_hash_table_unref (server->methods);
  g_main_context_unref (server->context);
  g_mutex_clear (&server->streams_lock);
  g_cond_clear (&server->streams_done);
  g_free (server->socket_path);
  g_free (server);
}
