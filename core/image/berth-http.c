/* berth-http.c — the daemon's side of an HTTP request made by the helper process
 * (berth-http.h has the protocol). */
#include "config.h"

#include <errno.h>
#include <gio/gunixinputstream.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <berth/berth.h>
#include "berth-http.h"

#define MAX_RESPONSE_HEADER (64 * 1024)
#define MAX_HELPER_STDERR (16 * 1024)
#define BODY_CHUNK (256 * 1024)

struct _BerthHttpMessage {
  char *method;
  char *url;
  GPtrArray *request_headers; /* "Name: value" */
  GBytes *body;
  GInputStream *body_stream;
  gint64 body_length;         /* -1: no body */
  BerthHttpWroteFunc wrote;
  gpointer wrote_data;
  gboolean skip_verify;
  char *ca_file;
  guint status;
  char *reason;
  GHashTable *response_headers; /* lower-case name → value */
};

BerthHttpMessage *
berth_http_message_new (const char *method, const char *url, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_ENCODED, NULL);
  const char *scheme = uri ? g_uri_get_scheme (uri) : NULL;
  if (uri == NULL || g_uri_get_host (uri) == NULL || (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0))
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "not a valid URL: %s", url);
      return NULL;
    }
  BerthHttpMessage *msg = g_new0 (BerthHttpMessage, 1);
  msg->method = g_strdup (method);
  msg->url = g_strdup (url);
  msg->request_headers = g_ptr_array_new_with_free_func (g_free);
  msg->body_length = -1;
  msg->response_headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return msg;
}

void
berth_http_message_free (BerthHttpMessage *msg)
{
  if (msg == NULL)
    return;
  g_free (msg->method);
  g_free (msg->url);
  g_ptr_array_unref (msg->request_headers);
  g_clear_pointer (&msg->body, g_bytes_unref);
  g_clear_object (&msg->body_stream);
  g_free (msg->ca_file);
  g_free (msg->reason);
  g_hash_table_unref (msg->response_headers);
  g_free (msg);
}

const char *
berth_http_message_get_method (BerthHttpMessage *msg)
{
  return msg->method;
}

const char *
berth_http_message_get_url (BerthHttpMessage *msg)
{
  return msg->url;
}

void
berth_http_message_set_header (BerthHttpMessage *msg, const char *name, const char *value)
{
  gsize len = strlen (name);
  for (guint i = 0; i < msg->request_headers->len; i++)
    {
      const char *line = msg->request_headers->pdata[i];
      if (g_ascii_strncasecmp (line, name, len) == 0 && line[len] == ':')
        g_ptr_array_remove_index (msg->request_headers, i--);
    }
  /* Header values never hold a line break (the helper reads one header per line). */
  g_autofree char *clean = g_strdelimit (g_strdup (value), "\r\n", ' ');
  g_ptr_array_add (msg->request_headers, g_strdup_printf ("%s: %s", name, clean));
}

static void
set_content_type (BerthHttpMessage *msg, const char *content_type)
{
  if (content_type != NULL)
    berth_http_message_set_header (msg, "Content-Type", content_type);
}

void
berth_http_message_set_body_bytes (BerthHttpMessage *msg, const char *content_type, GBytes *body)
{
  set_content_type (msg, content_type);
  g_clear_pointer (&msg->body, g_bytes_unref);
  msg->body = body ? g_bytes_ref (body) : g_bytes_new_static ("", 0);
  msg->body_length = g_bytes_get_size (msg->body);
}

void
berth_http_message_set_body_stream (BerthHttpMessage *msg, const char *content_type, GInputStream *stream,
                                    gint64 length)
{
  set_content_type (msg, content_type);
  g_set_object (&msg->body_stream, stream);
  msg->body_length = length;
}

void
berth_http_message_set_wrote_func (BerthHttpMessage *msg, BerthHttpWroteFunc func, gpointer user_data)
{
  msg->wrote = func;
  msg->wrote_data = user_data;
}

void
berth_http_message_set_tls (BerthHttpMessage *msg, gboolean skip_verify, const char *ca_file)
{
  msg->skip_verify = skip_verify;
  g_free (msg->ca_file);
  msg->ca_file = g_strdup (ca_file);
}

guint
berth_http_message_get_status (BerthHttpMessage *msg)
{
  return msg->status;
}

