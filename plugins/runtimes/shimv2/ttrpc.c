/* ttrpc.c — see ttrpc.h. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

#include <berth/berth.h>

#include "ttrpc.h"
#include "ttrpc.pb-c.h"

#define HEADER_LENGTH 10
#define TYPE_REQUEST 1
#define TYPE_RESPONSE 2

static gboolean
make_address (const char *address, struct sockaddr_un *addr, socklen_t *len_out, GError **error)
{
  if (address == NULL)
    return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "the shim left no address");
  const char *path = g_str_has_prefix (address, "unix://") ? address + strlen ("unix://") : address;
  gsize len = strlen (path);
  *addr = (struct sockaddr_un) { .sun_family = AF_UNIX };
  if (len == 0 || len >= sizeof addr->sun_path)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "ttrpc address \"%s\": not a usable unix socket path", address);
  memcpy (addr->sun_path, path, len);
  if (path[0] == '@') /* abstract */
    addr->sun_path[0] = '\0';
  *len_out = path[0] == '@' ? (socklen_t) (offsetof (struct sockaddr_un, sun_path) + len) : sizeof *addr;
  return TRUE;
}

static void
put_header (guint8 *header, guint32 length, guint32 stream, guint8 type)
{
  guint32 be_length = GUINT32_TO_BE (length), be_stream = GUINT32_TO_BE (stream);
  memcpy (header, &be_length, 4);
  memcpy (header + 4, &be_stream, 4);
  header[8] = type;
  header[9] = 0;
}

/* Reads @len bytes before @deadline (monotonic µs, < 0: none). EOF is UNAVAILABLE: the
 * peer went away. */
static gboolean
read_full (int fd, guint8 *buf, gsize len, gint64 deadline, GCancellable *cancellable, const char *what,
           GError **error)
{
  GPollFD fds[2] = { { fd, G_IO_IN, 0 } };
  int nfds = g_cancellable_make_pollfd (cancellable, &fds[1]) ? 2 : 1;
  gboolean ok = TRUE;
  gsize got = 0;
  while (ok && got < len)
    {
      int left = deadline < 0 ? -1 : (int) MAX (0, (deadline - g_get_monotonic_time ()) / 1000);
      int ready = g_poll (fds, nfds, left);
      if (ready < 0 && errno == EINTR)
        continue;
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        ok = FALSE;
      else if (ready == 0)
        ok = berth_throw (error, BERTH_ERROR_DEADLINE_EXCEEDED, "%s: no reply in time", what);
      else
        {
          ssize_t n = read (fd, buf + got, len - got);
          if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
          if (n < 0)
            ok = berth_throw (error, BERTH_ERROR_UNAVAILABLE, "%s: connection lost: %s", what, g_strerror (errno));
          else if (n == 0)
            ok = berth_throw (error, BERTH_ERROR_UNAVAILABLE, "%s: connection closed before the reply", what);
          else
            got += n;
        }
    }
  if (nfds == 2)
    g_cancellable_release_fd (cancellable);
  return ok;
}

static gboolean
write_full (int fd, const guint8 *buf, gsize len)
{
  while (len > 0)
    {
      ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      buf += n;
      len -= n;
    }
  return TRUE;
}

/* Header + packed @message in one buffer. */
static guint8 *
pack_frame (const ProtobufCMessage *message, guint32 stream, guint8 type, gsize *len_out)
{
  gsize size = protobuf_c_message_get_packed_size (message);
  guint8 *frame = g_malloc (HEADER_LENGTH + size);
  put_header (frame, size, stream, type);
  protobuf_c_message_pack (message, frame + HEADER_LENGTH);
  *len_out = HEADER_LENGTH + size;
  return frame;
}

