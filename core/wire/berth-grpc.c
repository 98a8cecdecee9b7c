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
 * Worker → main hand-offs go through one pending idle per call (never run inline, so a
 * worker-side callback — an event feed, a task's exit — never re-enters nghttp2).
 *
 * Threads: three bounded pools (berth-grpc.h), no thread per call or stream. A deferred
 * call holds no thread; a client stream with a step function gets a worker only while
 * a message is being handled; a pulled server stream only while it produces its next
 * message, and only when its out queue is under PULL_BUDGET (the data provider, as it
 * drains the queue into the peer's window, kicks the next pull).
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
#include "lib/berth-identifiers.h"
#include "berth-grpc.h"
#include "berth-grpc-wire.h"

/* What one stream may hold in each direction before the other side must wait. */
#define QUEUE_BUDGET (4 * 1024 * 1024)
/* A pulled server stream is pulled again while less than this is queued: enough to
 * keep a fast reader busy, little for a stalled one to hold. */
#define PULL_BUDGET (1 * 1024 * 1024)
#define STREAM_WINDOW (1 * 1024 * 1024)
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

static void connection_flush (Connection *conn);
static void connection_close (Connection *conn);
static void call_respond_error_main (BerthGrpcCall *call, BerthErrorCode code, const char *message);
static void call_end (BerthGrpcCall *call);
static void call_kick (BerthGrpcCall *call);
static void call_finish (BerthGrpcCall *call, const GError *error);
static void call_record (BerthGrpcCall *call, guint code);
static void server_push_job (BerthGrpcServer *server, GThreadPool *pool, Job *job);

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

static gboolean
wakeup_main (gpointer data)
{
  BerthGrpcCall *call = data;
  Connection *conn = call->conn;
  g_mutex_lock (&call->lock);
  gsize consumed = call->wake_consumed;
  call->wake_consumed = 0;
  call->wake_pending = FALSE;
  g_mutex_unlock (&call->lock);
  if (conn != NULL && !conn->closing)
    {
      if (consumed > 0 && call->owed_consume > 0)
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
  call_kick (call);
  return G_SOURCE_REMOVE;
}

/* Never inline, even on the main thread: callers may hold locks (the event exchange's)
 * or sit inside an nghttp2 callback. */
static void
wake_main (BerthGrpcCall *call, gsize consumed)
{
  g_mutex_lock (&call->lock);
  call->wake_consumed += consumed;
  gboolean schedule = !call->wake_pending;
  call->wake_pending = TRUE;
  g_mutex_unlock (&call->lock);
  if (!schedule)
    return;
  GSource *source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, wakeup_main, call_ref (call), (GDestroyNotify) call_unref);
  g_source_attach (source, call->server->context);
  g_source_unref (source);
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

static ProtobufCMessage *call_unpack (BerthGrpcCall *call, GBytes *bytes, GError **error);

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
  return call_unpack (call, bytes, error);
}

/* Takes one queued request without waiting (steps run only when one is there). NULL
 * with no error at the end of the stream. */
static ProtobufCMessage *
call_take (BerthGrpcCall *call, GError **error)
{
  g_mutex_lock (&call->lock);
  GBytes *bytes = g_queue_pop_head (&call->in_queue);
  gsize n = bytes ? g_bytes_get_size (bytes) : 0;
  call->in_bytes -= n;
  g_mutex_unlock (&call->lock);
  if (bytes == NULL)
    return NULL;
  wake_main (call, n);
  return call_unpack (call, bytes, error);
}

static ProtobufCMessage *
call_unpack (BerthGrpcCall *call, GBytes *bytes, GError **error)
{
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

typedef enum {
  QUEUE_WAIT,  /* while the queue is over its budget */
  QUEUE_TRY,   /* fail when it is */
  QUEUE_FORCE, /* a call's last message: queue it anyway */
} QueueMode;

static gboolean
queue_frame (BerthGrpcCall *call, GBytes *frame, QueueMode mode, GError **error)
{
  g_mutex_lock (&call->lock);
  /* A pull runs only when the queue has room and sends a bounded amount: it never
   * waits, so that a slow client holds no thread. */
  if (mode == QUEUE_WAIT && call->pull_func != NULL)
    mode = QUEUE_FORCE;
  while (mode == QUEUE_WAIT && call->out_bytes > QUEUE_BUDGET && call->state == CALL_OPEN
         && !g_cancellable_is_cancelled (call->cancellable))
    g_cond_wait (&call->cond, &call->lock);
  gboolean alive = call->state == CALL_OPEN && !g_cancellable_is_cancelled (call->cancellable);
  gboolean full = mode == QUEUE_TRY && call->out_bytes > QUEUE_BUDGET;
  if (alive && !full)
    {
      call->out_bytes += g_bytes_get_size (frame);
      g_queue_push_tail (&call->out_queue, g_bytes_ref (frame));
    }
  g_mutex_unlock (&call->lock);
  if (!alive)
    return call_check_alive (call, error) ? berth_throw (error, BERTH_ERROR_CANCELLED, "call ended") : FALSE;
  if (full)
    return berth_throw (error, BERTH_ERROR_RESOURCE_EXHAUSTED,
                        "the client is more than %d bytes behind in reading this stream", QUEUE_BUDGET);
  wake_main (call, 0);
  return TRUE;
}

gboolean
berth_grpc_call_send (BerthGrpcCall *call, const ProtobufCMessage *message, GError **error)
{
  g_autoptr (GBytes) frame = berth_grpc_frame_message (message, call->server->max_message_size, error);
  if (frame == NULL)
    return FALSE;
  return queue_frame (call, frame, QUEUE_WAIT, error);
}

gboolean
berth_grpc_call_try_send (BerthGrpcCall *call, const ProtobufCMessage *message, GError **error)
{
  g_autoptr (GBytes) frame = berth_grpc_frame_message (message, call->server->max_message_size, error);
  if (frame == NULL)
    return FALSE;
  return queue_frame (call, frame, QUEUE_TRY, error);
}

BerthGrpcCall *
berth_grpc_call_ref (BerthGrpcCall *call)
{
  return call_ref (call);
}

void
berth_grpc_call_unref (BerthGrpcCall *call)
{
  call_unref (call);
}

/* ---------------- deferred calls ---------------- */

static gboolean
call_end_main (gpointer data)
{
  BerthGrpcCall *call = data;
  GDestroyNotify func = g_steal_pointer (&call->end_func);
  if (func != NULL)
    func (g_steal_pointer (&call->end_data));
  return G_SOURCE_REMOVE;
}

/* Runs the deferred call's end_func once, from the main context, soon. */
static void
call_end (BerthGrpcCall *call)
{
  g_mutex_lock (&call->lock);
  gboolean schedule = call->deferred && !call->ended && call->state != CALL_OPEN;
  if (schedule)
    call->ended = TRUE;
  g_mutex_unlock (&call->lock);
  if (!schedule)
    return;
  GSource *source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, call_end_main, call_ref (call), (GDestroyNotify) call_unref);
  g_source_attach (source, call->server->context);
  g_source_unref (source);
}

void
berth_grpc_call_defer (BerthGrpcCall *call, GDestroyNotify end_func, gpointer end_data)
{
  g_mutex_lock (&call->lock);
  g_return_if_fail (!call->deferred);
  call->deferred = TRUE;
  call->end_func = end_func;
  call->end_data = end_data;
  g_mutex_unlock (&call->lock);
  /* Over already (the client left while the handler ran): end it now. */
  call_end (call);
}

void
berth_grpc_call_complete (BerthGrpcCall *call, ProtobufCMessage *response, GError *error)
{
  g_autoptr (GError) local_error = error;
  if (response != NULL)
    {
      g_autoptr (GBytes) frame = berth_grpc_frame_message (response, call->server->max_message_size,
                                                           local_error ? NULL : &local_error);
      berth_grpc_message_free (response);
      if (frame != NULL && local_error == NULL)
        queue_frame (call, frame, QUEUE_FORCE, NULL);
    }
  call_finish (call, local_error);
}

void
berth_grpc_call_resume (BerthGrpcCall *call, BerthGrpcResumeFunc func, gpointer data, GDestroyNotify destroy)
{
  Job *job = g_new0 (Job, 1);
  job->kind = JOB_RESUME;
  job->call = call_ref (call);
  job->func = func;
  job->data = data;
  job->destroy = destroy;
  server_push_job (call->server, call->server->call_pool, job);
}

static void call_pull_kick (BerthGrpcCall *call);

void
berth_grpc_call_pull (BerthGrpcCall *call, BerthGrpcPullFunc func, gpointer data, GDestroyNotify destroy)
{
  g_mutex_lock (&call->lock);
  g_return_if_fail (!call->deferred && call->pull_func == NULL);
  call->deferred = TRUE;
  call->pull_func = func;
  call->pull_data = data;
  call->pull_destroy = destroy;
  g_mutex_unlock (&call->lock);
  call_pull_kick (call);
}

typedef struct {
  GPtrArray *items;
  const ProtobufCFieldDescriptor *field;
  guint batch;
  guint next;
} ListPull;

static void
list_pull_free (ListPull *list)
{
  g_ptr_array_unref (list->items);
  g_free (list);
}

static gboolean
list_pull (BerthGrpcCall *call, gpointer data, GError **error)
{
  ListPull *list = data;
  if (list->next >= list->items->len)
    return FALSE;
  const ProtobufCMessageDescriptor *output = call->entry->output;
  g_autofree ProtobufCMessage *message = g_malloc0 (output->sizeof_message);
  protobuf_c_message_init (output, message);
  guint n = MIN (list->batch, list->items->len - list->next);
  gpointer *items = &list->items->pdata[list->next];
  if (list->field->label == PROTOBUF_C_LABEL_REPEATED)
    {
      G_STRUCT_MEMBER (size_t, message, list->field->quantifier_offset) = n;
      G_STRUCT_MEMBER (gpointer *, message, list->field->offset) = items;
    }
  else
    G_STRUCT_MEMBER (gpointer, message, list->field->offset) = items[0];
  list->next += n;
  if (!berth_grpc_call_send (call, message, error))
    return FALSE;
  return list->next < list->items->len;
}

gboolean
berth_grpc_call_send_list (BerthGrpcCall *call, GPtrArray *items, const char *field, guint batch)
{
  const ProtobufCFieldDescriptor *desc = protobuf_c_message_descriptor_get_field_by_name (call->entry->output, field);
  g_return_val_if_fail (desc != NULL && desc->type == PROTOBUF_C_TYPE_MESSAGE && batch > 0, FALSE);
  ListPull *list = g_new0 (ListPull, 1);
  list->items = items;
  list->field = desc;
  list->batch = desc->label == PROTOBUF_C_LABEL_REPEATED ? batch : 1;
  berth_grpc_call_pull (call, list_pull, list, (GDestroyNotify) list_pull_free);
  return FALSE;
}

void
berth_grpc_call_send_headers (BerthGrpcCall *call)
{
  g_mutex_lock (&call->lock);
  call->headers_wanted = TRUE;
  g_mutex_unlock (&call->lock);
  wake_main (call, 0);
}

/* Reports the call to the server's observer once, with the status of whichever side
 * ended it. */
static void
call_record (BerthGrpcCall *call, guint code)
{
  BerthGrpcCallObserver observer = call->server->observer;
  if (g_atomic_int_compare_and_exchange (&call->recorded, FALSE, TRUE) && observer != NULL)
    observer (call->entry ? call->entry->path : NULL, code, g_get_monotonic_time () - call->started);
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
  call_end (call);
}

/* ---------------- handlers in workers ---------------- */

/* A handler that deferred its call ends it later; one that did not, ends it now. */
static void
call_handler_returned (BerthGrpcCall *call, GError *error)
{
  if (error != NULL && error->domain == BERTH_ERROR && error->code == BERTH_ERROR_CANCELLED && call->deadline_passed)
    {
      g_clear_error (&error);
      berth_throw (&error, BERTH_ERROR_DEADLINE_EXCEEDED, "deadline exceeded");
    }
  g_mutex_lock (&call->lock);
  gboolean deferred = call->deferred;
  g_mutex_unlock (&call->lock);
  if (!deferred || error != NULL)
    call_finish (call, error);
  g_clear_error (&error);
}

/* The unary response (or error) of a handler, or of a resumed call (@resumed: which
 * ends the call whatever it returned). */
static void
call_answer (BerthGrpcCall *call, ProtobufCMessage *response, GError *error, gboolean resumed)
{
  if (response != NULL)
    {
      g_autoptr (GBytes) frame = berth_grpc_frame_message (response, call->server->max_message_size, &error);
      berth_grpc_message_free (response);
      if (frame != NULL)
        queue_frame (call, frame, QUEUE_FORCE, &error);
    }
  if (resumed)
    {
      call_finish (call, error);
      g_clear_error (&error);
    }
  else
    call_handler_returned (call, error);
}

static void
run_handler (BerthGrpcCall *call)
{
  GError *error = NULL;
  BerthGrpcMethodKind kind = call->entry->method.kind;
  if (kind == BERTH_GRPC_CLIENT_STREAMING || kind == BERTH_GRPC_BIDI_STREAMING)
    {
      if (!call->entry->method.stream (call, NULL, call->entry->user_data, &error) && error == NULL && !call->deferred)
        berth_throw (&error, BERTH_ERROR_INTERNAL, "%s failed without saying why", call->path);
      call_handler_returned (call, error);
      return;
    }
  ProtobufCMessage *request = NULL;
  if (call_check_alive (call, &error))
    request = berth_grpc_call_recv (call, &error);
  if (request == NULL && error == NULL)
    berth_throw (&error, BERTH_ERROR_INVALID_ARGUMENT, "%s: the request carried no message", call->path);
  if (request != NULL && kind == BERTH_GRPC_UNARY)
    {
      ProtobufCMessage *response = call->entry->method.unary (call, request, call->entry->user_data, &error);
      if (response == NULL && error == NULL && !call->deferred)
        berth_throw (&error, BERTH_ERROR_INTERNAL, "%s returned no response", call->path);
      protobuf_c_message_free_unpacked (request, NULL);
      call_answer (call, response, error, FALSE);
      return;
    }
  if (request != NULL)
    {
      if (!call->entry->method.stream (call, request, call->entry->user_data, &error) && error == NULL && !call->deferred)
        berth_throw (&error, BERTH_ERROR_INTERNAL, "%s failed without saying why", call->path);
      protobuf_c_message_free_unpacked (request, NULL);
    }
  call_handler_returned (call, error);
}

/* One step of a client stream: the next message, or the end. */
static void
run_step (BerthGrpcCall *call)
{
  g_autoptr (GError) error = NULL;
  gboolean more = FALSE;
  if (call_check_alive (call, &error))
    {
      ProtobufCMessage *message = call_take (call, &error);
      if (error == NULL)
        {
          /* Only kicked with a message queued or the stream closed. */
          more = call->entry->method.step (call, message, &call->step_state, call->entry->user_data, &error);
          if (message == NULL && more && error == NULL)
            berth_throw (&error, BERTH_ERROR_INVALID_ARGUMENT, "%s: the stream ended early", call->path);
        }
      if (message != NULL)
        protobuf_c_message_free_unpacked (message, NULL);
    }
  gboolean done = !more || error != NULL;
  if (done)
    {
      if (call->step_state != NULL && call->entry->method.state_free != NULL)
        call->entry->method.state_free (g_steal_pointer (&call->step_state));
      if (error != NULL && error->domain == BERTH_ERROR && error->code == BERTH_ERROR_CANCELLED && call->deadline_passed)
        {
          g_clear_error (&error);
          berth_throw (&error, BERTH_ERROR_DEADLINE_EXCEEDED, "deadline exceeded");
        }
      call_finish (call, error);
    }
  g_mutex_lock (&call->lock);
  call->step_running = FALSE;
  call->step_done = done;
  g_mutex_unlock (&call->lock);
  /* More may have arrived meanwhile. */
  wake_main (call, 0);
}

/* One pull of a server stream: the next message(s), or the end. */
static void
run_pull (BerthGrpcCall *call)
{
  g_autoptr (GError) error = NULL;
  gboolean more = FALSE;
  if (call_check_alive (call, &error))
    more = call->pull_func (call, call->pull_data, &error);
  gboolean done = !more || error != NULL;
  if (done)
    {
      if (call->pull_destroy != NULL)
        call->pull_destroy (g_steal_pointer (&call->pull_data));
      if (error != NULL && error->domain == BERTH_ERROR && error->code == BERTH_ERROR_CANCELLED && call->deadline_passed)
        {
          g_clear_error (&error);
          berth_throw (&error, BERTH_ERROR_DEADLINE_EXCEEDED, "deadline exceeded");
        }
      call_finish (call, error);
    }
  g_mutex_lock (&call->lock);
  call->pull_running = FALSE;
  call->pull_done = done;
  g_mutex_unlock (&call->lock);
  /* The queue may still have room. */
  call_pull_kick (call);
}

static void
run_job (gpointer data, gpointer pool_data)
{
  Job *job = data;
  if (job == NULL)
    return; /* a nudge to start a thread (server_push_job) */
  BerthGrpcCall *call = job->call;
  switch (job->kind)
    {
    case JOB_HANDLER:
      run_handler (call);
      break;
    case JOB_STEP:
      run_step (call);
      break;
    case JOB_PULL:
      run_pull (call);
      break;
    case JOB_RESUME:
      {
        GError *error = NULL;
        ProtobufCMessage *response = job->func (call, job->data, &error);
        if (response == NULL && error == NULL)
          berth_throw (&error, BERTH_ERROR_INTERNAL, "%s returned no response", call->path);
        call_answer (call, response, error, TRUE);
        break;
      }
    }
  if (job->destroy != NULL)
    job->destroy (job->data);
  call_unref (call);
  g_free (job);
}

static gboolean
pool_retry (gpointer data)
{
  BerthGrpcServer *server = data;
  g_mutex_lock (&server->retry_lock);
  g_clear_pointer (&server->pool_retry, g_source_unref);
  g_mutex_unlock (&server->retry_lock);
  GThreadPool *pools[] = { server->quick_pool, server->call_pool, server->stream_pool };
  for (guint i = 0; i < G_N_ELEMENTS (pools); i++)
    if (pools[i] != NULL && g_thread_pool_unprocessed (pools[i]) > 0 && g_thread_pool_get_num_threads (pools[i]) == 0)
      server_push_job (server, pools[i], NULL);
  return G_SOURCE_REMOVE;
}

/* GLib queues the job even when it cannot start a thread for it (pids limit, memory):
 * a pool left with no thread is nudged again later instead of aborting the daemon. */
static void
server_push_job (BerthGrpcServer *server, GThreadPool *pool, Job *job)
{
  g_autoptr (GError) error = NULL;
  if (pool == NULL)
    {
      /* Stopping: the pools are gone and every call is cancelled. */
      if (job != NULL)
        {
          BerthGrpcCall *call = job->call;
          if (job->kind == JOB_STEP && call->step_state != NULL && call->entry->method.state_free != NULL)
            call->entry->method.state_free (g_steal_pointer (&call->step_state));
          if (job->kind == JOB_PULL && call->pull_destroy != NULL)
            call->pull_destroy (g_steal_pointer (&call->pull_data));
          call_finish (call, NULL);
          if (job->destroy != NULL)
            job->destroy (job->data);
          call_unref (job->call);
          g_free (job);
        }
      return;
    }
  if (g_thread_pool_push (pool, job, &error))
    return;
  g_warning ("no worker thread for a gRPC call yet: %s", error->message);
  g_mutex_lock (&server->retry_lock);
  if (server->pool_retry == NULL && !server->stopped)
    {
      server->pool_retry = g_timeout_source_new (200);
      g_source_set_callback (server->pool_retry, pool_retry, server, NULL);
      g_source_attach (server->pool_retry, server->context);
    }
  g_mutex_unlock (&server->retry_lock);
}

/* Version and health checks answer while every other worker is busy. */
static gboolean
method_is_quick (const char *path)
{
  static const char *const quick[] = {
    "/containerd.services.version.v1.Version/Version",
    "/grpc.health.v1.Health/Check",
    "/runtime.v1.RuntimeService/Version",
    "/runtime.v1alpha2.RuntimeService/Version",
  };
  for (guint i = 0; i < G_N_ELEMENTS (quick); i++)
    if (g_str_equal (path, quick[i]))
      return TRUE;
  return FALSE;
}

static void
call_step_kick (BerthGrpcCall *call)
{
  if (call->entry == NULL || call->entry->method.step == NULL || !call->dispatched)
    return;
  g_mutex_lock (&call->lock);
  gboolean go = !call->step_running && !call->step_done
                && (call->in_queue.length > 0 || call->in_closed || call->state != CALL_OPEN);
  if (go)
    call->step_running = TRUE;
  g_mutex_unlock (&call->lock);
  if (!go)
    return;
  Job *job = g_new0 (Job, 1);
  job->kind = JOB_STEP;
  job->call = call_ref (call);
  server_push_job (call->server, call->server->call_pool, job);
}

/* From any thread: the next pull once the client took enough of the queue, or the
 * last one (which frees the pull's data) once the call is over. */
static void
call_pull_kick (BerthGrpcCall *call)
{
  g_mutex_lock (&call->lock);
  gboolean go = call->pull_func != NULL && !call->pull_running && !call->pull_done
                && (call->out_bytes < PULL_BUDGET || call->state != CALL_OPEN
                    || g_cancellable_is_cancelled (call->cancellable));
  if (go)
    call->pull_running = TRUE;
  g_mutex_unlock (&call->lock);
  if (!go)
    return;
  Job *job = g_new0 (Job, 1);
  job->kind = JOB_PULL;
  job->call = call_ref (call);
  server_push_job (call->server, call->server->stream_pool, job);
}

static void
call_kick (BerthGrpcCall *call)
{
  call_step_kick (call);
  call_pull_kick (call);
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
  if (copied > 0)
    call_pull_kick (call);

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
      call_end (call);
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

/* Hands the call to a worker once it has something to work on: a unary or
 * server-streaming call its request, a blocking client stream its first message. A
 * step stream is only marked: each message kicks a step. */
static void
call_dispatch (BerthGrpcCall *call)
{
  if (call->dispatched || call->rejected)
    return;
  BerthGrpcServer *server = call->server;
  GThreadPool *pool = NULL;
  switch (call->entry->method.kind)
    {
    case BERTH_GRPC_UNARY:
      pool = method_is_quick (call->path) ? server->quick_pool : server->call_pool;
      break;
    case BERTH_GRPC_SERVER_STREAMING:
      pool = server->stream_pool;
      break;
    case BERTH_GRPC_CLIENT_STREAMING:
    case BERTH_GRPC_BIDI_STREAMING:
      pool = call->entry->method.step != NULL ? NULL : server->stream_pool;
      break;
    }
  if (pool != NULL && g_thread_pool_unprocessed (pool) >= MAX_QUEUED_JOBS)
    {
      call_reject (call, BERTH_ERROR_RESOURCE_EXHAUSTED, "berthd is busy: %u calls are waiting for a worker",
                   g_thread_pool_unprocessed (pool));
      return;
    }
  call->dispatched = TRUE;
  if (pool == NULL)
    {
      call_kick (call);
      return;
    }
  Job *job = g_new0 (Job, 1);
  job->kind = JOB_HANDLER;
  job->call = call_ref (call);
  server_push_job (server, pool, job);
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
      /* A timer counts milliseconds in a guint: a longer timeout (past ~49 days) would
       * wrap into a short one. Such a deadline never comes in practice: none. */
      if (usec / 1000 <= G_MAXUINT)
        {
          call->deadline_source = g_timeout_source_new ((guint) MAX (usec / 1000, 1));
          g_source_set_callback (call->deadline_source, on_deadline, call, NULL);
          g_source_attach (call->deadline_source, conn->server->context);
        }
    }
  if (conn->server->open_calls > MAX_OPEN_CALLS)
    {
      call_reject (call, BERTH_ERROR_RESOURCE_EXHAUSTED, "berthd has %u calls open, its limit is %d",
                   conn->server->open_calls, MAX_OPEN_CALLS);
      return;
    }
  if (call->entry->method.step != NULL)
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
  BerthGrpcMethodKind kind = call->entry->method.kind;
  if (kind == BERTH_GRPC_CLIENT_STREAMING || kind == BERTH_GRPC_BIDI_STREAMING)
    {
      call_dispatch (call);
      call_kick (call);
    }
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
  call->counted = TRUE;
  conn->server->open_calls++;
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
      call_kick (call);
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
  if (call->counted)
    {
      call->counted = FALSE;
      call->server->open_calls--;
    }
  call_end (call);
  call_kick (call);
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
  /* Freed from a source of its own (callers up the stack still hold the pointer), at
   * high priority: its fd must come back even while the loop is busy. */
  g_hash_table_steal (conn->server->connections, conn);
  conn->free_source = g_idle_source_new ();
  g_source_set_priority (conn->free_source, G_PRIORITY_HIGH);
  g_source_set_callback (conn->free_source, connection_free_idle, conn, NULL);
  g_source_attach (conn->free_source, conn->server->context);
}

static void
connection_free (Connection *conn)
{
  if (conn->free_source != NULL)
    {
      g_source_destroy (conn->free_source);
      g_source_unref (conn->free_source);
    }
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

static gboolean on_accept (int listen_fd, GIOCondition condition, gpointer data);

static void
accept_watch (BerthGrpcServer *server)
{
  server->accept_source = g_unix_fd_source_new (server->listen_fd, G_IO_IN);
  g_source_set_callback (server->accept_source, (GSourceFunc) (void (*) (void)) on_accept, server, NULL);
  g_source_attach (server->accept_source, server->context);
}

static gboolean
accept_resume (gpointer data)
{
  BerthGrpcServer *server = data;
  g_clear_pointer (&server->accept_retry, g_source_unref);
  accept_watch (server);
  return G_SOURCE_REMOVE;
}

/* Out of fds (ours or the system's): a pending connection keeps the listener readable,
 * so retrying at once would spin. Stop watching it for a while; the clients wait in the
 * backlog until connections close and give fds back. */
static void
accept_back_off (BerthGrpcServer *server, int err)
{
  server->accept_backoff_ms = server->accept_backoff_ms == 0 ? ACCEPT_BACKOFF_MIN_MS
                                                            : MIN (server->accept_backoff_ms * 2, ACCEPT_BACKOFF_MAX_MS);
  gint64 now = g_get_monotonic_time ();
  if (server->accept_warned == 0 || now - server->accept_warned > 10 * G_USEC_PER_SEC)
    {
      server->accept_warned = now;
      g_warning ("accept on %s: %s; not accepting for %u ms (%u connections open)",
                 server->socket_path ? server->socket_path : "socket", g_strerror (err), server->accept_backoff_ms,
                 g_hash_table_size (server->connections));
    }
  g_source_destroy (server->accept_source);
  g_clear_pointer (&server->accept_source, g_source_unref);
  server->accept_retry = g_timeout_source_new (server->accept_backoff_ms);
  g_source_set_callback (server->accept_retry, accept_resume, server, NULL);
  g_source_attach (server->accept_retry, server->context);
}

static gboolean
on_accept (int listen_fd, GIOCondition condition, gpointer data)
{
  BerthGrpcServer *server = data;
  for (int i = 0; i < 64; i++)
    {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        {
          int err = errno;
          if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
            {
              accept_back_off (server, err);
              return G_SOURCE_REMOVE;
            }
          if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != ECONNABORTED)
            g_warning ("accept on %s: %s", server->socket_path ? server->socket_path : "socket", g_strerror (err));
          break;
        }
      server->accept_backoff_ms = 0;
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
  /* Bounded: calls queue for a worker rather than each taking a thread (berth-grpc.h). */
  server->quick_pool = g_thread_pool_new (run_job, server, QUICK_THREADS, FALSE, NULL);
  server->call_pool = g_thread_pool_new (run_job, server, CALL_THREADS, FALSE, NULL);
  server->stream_pool = g_thread_pool_new (run_job, server, STREAM_THREADS, FALSE, NULL);
  g_mutex_init (&server->retry_lock);
  return server;
}

void
berth_grpc_server_set_call_observer (BerthGrpcServer *server, BerthGrpcCallObserver observer)
{
  server->observer = observer;
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
  server->listen_fd = fd;
  accept_watch (server);
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
  if (server->accept_retry != NULL)
    {
      g_source_destroy (server->accept_retry);
      g_clear_pointer (&server->accept_retry, g_source_unref);
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
  /* Handlers see cancelled calls; wait for them so nothing outlives the daemon. Deferred
   * calls end (their end_func runs) in the iterations below; a job they resumed meanwhile
   * finds its call cancelled. */
  while (g_main_context_iteration (server->context, FALSE))
    ;
  GThreadPool **pools[] = { &server->quick_pool, &server->call_pool, &server->stream_pool };
  for (guint i = 0; i < G_N_ELEMENTS (pools); i++)
    g_thread_pool_free (g_steal_pointer (pools[i]), FALSE, TRUE);
  g_mutex_lock (&server->retry_lock);
  if (server->pool_retry != NULL)
    {
      g_source_destroy (server->pool_retry);
      g_clear_pointer (&server->pool_retry, g_source_unref);
    }
  g_mutex_unlock (&server->retry_lock);
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
  g_mutex_clear (&server->retry_lock);
  g_free (server->socket_path);
  g_free (server);
}