const char *
berth_http_message_get_reason (BerthHttpMessage *msg)
{
  return msg->reason ? msg->reason : "";
}

const char *
berth_http_message_get_header (BerthHttpMessage *msg, const char *name)
{
  g_autofree char *key = g_ascii_strdown (name, -1);
  return g_hash_table_lookup (msg->response_headers, key);
}

char *
berth_http_message_get_content_type (BerthHttpMessage *msg)
{
  const char *value = berth_http_message_get_header (msg, "Content-Type");
  if (value == NULL)
    return NULL;
  g_autofree char *type = g_strndup (value, strcspn (value, ";"));
  return g_ascii_strdown (g_strstrip (type), -1);
}

gboolean
berth_http_message_get_content_range (BerthHttpMessage *msg, gint64 *start, gint64 *end, gint64 *total)
{
  const char *value = berth_http_message_get_header (msg, "Content-Range");
  if (value == NULL || g_ascii_strncasecmp (value, "bytes ", 6) != 0)
    return FALSE;
  char *rest = NULL;
  *start = g_ascii_strtoll (value + 6, &rest, 10);
  if (rest == value + 6 || *rest != '-')
    return FALSE;
  const char *from = rest + 1;
  *end = g_ascii_strtoll (from, &rest, 10);
  if (rest == from || *rest != '/')
    return FALSE;
  *total = rest[1] == '*' ? -1 : g_ascii_strtoll (rest + 1, NULL, 10);
  return *start >= 0 && *end >= *start;
}

/* ---------------- the helper process ---------------- */

/* The GError the helper reported on its stderr, or one saying how it ended. */
static GError *
helper_error (GSubprocess *proc, GInputStream *err_stream, const char *what)
{
  g_autoptr (GBytes) bytes = NULL;
  if (err_stream != NULL)
    {
      g_autoptr (GByteArray) data = g_byte_array_new ();
      guint8 buf[4096];
      gssize n;
      while (data->len < MAX_HELPER_STDERR && (n = g_input_stream_read (err_stream, buf, sizeof buf, NULL, NULL)) > 0)
        g_byte_array_append (data, buf, n);
      g_byte_array_append (data, (const guint8 *) "", 1);
      bytes = g_byte_array_free_to_bytes (g_steal_pointer (&data));
    }
  const char *text = bytes ? g_bytes_get_data (bytes, NULL) : "";
  const char *line = g_strrstr (text, "ERROR ");
  if (line != NULL)
    {
      g_auto (GStrv) parts = g_strsplit (line + 6, " ", 3);
      if (g_strv_length (parts) == 3)
        {
          g_strchomp (parts[2]);
          return g_error_new_literal (g_quark_from_string (parts[0]), (gint) g_ascii_strtoll (parts[1], NULL, 10),
                                      parts[2]);
        }
    }
  if (g_subprocess_get_if_signaled (proc))
    return g_error_new (BERTH_ERROR, BERTH_ERROR_UNAVAILABLE, "%s: the HTTP helper process died of signal %d", what,
                        g_subprocess_get_term_sig (proc));
  g_autofree char *said = g_strstrip (g_strdup (text));
  return g_error_new (BERTH_ERROR, BERTH_ERROR_UNAVAILABLE, "%s: the HTTP helper process failed%s%s", what,
                      *said ? ": " : "", said);
}

/* The response body: the helper's stdout, then its exit status (a failure past the
 * headers is the read error at the end). */
#define BERTH_TYPE_HTTP_BODY (berth_http_body_get_type ())
G_DECLARE_FINAL_TYPE (BerthHttpBody, berth_http_body, BERTH, HTTP_BODY, GFilterInputStream)

struct _BerthHttpBody {
  GFilterInputStream parent;
  GSubprocess *proc;
  char *what; /* "METHOD URL" */
  gboolean finished;
};

G_DEFINE_FINAL_TYPE (BerthHttpBody, berth_http_body, G_TYPE_FILTER_INPUT_STREAM)

static gboolean
body_finish (BerthHttpBody *self, GCancellable *cancellable, GError **error)
{
  if (self->finished)
    return TRUE;
  if (!g_subprocess_wait (self->proc, cancellable, error))
    return FALSE;
  self->finished = TRUE;
  if (g_subprocess_get_if_exited (self->proc) && g_subprocess_get_exit_status (self->proc) == 0)
    return TRUE;
  GError *failure = helper_error (self->proc, g_subprocess_get_stderr_pipe (self->proc), self->what);
  g_propagate_error (error, failure);
  return FALSE;
}

