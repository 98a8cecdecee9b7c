/* berth-http-fetch.c — the berth-http-fetch module: one HTTP request with libsoup, in
 * the helper process `berthd --http-request METHOD URL BODY_LENGTH [--skip-verify]
 * [--ca-file=FILE]` (berth-http.h has the protocol). Proxies come from the environment
 * berthd passed on. */
#include "config.h"

#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <libsoup/soup.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <berth/berth.h>
#include "berth-http.h"

#define MAX_REQUEST_HEADER (64 * 1024)

static const char *
env_either (const char *upper, const char *lower)
{
  const char *value = g_getenv (upper);
  return value != NULL && *value != '\0' ? value : g_getenv (lower);
}

/* A proxy URL as Go reads one: without a scheme it is an http:// proxy. */
static char *
proxy_url (const char *value)
{
  if (value == NULL || *value == '\0')
    return NULL;
  return strstr (value, "://") != NULL ? g_strdup (value) : g_strconcat ("http://", value, NULL);
}

/* HTTP_PROXY, HTTPS_PROXY and NO_PROXY (or their lower-case spellings), read as
 * containerd reads them (Go's ProxyFromEnvironment): per URL scheme, NO_PROXY "*" for
 * none, loopback never proxied; NULL when no proxy is set. A daemon takes its proxy
 * from its service environment, not from a desktop's settings; GIO's default resolver
 * would load libproxy and GSettings (2 MB of C++ and dconf). Without a resolver, libsoup
 * connects directly and GIO's is never asked for; with one, GIO still opens its default
 * (each proxy enumeration does). */
static GProxyResolver *
proxy_resolver_from_environment (void)
{
  g_autofree char *http = proxy_url (env_either ("HTTP_PROXY", "http_proxy"));
  g_autofree char *https = proxy_url (env_either ("HTTPS_PROXY", "https_proxy"));
  const char *no_proxy = env_either ("NO_PROXY", "no_proxy");
  g_autoptr (GPtrArray) direct = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (direct, g_strdup ("localhost"));
  g_ptr_array_add (direct, g_strdup ("127.0.0.0/8"));
  g_ptr_array_add (direct, g_strdup ("::1"));
  if (no_proxy != NULL)
    {
      g_auto (GStrv) entries = g_strsplit (no_proxy, ",", -1);
      for (char **entry = entries; *entry != NULL; entry++)
        {
          g_strstrip (*entry);
          if (g_str_equal (*entry, "*"))
            {
              g_clear_pointer (&http, g_free);
              g_clear_pointer (&https, g_free);
            }
          else if (**entry != '\0')
            g_ptr_array_add (direct, g_strdup (*entry));
        }
    }
  if (http == NULL && https == NULL)
    return NULL;
  g_ptr_array_add (direct, NULL);
  GProxyResolver *resolver = g_simple_proxy_resolver_new (NULL, (char **) direct->pdata);
  if (http != NULL)
    g_simple_proxy_resolver_set_uri_proxy (G_SIMPLE_PROXY_RESOLVER (resolver), "http", http);
  if (https != NULL)
    g_simple_proxy_resolver_set_uri_proxy (G_SIMPLE_PROXY_RESOLVER (resolver), "https", https);
  return resolver;
}

typedef struct {
  gboolean skip_verify;
  GTlsDatabase *extra_ca;
} Trust;

/* Called when the system CAs do not vouch for the peer. */
static gboolean
accept_certificate (SoupMessage *msg, GTlsCertificate *certificate, GTlsCertificateFlags errors, gpointer user_data)
{
  Trust *trust = user_data;
  if (trust->skip_verify)
    return TRUE;
  if (trust->extra_ca == NULL)
    return FALSE;
  GUri *uri = soup_message_get_uri (msg);
  g_autoptr (GSocketConnectable) identity = g_network_address_new (g_uri_get_host (uri), g_uri_get_port (uri));
  GTlsCertificateFlags flags = g_tls_database_verify_chain (trust->extra_ca, certificate,
                                                            G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER, identity, NULL,
                                                            G_TLS_DATABASE_VERIFY_NONE, NULL, NULL);
  return flags == 0;
}

static int
fail (const GError *error)
{
  fprintf (stderr, "ERROR %s %d %s\n", g_quark_to_string (error->domain), error->code, error->message);
  return 1;
}

