/* cri-stream-session.c — one streaming connection (a WebSocket, or SPDY through
 * cri-stream-spdy.c) and what it runs: pumps between the client and a process's FIFOs
 * or a pod's socket, terminal resizing, exec, attach and port forwarding. */
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

/* ---------------- sessions ---------------- */

Pump *
pump_at (Session *s, guint i)
{
  return i < s->pumps->len ? s->pumps->pdata[i] : NULL;
}

Pump *
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

void
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

Session *
session_new (StreamRequest *req)
{
  Session *s = g_rc_box_new0 (Session);
  s->req = req;
  s->cancellable = g_cancellable_new ();
  s->pumps = g_ptr_array_new_with_free_func ((GDestroyNotify) pump_free);
  s->ws_fd = -1;
  return s;
}

Session *
session_ref (Session *s)
{
  return g_rc_box_acquire (s);
}

void
session_unref (Session *s)
{
  g_rc_box_release_full (s, (GDestroyNotify) session_clear);
}

gboolean
session_open (Session *s)
{
  if (s->spdy != NULL)
    return !s->spdy->gone && !s->spdy->closing;
  return s->ws != NULL && soup_websocket_connection_get_state (s->ws) == SOUP_WEBSOCKET_STATE_OPEN;
}

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

void
session_close (Session *s)
{
  if (s->spdy != NULL)
    spdy_close (s);
  else if (session_open (s))
    soup_websocket_connection_close (s->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

/* The client's connection is over: stop everything feeding it. */
void
session_end (Session *s)
{
  g_cancellable_cancel (s->cancellable);
  g_clear_handle_id (&s->ws_writable, g_source_remove);
  for (guint i = 0; i < s->pumps->len; i++)
    pump_close (pump_at (s, i));
}

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

void
pump_start_reading (Pump *p)
{
  p->paused = FALSE;
  p->read_source = g_unix_fd_add (p->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, pump_readable, p);
}

/* The client's queue went under budget again: read what feeds it. */
void
session_resume (Session *s)
{
  for (guint i = 0; i < s->pumps->len; i++)
    {
      Pump *p = pump_at (s, i);
      if (p->paused && p->fd >= 0 && p->read_source == 0)
        pump_start_reading (p);
    }
}

void
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

void
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

gboolean
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
void
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
void
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

/* Opens the log (or the output FIFO) at its current end. Done before the client's stdin
 * reaches the container, so no output that input causes is missed. */
static int
attach_open_output (Session *s, GError **error)
{
  char buf[65536];
  struct stat st;
  int fd = open (s->req->log_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      berth_throw_errno (error, "opening log %s", s->req->log_path);
      if (fd >= 0)
        close (fd);
      return -1;
    }
  if (S_ISFIFO (st.st_mode))
    /* What the FIFO holds was written before this client attached. */
    while (read (fd, buf, sizeof buf) > 0)
      ;
  else
    lseek (fd, 0, SEEK_END);
  return fd;
}

/* Follows the log (or the output FIFO) until the container exits or the client goes. */
static void
attach_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Session *s = data;
  char buf[65536];
  int fd = s->attach_fd;
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


/* In a thread of its own: joining the pod's network namespace changes only it. */
gpointer
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
void
session_begin (Session *s, SoupServerMessage *msg)
{
  s->started = TRUE;
  g_autoptr (GError) error = NULL;
  gboolean ok = TRUE;
  if (s->req->kind == STREAM_EXEC)
    ok = exec_begin (s, &error);
  else if (s->req->kind == STREAM_PORT_FORWARD)
    ok = forward_begin (s, msg, &error);
  else if ((s->attach_fd = attach_open_output (s, &error)) < 0)
    ok = FALSE;
  else if (s->req->in && !attach_stdin (s, &error))
    {
      close (s->attach_fd);
      ok = FALSE;
    }
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

void
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
