/* cri-stream-spdy.c — streaming sessions over SPDY/3.1 (Kubernetes clients up to 1.29
 * and crictl): the HTTP Upgrade, the streams of each role, flow control; the frames
 * themselves are cri-spdy.c's. */
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

static const char *const spdy_stream_types[N_SPDY_STREAMS] = { "stdin", "stdout", "stderr", "error", "resize" };

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

void
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

void
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

void
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
void
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
void
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
void
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