static gssize
berth_http_body_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
  BerthHttpBody *self = BERTH_HTTP_BODY (stream);
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream));
  gssize n = g_input_stream_read (base, buffer, count, cancellable, error);
  if (n == 0 && !body_finish (self, cancellable, error))
    return -1;
  return n;
}

static gboolean
berth_http_body_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  BerthHttpBody *self = BERTH_HTTP_BODY (stream);
  if (!self->finished)
    {
      /* Closed before its end: the rest is not wanted. */
      g_subprocess_force_exit (self->proc);
      g_subprocess_wait (self->proc, NULL, NULL);
      self->finished = TRUE;
    }
  return G_INPUT_STREAM_CLASS (berth_http_body_parent_class)->close_fn (stream, cancellable, error);
}

static void
berth_http_body_finalize (GObject *object)
{
  BerthHttpBody *self = BERTH_HTTP_BODY (object);
  if (!self->finished)
    {
      g_subprocess_force_exit (self->proc);
      g_subprocess_wait (self->proc, NULL, NULL);
    }
  g_clear_object (&self->proc);
  g_free (self->what);
  G_OBJECT_CLASS (berth_http_body_parent_class)->finalize (object);
}

static void
berth_http_body_class_init (BerthHttpBodyClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = berth_http_body_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = berth_http_body_read;
  G_INPUT_STREAM_CLASS (klass)->close_fn = berth_http_body_close;
}

static void
berth_http_body_init (BerthHttpBody *self)
{
}

/* Writes all of @data to the helper's stdin socket (MSG_NOSIGNAL: a helper that has
 * already given up is an EPIPE here, not a SIGPIPE for berthd). */
static gboolean
send_all (int fd, const void *data, gsize len, GError **error)
{
  const char *p = data;
  while (len > 0)
    {
      ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return berth_throw_errno (error, "sending the request to the HTTP helper");
      p += n;
      len -= n;
    }
  return TRUE;
}

static gboolean
send_request (BerthHttpMessage *msg, int fd, GCancellable *cancellable, GError **error)
{
  g_autoptr (GString) head = g_string_new (NULL);
  for (guint i = 0; i < msg->request_headers->len; i++)
    g_string_append_printf (head, "%s\n", (const char *) msg->request_headers->pdata[i]);
  g_string_append_c (head, '\n');
  if (!send_all (fd, head->str, head->len, error))
    return FALSE;
  if (msg->body != NULL)
    {
      if (!send_all (fd, g_bytes_get_data (msg->body, NULL), g_bytes_get_size (msg->body), error))
        return FALSE;
      if (msg->wrote != NULL && g_bytes_get_size (msg->body) > 0)
        msg->wrote (g_bytes_get_size (msg->body), msg->wrote_data);
    }
  else if (msg->body_stream != NULL)
    {
      g_autofree guint8 *buf = g_malloc (BODY_CHUNK);
      for (gint64 left = msg->body_length; left > 0;)
        {
          gssize n = g_input_stream_read (msg->body_stream, buf, MIN ((gint64) BODY_CHUNK, left), cancellable, error);
          if (n < 0)
            return FALSE;
          if (n == 0)
            return berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s %s: the body ended %" G_GINT64_FORMAT " bytes short",
                                msg->method, msg->url, left);
          if (!send_all (fd, buf, n, error))
            return FALSE;
          left -= n;
          if (msg->wrote != NULL)
            msg->wrote (n, msg->wrote_data);
        }
    }
  shutdown (fd, SHUT_WR);
  return TRUE;
}

