/* cri-stream.c — the CRI's streaming calls: Exec, Attach and PortForward.
 *
 * As in containerd, the RPC only checks the request and answers with a URL of a small
 * HTTP server on loopback ([cri] stream-address, started on the first such call): a
 * random single-use token, valid for 60 s, names the stored request. The client (the
 * kubelet's proxy, or kubectl through it) then opens a WebSocket there and speaks the
 * Kubernetes channel protocol (v4.channel.k8s.io, v5.channel.k8s.io): every binary
 * message starts with its stream's byte — 0 stdin, 1 stdout, 2 stderr, 3 the final
 * status (a metav1.Status in JSON), 4 terminal resize; v5 adds 255 "close stream N".
 * PortForward uses a data channel 2·i and an error channel 2·i+1 per requested port,
 * each opened by the port number (2 bytes, little endian).
 *
 * Exec runs the command through berth_cri_exec (as ExecSync does) in a worker, with
 * FIFOs under <state>/cri/exec/ as its stdio, pumped to and from the WebSocket on the
 * main loop. Attach follows the container's CRI log file (output only). PortForward
 * connects to 127.0.0.1:PORT inside the pod's network namespace from a short-lived
 * thread that joined it. Terminals (tty) are not offered yet.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <libsoup/soup.h>

#include <berth/berth-error.h>
#include "berth-cri.h"
#include "berth-config.h"
#include "berth-image-store.h"

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "berth-cri"

#define TOKEN_LIFETIME_US (60 * G_USEC_PER_SEC)
#define ATTACH_POLL_US (100 * 1000)

enum {
  CHANNEL_STDIN = 0,
  CHANNEL_STDOUT = 1,
  CHANNEL_STDERR = 2,
  CHANNEL_STATUS = 3,
  CHANNEL_RESIZE = 4,
  CHANNEL_CLOSE = 255, /* v5: the next byte names a stream the client is done writing */
};

typedef enum { STREAM_EXEC, STREAM_ATTACH, STREAM_PORT_FORWARD, N_STREAM_KINDS } StreamKind;
static const char *const kind_paths[N_STREAM_KINDS] = { "/exec", "/attach", "/portforward" };

/* ---------------- stored requests ---------------- */

typedef struct {
  StreamKind kind;
  BerthDaemon *daemon;
  char *id; /* container, or sandbox for port forwarding */
  GStrv cmd;
  gboolean in, out, err;
  char *log_path; /* attach */
  gboolean raw_log; /* attach: a terminal's output, logged as it is (not in CRI format) */
  char *netns;    /* port forwarding: "" for the host's */
  GArray *ports;  /* guint16 */
  gint64 expires; /* monotonic */
} StreamRequest;

static void
stream_request_free (StreamRequest *req)
{
  g_free (req->id);
  g_strfreev (req->cmd);
  g_free (req->log_path);
  g_free (req->netns);
  if (req->ports != NULL)
    g_array_unref (req->ports);
  g_free (req);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StreamRequest, stream_request_free)

static StreamRequest *
stream_request_new (StreamKind kind, BerthDaemon *daemon, const char *id)
{
  StreamRequest *req = g_new0 (StreamRequest, 1);
  req->kind = kind;
  req->daemon = daemon;
  req->id = g_strdup (id);
  req->ports = g_array_new (FALSE, FALSE, sizeof (guint16));
  return req;
}

static GMutex pending_lock;
static GHashTable *pending; /* token → StreamRequest */

static gboolean
expired (gpointer key, gpointer value, gpointer now)
{
  return ((StreamRequest *) value)->expires <= *(gint64 *) now;
}

/* The request stored under the token of @path ("/exec/TOKEN"), NULL when there is none
 * or it expired; @take removes it, so a token serves one connection. */
static StreamRequest *
request_lookup (const char *path, gboolean take)
{
  const char *slash = path ? strrchr (path, '/') : NULL;
  if (slash == NULL || slash == path)
    return NULL;
  g_autofree char *prefix = g_strndup (path, slash - path);
  StreamRequest *req = NULL;
  gint64 now = g_get_monotonic_time ();
  g_mutex_lock (&pending_lock);
  if (pending != NULL)
    {
      g_hash_table_foreach_remove (pending, expired, &now);
      req = g_hash_table_lookup (pending, slash + 1);
      if (req != NULL && strcmp (kind_paths[req->kind], prefix) != 0)
        req = NULL;
      char *token = NULL;
      if (req != NULL && take && g_hash_table_steal_extended (pending, slash + 1, (gpointer *) &token, NULL))
        g_free (token);
    }
  g_mutex_unlock (&pending_lock);
  return req;
}

