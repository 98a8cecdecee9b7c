/* cri-stream.c — the CRI's streaming calls: Exec, Attach and PortForward.
 *
 * As in containerd, the RPC only checks the request and answers with a URL of a small
 * HTTP server on loopback ([cri] stream-address, started on the first such call): a
 * random single-use token, valid for 60 s, names the stored request. The client (the
 * kubelet's proxy, or kubectl through it) then opens either
 *  - a WebSocket there and speaks the Kubernetes channel protocol (v4.channel.k8s.io,
 *    v5.channel.k8s.io): every binary message starts with its stream's byte — 0 stdin,
 *    1 stdout, 2 stderr, 3 the final status (a metav1.Status in JSON), 4 terminal
 *    resize; v5 adds 255 "close stream N". PortForward uses a data channel 2·i and an
 *    error channel 2·i+1 per requested port, each opened by the port number (2 bytes,
 *    little endian);
 *  - or an HTTP Upgrade to SPDY/3.1 (what Kubernetes clients up to 1.29 and crictl
 *    use: v4/v3/v2.channel.k8s.io, portforward.k8s.io), one SPDY stream per role (see
 *    the SPDY section below; framing in cri-spdy.c).
 *
 * Exec runs the command through berth_cri_exec_as (as ExecSync does) in a worker, with
 * FIFOs under <state>/cri/exec/ as its stdio (with a terminal if asked: the shim copies
 * its pty to and from them, and resize events reach it), pumped to and from the client
 * on the main loop. Attach follows the container's CRI log file, or for a container
 * created without one the output FIFO its shim writes to (see below).
 * PortForward connects to 127.0.0.1:PORT inside the pod's network namespace from a
 * short-lived thread that joined it.
 *
 * Flow control: what berthd queues toward a client is bounded (OUT_BUDGET for SPDY; a
 * WebSocket's socket that takes nothing more): past it the process's pipe (or the pod's
 * socket, or the log) is not read until the client reads. Input is bounded the same way
 * (IN_BUDGET queued toward a process or pod, then the SPDY connection is not read).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
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
#include "daemon/berth-config.h"
#include "image/berth-image-store.h"
#include "cri-spdy.h"

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
  gboolean in, out, err, tty;
  gboolean stdin_once; /* attach: the container's stdin ends with this client's */
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

static void on_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                        gpointer user_data);
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
      soup_server_add_handler (server, kind_paths[kind], on_request, NULL, NULL);
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

/* ---------------- containers' stdin ---------------- */

/* A container created with stdin gets a FIFO, <state>/cri/stdin/<id>, as its stdin;
 * berthd holds it open for writing (so the container does not read end of input before
 * anyone attached) until the container is removed, or, with stdin_once, until the first
 * attached client is done writing. Attach writes what its client sends there. */
static GMutex stdin_lock;
static GHashTable *stdin_keepers; /* container id → its FIFO's fd + 1 */

char *
berth_cri_stdin_open (BerthDaemon *daemon, const char *id, GError **error)
{
  g_autofree char *dir = berth_cri_path (daemon, "stdin", NULL);
  g_autofree char *path = berth_cri_path (daemon, "stdin", id);
  if (g_mkdir_with_parents (dir, 0700) < 0)
    return berth_throw_errno (error, "creating %s", dir), NULL;
  berth_cri_stdin_close (daemon, id, TRUE);
  if (mkfifo (path, 0600) < 0)
    return berth_throw_errno (error, "creating FIFO %s", path), NULL;
  int fd = open (path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return berth_throw_errno (error, "opening FIFO %s", path), NULL;
  g_mutex_lock (&stdin_lock);
  if (stdin_keepers == NULL)
    stdin_keepers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (stdin_keepers, g_strdup (id), GINT_TO_POINTER (fd + 1));
  g_mutex_unlock (&stdin_lock);
  return g_steal_pointer (&path);
}

void
berth_cri_stdin_close (BerthDaemon *daemon, const char *id, gboolean remove)
{
  gpointer key = NULL, value = NULL;
  g_mutex_lock (&stdin_lock);
  if (stdin_keepers != NULL && g_hash_table_steal_extended (stdin_keepers, id, &key, &value))
    g_free (key);
  g_mutex_unlock (&stdin_lock);
  if (value != NULL)
    close (GPOINTER_TO_INT (value) - 1);
  if (remove)
    {
      g_autofree char *path = berth_cri_path (daemon, "stdin", id);
      unlink (path);
    }
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
  if (req->tty && req->stderr)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "tty and stderr cannot both be true"), NULL;
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
  sr->tty = req->tty;
  return url_response (&runtime__v1__exec_response__descriptor, sr, error);
}

ProtobufCMessage *
cri_attach (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__AttachRequest *req = (gpointer) request;
  if (!req->stdin && !req->stdout && !req->stderr)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "one of stdin, stdout and stderr must be set"), NULL;
  g_autoptr (ProtobufCMessage) owned = (ProtobufCMessage *) running_container (daemon, req->container_id, error);
  if (owned == NULL)
    return NULL;
  const CriContainer *record = (CriContainer *) owned;
  if (req->stdin && (record->config == NULL || !record->config->stdin))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "Attach with stdin: container %s was not created with stdin", record->id), NULL;
  g_autofree char *output = *record->log_path == '\0' ? berth_cri_path (daemon, "output", record->id) : NULL;
  if (output != NULL && !g_file_test (output, G_FILE_TEST_EXISTS))
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                        "container %s has neither a log path nor an output FIFO (started by an older berthd)", record->id),
           NULL;
  StreamRequest *sr = stream_request_new (STREAM_ATTACH, daemon, req->container_id);
  sr->log_path = output != NULL ? g_steal_pointer (&output) : g_strdup (record->log_path);
  sr->raw_log = record->config != NULL && record->config->tty;
  sr->in = req->stdin;
  sr->stdin_once = record->config->stdin_once;
  sr->out = req->stdout;
  sr->err = req->stderr;
  sr->tty = req->tty;
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

/* ---------------- sessions: one WebSocket or SPDY connection each ---------------- */

/* What berthd queues toward one side before it stops reading the other: a client that
 * stops reading (or a process that stops reading its stdin) costs this much, no more. */