/* "STATUS REASON" and "Name: value" lines up to an empty one. */
static gboolean
read_response_head (BerthHttpMessage *msg, GDataInputStream *out, GCancellable *cancellable, GError **error)
{
  gsize total = 0;
  for (guint line_no = 0;; line_no++)
    {
      gsize len = 0;
      g_autofree char *line = g_data_input_stream_read_line (out, &len, cancellable, error);
      if (line == NULL)
        return FALSE;
      total += len + 1;
      if (total > MAX_RESPONSE_HEADER)
        return berth_throw (error, BERTH_ERROR_RESOURCE_EXHAUSTED, "%s %s: response headers over %d bytes",
                            msg->method, msg->url, MAX_RESPONSE_HEADER);
      if (line_no == 0)
        {
          char *rest = NULL;
          guint64 status = g_ascii_strtoull (line, &rest, 10);
          if (rest == line || status < 100 || status > 999)
            return berth_throw (error, BERTH_ERROR_INTERNAL, "%s %s: the HTTP helper answered \"%s\"", msg->method,
                                msg->url, line);
          msg->status = status;
          msg->reason = g_strdup (*rest == ' ' ? rest + 1 : rest);
          continue;
        }
      if (len == 0)
        return TRUE;
      char *colon = strchr (line, ':');
      if (colon == NULL)
        continue;
      g_autofree char *name = g_ascii_strdown (line, colon - line);
      const char *value = colon + 1;
      while (*value == ' ')
        value++;
      /* Repeated headers: the first counts (as libsoup's get_one did). */
      if (!g_hash_table_contains (msg->response_headers, name))
        g_hash_table_insert (msg->response_headers, g_steal_pointer (&name), g_strdup (value));
    }
}

static void
cancel_helper (GCancellable *cancellable, GSubprocess *proc)
{
  g_subprocess_force_exit (proc);
}

GInputStream *
berth_http_send (BerthHttpMessage *msg, GCancellable *cancellable, GError **error)
{
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  int pair[2];
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
    return berth_throw_errno (error, "a socket for the HTTP helper"), NULL;
  berth_autofd int ours = pair[0];
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (argv, g_strdup ("/proc/self/exe"));
  g_ptr_array_add (argv, g_strdup ("--http-request"));
  g_ptr_array_add (argv, g_strdup (msg->method));
  g_ptr_array_add (argv, g_strdup (msg->url));
  g_ptr_array_add (argv, g_strdup_printf ("%" G_GINT64_FORMAT, msg->body_length));
  if (msg->skip_verify)
    g_ptr_array_add (argv, g_strdup ("--skip-verify"));
  if (msg->ca_file != NULL)
    g_ptr_array_add (argv, g_strdup_printf ("--ca-file=%s", msg->ca_file));
  g_ptr_array_add (argv, NULL);
  g_autoptr (GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_take_stdin_fd (launcher, pair[1]);
  g_autoptr (GSubprocess) proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, error);
  if (proc == NULL)
    {
      g_prefix_error (error, "starting the HTTP helper: ");
      return NULL;
    }
  gulong cancel_id = cancellable ? g_cancellable_connect (cancellable, G_CALLBACK (cancel_helper), proc, NULL) : 0;
  g_autoptr (GDataInputStream) out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  g_data_input_stream_set_newline_type (out, G_DATA_STREAM_NEWLINE_TYPE_LF);
  g_autoptr (GError) send_error = NULL;
  gboolean sent = send_request (msg, ours, cancellable, &send_error);
  g_autoptr (GError) head_error = NULL;
  gboolean answered = read_response_head (msg, out, cancellable, &head_error);
  if (cancel_id != 0)
    g_cancellable_disconnect (cancellable, cancel_id);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      g_subprocess_force_exit (proc);
      g_subprocess_wait (proc, NULL, NULL);
      return NULL;
    }
  g_autofree char *what = g_strdup_printf ("%s %s", msg->method, msg->url);
  /* A body of ours that came up short fails the request; an answer the registry gave
   * before taking the whole body (a 413, say) is still the answer. */
  if (!sent && g_error_matches (send_error, BERTH_ERROR, BERTH_ERROR_DATA_LOSS))
    answered = FALSE;
  if (!answered)
    {
      g_subprocess_force_exit (proc);
      g_subprocess_wait (proc, NULL, NULL);
      if (!sent && g_error_matches (send_error, BERTH_ERROR, BERTH_ERROR_DATA_LOSS))
        g_propagate_error (error, g_steal_pointer (&send_error));
      else
        /* The helper's own account (no route, TLS…) says more than a short read. */
        g_propagate_error (error, helper_error (proc, g_subprocess_get_stderr_pipe (proc), what));
      return NULL;
    }
  BerthHttpBody *body = g_object_new (BERTH_TYPE_HTTP_BODY, "base-stream", out, NULL);
  body->proc = g_steal_pointer (&proc);
  body->what = g_steal_pointer (&what);
  return G_INPUT_STREAM (body);
}