/* ---------------- the server ---------------- */

static GMutex server_lock;
static SoupServer *stream_server; /* serves until berthd exits */
static char *server_base;         /* "http://127.0.0.1:PORT", once listening */

static void on_websocket (SoupServer *server, SoupServerMessage *msg, const char *path, SoupWebsocketConnection *ws,
                          gpointer user_data);

/* An unknown, used or expired token: 404 before any WebSocket handshake. */
static void
on_early (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  if (request_lookup (path, FALSE) == NULL)
    soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, "no such stream (unknown, used or expired token)");
}

static gboolean
parse_stream_address (const char *text, GSocketAddress **out, GError **error)
{
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (text);
  guint16 port = 0;
  if (inet == NULL)
    {
      g_autoptr (GSocketConnectable) parsed = g_network_address_parse (text, 0, NULL);
      const char *host = parsed ? g_network_address_get_hostname (G_NETWORK_ADDRESS (parsed)) : NULL;
      inet = host ? g_inet_address_new_from_string (host) : NULL;
      port = parsed ? g_network_address_get_port (G_NETWORK_ADDRESS (parsed)) : 0;
    }
  if (inet == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "[cri] stream-address %s: want an IP address, optionally with a port (127.0.0.1, 127.0.0.1:10010)",
                        text);
  *out = g_inet_socket_address_new (inet, port);
  return TRUE;
}

/* Runs on the main context, which owns the server's sockets from then on. */
static char *
server_start (const char *address, GError **error)
{
  g_autoptr (GSocketAddress) socket_address = NULL;
  if (!parse_stream_address (address, &socket_address, error))
    return NULL;
  static const char *exec_protocols[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", NULL };
  static const char *forward_protocols[] = { "v4.channel.k8s.io", NULL };
  g_autoptr (SoupServer) server = soup_server_new ("server-header", "berthd/" PACKAGE_VERSION, NULL);
  for (int kind = 0; kind < N_STREAM_KINDS; kind++)
    {
      soup_server_add_early_handler (server, kind_paths[kind], on_early, NULL, NULL);
      soup_server_add_websocket_handler (server, kind_paths[kind], NULL,
                                         (char **) (kind == STREAM_PORT_FORWARD ? forward_protocols : exec_protocols),
                                         on_websocket, GINT_TO_POINTER (kind), NULL);
    }
  g_autoptr (GError) local_error = NULL;
  if (!soup_server_listen (server, socket_address, 0, &local_error))
    return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "streaming server: listening on %s: %s", address,
                        local_error->message), NULL;
  GSList *uris = soup_server_get_uris (server);
  GUri *uri = uris->data;
  GInetAddress *inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (socket_address));
  g_autofree char *host = g_inet_address_to_string (inet);
  char *base = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6
                 ? g_strdup_printf ("http://[%s]:%d", host, g_uri_get_port (uri))
                 : g_strdup_printf ("http://%s:%d", host, g_uri_get_port (uri));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  stream_server = g_steal_pointer (&server);
  g_debug ("CRI streaming server on %s", base);
  return base;
}

typedef struct {
  GMutex lock;
  GCond cond;
  gboolean done;
  const char *address;
  char *base;
  GError *error;
} StartCall;

static gboolean
start_on_main (gpointer data)
{
  StartCall *start = data;
  GError *error = NULL;
  char *base = server_start (start->address, &error);
  g_mutex_lock (&start->lock);
  start->base = base;
  start->error = error;
  start->done = TRUE;
  g_cond_signal (&start->cond);
  g_mutex_unlock (&start->lock);
  return G_SOURCE_REMOVE;
}

