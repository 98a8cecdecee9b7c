/* berth-grpc-client.c — blocking gRPC client: nghttp2 client session pumped by the
 * calling thread with poll(2). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include <berth/berth-error.h>
#include "berth-grpc-client.h"
#include "wire/berth-grpc-wire.h"

#define MAX_MESSAGE (16 * 1024 * 1024)
#define SEND_BUDGET (1024 * 1024)
#define WINDOW (16 * 1024 * 1024)

struct _BerthGrpcClient {
  int fd;
  char *socket_path;
  char *ns;
  nghttp2_session *session;
  GHashTable *calls; /* stream id → BerthGrpcClientCall* */
  GError *broken;    /* set once the connection failed; every later call reports it */
};

struct _BerthGrpcClientCall {
  BerthGrpcClient *client;
  char *path;
  const ProtobufCMessageDescriptor *response_type;
  int32_t stream_id;
  GByteArray *inbuf;
  GQueue messages; /* GBytes payloads received, not yet taken */
  GByteArray *outbuf;
  gsize out_offset;
  gboolean send_closed;
  gboolean deferred;
  gboolean closed;
  int grpc_status; /* -1 until the trailers say */
  char *grpc_message;
  char *http_status;
  GError *error; /* a framing error of ours */
};

static gboolean
connection_fail (BerthGrpcClient *client, GError **error, BerthErrorCode code, const char *format, ...)
  G_GNUC_PRINTF (4, 5);

static gboolean
connection_fail (BerthGrpcClient *client, GError **error, BerthErrorCode code, const char *format, ...)
{
  if (client->broken == NULL)
    {
      va_list args;
      va_start (args, format);
      g_autofree char *message = g_strdup_vprintf (format, args);
      va_end (args);
      client->broken = g_error_new (BERTH_ERROR, code, "connection to berthd at %s: %s", client->socket_path, message);
    }
  if (error != NULL)
    *error = g_error_copy (client->broken);
  return FALSE;
}

