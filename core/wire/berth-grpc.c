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
#include "berth-grpc-private.h"

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