/* The server's base URL, starting it on the main context the first time. */
static char *
server_base_get (BerthDaemon *daemon, GError **error)
{
  g_mutex_lock (&server_lock);
  if (server_base == NULL)
    {
      StartCall start = { .address = berth_daemon_get_config (daemon)->cri_stream_address };
      g_mutex_init (&start.lock);
      g_cond_init (&start.cond);
      g_main_context_invoke (NULL, start_on_main, &start);
      g_mutex_lock (&start.lock);
      while (!start.done)
        g_cond_wait (&start.cond, &start.lock);
      g_mutex_unlock (&start.lock);
      g_mutex_clear (&start.lock);
      g_cond_clear (&start.cond);
      server_base = start.base;
      if (start.error != NULL)
        g_propagate_error (error, start.error);
    }
  char *base = g_strdup (server_base);
  g_mutex_unlock (&server_lock);
  return base;
}

/* Stores @req (taking it) under a fresh token: the URL the client is to open. */
static char *
request_url (StreamRequest *req_in, GError **error)
{
  g_autoptr (StreamRequest) req = req_in;
  g_autofree char *base = server_base_get (req->daemon, error);
  if (base == NULL)
    return NULL;
  guint8 raw[16];
  if (getrandom (raw, sizeof raw, 0) != sizeof raw)
    return berth_throw_errno (error, "reading random bytes for a stream token"), NULL;
  GString *token = g_string_new (NULL);
  for (guint i = 0; i < sizeof raw; i++)
    g_string_append_printf (token, "%02x", raw[i]);
  char *url = g_strdup_printf ("%s%s/%s", base, kind_paths[req->kind], token->str);
  req->expires = g_get_monotonic_time () + TOKEN_LIFETIME_US;
  g_mutex_lock (&pending_lock);
  if (pending == NULL)
    pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) stream_request_free);
  g_hash_table_insert (pending, g_string_free (token, FALSE), g_steal_pointer (&req));
  g_mutex_unlock (&pending_lock);
  return url;
}

/* ---------------- the RPCs ---------------- */

static ProtobufCMessage *
url_response (const ProtobufCMessageDescriptor *descriptor, StreamRequest *req, GError **error)
{
  char *url = request_url (req, error);
  if (url == NULL)
    return NULL;
  /* Exec, Attach and PortForward responses all hold just the url, as field 1. */
  Runtime__V1__ExecResponse *response = berth_grpc_message_new (descriptor);
  response->url = url;
  return &response->base;
}

/* NOT_FOUND for an unknown container, FAILED_PRECONDITION when it is not running. */
static CriContainer *
running_container (BerthDaemon *daemon, const char *id, GError **error)
{
  CriContainer *record = berth_cri_container_get (daemon, id, error);
  g_autoptr (BerthTask) task = record ? berth_cri_running_task (daemon, id, error) : NULL;
  if (task == NULL)
    {
      berth_grpc_message_free ((ProtobufCMessage *) record);
      record = NULL;
    }
  return record;
}

ProtobufCMessage *
cri_exec (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ExecRequest *req = (gpointer) request;
  if (req->n_cmd == 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "Exec needs a command"), NULL;
  if (!req->stdin && !req->stdout && !req->stderr)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "one of stdin, stdout and stderr must be set"), NULL;
  if (req->tty)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "Exec with a terminal (tty) is not supported by berth's streaming server yet; run it without one"),
           NULL;
  g_autoptr (ProtobufCMessage) record = (ProtobufCMessage *) running_container (daemon, req->container_id, error);
  if (record == NULL)
    return NULL;
  StreamRequest *sr = stream_request_new (STREAM_EXEC, daemon, req->container_id);
  sr->cmd = g_new0 (char *, req->n_cmd + 1);
  for (size_t i = 0; i < req->n_cmd; i++)
    sr->cmd[i] = g_strdup (req->cmd[i]);
  sr->in = req->stdin;
  sr->out = req->stdout;
  sr->err = req->stderr;
  return url_response (&runtime__v1__exec_response__descriptor, sr, error);
}

ProtobufCMessage *
cri_attach (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__AttachRequest *req = (gpointer) request;
  if (req->stdin)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "Attach with stdin is not supported by berth: it streams the container's logged stdout and "
                        "stderr only"), NULL;
  if (!req->stdout && !req->stderr)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "one of stdout and stderr must be set"), NULL;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) running_container (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  const CriContainer *record = (CriContainer *) owned;
  if (*record->log_path == '\0')
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                        "container %s has no log path, which berth's Attach follows", record->id), NULL;
  StreamRequest *sr = stream_request_new (STREAM_ATTACH, daemon, req->container_id);
  sr->log_path = g_strdup (record->log_path);
  sr->raw_log = record->config != NULL && record->config->tty;
  sr->out = req->stdout;
  sr->err = req->stderr;
  return url_response (&runtime__v1__attach_response__descriptor, sr, error);
}