static ssize_t
on_send (nghttp2_session *session, const uint8_t *data, size_t length, int flags, void *user_data)
{
  BerthGrpcClient *client = user_data;
  (void) session;
  (void) flags;
  ssize_t n;
  do
    n = send (client->fd, data, length, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  return n;
}

static BerthGrpcClientCall *
call_of (BerthGrpcClient *client, int32_t stream_id)
{
  return g_hash_table_lookup (client->calls, GINT_TO_POINTER (stream_id));
}

static int
on_header (nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
           const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
  (void) session;
  (void) flags;
  BerthGrpcClientCall *call = call_of (user_data, frame->hd.stream_id);
  if (call == NULL)
    return 0;
  g_autofree char *text = g_strndup ((const char *) value, valuelen);
  if (namelen == 11 && memcmp (name, "grpc-status", 11) == 0)
    call->grpc_status = atoi (text);
  else if (namelen == 12 && memcmp (name, "grpc-message", 12) == 0)
    {
      g_free (call->grpc_message);
      call->grpc_message = berth_grpc_status_message_decode (text);
    }
  else if (namelen == 7 && memcmp (name, ":status", 7) == 0)
    {
      g_free (call->http_status);
      call->http_status = g_steal_pointer (&text);
    }
  return 0;
}

static int
on_data_chunk (nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
               void *user_data)
{
  (void) flags;
  BerthGrpcClientCall *call = call_of (user_data, stream_id);
  nghttp2_session_consume (session, stream_id, len);
  if (call == NULL || call->error != NULL)
    return 0;
  g_byte_array_append (call->inbuf, data, len);
  for (;;)
    {
      GBytes *message = NULL;
      BerthGrpcFrameResult result = berth_grpc_frame_next (call->inbuf, MAX_MESSAGE, &message, &call->error);
      if (result != BERTH_GRPC_FRAME_MESSAGE)
        break;
      g_queue_push_tail (&call->messages, message);
    }
  return 0;
}

static int
on_stream_close (nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
  (void) session;
  BerthGrpcClientCall *call = call_of (user_data, stream_id);
  if (call == NULL)
    return 0;
  call->closed = TRUE;
  if (call->grpc_status < 0 && error_code != NGHTTP2_NO_ERROR && call->error == NULL)
    call->error = g_error_new (BERTH_ERROR, BERTH_ERROR_UNAVAILABLE, "%s: stream reset by berthd (%s)", call->path,
                               nghttp2_http2_strerror (error_code));
  return 0;
}

static ssize_t
on_data_source_read (nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
                     nghttp2_data_source *source, void *user_data)
{
  (void) session;
  (void) stream_id;
  (void) user_data;
  BerthGrpcClientCall *call = source->ptr;
  gsize available = call->outbuf->len - call->out_offset;
  gsize n = MIN (length, available);
  memcpy (buf, call->outbuf->data + call->out_offset, n);
  call->out_offset += n;
  if (call->out_offset == call->outbuf->len)
    {
      g_byte_array_set_size (call->outbuf, 0);
      call->out_offset = 0;
    }
  if (n == 0 && !call->send_closed)
    {
      call->deferred = TRUE;
      return NGHTTP2_ERR_DEFERRED;
    }
  if (call->send_closed && call->outbuf->len == 0)
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return n;
}

BerthGrpcClient *
berth_grpc_client_connect (const char *socket_path, GError **error)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen (socket_path) >= sizeof addr.sun_path)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "socket path %s is too long", socket_path);
      return NULL;
    }
  strcpy (addr.sun_path, socket_path);
  berth_autofd int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      berth_throw_errno (error, "socket");
      return NULL;
    }
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      int saved = errno;
      berth_throw (error, BERTH_ERROR_UNAVAILABLE,
                   "cannot reach berthd at %s: %s (is berthd running? start it with `systemctl start berthd`, "
                   "or point --address at its socket)",
                   socket_path, g_strerror (saved));
      return NULL;
    }

  BerthGrpcClient *client = g_new0 (BerthGrpcClient, 1);
  client->fd = berth_steal_fd (&fd);
  client->socket_path = g_strdup (socket_path);
  client->ns = g_strdup ("default");
  client->calls = g_hash_table_new (NULL, NULL);

  nghttp2_session_callbacks *callbacks;
  nghttp2_session_callbacks_new (&callbacks);
  nghttp2_session_callbacks_set_send_callback (callbacks, on_send);
  nghttp2_session_callbacks_set_on_header_callback (callbacks, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback (callbacks, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback (callbacks, on_stream_close);
  nghttp2_option *option;
  nghttp2_option_new (&option);
  /* Data is acknowledged as it is parsed (on_data_chunk consumes it). */
  nghttp2_option_set_no_auto_window_update (option, 1);
  nghttp2_session_client_new2 (&client->session, callbacks, client, option);
  nghttp2_option_del (option);
  nghttp2_session_callbacks_del (callbacks);
  nghttp2_settings_entry settings[] = {
    { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW },
    { NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1 << 20 },
  };
  nghttp2_submit_settings (client->session, NGHTTP2_FLAG_NONE, settings, G_N_ELEMENTS (settings));
  nghttp2_session_set_local_window_size (client->session, NGHTTP2_FLAG_NONE, 0, WINDOW);
  return client;
}

static void
call_detach (BerthGrpcClientCall *call)
{
  if (call->client != NULL && call->stream_id > 0)
    {
      g_hash_table_remove (call->client->calls, GINT_TO_POINTER (call->stream_id));
      nghttp2_session_set_stream_user_data (call->client->session, call->stream_id, NULL);
    }
  call->client = NULL;
}

void
berth_grpc_client_free (BerthGrpcClient *client)
{
  if (client == NULL)
    return;
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init (&iter, client->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    ((BerthGrpcClientCall *) value)->client = NULL;
  g_hash_table_destroy (client->calls);
  nghttp2_session_del (client->session);
  close (client->fd);
  g_clear_error (&client->broken);
  g_free (client->socket_path);
  g_free (client->ns);
  g_free (client);
}

void
berth_grpc_client_set_namespace (BerthGrpcClient *client, const char *ns)
{
  g_free (client->ns);
  client->ns = g_strdup (ns);
}

const char *
berth_grpc_client_get_socket_path (BerthGrpcClient *client)
{
  return client->socket_path;
}

/* Writes what nghttp2 has queued. */
static gboolean
flush (BerthGrpcClient *client, GError **error)
{
  if (client->broken != NULL)
    return connection_fail (client, error, 0, "%s", "");
  int rv = nghttp2_session_send (client->session);
  if (rv != 0)
    return connection_fail (client, error, BERTH_ERROR_UNAVAILABLE, "sending: %s", nghttp2_strerror (rv));
  return TRUE;
}

/* Flushes, waits for bytes from berthd and feeds them to nghttp2. */
static gboolean
pump (BerthGrpcClient *client, GError **error)
{
  if (!flush (client, error))
    return FALSE;
  struct pollfd pfd = { .fd = client->fd, .events = POLLIN };
  while (poll (&pfd, 1, -1) < 0)
    if (errno != EINTR)
      return connection_fail (client, error, BERTH_ERROR_UNAVAILABLE, "poll: %s", g_strerror (errno));
  guint8 buf[64 * 1024];
  ssize_t n;
  do
    n = recv (client->fd, buf, sizeof buf, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return connection_fail (client, error, BERTH_ERROR_UNAVAILABLE, "reading: %s", g_strerror (errno));
  if (n == 0)
    return connection_fail (client, error, BERTH_ERROR_UNAVAILABLE, "berthd closed the connection");
  ssize_t used = nghttp2_session_mem_recv (client->session, buf, n);
  if (used < 0)
    return connection_fail (client, error, BERTH_ERROR_INTERNAL, "protocol error: %s", nghttp2_strerror (used));
  return flush (client, error);
}

#define NV(name, value) { (uint8_t *) (name), (uint8_t *) (value), strlen (name), strlen (value), NGHTTP2_NV_FLAG_NONE }

BerthGrpcClientCall *
berth_grpc_client_call_start (BerthGrpcClient *client, const char *path, const ProtobufCMessageDescriptor *response_type,
                              GError **error)
{
  if (client->broken != NULL)
    {
      connection_fail (client, error, 0, "%s", "");
      return NULL;
    }
  BerthGrpcClientCall *call = g_new0 (BerthGrpcClientCall, 1);
  call->client = client;
  call->path = g_strdup (path);
  call->response_type = response_type;
  call->inbuf = g_byte_array_new ();
  call->outbuf = g_byte_array_new ();
  call->grpc_status = -1;
  g_queue_init (&call->messages);

  nghttp2_nv headers[] = {
    NV (":method", "POST"),           NV (":scheme", "http"),
    NV (":path", path),               NV (":authority", "berthd"),
    NV ("content-type", "application/grpc"), NV ("te", "trailers"),
    NV ("user-agent", "berth/" PACKAGE_VERSION), NV ("containerd-namespace", client->ns),
  };
  nghttp2_data_provider provider = { .source.ptr = call, .read_callback = on_data_source_read };
  call->stream_id = nghttp2_submit_request (client->session, NULL, headers, G_N_ELEMENTS (headers), &provider, call);
  if (call->stream_id < 0)
    {
      berth_throw (error, BERTH_ERROR_UNAVAILABLE, "%s: %s", path, nghttp2_strerror (call->stream_id));
      call->stream_id = 0;
      berth_grpc_client_call_free (call);
      return NULL;
    }
  g_hash_table_insert (client->calls, GINT_TO_POINTER (call->stream_id), call);
  return call;
}

static gboolean
call_usable (BerthGrpcClientCall *call, GError **error)
{
  if (call->client == NULL)
    return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "%s: the connection is gone", call->path);
  return TRUE;
}

static void
resume (BerthGrpcClientCall *call)
{
  if (call->deferred && !call->closed)
    {
      call->deferred = FALSE;
      nghttp2_session_resume_data (call->client->session, call->stream_id);
    }
}

gboolean
berth_grpc_client_call_send (BerthGrpcClientCall *call, const ProtobufCMessage *request, GError **error)
{
  if (!call_usable (call, error))
    return FALSE;
  if (call->send_closed)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "%s: sending side already closed", call->path);
  g_autoptr (GBytes) frame = berth_grpc_frame_message (request, MAX_MESSAGE, error);
  if (frame == NULL)
    return FALSE;
  gsize size;
  const guint8 *data = g_bytes_get_data (frame, &size);
  g_byte_array_append (call->outbuf, data, size);
  resume (call);
  if (!flush (call->client, error))
    return FALSE;
  /* Back-pressure: wait while berthd's window keeps too much of ours unsent. */
  while (!call->closed && call->outbuf->len - call->out_offset > SEND_BUDGET)
    if (!pump (call->client, error))
      return FALSE;
  return TRUE;
}

gboolean
berth_grpc_client_call_close_send (BerthGrpcClientCall *call, GError **error)
{
  if (!call_usable (call, error))
    return FALSE;
  call->send_closed = TRUE;
  resume (call);
  return flush (call->client, error);
}

static gboolean
call_status_error (BerthGrpcClientCall *call, GError **error)
{
  if (call->error != NULL)
    {
      g_propagate_error (error, g_error_copy (call->error));
      return FALSE;
    }
  if (call->grpc_status > 0)
    return berth_throw (error, call->grpc_status, "%s", call->grpc_message ? call->grpc_message : "(no message)");
  if (call->grpc_status < 0)
    return berth_throw (error, BERTH_ERROR_UNKNOWN, "%s: the response carried no grpc-status (HTTP status %s)",
                        call->path, call->http_status ? call->http_status : "none");
  return TRUE;
}

gpointer
berth_grpc_client_call_recv (BerthGrpcClientCall *call, GError **error)
{
  if (!call_usable (call, error))
    return NULL;
  for (;;)
    {
      if (call->messages.length > 0)
        {
          g_autoptr (GBytes) bytes = g_queue_pop_head (&call->messages);
          gsize size;
          const guint8 *data = g_bytes_get_data (bytes, &size);
          ProtobufCMessage *message = protobuf_c_message_unpack (call->response_type, NULL, size, data);
          if (message == NULL)
            berth_throw (error, BERTH_ERROR_INTERNAL, "%s: berthd sent a malformed %s", call->path,
                         call->response_type->name);
          return message;
        }
      if (call->error != NULL || call->closed)
        {
          call_status_error (call, error);
          return NULL;
        }
      if (!pump (call->client, error))
        return NULL;
    }
}

void
berth_grpc_client_call_free (BerthGrpcClientCall *call)
{
  if (call == NULL)
    return;
  if (call->client != NULL && call->stream_id > 0 && !call->closed)
    {
      nghttp2_submit_rst_stream (call->client->session, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
      flush (call->client, NULL);
    }
  call_detach (call);
  g_queue_clear_full (&call->messages, (GDestroyNotify) g_bytes_unref);
  g_byte_array_unref (call->inbuf);
  g_byte_array_unref (call->outbuf);
  g_clear_error (&call->error);
  g_free (call->grpc_message);
  g_free (call->http_status);
  g_free (call->path);
  g_free (call);
}

gpointer
berth_grpc_client_unary (BerthGrpcClient *client, const char *path, const ProtobufCMessage *request,
                         const ProtobufCMessageDescriptor *response_type, GError **error)
{
  g_autoptr (BerthGrpcClientCall) call = berth_grpc_client_call_start (client, path, response_type, error);
  if (call == NULL || !berth_grpc_client_call_send (call, request, error)
      || !berth_grpc_client_call_close_send (call, error))
    return NULL;
  ProtobufCMessage *response = berth_grpc_client_call_recv (call, error);
  if (response == NULL)
    {
      if (error != NULL && *error == NULL)
        berth_throw (error, BERTH_ERROR_INTERNAL, "%s: berthd ended the call without a response", path);
      return NULL;
    }
  /* Drain to the trailers: the status decides. */
  GError *local = NULL;
  ProtobufCMessage *extra = berth_grpc_client_call_recv (call, &local);
  if (extra != NULL)
    {
      protobuf_c_message_free_unpacked (extra, NULL);
      protobuf_c_message_free_unpacked (response, NULL);
      berth_throw (error, BERTH_ERROR_INTERNAL, "%s: more than one response to a unary call", path);
      return NULL;
    }
  if (local != NULL)
    {
      protobuf_c_message_free_unpacked (response, NULL);
      g_propagate_error (error, local);
      return NULL;
    }
  return response;
}
