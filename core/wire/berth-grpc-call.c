/* berth-grpc-call.c — a gRPC call as its handler sees it (messages in and out, deferred,
 * resumed and pulled calls, the status) and the worker pools that run handlers, steps
 * and pulls. The main thread's side of each call is berth-grpc-http2.c. */
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
#include "berth-grpc-private.h"
#include "berth-grpc-wire.h"

static void call_finish (BerthGrpcCall *call, const GError *error);

/* ---------------- calls ---------------- */

BerthGrpcCall *
call_ref (BerthGrpcCall *call)
{
  g_atomic_int_inc (&call->refcount);
  return call;
}

void
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
void
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
void
call_record (BerthGrpcCall *call, guint code)
{
  BerthGrpcCallObserver observer = call->server->observer;
  if (!g_atomic_int_compare_and_exchange (&call->recorded, FALSE, TRUE))
    return;
  gint64 elapsed_us = g_get_monotonic_time () - call->started;
  /* The per-call timings a latency profile starts from (issue #21). */
  g_debug ("%s: status %u after %" G_GINT64_FORMAT " us", call->path, code, elapsed_us);
  if (observer != NULL)
    observer (call->entry ? call->entry->path : NULL, code, elapsed_us);
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

void
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

gboolean
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
void
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
gboolean
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
void
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

void
call_kick (BerthGrpcCall *call)
{
  call_step_kick (call);
  call_pull_kick (call);
}