ProtobufCMessage *
cri_port_forward (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__PortForwardRequest *req = (gpointer) request;
  for (size_t i = 0; i < req->n_port; i++)
    if (req->port[i] <= 0 || req->port[i] > 65535)
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "port %d is not a TCP port", req->port[i]), NULL;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) berth_cri_sandbox_get (daemon, req->pod_sandbox_id, error);
  if (owned == NULL)
    return NULL;
  const CriSandbox *record = (CriSandbox *) owned;
  g_autoptr (BerthTask) task = berth_cri_running_task (daemon, record->id, error);
  if (task == NULL)
    return NULL;
  StreamRequest *sr = stream_request_new (STREAM_PORT_FORWARD, daemon, record->id);
  sr->netns = g_strdup (record->netns);
  for (size_t i = 0; i < req->n_port; i++)
    {
      guint16 port = req->port[i];
      g_array_append_val (sr->ports, port);
    }
  return url_response (&runtime__v1__port_forward_response__descriptor, sr, error);
}

/* ---------------- sessions: one WebSocket each ---------------- */

typedef struct _Session Session;

/* One file descriptor between the WebSocket and a process or socket: what it reads
 * goes out on @channel; what the client sends on it is written, queued while the fd
 * is full. */
typedef struct {
  Session *session;
  int fd;
  gboolean is_socket;
  guint8 channel;
  guint read_source;
  guint write_source;
  GByteArray *queue;
  gboolean connecting; /* port forwarding: what the client sends is queued meanwhile */
  gboolean close_when_flushed;
} Pump;

struct _Session {
  StreamRequest *req;
  SoupWebsocketConnection *ws;
  gboolean v5;
  GCancellable *cancellable;
  char *dir; /* exec: its FIFOs */
  int stdin_keep; /* exec: a reader of the stdin FIFO, so input written (and the end of
                   * it) before the process opened it is not lost with the pipe */
  Pump *pumps; /* exec: stdin, stdout, stderr; port forwarding: one per port */
  guint n_pumps;
};

static void
pump_close (Pump *p)
{
  g_clear_handle_id (&p->read_source, g_source_remove);
  g_clear_handle_id (&p->write_source, g_source_remove);
  if (p->fd >= 0)
    close (p->fd);
  p->fd = -1;
  g_clear_pointer (&p->queue, g_byte_array_unref);
}

static void
session_clear (Session *s)
{
  for (guint i = 0; i < s->n_pumps; i++)
    pump_close (&s->pumps[i]);
  g_free (s->pumps);
  if (s->stdin_keep > 0)
    close (s->stdin_keep);
  if (s->dir != NULL)
    berth_cri_exec_dir_remove (s->dir);
  g_free (s->dir);
  g_clear_object (&s->cancellable);
  g_clear_object (&s->ws);
  stream_request_free (s->req);
}

static Session *
session_ref (Session *s)
{
  return g_rc_box_acquire (s);
}

static void
session_unref (Session *s)
{
  g_rc_box_release_full (s, (GDestroyNotify) session_clear);
}