int
shimv2_ttrpc_send (const char *address, const char *namespace_, const char *service, const char *method,
                   const ProtobufCMessage *request, int timeout_ms, GError **error)
{
  struct sockaddr_un addr;
  socklen_t addr_len;
  if (!make_address (address, &addr, &addr_len, error))
    return -1;
  berth_autofd int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return berth_throw_errno (error, "socket"), -1;
  if (connect (fd, (struct sockaddr *) &addr, addr_len) < 0)
    return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "%s/%s at %s: cannot connect: %s", service, method, address,
                        g_strerror (errno)), -1;
  gsize payload_len = protobuf_c_message_get_packed_size (request);
  g_autofree guint8 *payload = g_malloc (payload_len + 1);
  protobuf_c_message_pack (request, payload);
  Berth__Ttrpc__Request req = BERTH__TTRPC__REQUEST__INIT;
  req.service = (char *) service;
  req.method = (char *) method;
  req.payload = (ProtobufCBinaryData) { payload_len, payload };
  req.timeout_nano = timeout_ms > 0 ? (gint64) timeout_ms * 1000000 : 0;
  /* containerd's ttrpc clients name the namespace as gRPC's do (namespaces/ttrpc.go). */
  Berth__Ttrpc__KeyValue ns_header = BERTH__TTRPC__KEY_VALUE__INIT;
  Berth__Ttrpc__KeyValue *headers[] = { &ns_header };
  if (namespace_ != NULL)
    {
      ns_header.key = "containerd-namespace-ttrpc";
      ns_header.value = (char *) namespace_;
      req.metadata = headers;
      req.n_metadata = 1;
    }
  gsize frame_len = 0;
  g_autofree guint8 *frame = pack_frame (&req.base, 1, TYPE_REQUEST, &frame_len);
  if (!write_full (fd, frame, frame_len))
    return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "%s/%s at %s: sending: %s", service, method, address,
                        g_strerror (errno)), -1;
  return berth_steal_fd (&fd);
}

/* The reply in one whole frame (header + body) → *reply_out, or @error. */
static gboolean
decode_reply (const guint8 *frame, const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply_out,
              GError **error)
{
  guint32 length;
  memcpy (&length, frame, 4);
  length = GUINT32_FROM_BE (length);
  Berth__Ttrpc__Response *response = (Berth__Ttrpc__Response *) protobuf_c_message_unpack (
    &berth__ttrpc__response__descriptor, NULL, length, frame + HEADER_LENGTH);
  if (response == NULL)
    return berth_throw (error, BERTH_ERROR_INTERNAL, "malformed ttrpc response");
  ProtobufCMessage *reply = NULL;
  if (response->status != NULL && response->status->code != 0)
    {
      int code = response->status->code;
      berth_throw (error, code > 0 && code <= BERTH_ERROR_UNAUTHENTICATED ? code : BERTH_ERROR_UNKNOWN, "%s",
                   response->status->message && *response->status->message ? response->status->message
                                                                            : "the call failed");
    }
  else
    {
      reply = protobuf_c_message_unpack (reply_type, NULL, response->payload.len, response->payload.data);
      if (reply == NULL)
        berth_throw (error, BERTH_ERROR_INTERNAL, "malformed %s", reply_type->name);
    }
  protobuf_c_message_free_unpacked (&response->base, NULL);
  *reply_out = reply;
  return reply != NULL;
}

gboolean
shimv2_ttrpc_take_reply (GByteArray *buffer, const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **reply_out,
                         GError **error)
{
  *reply_out = NULL;
  while (buffer->len >= HEADER_LENGTH)
    {
      guint32 length, stream;
      memcpy (&length, buffer->data, 4);
      memcpy (&stream, buffer->data + 4, 4);
      length = GUINT32_FROM_BE (length);
      stream = GUINT32_FROM_BE (stream);
      if (length > SHIMV2_TTRPC_MAX_MESSAGE)
        return berth_throw (error, BERTH_ERROR_RESOURCE_EXHAUSTED, "a %u-byte ttrpc reply is too large", length), TRUE;
      if (buffer->len < HEADER_LENGTH + length)
        return FALSE;
      if (buffer->data[8] == TYPE_RESPONSE && stream == 1)
        {
          decode_reply (buffer->data, reply_type, reply_out, error);
          return TRUE;
        }
      /* not ours: nothing else is in flight on this connection */
      g_byte_array_remove_range (buffer, 0, HEADER_LENGTH + length);
    }
  return FALSE;
}

