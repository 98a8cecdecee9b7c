/* berth-metrics-server.c — the Prometheus endpoint ([metrics] address) on libsoup3.
 * Built as the berth-metrics-http module, opened when a metrics address is configured
 * (core/daemon/berth-modules.h); the figures themselves are berth-metrics.c's. */
#include "config.h"
#include <string.h>
#include <libsoup/soup.h>
#include <berth/berth.h>
#include "berth-cgroup.h"
#include "berth-daemon.h"
#include "berth-metrics.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* The HTTP listener shares berthd's fd table with the API: a client (any local user,
 * for a loopback address) may hold only so many connections, and idle ones go. */
#define MAX_CONNECTIONS 32
#define IDLE_TIMEOUT_SECONDS 30
#define SWEEP_SECONDS 5

struct _BerthMetricsServer {
  GObject parent;
  BerthDaemon *daemon;
  SoupServer *soup;
  char *address;
  GCancellable *cancellable;
  gboolean stopped;
  GMutex lock;
  GCond idle;
  guint gathering; /* scrapes whose worker may still use the daemon */
  /* Our own accept loop (soup takes each connection from us), for the limits. */
  GSocket *listener;
  GSource *accept_source;
  GSource *accept_retry;
  GSource *sweep_source;
  GHashTable *connections; /* GSocket* (not a ref) → Connection* */
};

typedef struct {
  BerthMetricsServer *server;
  GSocket *socket;
  gint64 last_active; /* monotonic µs: accepted, or a request finished */
  guint rendering;    /* scrapes parked on it */
} Connection;

G_DEFINE_FINAL_TYPE (BerthMetricsServer, berth_metrics_server, G_TYPE_OBJECT)

static void
render_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  BerthMetricsServer *self = source;
  char *page = berth_metrics_render (self->daemon, cancellable);
  g_mutex_lock (&self->lock);
  if (--self->gathering == 0)
    g_cond_broadcast (&self->idle);
  g_mutex_unlock (&self->lock);
  g_task_return_pointer (task, page, g_free);
}

static void
on_rendered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  BerthMetricsServer *self = BERTH_METRICS_SERVER (source);
  g_autoptr (SoupServerMessage) msg = user_data;
  g_autofree char *page = g_task_propagate_pointer (G_TASK (result), NULL);
  Connection *conn = self->connections ? g_hash_table_lookup (self->connections, soup_server_message_get_socket (msg)) : NULL;
  if (conn != NULL && conn->rendering > 0)
    conn->rendering--;
  /* Stopping closed the connection this message came on. */
  if (self->stopped || page == NULL)
    return;
  gsize len = strlen (page);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, CONTENT_TYPE, SOUP_MEMORY_TAKE, g_steal_pointer (&page), len);
  soup_server_message_unpause (msg);
}

static void
respond_text (SoupServerMessage *msg, guint status, const char *text)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, text, strlen (text));
}

static void
on_request (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  BerthMetricsServer *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  if (!g_str_equal (path, "/v1/metrics") && !g_str_equal (path, "/metrics"))
    {
      respond_text (msg, SOUP_STATUS_NOT_FOUND, "not found: metrics are at /v1/metrics and /metrics\n");
      return;
    }
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", "GET, HEAD");
      respond_text (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "metrics answer GET and HEAD\n");
      return;
    }
  if (self->stopped)
    {
      respond_text (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "berthd is stopping\n");
      return;
    }
  /* The page reads files (cgroups, the content store): gathered in a worker, the
   * message parked meanwhile so the main loop keeps serving gRPC. */
  soup_server_message_pause (msg);
  Connection *conn = g_hash_table_lookup (self->connections, soup_server_message_get_socket (msg));
  if (conn != NULL)
    conn->rendering++;
  g_mutex_lock (&self->lock);
  self->gathering++;
  g_mutex_unlock (&self->lock);
  g_autoptr (GTask) task = g_task_new (self, self->cancellable, on_rendered, g_object_ref (msg));
  g_task_set_source_tag (task, on_request);
  g_task_run_in_thread (task, render_thread);
}