static void
session_send (Session *s, guint8 channel, const void *data, gsize len)
{
  if (soup_websocket_connection_get_state (s->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  g_autofree guint8 *frame = g_malloc (len + 1);
  frame[0] = channel;
  memcpy (frame + 1, data, len);
  soup_websocket_connection_send_binary (s->ws, frame, len + 1);
}

static void
session_close (Session *s)
{
  if (soup_websocket_connection_get_state (s->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (s->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

/* Sends what @p can read now: read(2)'s result. */
static ssize_t
pump_read_once (Pump *p)
{
  guint8 buf[32768];
  ssize_t n = read (p->fd, buf, sizeof buf);
  if (n > 0)
    session_send (p->session, p->channel, buf, n);
  return n;
}

static gboolean
pump_readable (int fd, GIOCondition condition, gpointer data)
{
  Pump *p = data;
  ssize_t n = pump_read_once (p);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
    return G_SOURCE_CONTINUE;
  p->read_source = 0;
  /* A forwarded connection the pod closed ends the stream; an exec's output ends with
   * the process, whose exit the worker reports. */
  if (p->is_socket)
    session_close (p->session);
  return G_SOURCE_REMOVE;
}

/* Everything left in @p's pipe, once its writer is gone. */
static void
pump_drain (Pump *p)
{
  if (p->fd < 0)
    return;
  while (pump_read_once (p) > 0)
    ;
}

static void
pump_start_reading (Pump *p)
{
  p->read_source = g_unix_fd_add (p->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, pump_readable, p);
}

static gboolean pump_writable (int fd, GIOCondition condition, gpointer data);

static void
pump_write (Pump *p, const guint8 *data, gsize len)
{
  if ((p->fd < 0 && !p->connecting) || p->close_when_flushed)
    return;
  if (p->queue == NULL)
    p->queue = g_byte_array_new ();
  g_byte_array_append (p->queue, data, len);
  if (p->write_source == 0 && !p->connecting)
    pump_writable (p->fd, G_IO_OUT, p);
}

static gboolean
pump_writable (int fd, GIOCondition condition, gpointer data)
{
  Pump *p = data;
  while (p->queue->len > 0)
    {
      /* MSG_NOSIGNAL: a peer gone is an error here, not a SIGPIPE for berthd. An exec's
       * stdin FIFO is open for reading by us too, so it never raises one. */
      ssize_t n = p->is_socket ? send (p->fd, p->queue->data, p->queue->len, MSG_NOSIGNAL)
                               : write (p->fd, p->queue->data, p->queue->len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        {
          if (p->write_source == 0)
            p->write_source = g_unix_fd_add (p->fd, G_IO_OUT, pump_writable, p);
          return G_SOURCE_CONTINUE;
        }
      if (n < 0)
        {
          g_debug ("stream of %s, channel %u: %s", p->session->req->id, p->channel, g_strerror (errno));
          p->write_source = 0;
          g_byte_array_set_size (p->queue, 0);
          if (p->is_socket)
            session_close (p->session);
          return G_SOURCE_REMOVE;
        }
      g_byte_array_remove_range (p->queue, 0, n);
    }
  p->write_source = 0;
  if (p->close_when_flushed && p->read_source == 0)
    pump_close (p);
  return G_SOURCE_REMOVE;
}

/* The client is done writing to @p (v5's close): the process reads end of input. */
static void
pump_end_input (Pump *p)
{
  p->close_when_flushed = TRUE;
  if (p->write_source == 0 && p->read_source == 0)
    pump_close (p);
}

static void
on_message (SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
  Session *s = data;
  gsize len = 0;
  const guint8 *bytes = g_bytes_get_data (message, &len);
  if (type != SOUP_WEBSOCKET_DATA_BINARY || len == 0)
    return;
  guint8 channel = bytes[0];
  if (s->req->kind == STREAM_PORT_FORWARD)
    {
      if (channel % 2 == 0 && channel / 2 < s->n_pumps)
        pump_write (&s->pumps[channel / 2], bytes + 1, len - 1);
      return;
    }
  if (channel == CHANNEL_STDIN && s->n_pumps > 0)
    pump_write (&s->pumps[0], bytes + 1, len - 1);
  else if (channel == CHANNEL_CLOSE && s->v5 && len >= 2 && bytes[1] == CHANNEL_STDIN && s->n_pumps > 0)
    pump_end_input (&s->pumps[0]);
  /* CHANNEL_RESIZE only means something with a terminal, which berth does not offer. */
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer data)
{
  Session *s = data;
  g_cancellable_cancel (s->cancellable);
  for (guint i = 0; i < s->n_pumps; i++)
    pump_close (&s->pumps[i]);
  g_signal_handlers_disconnect_by_data (ws, s);
  session_unref (s);
}

/* A metav1.Status: Success, or Failure with @reason, @message and an ExitCode cause. */
static void
send_status (Session *s, const char *reason, const char *message, int exit_code)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "metadata");
  json_builder_begin_object (b);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, reason ? "Failure" : "Success");
  if (reason != NULL)
    {
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, message);
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, reason);
    }
  if (exit_code > 0)
    {
      g_autofree char *code = g_strdup_printf ("%d", exit_code);
      json_builder_set_member_name (b, "details");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "causes");
      json_builder_begin_array (b);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, "ExitCode");
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, code);
      json_builder_end_object (b);
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  g_autoptr (JsonNode) node = json_builder_get_root (b);
  gsize len = 0;
  g_autofree char *text = berth_json_to_text (node, &len);
  session_send (s, CHANNEL_STATUS, text, len);
}