#define OUT_BUDGET (1024 * 1024)
#define IN_BUDGET (1024 * 1024)
#define SPDY_STREAMS_TIMEOUT_S 30 /* for the client to open the streams its request named */
#define SPDY_LINGER_S 5           /* for the client to close after our last frame */
#define SPDY_MAX_FORWARDS 128     /* port forwarding: connections at once on one session */

typedef struct _Session Session;

/* One file descriptor between the client and a process or socket: what it reads goes
 * out on @channel (or SPDY stream @data_stream); what the client sends on it is
 * written, queued while the fd is full. */
typedef struct {
  Session *session;
  int fd;
  gboolean is_socket;
  guint8 channel;
  guint read_source;
  guint write_source;
  gboolean paused; /* not reading @fd while the client's queue is over budget */
  GByteArray *queue;
  gboolean connecting; /* port forwarding: what the client sends is queued meanwhile */
  gboolean close_when_flushed;
  gboolean shutdown_when_flushed; /* a socket the client is done writing to */
  /* SPDY port forwarding: one connection per client request */
  char *request_id;
  guint16 port;
  guint32 data_stream, error_stream;
  guint32 unacked; /* SPDY: bytes taken from the client since our last WINDOW_UPDATE */
  gboolean release_stdin; /* attach with stdin_once: its end ends the container's stdin */
  gboolean dialing;       /* SPDY port forwarding: a worker connects it */
  gboolean done;          /* SPDY port forwarding: over, to be dropped (when not dialing) */
} Pump;

/* A SPDY/3.1 connection, stolen from libsoup after its 101 answer. */
typedef struct {
  GIOStream *stream; /* held so libsoup does not close the socket */
  GSocket *socket;
  int fd;
  CriSpdyDecoder *decoder;
  CriSpdyEncoder *encoder;
  GByteArray *in, *out;
  GHashTable *open; /* stream ids we answered and have not finished */
  guint read_source, write_source, timeout_source;
  gboolean closing; /* our last frame is queued: shut down once it is out */
  gboolean gone;
} Spdy;

enum { SPDY_STDIN, SPDY_STDOUT, SPDY_STDERR, SPDY_ERROR, SPDY_RESIZE, N_SPDY_STREAMS };
static const char *const spdy_stream_types[N_SPDY_STREAMS] = { "stdin", "stdout", "stderr", "error", "resize" };

struct _Session {
  StreamRequest *req;
  SoupWebsocketConnection *ws; /* one of these two */
  Spdy *spdy;
  int ws_fd;           /* the WebSocket's socket, -1 if unknown */
  guint ws_writable;   /* watching it while it takes nothing */
  gboolean v5;
  int version;                     /* SPDY exec and attach: N of vN.channel.k8s.io */
  guint32 ids[N_SPDY_STREAMS];     /* SPDY exec and attach: the client's streams */
  gboolean started;
  gint out_full; /* atomic: the client's queue is over budget (read by attach's worker) */
  char *exec_id;  /* exec: the process, for resizing its terminal */
  GString *resize_text; /* SPDY: what came on the resize stream, up to a newline */
  guint16 want_size[2], done_size[2]; /* terminal width, height: asked for, applied */
  gboolean resizing;
  GCancellable *cancellable;
  char *dir; /* exec: its FIFOs */
  int stdin_keep; /* exec: a reader of the stdin FIFO, so input written (and the end of
                   * it) before the process opened it is not lost with the pipe */
  GPtrArray *pumps; /* Pump: exec: stdin, stdout, stderr; port forwarding: one per port
                     * (WebSocket) or per connection (SPDY) */
};

static Pump *
pump_at (Session *s, guint i)
{
  return i < s->pumps->len ? s->pumps->pdata[i] : NULL;
}

static Pump *
pump_new (Session *s, guint8 channel, gboolean is_socket)
{
  Pump *p = g_new0 (Pump, 1);
  p->session = s;
  p->fd = -1;
  p->channel = channel;
  p->is_socket = is_socket;
  g_ptr_array_add (s->pumps, p);
  return p;
}

static void
pump_close (Pump *p)
{
  g_clear_handle_id (&p->read_source, g_source_remove);
  g_clear_handle_id (&p->write_source, g_source_remove);
  if (p->fd >= 0)
    close (p->fd);
  p->fd = -1;
  p->paused = FALSE;
  p->connecting = FALSE;
  g_clear_pointer (&p->queue, g_byte_array_unref);
}

static void
pump_free (Pump *p)
{
  pump_close (p);
  g_free (p->request_id);
  g_free (p);
}

static void spdy_free (Spdy *c);

static void
session_clear (Session *s)
{
  g_clear_handle_id (&s->ws_writable, g_source_remove);
  g_ptr_array_unref (s->pumps);
  if (s->stdin_keep > 0)
    close (s->stdin_keep);
  if (s->dir != NULL)
    berth_cri_exec_dir_remove (s->dir);
  g_free (s->dir);
  g_free (s->exec_id);
  if (s->resize_text != NULL)
    g_string_free (s->resize_text, TRUE);
  g_clear_object (&s->cancellable);
  g_clear_object (&s->ws);
  g_clear_pointer (&s->spdy, spdy_free);
  stream_request_free (s->req);
}