ProtobufCMessage *
shimv2_ttrpc_call (const char *address, const char *namespace_, const char *service, const char *method,
                   const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type, int timeout_ms,
                   GCancellable *cancellable, GError **error)
{
  g_autofree char *what = g_strdup_printf ("%s/%s at %s", service, method, address);
  berth_autofd int fd = shimv2_ttrpc_send (address, namespace_, service, method, request, timeout_ms, error);
  if (fd < 0)
    return NULL;
  gint64 deadline = timeout_ms < 0 ? -1 : g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autoptr (GByteArray) buffer = g_byte_array_new ();
  for (;;)
    {
      /* Header first, then exactly the rest of the frame: never a read past the reply. */
      guint want = HEADER_LENGTH;
      if (buffer->len >= HEADER_LENGTH)
        {
          guint32 length;
          memcpy (&length, buffer->data, 4);
          want = HEADER_LENGTH + MIN (GUINT32_FROM_BE (length), (guint32) SHIMV2_TTRPC_MAX_MESSAGE + 1);
        }
      if (buffer->len < want)
        {
          guint have = buffer->len;
          g_byte_array_set_size (buffer, want);
          if (!read_full (fd, buffer->data + have, want - have, deadline, cancellable, what, error))
            return NULL;
        }
      ProtobufCMessage *reply = NULL;
      g_autoptr (GError) local_error = NULL;
      if (shimv2_ttrpc_take_reply (buffer, reply_type, &reply, &local_error))
        {
          if (reply == NULL)
            g_propagate_error (error, g_steal_pointer (&local_error));
          return reply;
        }
    }
}

/* ---------------- the server ---------------- */

struct _ShimV2TtrpcServer {
  int fd;
  guint source;
  char *path;
  ShimV2TtrpcHandler handler;
  gpointer user_data;
  GHashTable *connections; /* Connection (owned) */
};

typedef struct {
  ShimV2TtrpcServer *server;
  int fd;
  guint source;
  GByteArray *in;
} Connection;