/* ---------------- exec ---------------- */

static void
exec_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Session *s = data;
  g_autofree char *in = g_build_filename (s->dir, "stdin", NULL);
  g_autofree char *out = g_build_filename (s->dir, "stdout", NULL);
  g_autofree char *err = g_build_filename (s->dir, "stderr", NULL);
  BerthStdio stdio = { s->req->in ? in : NULL, s->req->out ? out : NULL, s->req->err ? err : NULL, FALSE };
  g_autofree BerthExitStatus *exit = g_new0 (BerthExitStatus, 1);
  GError *error = NULL;
  if (berth_cri_exec (s->req->daemon, s->req->id, s->req->cmd, g_strv_length (s->req->cmd), &stdio, -1, exit,
                      cancellable, &error))
    g_task_return_pointer (task, g_steal_pointer (&exit), g_free);
  else
    g_task_return_error (task, error);
}

static void
exec_done (GObject *source, GAsyncResult *result, gpointer data)
{
  Session *s = data;
  g_autoptr (GError) error = NULL;
  g_autofree BerthExitStatus *exit = g_task_propagate_pointer (G_TASK (result), &error);
  /* The process is gone: what it wrote is in the pipes. */
  for (guint i = 1; i < s->n_pumps; i++)
    pump_drain (&s->pumps[i]);
  if (exit == NULL)
    send_status (s, "InternalError", error->message, 0);
  else if (exit->exit_status != 0)
    {
      g_autofree char *message = g_strdup_printf ("command terminated with non-zero exit code: exit status %u",
                                                  exit->exit_status);
      send_status (s, "NonZeroExitCode", message, exit->exit_status);
    }
  else
    send_status (s, NULL, NULL, 0);
  session_close (s);
  session_unref (s);
}