static Session *
session_new (StreamRequest *req)
{
  Session *s = g_rc_box_new0 (Session);
  s->req = req;
  s->cancellable = g_cancellable_new ();
  s->pumps = g_ptr_array_new_with_free_func ((GDestroyNotify) pump_free);
  s->ws_fd = -1;
  return s;
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

static gboolean
session_open (Session *s)
{
  if (s->spdy != NULL)
    return !s->spdy->gone && !s->spdy->closing;
  return s->ws != NULL && soup_websocket_connection_get_state (s->ws) == SOUP_WEBSOCKET_STATE_OPEN;
}

static void spdy_send_data (Session *s, guint32 stream, gboolean fin, const void *data, gsize len);
static void spdy_close (Session *s);

static void
session_send (Session *s, guint8 channel, const void *data, gsize len)
{
  if (!session_open (s))
    return;
  if (s->spdy != NULL)
    {
      /* Channels of the WebSocket protocol map to the SPDY streams of the same role. */
      static const int stream_of_channel[] = { SPDY_STDIN, SPDY_STDOUT, SPDY_STDERR, SPDY_ERROR, SPDY_RESIZE };
      if (channel < G_N_ELEMENTS (stream_of_channel) && s->ids[stream_of_channel[channel]] != 0)
        spdy_send_data (s, s->ids[stream_of_channel[channel]], FALSE, data, len);
      return;
    }
  g_autofree guint8 *frame = g_malloc (len + 1);
  frame[0] = channel;
  memcpy (frame + 1, data, len);
  soup_websocket_connection_send_binary (s->ws, frame, len + 1);
}

static void
session_close (Session *s)
{
  if (s->spdy != NULL)
    spdy_close (s);
  else if (session_open (s))
    soup_websocket_connection_close (s->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

/* The client's connection is over: stop everything feeding it. */
static void
session_end (Session *s)
{
  g_cancellable_cancel (s->cancellable);
  g_clear_handle_id (&s->ws_writable, g_source_remove);
  for (guint i = 0; i < s->pumps->len; i++)
    pump_close (pump_at (s, i));
}

static void session_resume (Session *s);

static gboolean
ws_writable (int fd, GIOCondition condition, gpointer data)
{
  Session *s = data;
  s->ws_writable = 0;
  g_atomic_int_set (&s->out_full, FALSE);
  session_resume (s);
  return G_SOURCE_REMOVE;
}

/* Whether the client's outgoing queue is over budget. A SPDY connection's queue is
 * ours. libsoup's WebSocket queue cannot be measured, but libsoup queues only while the
 * socket takes nothing: then what feeds it waits until the socket is writable again. */
static gboolean
session_out_full (Session *s)
{
  if (s->spdy != NULL)
    return s->spdy->out->len >= OUT_BUDGET;
  if (s->ws_fd < 0 || !session_open (s))
    return FALSE;
  if (s->ws_writable != 0)
    return TRUE;
  struct pollfd pfd = { .fd = s->ws_fd, .events = POLLOUT };
  if (poll (&pfd, 1, 0) != 0)
    return FALSE;
  s->ws_writable = g_unix_fd_add (s->ws_fd, G_IO_OUT, ws_writable, s);
  g_atomic_int_set (&s->out_full, TRUE);
  return TRUE;
}

static void
pump_send (Pump *p, const void *data, gsize len)
{
  if (p->data_stream != 0)
    {
      if (session_open (p->session))
        spdy_send_data (p->session, p->data_stream, FALSE, data, len);
    }
  else
    session_send (p->session, p->channel, data, len);
}

/* Sends what @p can read now: read(2)'s result. */
static ssize_t
pump_read_once (Pump *p)
{
  guint8 buf[32768];
  ssize_t n = read (p->fd, buf, sizeof buf);
  if (n > 0)
    pump_send (p, buf, n);
  return n;
}

static void spdy_forward_finish (Pump *p, const char *message);

static gboolean
pump_readable (int fd, GIOCondition condition, gpointer data)
{
  Pump *p = data;
  if (session_out_full (p->session))
    {
      /* Flow control: the process (or pod socket) waits until the client reads. */
      p->read_source = 0;
      p->paused = TRUE;
      return G_SOURCE_REMOVE;
    }
  ssize_t n = pump_read_once (p);
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
    return G_SOURCE_CONTINUE;
  p->read_source = 0;
  /* A forwarded connection the pod closed ends the stream (over SPDY, only this
   * connection's streams); an exec's output ends with the process, whose exit the
   * worker reports. */
  if (p->is_socket && p->data_stream != 0)
    spdy_forward_finish (p, NULL);
  else if (p->is_socket)
    session_close (p->session);
  return G_SOURCE_REMOVE;
}

/* Everything left in @p's pipe, once its writer is gone. */
static void
pump_drain (Pump *p)
{
  if (p == NULL || p->fd < 0)
    return;
  while (pump_read_once (p) > 0)
    ;
}

static void
pump_start_reading (Pump *p)
{
  p->paused = FALSE;
  p->read_source = g_unix_fd_add (p->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, pump_readable, p);
}

/* The client's queue went under budget again: read what feeds it. */
static void
session_resume (Session *s)
{
  for (guint i = 0; i < s->pumps->len; i++)
    {
      Pump *p = pump_at (s, i);
      if (p->paused && p->fd >= 0 && p->read_source == 0)
        pump_start_reading (p);
    }
}

static gboolean pump_writable (int fd, GIOCondition condition, gpointer data);
static void spdy_update_reading (Session *s);

static void
pump_write (Pump *p, const guint8 *data, gsize len)
{
  if ((p->fd < 0 && !p->connecting) || p->close_when_flushed || p->shutdown_when_flushed)
    return;
  if (p->queue == NULL)
    p->queue = g_byte_array_new ();
  g_byte_array_append (p->queue, data, len);
  if (p->write_source == 0 && !p->connecting)
    pump_writable (p->fd, G_IO_OUT, p);
}

static void
pump_flushed (Pump *p)
{
  if (p->shutdown_when_flushed && p->fd >= 0)
    shutdown (p->fd, SHUT_WR);
  if (p->close_when_flushed && p->read_source == 0)
    {
      pump_close (p);
      if (p->release_stdin)
        berth_cri_stdin_close (p->session->req->daemon, p->session->req->id, FALSE);
      p->release_stdin = FALSE;
    }
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
          if (p->is_socket && p->data_stream != 0)
            spdy_forward_finish (p, NULL);
          else if (p->is_socket)
            session_close (p->session);
          spdy_update_reading (p->session);
          return G_SOURCE_REMOVE;
        }
      g_byte_array_remove_range (p->queue, 0, n);
    }
  p->write_source = 0;
  pump_flushed (p);
  spdy_update_reading (p->session);
  return G_SOURCE_REMOVE;
}

/* The client is done writing to @p (v5's close, SPDY's FIN): the process reads end of
 * input; a pod's socket is shut down for writing. */
static void
pump_end_input (Pump *p)
{
  if (p->is_socket)
    p->shutdown_when_flushed = TRUE;
  else
    p->close_when_flushed = TRUE;
  if (p->write_source == 0 && !p->connecting)
    pump_flushed (p);
}

/* ---------------- terminal size ---------------- */

typedef struct {
  BerthDaemon *daemon;
  char *id, *exec_id; /* exec_id NULL: the container's own terminal (attach) */
  guint16 size[2];
} Resize;

static void
resize_free (Resize *r)
{
  g_free (r->id);
  g_free (r->exec_id);
  g_free (r);
}

static void
resize_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Resize *r = data;
  /* The client sends the size at once, maybe before the exec runs: retry a while. */
  for (int attempt = 0; attempt < 50 && !g_cancellable_is_cancelled (cancellable); attempt++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (BerthTask) t = berth_cri_running_task (r->daemon, r->id, &error);
      if (t == NULL || berth_task_resize_pty (t, r->exec_id, r->size[0], r->size[1], cancellable, &error))
        break;
      if (attempt == 49)
        g_debug ("resizing the terminal of %s: %s", r->id, error->message);
      g_usleep (100 * 1000);
    }
  g_task_return_boolean (task, TRUE);
}

