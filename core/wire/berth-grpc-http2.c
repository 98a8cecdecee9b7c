/* berth-grpc-http2.c — the main thread's side of the gRPC server: accepting
 * connections, nghttp2 sessions, request headers and DATA frames parsed into calls and
 * messages (dispatched to the workers of berth-grpc-call.c), responses and trailers
 * sent as the peer's flow-control window allows. */
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
#include <berth/berth-identifiers.h>
#include "berth-grpc-private.h"
#include "berth-grpc-wire.h"

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
void
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
void
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

static gboolean
connection_free_idle (gpointer data)
{
  connection_free (data);
  return G_SOURCE_REMOVE;
}

void
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

void
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

void
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