static gboolean
exec_begin (Session *s, GError **error)
{
  s->dir = berth_cri_exec_dir_new (s->req->daemon, error);
  if (s->dir == NULL)
    return FALSE;
  static const char *const names[] = { "stdin", "stdout", "stderr" };
  const gboolean wanted[] = { s->req->in, s->req->out, s->req->err };
  s->n_pumps = 3;
  s->pumps = g_new0 (Pump, 3);
  for (guint i = 0; i < 3; i++)
    {
      Pump *p = &s->pumps[i];
      p->session = s;
      p->fd = -1;
      p->channel = i;
      if (!wanted[i])
        continue;
      g_autofree char *path = g_build_filename (s->dir, names[i], NULL);
      if (mkfifo (path, 0600) < 0)
        return berth_throw_errno (error, "creating FIFO %s", path);
      /* stdin read-write: the process sees end of input only when we close it. Output
       * read-only and non-blocking: it never waits for the writer, and poll reports no
       * hang-up before a writer came and went. */
      p->fd = open (path, (i == 0 ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
      if (p->fd < 0)
        return berth_throw_errno (error, "opening FIFO %s", path);
      if (i > 0)
        pump_start_reading (p);
      else if ((s->stdin_keep = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
        return berth_throw_errno (error, "opening FIFO %s", path);
    }
  g_autoptr (GTask) task = g_task_new (NULL, s->cancellable, exec_done, session_ref (s));
  g_task_set_source_tag (task, exec_begin);
  g_task_set_task_data (task, s, NULL);
  g_task_run_in_thread (task, exec_thread);
  return TRUE;
}

/* ---------------- attach ---------------- */

typedef struct {
  Session *session;
  guint8 channel;
  GBytes *data;
} Output;

static void
output_free (Output *o)
{
  session_unref (o->session);
  g_bytes_unref (o->data);
  g_free (o);
}

static gboolean
output_send (gpointer data)
{
  Output *o = data;
  gsize len = 0;
  const guint8 *bytes = g_bytes_get_data (o->data, &len);
  session_send (o->session, o->channel, bytes, len);
  return G_SOURCE_REMOVE;
}

/* Sends @data on @channel from a worker, through the main context. */
static void
attach_emit (Session *s, guint8 channel, const char *data, gsize len)
{
  Output *o = g_new0 (Output, 1);
  o->session = session_ref (s);
  o->channel = channel;
  o->data = g_bytes_new (data, len);
  g_main_context_invoke_full (NULL, G_PRIORITY_DEFAULT, output_send, o, (GDestroyNotify) output_free);
}

/* One line of the CRI log format, "TIME STREAM P|F TEXT", to its channel. */
static void
attach_line (Session *s, const char *line)
{
  g_auto (GStrv) fields = g_strsplit (line, " ", 4);
  if (g_strv_length (fields) < 3)
    return;
  gboolean is_err = strcmp (fields[1], "stderr") == 0;
  if ((is_err && !s->req->err) || (!is_err && !s->req->out))
    return;
  g_autofree char *text = g_strconcat (fields[3] ? fields[3] : "", strcmp (fields[2], "F") == 0 ? "\n" : "", NULL);
  attach_emit (s, is_err ? CHANNEL_STDERR : CHANNEL_STDOUT, text, strlen (text));
}

/* Follows the log from its current end until the container exits or the client goes. */
static void
attach_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Session *s = data;
  int fd = open (s->req->log_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      GError *error = NULL;
      berth_throw_errno (&error, "opening log %s", s->req->log_path);
      g_task_return_error (task, error);
      return;
    }
  lseek (fd, 0, SEEK_END);
  g_autoptr (BerthTask) container = berth_cri_task (s->req->daemon, s->req->id);
  g_autoptr (GString) partial = g_string_new (NULL);
  gboolean last = FALSE;
  while (!last && !g_cancellable_is_cancelled (cancellable))
    {
      last = container == NULL || berth_task_get_status (container, NULL, NULL) != BERTH_TASK_STATUS_RUNNING;
      char buf[65536];
      ssize_t n;
      while ((n = read (fd, buf, sizeof buf)) > 0)
        {
          if (s->req->raw_log)
            {
              attach_emit (s, CHANNEL_STDOUT, buf, n);
              continue;
            }
          g_string_append_len (partial, buf, n);
          char *nl;
          while ((nl = memchr (partial->str, '\n', partial->len)) != NULL)
            {
              *nl = '\0';
              attach_line (s, partial->str);
              g_string_erase (partial, 0, nl - partial->str + 1);
            }
        }
      if (!last)
        g_usleep (ATTACH_POLL_US);
    }
  close (fd);
  g_task_return_boolean (task, TRUE);
}

static void
attach_done (GObject *source, GAsyncResult *result, gpointer data)
{
  Session *s = data;
  g_autoptr (GError) error = NULL;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    send_status (s, "InternalError", error->message, 0);
  else
    send_status (s, NULL, NULL, 0);
  session_close (s);
  session_unref (s);
}

/* ---------------- port forwarding ---------------- */

typedef struct {
  const char *netns;
  guint16 port;
  int fd;
  int err;
} Dial;

/* In a thread of its own: joining the pod's network namespace changes only it. */
static gpointer
dial_thread (gpointer data)
{
  Dial *d = data;
  d->fd = -1;
  if (*d->netns != '\0')
    {
      int ns = open (d->netns, O_RDONLY | O_CLOEXEC);
      if (ns < 0 || setns (ns, CLONE_NEWNET) < 0)
        {
          d->err = errno;
          if (ns >= 0)
            close (ns);
          return NULL;
        }
      close (ns);
    }
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (d->port), .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  if (fd < 0 || connect (fd, (struct sockaddr *) &sin, sizeof sin) < 0)
    {
      d->err = errno;
      if (fd >= 0)
        close (fd);
      return NULL;
    }
  d->fd = fd;
  return NULL;
}

static void
forward_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Session *s = data;
  Dial *dials = g_new0 (Dial, s->n_pumps);
  for (guint i = 0; i < s->n_pumps; i++)
    {
      dials[i] = (Dial) { .netns = s->req->netns, .port = g_array_index (s->req->ports, guint16, i) };
      g_thread_join (g_thread_new ("berth-cri-dial", dial_thread, &dials[i]));
    }
  g_task_return_pointer (task, dials, g_free);
}

static void
forward_done (GObject *source, GAsyncResult *result, gpointer data)
{
  Session *s = data;
  g_autofree Dial *dials = g_task_propagate_pointer (G_TASK (result), NULL);
  gboolean any = FALSE;
  for (guint i = 0; i < s->n_pumps; i++)
    {
      Pump *p = &s->pumps[i];
      p->connecting = FALSE;
      guint8 port_le[2] = { dials[i].port & 0xff, dials[i].port >> 8 };
      session_send (s, 2 * i, port_le, 2);
      session_send (s, 2 * i + 1, port_le, 2);
      if (dials[i].fd < 0)
        {
          g_autofree char *message = g_strdup_printf ("error forwarding port %u to pod %s: connecting to it: %s",
                                                      dials[i].port, s->req->id, g_strerror (dials[i].err));
          session_send (s, 2 * i + 1, message, strlen (message));
          continue;
        }
      if (s->ws == NULL || soup_websocket_connection_get_state (s->ws) != SOUP_WEBSOCKET_STATE_OPEN)
        {
          close (dials[i].fd);
          continue;
        }
      p->fd = dials[i].fd;
      g_unix_set_fd_nonblocking (p->fd, TRUE, NULL);
      pump_start_reading (p);
      if (p->queue != NULL && p->queue->len > 0)
        pump_writable (p->fd, G_IO_OUT, p);
      any = TRUE;
    }
  if (!any)
    session_close (s);
  session_unref (s);
}

static gboolean
forward_begin (Session *s, SoupServerMessage *msg, GError **error)
{
  /* Ports come with the request, or else in the URL as ?ports=80,443 (as kubelet's
   * own server takes them). */
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  if (s->req->ports->len == 0 && query != NULL)
    {
      g_autoptr (GHashTable) params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);
      const char *list = params ? g_hash_table_lookup (params, "ports") : NULL;
      g_auto (GStrv) ports = g_strsplit (list ? list : "", ",", -1);
      for (guint i = 0; ports[i] != NULL; i++)
        {
          guint64 port = 0;
          if (!g_ascii_string_to_unsigned (ports[i], 10, 1, 65535, &port, NULL))
            return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "port %s is not a TCP port", ports[i]);
          guint16 p16 = port;
          g_array_append_val (s->req->ports, p16);
        }
    }
  if (s->req->ports->len == 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no port to forward");
  if (s->req->ports->len > 127)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "more ports than channels (127) to forward them on");
  s->n_pumps = s->req->ports->len;
  s->pumps = g_new0 (Pump, s->n_pumps);
  for (guint i = 0; i < s->n_pumps; i++)
    s->pumps[i] = (Pump) { .session = s, .fd = -1, .is_socket = TRUE, .channel = 2 * i, .connecting = TRUE };
  g_autoptr (GTask) task = g_task_new (NULL, s->cancellable, forward_done, session_ref (s));
  g_task_set_source_tag (task, forward_begin);
  g_task_set_task_data (task, s, NULL);
  g_task_run_in_thread (task, forward_thread);
  return TRUE;
}