static void session_resize_start (Session *s);

static void
resize_done (GObject *source, GAsyncResult *result, gpointer data)
{
  Session *s = data;
  Resize *r = g_task_get_task_data (G_TASK (result));
  s->resizing = FALSE;
  s->done_size[0] = r->size[0];
  s->done_size[1] = r->size[1];
  if (!g_cancellable_is_cancelled (s->cancellable)
      && (s->want_size[0] != s->done_size[0] || s->want_size[1] != s->done_size[1]))
    session_resize_start (s);
  session_unref (s);
}

/* One resize at a time, in order; the last size asked for wins. */
static void
session_resize_start (Session *s)
{
  Resize *r = g_new0 (Resize, 1);
  r->daemon = s->req->daemon;
  r->id = g_strdup (s->req->id);
  r->exec_id = g_strdup (s->exec_id);
  r->size[0] = s->want_size[0];
  r->size[1] = s->want_size[1];
  s->resizing = TRUE;
  g_autoptr (GTask) task = g_task_new (NULL, s->cancellable, resize_done, session_ref (s));
  g_task_set_source_tag (task, session_resize_start);
  g_task_set_task_data (task, r, (GDestroyNotify) resize_free);
  g_task_run_in_thread (task, resize_thread);
}

/* A resize event, {"Width": W, "Height": H}, for a session with a terminal. */
static void
session_resize (Session *s, const char *text, gsize len)
{
  if (!s->req->tty || (s->req->kind == STREAM_EXEC && s->exec_id == NULL))
    return;
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, len, NULL) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return;
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  gint64 w = json_object_get_int_member_with_default (o, "Width", 0);
  gint64 h = json_object_get_int_member_with_default (o, "Height", 0);
  if (w <= 0 || h <= 0 || w > G_MAXUINT16 || h > G_MAXUINT16)
    return;
  s->want_size[0] = w;
  s->want_size[1] = h;
  if (!s->resizing)
    session_resize_start (s);
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
      if (channel % 2 == 0 && channel / 2 < s->pumps->len)
        pump_write (pump_at (s, channel / 2), bytes + 1, len - 1);
      return;
    }
  if (channel == CHANNEL_STDIN && s->pumps->len > 0)
    pump_write (pump_at (s, 0), bytes + 1, len - 1);
  else if (channel == CHANNEL_CLOSE && s->v5 && len >= 2 && bytes[1] == CHANNEL_STDIN && s->pumps->len > 0)
    pump_end_input (pump_at (s, 0));
  else if (channel == CHANNEL_RESIZE)
    session_resize (s, (const char *) bytes + 1, len - 1);
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer data)
{
  Session *s = data;
  session_end (s);
  g_signal_handlers_disconnect_by_data (ws, s);
  session_unref (s);
}

/* A metav1.Status: Success, or Failure with @reason, @message and an ExitCode cause.
 * SPDY's older protocols (v2, v3) carry only a failure's message. */