static void
on_connection_gone (gpointer data, GObject *where_the_stream_was)
{
  Connection *conn = data;
  if (conn->server != NULL)
    g_hash_table_remove (conn->server->connections, conn->socket);
  g_object_unref (conn->socket);
  g_free (conn);
}

static void
on_request_finished (SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
  BerthMetricsServer *self = user_data;
  Connection *conn = g_hash_table_lookup (self->connections, soup_server_message_get_socket (msg));
  if (conn != NULL)
    conn->last_active = g_get_monotonic_time ();
}

/* Shuts down connections idle too long: soup sees the end and lets them go. */
static gboolean
on_sweep (gpointer data)
{
  BerthMetricsServer *self = data;
  gint64 now = g_get_monotonic_time ();
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Connection *conn = value;
      if (conn->rendering == 0 && now - conn->last_active > IDLE_TIMEOUT_SECONDS * G_USEC_PER_SEC)
        g_socket_shutdown (conn->socket, TRUE, TRUE, NULL);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean on_accept (GSocket *listener, GIOCondition condition, gpointer data);

static void
accept_watch (BerthMetricsServer *self)
{
  self->accept_source = g_socket_create_source (self->listener, G_IO_IN, NULL);
  g_source_set_callback (self->accept_source, (GSourceFunc) (void (*) (void)) on_accept, self, NULL);
  g_source_attach (self->accept_source, NULL);
}

static gboolean
accept_resume (gpointer data)
{
  BerthMetricsServer *self = data;
  g_clear_pointer (&self->accept_retry, g_source_unref);
  accept_watch (self);
  return G_SOURCE_REMOVE;
}

static gboolean
on_accept (GSocket *listener, GIOCondition condition, gpointer data)
{
  BerthMetricsServer *self = data;
  for (int i = 0; i < 64; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocket) socket = g_socket_accept (listener, NULL, &error);
      if (socket == NULL)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            break;
          /* Out of fds, most likely: a pending client keeps the listener readable, so
           * retrying at once would spin. Pause instead. */
          g_debug ("metrics: accept: %s; pausing", error->message);
          g_source_destroy (self->accept_source);
          g_clear_pointer (&self->accept_source, g_source_unref);
          self->accept_retry = g_timeout_source_new (250);
          g_source_set_callback (self->accept_retry, accept_resume, self, NULL);
          g_source_attach (self->accept_retry, NULL);
          return G_SOURCE_REMOVE;
        }
      if (g_hash_table_size (self->connections) >= MAX_CONNECTIONS)
        {
          g_debug ("metrics: %d connections open already; closing a new one", MAX_CONNECTIONS);
          g_socket_close (socket, NULL);
          continue;
        }
      g_autoptr (GSocketConnection) stream = g_socket_connection_factory_create_connection (socket);
      g_autoptr (GSocketAddress) local = g_socket_get_local_address (socket, NULL);
      g_autoptr (GSocketAddress) remote = g_socket_get_remote_address (socket, NULL);
      Connection *conn = g_new0 (Connection, 1);
      conn->server = self;
      conn->socket = g_object_ref (socket);
      conn->last_active = g_get_monotonic_time ();
      g_hash_table_insert (self->connections, socket, conn);
      /* Forgotten when soup lets go of the stream. */
      g_object_weak_ref (G_OBJECT (stream), on_connection_gone, conn);
      if (!soup_server_accept_iostream (self->soup, G_IO_STREAM (stream), local, remote, &error))
        {
          g_debug ("metrics: taking a connection: %s", error->message);
          g_io_stream_close (G_IO_STREAM (stream), NULL, NULL);
        }
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
metrics_listen (BerthMetricsServer *self, GSocketAddress *address, GError **error)
{
  self->listener = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                 error);
  if (self->listener != NULL)
    g_socket_set_listen_backlog (self->listener, 128);
  if (self->listener == NULL || !g_socket_bind (self->listener, address, TRUE, error)
      || !g_socket_listen (self->listener, error))
    return FALSE;
  g_socket_set_blocking (self->listener, FALSE);
  accept_watch (self);
  self->sweep_source = g_timeout_source_new_seconds (SWEEP_SECONDS);
  g_source_set_callback (self->sweep_source, on_sweep, self, NULL);
  g_source_attach (self->sweep_source, NULL);
  return TRUE;
}