static void
on_websocket (SoupServer *server, SoupServerMessage *msg, const char *path, SoupWebsocketConnection *ws,
              gpointer user_data)
{
  StreamRequest *req = request_lookup (path, TRUE);
  if (req == NULL)
    {
      soup_websocket_connection_close (ws, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "no such stream");
      return;
    }
  Session *s = g_rc_box_new0 (Session);
  s->req = req;
  s->ws = g_object_ref (ws);
  s->v5 = g_strcmp0 (soup_websocket_connection_get_protocol (ws), "v5.channel.k8s.io") == 0;
  s->cancellable = g_cancellable_new ();
  /* The connection's signals hold this reference until it closes. */
  g_signal_connect (ws, "message", G_CALLBACK (on_message), s);
  g_signal_connect (ws, "closed", G_CALLBACK (on_closed), s);
  g_autoptr (GError) error = NULL;
  gboolean ok = TRUE;
  if (req->kind == STREAM_EXEC)
    ok = exec_begin (s, &error);
  else if (req->kind == STREAM_PORT_FORWARD)
    ok = forward_begin (s, msg, &error);
  else
    {
      g_autoptr (GTask) task = g_task_new (NULL, s->cancellable, attach_done, session_ref (s));
      g_task_set_source_tag (task, on_websocket);
      g_task_set_task_data (task, s, NULL);
      g_task_run_in_thread (task, attach_thread);
    }
  if (!ok)
    {
      g_debug ("stream for %s: %s", req->id, error->message);
      send_status (s, "InternalError", error->message, 0);
      session_close (s);
    }
}