static void
respond (Connection *conn, guint32 stream, GBytes *payload, const GError *error)
{
  Berth__Ttrpc__Response response = BERTH__TTRPC__RESPONSE__INIT;
  Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
  if (error != NULL)
    {
      status.code = berth_error_to_code (error);
      status.message = error->message;
      response.status = &status;
    }
  gsize len = 0;
  const guint8 *data = payload ? g_bytes_get_data (payload, &len) : NULL;
  response.payload = (ProtobufCBinaryData) { len, (guint8 *) data };
  gsize frame_len = 0;
  g_autofree guint8 *frame = pack_frame (&response.base, stream, TYPE_RESPONSE, &frame_len);
  /* Replies are small; a peer that does not read them loses its connection. */
  int flags = fcntl (conn->fd, F_GETFL);
  fcntl (conn->fd, F_SETFL, flags & ~O_NONBLOCK);
  struct timeval tv = { 5, 0 };
  setsockopt (conn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (!write_full (conn->fd, frame, frame_len))
    g_debug ("ttrpc: a reply was not delivered: %s", g_strerror (errno));
  fcntl (conn->fd, F_SETFL, flags);
}

/* Handles every complete frame in the buffer; FALSE: drop the connection. */
static gboolean
handle_frames (Connection *conn)
{
  while (conn->in->len >= HEADER_LENGTH)
    {
      guint32 length, stream;
      memcpy (&length, conn->in->data, 4);
      memcpy (&stream, conn->in->data + 4, 4);
      length = GUINT32_FROM_BE (length);
      stream = GUINT32_FROM_BE (stream);
      if (length > SHIMV2_TTRPC_MAX_MESSAGE)
        return FALSE;
      if (conn->in->len < HEADER_LENGTH + length)
        return TRUE;
      guint8 type = conn->in->data[8];
      Berth__Ttrpc__Request *req = type != TYPE_REQUEST ? NULL
        : (Berth__Ttrpc__Request *) protobuf_c_message_unpack (&berth__ttrpc__request__descriptor, NULL, length,
                                                               conn->in->data + HEADER_LENGTH);
      if (req != NULL)
        {
          g_autoptr (GError) error = NULL;
          g_autoptr (GBytes) payload = g_bytes_new (req->payload.data, req->payload.len);
          g_autoptr (GBytes) reply = conn->server->handler (req->service, req->method, payload, conn->server->user_data,
                                                            &error);
          respond (conn, stream, reply, error);
          protobuf_c_message_free_unpacked (&req->base, NULL);
        }
      else if (type == TYPE_REQUEST)
        {
          g_autoptr (GError) error = NULL;
          berth_throw (&error, BERTH_ERROR_INVALID_ARGUMENT, "malformed ttrpc request");
          respond (conn, stream, NULL, error);
        }
      g_byte_array_remove_range (conn->in, 0, HEADER_LENGTH + length);
    }
  return TRUE;
}

static gboolean
on_readable (int fd, GIOCondition condition, gpointer user_data)
{
  Connection *conn = user_data;
  guint8 buf[16384];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return G_SOURCE_CONTINUE;
  if (n > 0)
    {
      g_byte_array_append (conn->in, buf, n);
      if (handle_frames (conn))
        return G_SOURCE_CONTINUE;
    }
  /* The hash table's free function removes this source: keep it alive until then. */
  conn->source = 0;
  g_hash_table_remove (conn->server->connections, conn);
  return G_SOURCE_REMOVE;
}

static void
connection_destroy (gpointer data)
{
  Connection *conn = data;
  if (conn->source != 0)
    g_source_remove (conn->source);
  conn->source = 0;
  close (conn->fd);
  g_byte_array_unref (conn->in);
  g_free (conn);
}

static gboolean
on_accept (int fd, GIOCondition condition, gpointer user_data)
{
  ShimV2TtrpcServer *server = user_data;
  int client = accept4 (fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (client < 0)
    return G_SOURCE_CONTINUE;
  Connection *conn = g_new0 (Connection, 1);
  conn->server = server;
  conn->fd = client;
  conn->in = g_byte_array_new ();
  conn->source = g_unix_fd_add (client, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, conn);
  g_hash_table_add (server->connections, conn);
  return G_SOURCE_CONTINUE;
}

ShimV2TtrpcServer *
shimv2_ttrpc_server_new (const char *path, ShimV2TtrpcHandler handler, gpointer user_data, GError **error)
{
  struct sockaddr_un addr;
  socklen_t addr_len;
  if (!make_address (path, &addr, &addr_len, error))
    return NULL;
  berth_autofd int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return berth_throw_errno (error, "socket"), NULL;
  unlink (path); /* a previous berthd's */
  if (bind (fd, (struct sockaddr *) &addr, addr_len) < 0 || listen (fd, 64) < 0)
    return berth_throw_errno (error, "listening on %s", path), NULL;
  chmod (path, 0600);
  ShimV2TtrpcServer *server = g_new0 (ShimV2TtrpcServer, 1);
  server->fd = berth_steal_fd (&fd);
  server->path = g_strdup (path);
  server->handler = handler;
  server->user_data = user_data;
  server->connections = g_hash_table_new_full (g_direct_hash, g_direct_equal, connection_destroy, NULL);
  server->source = g_unix_fd_add (server->fd, G_IO_IN, on_accept, server);
  return server;
}

void
shimv2_ttrpc_server_free (ShimV2TtrpcServer *server)
{
  if (server == NULL)
    return;
  g_source_remove (server->source);
  g_hash_table_unref (server->connections);
  close (server->fd);
  unlink (server->path);
  g_free (server->path);
  g_free (server);
}