static void
send_status (Session *s, const char *reason, const char *message, int exit_code)
{
  if (s->spdy != NULL && s->version < 4)
    {
      if (reason != NULL)
        session_send (s, CHANNEL_STATUS, message, strlen (message));
      return;
    }
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
  BerthStdio stdio = { s->req->in ? in : NULL, s->req->out ? out : NULL, s->req->err ? err : NULL, s->req->tty };
  g_autofree BerthExitStatus *exit = g_new0 (BerthExitStatus, 1);
  GError *error = NULL;
  if (berth_cri_exec_as (s->req->daemon, s->req->id, s->exec_id, s->req->cmd, g_strv_length (s->req->cmd), &stdio, -1,
                         exit, cancellable, &error))
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
  for (guint i = 1; i < s->pumps->len; i++)
    pump_drain (pump_at (s, i));
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
  for (guint i = 0; i < 3; i++)
    {
      Pump *p = pump_new (s, i, FALSE);
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
  s->exec_id = berth_cri_exec_id_new ();
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
  g_atomic_int_set (&o->session->out_full, session_out_full (o->session));
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

/* Follows the log (or the output FIFO) from its current end until the container exits
 * or the client goes. */
static void
attach_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Session *s = data;
  char buf[65536];
  struct stat st;
  int fd = open (s->req->log_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      GError *error = NULL;
      berth_throw_errno (&error, "opening log %s", s->req->log_path);
      if (fd >= 0)
        close (fd);
      g_task_return_error (task, error);
      return;
    }
  if (S_ISFIFO (st.st_mode))
    /* What the FIFO holds was written before this client attached. */
    while (read (fd, buf, sizeof buf) > 0)
      ;
  else
    lseek (fd, 0, SEEK_END);
  g_autoptr (BerthTask) container = berth_cri_task (s->req->daemon, s->req->id);
  g_autoptr (GString) partial = g_string_new (NULL);
  gboolean last = FALSE;
  while (!last && !g_cancellable_is_cancelled (cancellable))
    {
      if (g_atomic_int_get (&s->out_full))
        {
          /* Flow control: the log waits on disk until the client reads. */
          g_usleep (ATTACH_POLL_US);
          continue;
        }
      last = container == NULL || berth_task_get_status (container, NULL, NULL) != BERTH_TASK_STATUS_RUNNING;
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
  Dial *dials = g_new0 (Dial, s->pumps->len);
  for (guint i = 0; i < s->pumps->len; i++)
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
  for (guint i = 0; i < s->pumps->len; i++)
    {
      Pump *p = pump_at (s, i);
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
      if (!session_open (s))
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
  for (guint i = 0; i < s->req->ports->len; i++)
    pump_new (s, 2 * i, TRUE)->connecting = TRUE;
  g_autoptr (GTask) task = g_task_new (NULL, s->cancellable, forward_done, session_ref (s));
  g_task_set_source_tag (task, forward_begin);
  g_task_set_task_data (task, s, NULL);
  g_task_run_in_thread (task, forward_thread);
  return TRUE;
}

/* Attach's stdin: the container's FIFO, written to. */
static gboolean
attach_stdin (Session *s, GError **error)
{
  g_autofree char *path = berth_cri_path (s->req->daemon, "stdin", s->req->id);
  Pump *p = pump_new (s, CHANNEL_STDIN, FALSE);
  p->fd = open (path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (p->fd < 0)
    return berth_throw_errno (error, "opening the stdin of container %s", s->req->id);
  p->release_stdin = s->req->stdin_once;
  return TRUE;
}

/* Starts what the session's request asked for, once the client's streams are there. */
static void
session_begin (Session *s, SoupServerMessage *msg)
{
  s->started = TRUE;
  g_autoptr (GError) error = NULL;
  gboolean ok = TRUE;
  if (s->req->kind == STREAM_EXEC)
    ok = exec_begin (s, &error);
  else if (s->req->kind == STREAM_PORT_FORWARD)
    ok = forward_begin (s, msg, &error);
  else if (s->req->in && !attach_stdin (s, &error))
    ok = FALSE;
  else
    {
      g_autoptr (GTask) task = g_task_new (NULL, s->cancellable, attach_done, session_ref (s));
      g_task_set_source_tag (task, session_begin);
      g_task_set_task_data (task, s, NULL);
      g_task_run_in_thread (task, attach_thread);
    }
  if (!ok)
    {
      g_debug ("stream for %s: %s", s->req->id, error->message);
      send_status (s, "InternalError", error->message, 0);
      session_close (s);
    }
}

/* The socket under a WebSocket libsoup took over, for its flow control. */
static int
websocket_fd (SoupServerMessage *msg, SoupWebsocketConnection *ws)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  if (socket != NULL)
    return g_socket_get_fd (socket);
  GIOStream *stream = soup_websocket_connection_get_io_stream (ws);
  g_autoptr (GIOStream) base = NULL;
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (stream), "base-iostream") != NULL)
    g_object_get (stream, "base-iostream", &base, NULL);
  GIOStream *inner = base ? base : stream;
  return G_IS_SOCKET_CONNECTION (inner) ? g_socket_get_fd (g_socket_connection_get_socket (G_SOCKET_CONNECTION (inner))) : -1;
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
  Session *s = session_new (req);
  s->ws = g_object_ref (ws);
  s->ws_fd = websocket_fd (msg, ws);
  s->v5 = g_strcmp0 (soup_websocket_connection_get_protocol (ws), "v5.channel.k8s.io") == 0;
  /* The connection's signals hold this reference until it closes. */
  g_signal_connect (ws, "message", G_CALLBACK (on_message), s);
  g_signal_connect (ws, "closed", G_CALLBACK (on_closed), s);
  session_begin (s, msg);
}

/* ---------------- SPDY/3.1 (Kubernetes clients up to 1.29) ----------------
 *
 * After the 101 answer the client opens one stream per role, each named by its
 * "streamtype" header: exec and attach: error, then stdin, stdout, stderr (not with a
 * terminal) and resize (v3 and later, with a terminal), as the request asked; the
 * command starts once they are all there. The error stream carries the final status
 * (v4: a metav1.Status; v2, v3: a failure's message). Port forwarding opens an error and
 * a data stream per connection, tied by "requestid", and names the pod's "port".
 * We answer every stream, and end each one (FIN) and the connection (GOAWAY) when done.
 */

static void
spdy_free (Spdy *c)
{
  g_clear_handle_id (&c->read_source, g_source_remove);
  g_clear_handle_id (&c->write_source, g_source_remove);
  g_clear_handle_id (&c->timeout_source, g_source_remove);
  if (c->stream != NULL)
    g_io_stream_close (c->stream, NULL, NULL);
  g_clear_object (&c->stream);
  g_clear_object (&c->socket);
  cri_spdy_decoder_free (c->decoder);
  cri_spdy_encoder_free (c->encoder);
  g_byte_array_unref (c->in);
  g_byte_array_unref (c->out);
  g_hash_table_unref (c->open);
  g_free (c);
}

/* The connection is over: stop everything feeding it, and drop its reference to @s
 * (which may free it). */
static void
spdy_end (Session *s)
{
  Spdy *c = s->spdy;
  if (c->gone)
    return;
  c->gone = TRUE;
  g_clear_handle_id (&c->read_source, g_source_remove);
  g_clear_handle_id (&c->write_source, g_source_remove);
  g_clear_handle_id (&c->timeout_source, g_source_remove);
  if (c->stream != NULL)
    g_io_stream_close (c->stream, NULL, NULL);
  g_clear_object (&c->stream);
  g_byte_array_set_size (c->out, 0);
  session_end (s);
  session_unref (s);
}

static gboolean
spdy_linger_over (gpointer data)
{
  Session *s = data;
  s->spdy->timeout_source = 0;
  spdy_end (s);
  return G_SOURCE_REMOVE;
}

static gboolean spdy_writable (int fd, GIOCondition condition, gpointer data);

/* Writes what the socket takes of the queue, and keeps the flow-control state. */
static void
spdy_flush (Session *s)
{
  Spdy *c = s->spdy;
  if (c->gone)
    return;
  while (c->out->len > 0)
    {
      ssize_t n = send (c->fd, c->out->data, c->out->len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        {
          if (c->write_source == 0)
            c->write_source = g_unix_fd_add (c->fd, G_IO_OUT, spdy_writable, s);
          break;
        }
      if (n < 0)
        {
          g_debug ("stream for %s: SPDY connection: %s", s->req->id, g_strerror (errno));
          spdy_end (s);
          return;
        }
      g_byte_array_remove_range (c->out, 0, n);
    }
  g_atomic_int_set (&s->out_full, c->out->len >= OUT_BUDGET);
  if (c->out->len < OUT_BUDGET / 2)
    session_resume (s);
  if (c->out->len == 0)
    {
      g_clear_handle_id (&c->write_source, g_source_remove);
      if (c->closing)
        {
          /* All said: the client closes on its side, or we do after a while. */
          shutdown (c->fd, SHUT_WR);
          g_clear_handle_id (&c->timeout_source, g_source_remove);
          c->timeout_source = g_timeout_add_seconds (SPDY_LINGER_S, spdy_linger_over, s);
        }
    }
}

static gboolean
spdy_writable (int fd, GIOCondition condition, gpointer data)
{
  Session *s = data;
  s->spdy->write_source = 0;
  spdy_flush (s);
  return G_SOURCE_REMOVE;
}

static void
spdy_send_data (Session *s, guint32 stream, gboolean fin, const void *data, gsize len)
{
  Spdy *c = s->spdy;
  if (c->gone || !g_hash_table_contains (c->open, GUINT_TO_POINTER (stream)))
    return;
  const guint8 *p = data;
  do
    {
      gsize n = MIN (len, CRI_SPDY_MAX_DATA);
      cri_spdy_encode_data (c->out, stream, fin && n == len ? CRI_SPDY_FLAG_FIN : 0, p, n);
      p += n;
      len -= n;
    }
  while (len > 0);
  if (fin)
    g_hash_table_remove (c->open, GUINT_TO_POINTER (stream));
  spdy_flush (s);
}

/* Our side of @stream is done. */
static void
spdy_finish_stream (Session *s, guint32 stream)
{
  if (stream != 0)
    spdy_send_data (s, stream, TRUE, NULL, 0);
}

static void
spdy_reset (Session *s, guint32 stream, guint32 status)
{
  g_hash_table_remove (s->spdy->open, GUINT_TO_POINTER (stream));
  cri_spdy_encode_control (s->spdy->out, CRI_SPDY_RST_STREAM, stream, status);
  spdy_flush (s);
}

static void
spdy_close (Session *s)
{
  Spdy *c = s->spdy;
  if (c->gone || c->closing)
    return;
  GHashTableIter iter;
  gpointer key;
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (guint32));
  g_hash_table_iter_init (&iter, c->open);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      guint32 id = GPOINTER_TO_UINT (key);
      g_array_append_val (ids, id);
    }
  for (guint i = 0; i < ids->len; i++)
    cri_spdy_encode_data (c->out, g_array_index (ids, guint32, i), CRI_SPDY_FLAG_FIN, NULL, 0);
  g_hash_table_remove_all (c->open);
  cri_spdy_encode_control (c->out, CRI_SPDY_GOAWAY, 0, 0);
  c->closing = TRUE;
  /* A client that does not read what is left gets this long to. */
  g_clear_handle_id (&c->timeout_source, g_source_remove);
  c->timeout_source = g_timeout_add_seconds (12 * SPDY_LINGER_S, spdy_linger_over, s);
  spdy_flush (s);
}