/* "Name: value" lines up to an empty one, onto @msg. */
static gboolean
read_request_head (GDataInputStream *in, SoupMessage *msg, GError **error)
{
  SoupMessageHeaders *headers = soup_message_get_request_headers (msg);
  gsize total = 0;
  for (;;)
    {
      gsize len = 0;
      g_autofree char *line = g_data_input_stream_read_line (in, &len, NULL, error);
      if (line == NULL)
        return error == NULL || *error == NULL
                 ? berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "the request ended inside its headers")
                 : FALSE;
      if (len == 0)
        return TRUE;
      total += len;
      if (total > MAX_REQUEST_HEADER)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "request headers over %d bytes", MAX_REQUEST_HEADER);
      char *colon = strchr (line, ':');
      if (colon == NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "not a header line: %s", line);
      *colon = '\0';
      const char *value = colon + 1;
      while (*value == ' ')
        value++;
      soup_message_headers_replace (headers, line, value);
    }
}

static void
write_header (const char *name, const char *value, gpointer user_data)
{
  g_string_append_printf (user_data, "%s: %s\n", name, value);
}

static gboolean
fetch (int argc, char **argv, GError **error)
{
  Trust trust = { FALSE, NULL };
  g_autoptr (GTlsDatabase) extra_ca = NULL;
  if (argc < 5)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "usage: berthd --http-request METHOD URL BODY_LENGTH [--skip-verify] [--ca-file=FILE]");
  const char *method = argv[2], *url = argv[3];
  gint64 body_length = g_ascii_strtoll (argv[4], NULL, 10);
  for (int i = 5; i < argc; i++)
    {
      if (g_str_equal (argv[i], "--skip-verify"))
        trust.skip_verify = TRUE;
      else if (g_str_has_prefix (argv[i], "--ca-file="))
        {
          const char *ca_file = argv[i] + strlen ("--ca-file=");
          extra_ca = g_tls_file_database_new (ca_file, error);
          if (extra_ca == NULL)
            {
              g_prefix_error (error, "ca-file %s: ", ca_file);
              return FALSE;
            }
          trust.extra_ca = extra_ca;
        }
      else
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "unknown option %s", argv[i]);
    }
  g_autoptr (SoupMessage) msg = soup_message_new (method, url);
  if (msg == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "not a valid URL: %s", url);
  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_certificate), &trust);
  g_autoptr (GInputStream) stdin_stream = g_unix_input_stream_new (0, FALSE);
  g_autoptr (GDataInputStream) in = g_data_input_stream_new (stdin_stream);
  g_data_input_stream_set_newline_type (in, G_DATA_STREAM_NEWLINE_TYPE_LF);
  if (!read_request_head (in, msg, error))
    return FALSE;
  if (body_length > 0)
    {
      g_autofree char *content_type =
        g_strdup (soup_message_headers_get_one (soup_message_get_request_headers (msg), "Content-Type"));
      soup_message_set_request_body (msg, content_type, G_INPUT_STREAM (in), body_length);
    }
  else if (body_length == 0)
    soup_message_headers_set_content_length (soup_message_get_request_headers (msg), 0);
  g_autoptr (GProxyResolver) proxies = proxy_resolver_from_environment ();
  g_autoptr (SoupSession) session = soup_session_new_with_options ("user-agent", "berth/" PACKAGE_VERSION, "timeout",
                                                                   120, "proxy-resolver", proxies, NULL);
  /* Challenges are the daemon's to answer (Bearer is not a scheme libsoup knows). */
  soup_session_remove_feature_by_type (session, SOUP_TYPE_AUTH_MANAGER);
  g_autoptr (GInputStream) body = soup_session_send (session, msg, NULL, error);
  if (body == NULL)
    return FALSE;
  g_autoptr (GString) head = g_string_new (NULL);
  g_string_append_printf (head, "%u %s\n", soup_message_get_status (msg), soup_message_get_reason_phrase (msg));
  soup_message_headers_foreach (soup_message_get_response_headers (msg), write_header, head);
  g_string_append_c (head, '\n');
  g_autoptr (GOutputStream) out = g_unix_output_stream_new (1, FALSE);
  if (!g_output_stream_write_all (out, head->str, head->len, NULL, NULL, error))
    return FALSE;
  if (g_output_stream_splice (out, body, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE, NULL, error) < 0)
    return FALSE;
  return TRUE;
}

int
berth_http_fetch_main (int argc, char **argv)
{
  int status = 0;
  {
    g_autoptr (GError) error = NULL;
    if (!fetch (argc, argv, &error))
      status = fail (error);
  }
  /* Everything the parent reads was written with write(2) or to unbuffered stderr, and
   * the helper owns nothing that exit handlers would save. _exit also keeps LeakSanitizer's
   * at-exit scan (sanitizer builds) away from the threads GLib left holding glib-networking's
   * dynamic TLS, which Debian 12's libsanitizer crashes on ("Tracer caught signal 11"). */
  _exit (status);
}