BerthMetricsServer *
berth_metrics_server_module_new (BerthDaemon *daemon, const char *address, GError **error)
{
  g_autoptr (GSocketAddress) socket_address = NULL;
  if (!berth_metrics_parse_address (address, &socket_address, error))
    return NULL;
  g_autoptr (BerthMetricsServer) self = g_object_new (BERTH_TYPE_METRICS_SERVER, NULL);
  self->daemon = daemon;
  self->address = g_strdup (address);
  self->soup = soup_server_new ("server-header", "berthd/" PACKAGE_VERSION, NULL);
  soup_server_add_handler (self->soup, NULL, on_request, self, NULL);
  g_signal_connect (self->soup, "request-finished", G_CALLBACK (on_request_finished), self);
  g_signal_connect (self->soup, "request-aborted", G_CALLBACK (on_request_finished), self);
  g_autoptr (GError) local_error = NULL;
  if (!metrics_listen (self, socket_address, &local_error))
    {
      berth_throw (error, BERTH_ERROR_UNAVAILABLE, "metrics: listening on %s: %s", address, local_error->message);
      return NULL;
    }
  g_debug ("serving metrics on http://%s/v1/metrics", address);
  return g_steal_pointer (&self);
}

const char *
berth_metrics_server_module_get_address (BerthMetricsServer *self)
{
  return self->address;
}

void
berth_metrics_server_module_stop (BerthMetricsServer *self)
{
  if (self->stopped)
    return;
  self->stopped = TRUE;
  g_cancellable_cancel (self->cancellable);
  GSource **sources[] = { &self->accept_source, &self->accept_retry, &self->sweep_source };
  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    if (*sources[i] != NULL)
      {
        g_source_destroy (*sources[i]);
        g_clear_pointer (sources[i], g_source_unref);
      }
  if (self->listener != NULL)
    {
      g_socket_close (self->listener, NULL);
      g_clear_object (&self->listener);
    }
  if (self->soup != NULL)
    {
      soup_server_remove_handler (self->soup, NULL);
      soup_server_disconnect (self->soup);
    }
  g_mutex_lock (&self->lock);
  while (self->gathering > 0)
    g_cond_wait (&self->idle, &self->lock);
  g_mutex_unlock (&self->lock);
  self->daemon = NULL;
}

static void
berth_metrics_server_dispose (GObject *object)
{
  BerthMetricsServer *self = BERTH_METRICS_SERVER (object);
  berth_metrics_server_module_stop (self);
  g_clear_object (&self->soup);
  G_OBJECT_CLASS (berth_metrics_server_parent_class)->dispose (object);
}

static void
berth_metrics_server_finalize (GObject *object)
{
  BerthMetricsServer *self = BERTH_METRICS_SERVER (object);
  g_free (self->address);
  g_clear_object (&self->cancellable);
  /* Streams soup still holds outlive us: they must not touch the table. */
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    ((Connection *) value)->server = NULL;
  g_hash_table_unref (self->connections);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->idle);
  G_OBJECT_CLASS (berth_metrics_server_parent_class)->finalize (object);
}

static void
berth_metrics_server_class_init (BerthMetricsServerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = berth_metrics_server_dispose;
  G_OBJECT_CLASS (klass)->finalize = berth_metrics_server_finalize;
}

static void
berth_metrics_server_init (BerthMetricsServer *self)
{
  self->cancellable = g_cancellable_new ();
  self->connections = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_mutex_init (&self->lock);
  g_cond_init (&self->idle);
}