static gboolean spdy_readable (int fd, GIOCondition condition, gpointer data);

/* Flow control toward processes and pods: the client is not read while one of them
 * has more than IN_BUDGET of its input queued. */
static void
spdy_update_reading (Session *s)
{
  Spdy *c = s->spdy;
  if (c == NULL || c->gone)
    return;
  gboolean full = FALSE;
  for (guint i = 0; i < s->pumps->len && !full; i++)
    {
      Pump *p = pump_at (s, i);
      full = p->queue != NULL && p->queue->len >= IN_BUDGET;
    }
  if (full)
    g_clear_handle_id (&c->read_source, g_source_remove);
  else if (c->read_source == 0)
    c->read_source = g_unix_fd_add (c->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, spdy_readable, s);
}

/* The client may send more on @stream: what it sent is taken. */
static void
spdy_ack (Session *s, Pump *p, guint32 stream, gsize len)
{
  p->unacked += len;
  if (p->unacked >= CRI_SPDY_INITIAL_WINDOW / 2)
    {
      cri_spdy_encode_control (s->spdy->out, CRI_SPDY_WINDOW_UPDATE, stream, p->unacked);
      p->unacked = 0;
      spdy_flush (s);
    }
}

static void
spdy_reply (Session *s, guint32 stream)
{
  cri_spdy_encode_headers (s->spdy->encoder, s->spdy->out, CRI_SPDY_SYN_REPLY, 0, stream, NULL);
  g_hash_table_add (s->spdy->open, GUINT_TO_POINTER (stream));
  spdy_flush (s);
}

/* Ends a forwarded connection: @message (if any) on its error stream, then both ends. */
static void
spdy_forward_finish (Pump *p, const char *message)
{
  Session *s = p->session;
  if (message != NULL && p->error_stream != 0)
    spdy_send_data (s, p->error_stream, FALSE, message, strlen (message));
  spdy_finish_stream (s, p->data_stream);
  spdy_finish_stream (s, p->error_stream);
  pump_close (p);
  p->data_stream = p->error_stream = 0;
  p->done = TRUE;
}

typedef struct {
  Session *session;
  Pump *pump;
  Dial dial;
} ForwardDial;

static void
forward_dial_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  ForwardDial *d = data;
  g_thread_join (g_thread_new ("berth-cri-dial", dial_thread, &d->dial));
  g_task_return_boolean (task, TRUE);
}

static void
forward_dial_done (GObject *source, GAsyncResult *result, gpointer data)
{
  ForwardDial *d = g_task_get_task_data (G_TASK (result));
  Session *s = d->session;
  Pump *p = d->pump;
  p->connecting = FALSE;
  p->dialing = FALSE;
  if (d->dial.fd < 0)
    {
      g_autofree char *message = g_strdup_printf ("error forwarding port %u to pod %s: connecting to it: %s",
                                                  d->dial.port, s->req->id, g_strerror (d->dial.err));
      if (session_open (s))
        spdy_forward_finish (p, message);
      return;
    }
  if (!session_open (s) || p->data_stream == 0)
    {
      close (d->dial.fd);
      return;
    }
  p->fd = d->dial.fd;
  g_unix_set_fd_nonblocking (p->fd, TRUE, NULL);
  pump_start_reading (p);
  if (p->queue != NULL && p->queue->len > 0)
    pump_writable (p->fd, G_IO_OUT, p);
  else
    pump_flushed (p);
}

static void
forward_dial_free (ForwardDial *d)
{
  session_unref (d->session);
  g_free (d);
}

