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
#include "daemon/berth-config.h"
#include "image/berth-image-store.h"
#include "cri-stream-private.h"

static const char *const kind_paths[N_STREAM_KINDS] = { "/exec", "/attach", "/portforward" };

/* ---------------- stored requests ---------------- */

void
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
StreamRequest *
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