static void
spdy_forward_stream (Session *s, const CriSpdyFrame *f, const char *type)
{
  const char *port_text = cri_spdy_frame_get_header (f, "port");
  const char *request_id = cri_spdy_frame_get_header (f, "requestid");
  gboolean is_data = g_strcmp0 (type, "data") == 0;
  guint64 port = 0;
  if ((!is_data && g_strcmp0 (type, "error") != 0) || request_id == NULL || port_text == NULL
      || !g_ascii_string_to_unsigned (port_text, 10, 1, 65535, &port, NULL))
    {
      spdy_reset (s, f->stream_id, CRI_SPDY_PROTOCOL_ERROR);
      return;
    }
  /* Connections that are over go, so a long session holds only its live ones. */
  for (guint i = s->pumps->len; i-- > 0;)
    if (pump_at (s, i)->done && !pump_at (s, i)->dialing)
      g_ptr_array_remove_index_fast (s->pumps, i);
  Pump *p = NULL;
  guint active = 0;
  for (guint i = 0; i < s->pumps->len; i++)
    {
      Pump *q = pump_at (s, i);
      if (strcmp (q->request_id, request_id) == 0 && q->port == port)
        p = q;
      active += q->fd >= 0 || q->connecting;
    }
  if (p == NULL)
    {
      if (active >= SPDY_MAX_FORWARDS)
        {
          spdy_reset (s, f->stream_id, CRI_SPDY_REFUSED_STREAM);
          return;
        }
      p = pump_new (s, 0, TRUE);
      p->request_id = g_strdup (request_id);
      p->port = port;
      p->connecting = TRUE;
    }
  guint32 *slot = is_data ? &p->data_stream : &p->error_stream;
  if (*slot != 0 || !p->connecting)
    {
      spdy_reset (s, f->stream_id, CRI_SPDY_PROTOCOL_ERROR);
      return;
    }
  spdy_reply (s, f->stream_id);
  *slot = f->stream_id;
  if (p->data_stream == 0 || p->error_stream == 0)
    return;
  ForwardDial *d = g_new0 (ForwardDial, 1);
  d->session = session_ref (s);
  d->pump = p;
  p->dialing = TRUE;
  d->dial = (Dial) { .netns = s->req->netns, .port = p->port };
  g_autoptr (GTask) task = g_task_new (NULL, NULL, forward_dial_done, NULL);
  g_task_set_source_tag (task, spdy_forward_stream);
  g_task_set_task_data (task, d, (GDestroyNotify) forward_dial_free);
  g_task_run_in_thread (task, forward_dial_thread);
}

static gboolean
spdy_streams_ready (Session *s)
{
  const StreamRequest *req = s->req;
  return s->ids[SPDY_ERROR] != 0 && (!req->in || s->ids[SPDY_STDIN] != 0) && (!req->out || s->ids[SPDY_STDOUT] != 0)
         && (!req->err || req->tty || s->ids[SPDY_STDERR] != 0)
         && (!req->tty || s->version < 3 || s->ids[SPDY_RESIZE] != 0);
}

static gboolean
spdy_streams_timeout (gpointer data)
{
  Session *s = data;
  s->spdy->timeout_source = 0;
  g_debug ("stream for %s: the client did not open the streams its request named", s->req->id);
  session_close (s);
  return G_SOURCE_REMOVE;
}

static void
spdy_on_syn_stream (Session *s, const CriSpdyFrame *f)
{
  if (f->stream_id % 2 == 0 || g_hash_table_contains (s->spdy->open, GUINT_TO_POINTER (f->stream_id)))
    {
      spdy_reset (s, f->stream_id, CRI_SPDY_PROTOCOL_ERROR);
      return;
    }
  const char *type = cri_spdy_frame_get_header (f, "streamtype");
  if (s->req->kind == STREAM_PORT_FORWARD)
    {
      spdy_forward_stream (s, f, type);
      return;
    }
  int role = -1;
  for (int i = 0; i < N_SPDY_STREAMS; i++)
    if (g_strcmp0 (type, spdy_stream_types[i]) == 0)
      role = i;
  if (role < 0 || s->ids[role] != 0 || s->started)
    {
      spdy_reset (s, f->stream_id, CRI_SPDY_REFUSED_STREAM);
      return;
    }
  spdy_reply (s, f->stream_id);
  s->ids[role] = f->stream_id;
  if (spdy_streams_ready (s))
    {
      g_clear_handle_id (&s->spdy->timeout_source, g_source_remove);
      session_begin (s, NULL);
    }
}

static void
spdy_on_data (Session *s, const CriSpdyFrame *f)
{
  gboolean fin = (f->flags & CRI_SPDY_FLAG_FIN) != 0;
  Pump *p = NULL;
  if (s->req->kind == STREAM_PORT_FORWARD)
    {
      for (guint i = 0; i < s->pumps->len && p == NULL; i++)
        if (pump_at (s, i)->data_stream == f->stream_id)
          p = pump_at (s, i);
    }
  else if (f->stream_id == s->ids[SPDY_STDIN])
    p = pump_at (s, 0);
  else if (f->stream_id == s->ids[SPDY_RESIZE] && f->len > 0)
    {
      /* JSON objects, one a line (Go's json.Encoder). */
      if (s->resize_text == NULL)
        s->resize_text = g_string_new (NULL);
      g_string_append_len (s->resize_text, (const char *) f->data, f->len);
      char *nl;
      while ((nl = memchr (s->resize_text->str, '\n', s->resize_text->len)) != NULL)
        {
          session_resize (s, s->resize_text->str, nl - s->resize_text->str);
          g_string_erase (s->resize_text, 0, nl - s->resize_text->str + 1);
        }
      if (s->resize_text->len > 4096)
        g_string_truncate (s->resize_text, 0);
      return;
    }
  if (p == NULL)
    return;
  if (f->len > 0)
    {
      pump_write (p, f->data, f->len);
      spdy_ack (s, p, f->stream_id, f->len);
    }
  if (fin)
    pump_end_input (p);
}

static void
spdy_on_reset (Session *s, guint32 stream)
{
  g_hash_table_remove (s->spdy->open, GUINT_TO_POINTER (stream));
  for (guint i = 0; i < s->pumps->len; i++)
    {
      Pump *p = pump_at (s, i);
      if (p->data_stream == stream || p->error_stream == stream)
        {
          g_hash_table_remove (s->spdy->open, GUINT_TO_POINTER (p->data_stream));
          g_hash_table_remove (s->spdy->open, GUINT_TO_POINTER (p->error_stream));
          p->data_stream = p->error_stream = 0;
          pump_close (p);
          p->done = TRUE;
        }
    }
  if (stream == s->ids[SPDY_STDIN] && pump_at (s, 0) != NULL)
    pump_end_input (pump_at (s, 0));
}

static void
spdy_on_frame (Session *s, const CriSpdyFrame *f)
{
  switch (f->type)
    {
    case CRI_SPDY_SYN_STREAM:
      spdy_on_syn_stream (s, f);
      break;
    case CRI_SPDY_DATA:
      spdy_on_data (s, f);
      break;
    case CRI_SPDY_RST_STREAM:
      spdy_on_reset (s, f->stream_id);
      break;
    case CRI_SPDY_PING:
      /* The client's pings (odd ids) come back; ours we do not send. */
      if (f->value % 2 == 1)
        {
          cri_spdy_encode_control (s->spdy->out, CRI_SPDY_PING, f->value, 0);
          spdy_flush (s);
        }
      break;
    case CRI_SPDY_GOAWAY:
      /* The client is leaving: it reads no more. */
      spdy_end (s);
      break;
    default:
      /* SETTINGS, WINDOW_UPDATE: berth bounds what it queues by its own budget, and the
       * Kubernetes clients (spdystream) neither send nor honour windows. HEADERS and
       * SYN_REPLY mean nothing on a server. */
      break;
    }
}

static gboolean
spdy_readable (int fd, GIOCondition condition, gpointer data)
{
  Session *s = data;
  Spdy *c = s->spdy;
  guint8 buf[65536];
  ssize_t n = recv (fd, buf, sizeof buf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    {
      c->read_source = 0;
      spdy_end (s);
      return G_SOURCE_REMOVE;
    }
  if (c->closing && c->out->len == 0)
    return G_SOURCE_CONTINUE; /* all said: what the client still sends is of no use */
  g_byte_array_append (c->in, buf, n);
  session_ref (s); /* a frame may end the connection */
  gsize off = 0;
  while (!c->gone)
    {
      g_auto (CriSpdyFrame) frame = { 0 };
      g_autoptr (GError) error = NULL;
      gssize taken = cri_spdy_decode (c->decoder, c->in->data + off, c->in->len - off, &frame, &error);
      if (taken < 0)
        {
          g_debug ("stream for %s: %s", s->req->id, error->message);
          spdy_end (s);
          break;
        }
      if (taken == 0)
        break;
      off += taken;
      spdy_on_frame (s, &frame);
    }
  gboolean gone = c->gone;
  if (!gone)
    {
      g_byte_array_remove_range (c->in, 0, off);
      spdy_update_reading (s);
    }
  session_unref (s);
  return gone ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static void
on_spdy_upgraded (SoupServerMessage *msg, gpointer data)
{
  Session *s = data;
  if (s->spdy != NULL)
    return;
  g_object_ref (msg);
  Spdy *c = g_new0 (Spdy, 1);
  c->socket = g_object_ref (soup_server_message_get_socket (msg));
  c->stream = soup_server_message_steal_connection (msg);
  c->fd = g_socket_get_fd (c->socket);
  c->decoder = cri_spdy_decoder_new ();
  c->encoder = cri_spdy_encoder_new ();
  c->in = g_byte_array_new ();
  c->out = g_byte_array_new ();
  c->open = g_hash_table_new (NULL, NULL);
  s->spdy = c;
  session_ref (s); /* the connection's, until spdy_end */
  spdy_update_reading (s);
  if (s->req->kind != STREAM_PORT_FORWARD)
    c->timeout_source = g_timeout_add_seconds (SPDY_STREAMS_TIMEOUT_S, spdy_streams_timeout, s);
  g_object_unref (msg);
}

static void
session_closure_unref (gpointer data, GClosure *closure)
{
  session_unref (data);
}

/* Which of our protocols the client offers (X-Stream-Protocol-Version, comma-joined),
 * best first; @version gets N of vN.channel.k8s.io. */
static const char *
spdy_protocol (StreamKind kind, const char *offered, int *version)
{
  static const char *const exec_protocols[] = { "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", NULL };
  static const char *const forward_protocols[] = { "portforward.k8s.io", NULL };
  const char *const *ours = kind == STREAM_PORT_FORWARD ? forward_protocols : exec_protocols;
  g_auto (GStrv) list = g_strsplit (offered ? offered : "", ",", -1);
  for (guint j = 0; list[j] != NULL; j++)
    g_strstrip (list[j]);
  for (int i = 0; ours[i] != NULL; i++)
    if (g_strv_contains ((const char *const *) list, ours[i]))
      {
        *version = kind == STREAM_PORT_FORWARD ? 0 : 4 - i;
        return ours[i];
      }
  return NULL;
}

/* An HTTP request on a stream URL: a SPDY upgrade is answered here; anything else goes
 * on to libsoup's WebSocket handshake. */
static void
on_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *upgrade = soup_message_headers_get_one (headers, "Upgrade");
  if (upgrade == NULL || g_ascii_strcasecmp (upgrade, "SPDY/3.1") != 0)
    return;
  StreamRequest *req = request_lookup (path, FALSE);
  int version = 0;
  const char *protocol = req ? spdy_protocol (req->kind, soup_message_headers_get_list (headers, "X-Stream-Protocol-Version"),
                                              &version)
                             : NULL;
  if (req != NULL && protocol == NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_FORBIDDEN, "no stream protocol in common (X-Stream-Protocol-Version)");
      return;
    }
  if (req == NULL || (req = request_lookup (path, TRUE)) == NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, "no such stream (unknown, used or expired token)");
      return;
    }
  Session *s = session_new (req);
  s->version = version;
  SoupMessageHeaders *reply = soup_server_message_get_response_headers (msg);
  soup_message_headers_replace (reply, "Connection", "Upgrade");
  soup_message_headers_replace (reply, "Upgrade", "SPDY/3.1");
  soup_message_headers_replace (reply, "X-Stream-Protocol-Version", protocol);
  soup_server_message_set_status (msg, SOUP_STATUS_SWITCHING_PROTOCOLS, NULL);
  g_signal_connect_data (msg, "wrote-informational", G_CALLBACK (on_spdy_upgraded), s, session_closure_unref, 0);
}
