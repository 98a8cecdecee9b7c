/* berth-distribution.c — the distribution API v2 client: credentials, token and basic
 * authentication, sending with retries, progress. Pull and push are built on it
 * (berth-distribution-pull.c, -push.c); the three make the berth-registry-client module,
 * opened on the first pull or push (core/daemon/berth-modules.h). Each request goes out
 * through the HTTP helper process (berth-http.h), so the layer workers of one operation
 * send in parallel, each its own request. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>
#include "berth-distribution-private.h"
#include "berth-json.h"

#define DOCKER_DOMAIN "docker.io"
#define DOCKER_REGISTRY_HOST "registry-1.docker.io"
#define MAX_NAME 255
#define BACKOFF_USEC (250 * 1000)
#define BACKOFF_MAX_USEC (8 * G_USEC_PER_SEC)
#define TOKEN_DEFAULT_SECONDS 60
#define MAX_ERROR_BODY (64 * 1024)
#define MAX_TOKEN_ANSWER (1024 * 1024)


/* ================= credentials ================= */

/* USER:PASS for @domain from a docker config.json ("auths": {KEY: {"auth": base64} or
 * {"username", "password"}}), trying the key spellings docker and podman write. */
static gboolean
lookup_credentials (const char *path, const char *domain, char **username, char **password)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  if (path == NULL || !g_file_get_contents (path, &text, &len, NULL))
    return FALSE;
  g_autoptr (GBytes) bytes = g_bytes_new_take (g_steal_pointer (&text), len);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = berth_json_parse_object (bytes, path, &error);
  if (root == NULL)
    {
      g_warning ("registry-auth-file %s: %s", path, error->message);
      return FALSE;
    }
  JsonObject *auths = berth_json_member_object (json_node_get_object (root), "auths");
  g_autofree char *https = g_strconcat ("https://", domain, NULL);
  g_autofree char *http = g_strconcat ("http://", domain, NULL);
  g_autofree char *v1 = g_strconcat ("https://", domain, "/v1/", NULL);
  const char *keys[] = { domain, https, http, v1, NULL, NULL, NULL };
  if (g_str_equal (domain, DOCKER_DOMAIN))
    keys[4] = "https://index.docker.io/v1/", keys[5] = "index.docker.io";
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      JsonObject *entry = keys[i] ? berth_json_member_object (auths, keys[i]) : NULL;
      if (entry == NULL)
        continue;
      const char *user = berth_json_member_string (entry, "username");
      const char *pass = berth_json_member_string (entry, "password");
      const char *auth = berth_json_member_string (entry, "auth");
      if (user != NULL && pass != NULL)
        {
          *username = g_strdup (user);
          *password = g_strdup (pass);
          return TRUE;
        }
      if (auth != NULL)
        {
          gsize decoded_len = 0;
          g_autofree guchar *decoded = g_base64_decode (auth, &decoded_len);
          g_autofree char *pair = g_strndup ((const char *) decoded, decoded_len);
          char *sep = strchr (pair, ':');
          if (sep == NULL)
            {
              g_warning ("registry-auth-file %s: the auth of %s is not base64(USER:PASS)", path, keys[i]);
              return FALSE;
            }
          *username = g_strndup (pair, sep - pair);
          *password = g_strdup (sep + 1);
          return TRUE;
        }
    }
  return FALSE;
}

/* ================= the registry client ================= */

typedef struct {
  char *value;
  gint64 expires; /* monotonic µs */
} Token;

static void
token_free (Token *token)
{
  g_free (token->value);
  g_free (token);
}

void
dist_registry_free (Registry *reg)
{
  if (reg == NULL)
    return;
  g_free (reg->domain);
  g_free (reg->base);
  g_free (reg->ca_file);
  g_free (reg->username);
  g_free (reg->password);
  g_clear_object (&reg->cancellable);
  g_mutex_clear (&reg->lock);
  g_free (reg->scheme);
  g_free (reg->realm);
  g_free (reg->service);
  g_hash_table_unref (reg->tokens);
  g_free (reg);
}

Registry *
dist_registry_new (BerthDaemon *daemon, const char *domain, gboolean plain_http, gboolean skip_verify, const char *username,
              const char *password, GCancellable *cancellable, GError **error)
{
  BerthConfig *config = berth_daemon_get_config (daemon);
  const BerthRegistryHostConfig *host = berth_config_get_registry (config, domain);
  g_autoptr (Registry) reg = g_new0 (Registry, 1);
  g_mutex_init (&reg->lock);
  reg->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) token_free);
  reg->domain = g_strdup (domain);
  reg->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  gboolean plain = plain_http || (host && host->plain_http);
  if (host != NULL && host->endpoint != NULL)
    reg->base = g_strdup (host->endpoint); /* a mirror: its scheme is its own */
  else
    reg->base = g_strdup_printf ("%s://%s", plain ? "http" : "https",
                                 g_str_equal (domain, DOCKER_DOMAIN) ? DOCKER_REGISTRY_HOST : domain);
  reg->skip_verify = skip_verify || (host && host->skip_verify);
  if (host != NULL && host->ca_file != NULL)
    {
      /* Read by the helper process; a file that is not there is said here, once. */
      if (!g_file_test (host->ca_file, G_FILE_TEST_IS_REGULAR))
        {
          berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "registry %s: ca-file %s: no such file", domain,
                       host->ca_file);
          return NULL;
        }
      reg->ca_file = g_strdup (host->ca_file);
    }
  if (username != NULL && *username != '\0')
    {
      reg->username = g_strdup (username);
      reg->password = g_strdup (password ? password : "");
    }
  else if (lookup_credentials (config->registry_auth_file, domain, &reg->username, &reg->password))
    g_debug ("credentials for %s from %s", domain, config->registry_auth_file);
  return g_steal_pointer (&reg);
}

BerthHttpMessage *
dist_message_new (Registry *reg, const char *method, const char *url, GError **error)
{
  BerthHttpMessage *msg = berth_http_message_new (method, url, error);
  if (msg != NULL)
    berth_http_message_set_tls (msg, reg->skip_verify, reg->ca_file);
  return msg;
}

static void
add_auth (Registry *reg, BerthHttpMessage *msg, const char *scope)
{
  g_autofree char *value = NULL;
  g_mutex_lock (&reg->lock);
  if (g_strcmp0 (reg->scheme, "basic") == 0 && reg->username != NULL)
    {
      g_autofree char *pair = g_strdup_printf ("%s:%s", reg->username, reg->password);
      g_autofree char *encoded = g_base64_encode ((const guchar *) pair, strlen (pair));
      value = g_strconcat ("Basic ", encoded, NULL);
    }
  else if (g_strcmp0 (reg->scheme, "bearer") == 0)
    {
      Token *token = g_hash_table_lookup (reg->tokens, scope);
      if (token != NULL && token->expires > g_get_monotonic_time ())
        value = g_strconcat ("Bearer ", token->value, NULL);
    }
  g_mutex_unlock (&reg->lock);
  if (value != NULL)
    berth_http_message_set_header (msg, "Authorization", value);
}

/* The first entry of a distribution error body: "CODE: message". */
static char *
error_detail (GBytes *body)
{
  if (body == NULL || g_bytes_get_size (body) == 0)
    return NULL;
  g_autoptr (JsonNode) root = berth_json_parse_object (body, "error", NULL);
  JsonArray *errors = root ? berth_json_member_array (json_node_get_object (root), "errors") : NULL;
  JsonObject *first = berth_json_array_length (errors) > 0 ? berth_json_element_object (errors, 0) : NULL;
  if (first == NULL)
    return NULL;
  const char *code = berth_json_member_string (first, "code");
  const char *message = berth_json_member_string (first, "message");
  return g_strdup_printf ("%s%s%s", code ? code : "", code && message ? ": " : "", message ? message : "");
}

GBytes *
dist_read_limited (GInputStream *stream, gsize max, GCancellable *cancellable, GError **error)
{
  g_autoptr (GByteArray) data = g_byte_array_new ();
  guint8 buf[16384];
  for (;;)
    {
      gssize n = g_input_stream_read (stream, buf, sizeof buf, cancellable, error);
      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if (data->len + (gsize) n > max)
        {
          berth_throw (error, BERTH_ERROR_RESOURCE_EXHAUSTED, "the response is larger than %zu bytes", max);
          return NULL;
        }
      g_byte_array_append (data, buf, n);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&data));
}

/* Reads what is left of an error answer (for its message) and releases the connection. */
char *
dist_drain_detail (GInputStream *stream, GCancellable *cancellable)
{
  if (stream == NULL)
    return NULL;
  g_autoptr (GBytes) body = dist_read_limited (stream, MAX_ERROR_BODY, cancellable, NULL);
  g_input_stream_close (stream, NULL, NULL);
  return error_detail (body);
}

/* The GError for an unexpected HTTP status, @what being what was asked for. */
gboolean
dist_throw_status (GError **error, BerthHttpMessage *msg, const char *detail, const char *what)
{
  guint status = berth_http_message_get_status (msg);
  BerthErrorCode code = status == HTTP_NOT_FOUND ? BERTH_ERROR_NOT_FOUND
                        : status == HTTP_UNAUTHORIZED ? BERTH_ERROR_UNAUTHENTICATED
                        : status == HTTP_FORBIDDEN ? BERTH_ERROR_PERMISSION_DENIED
                        : status == HTTP_BAD_REQUEST ? BERTH_ERROR_INVALID_ARGUMENT
                        : status == HTTP_TOO_MANY_REQUESTS ? BERTH_ERROR_RESOURCE_EXHAUSTED
                        : status >= 500 ? BERTH_ERROR_UNAVAILABLE
                                        : BERTH_ERROR_UNKNOWN;
  return berth_throw (error, code, "%s: %u %s%s%s", what, status, berth_http_message_get_reason (msg),
                      detail ? " — " : "", detail ? detail : "");
}

static gboolean
retryable_status (guint status)
{
  return status == HTTP_TOO_MANY_REQUESTS || status == HTTP_INTERNAL_SERVER_ERROR || status == HTTP_BAD_GATEWAY
         || status == HTTP_SERVICE_UNAVAILABLE || status == HTTP_GATEWAY_TIMEOUT;
}

gboolean
dist_retryable_error (const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return FALSE;
  /* A TLS failure will fail again; a reset or a timeout may not. */
  return error->domain != G_TLS_ERROR && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
         && error->domain != G_RESOLVER_ERROR;
}

/* Sleeps before attempt @attempt (1, 2, …), Retry-After when the registry gave one. */
gboolean
dist_backoff (Registry *reg, guint attempt, BerthHttpMessage *msg)
{
  gint64 delay = MIN (BACKOFF_USEC << (attempt - 1), BACKOFF_MAX_USEC);
  const char *retry_after = msg ? berth_http_message_get_header (msg, "Retry-After") : NULL;
  if (retry_after != NULL && g_ascii_isdigit (retry_after[0]))
    delay = MIN (g_ascii_strtoll (retry_after, NULL, 10) * G_USEC_PER_SEC, BACKOFF_MAX_USEC);
  gint64 until = g_get_monotonic_time () + delay;
  while (g_get_monotonic_time () < until)
    {
      if (g_cancellable_is_cancelled (reg->cancellable))
        return FALSE;
      g_usleep (MIN (50000, MAX (0, until - g_get_monotonic_time ())));
    }
  return TRUE;
}

/* The whole answer to @msg, at most @max bytes. */
static GBytes *
send_and_read (BerthHttpMessage *msg, gsize max, GCancellable *cancellable, GError **error)
{
  g_autoptr (GInputStream) stream = berth_http_send (msg, cancellable, error);
  if (stream == NULL)
    return NULL;
  GBytes *body = dist_read_limited (stream, max, cancellable, error);
  g_input_stream_close (stream, NULL, NULL);
  return body;
}

/* A challenge's parameters, `realm="…",service="…",scope="…"` (RFC 7235 auth-params:
 * quoted strings with backslash escapes, or tokens); names in lower case. */
static GHashTable *
parse_auth_params (const char *text)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const char *p = text;
  for (;;)
    {
      while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
      if (*p == '\0')
        return table;
      const char *name = p;
      while (*p != '\0' && *p != '=' && *p != ',' && *p != ' ')
        p++;
      g_autofree char *key = g_ascii_strdown (name, p - name);
      while (*p == ' ')
        p++;
      if (*p != '=')
        continue; /* a bare token (token68): nothing a registry sends us */
      p++;
      while (*p == ' ')
        p++;
      g_autoptr (GString) value = g_string_new (NULL);
      if (*p == '"')
        {
          for (p++; *p != '\0' && *p != '"'; p++)
            {
              if (*p == '\\' && p[1] != '\0')
                p++;
              g_string_append_c (value, *p);
            }
          if (*p == '"')
            p++;
        }
      else
        while (*p != '\0' && *p != ',' && *p != ' ')
          g_string_append_c (value, *p++);
      if (!g_hash_table_contains (table, key))
        g_hash_table_insert (table, g_steal_pointer (&key), g_string_free (g_steal_pointer (&value), FALSE));
    }
}

/* Asks the challenge's token service for a token for @scope. */
static gboolean
fetch_token (Registry *reg, const char *scope, GError **error)
{
  g_mutex_lock (&reg->lock);
  g_autofree char *realm = g_strdup (reg->realm);
  g_autofree char *service = g_strdup (reg->service);
  g_mutex_unlock (&reg->lock);
  if (realm == NULL)
    return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED, "registry %s: a Bearer challenge without a realm", reg->domain);
  GString *url = g_string_new (realm);
  g_string_append_c (url, strchr (realm, '?') ? '&' : '?');
  if (service != NULL)
    {
      g_autofree char *escaped = g_uri_escape_string (service, NULL, FALSE);
      g_string_append_printf (url, "service=%s&", escaped);
    }
  g_auto (GStrv) scopes = g_strsplit (scope, " ", -1);
  for (guint i = 0; scopes[i] != NULL; i++)
    {
      g_autofree char *escaped = g_uri_escape_string (scopes[i], NULL, FALSE);
      g_string_append_printf (url, "scope=%s&", escaped);
    }
  g_string_truncate (url, url->len - 1);
  g_autofree char *url_text = g_string_free (url, FALSE);
  g_autoptr (GBytes) body = NULL;
  g_autoptr (BerthHttpMessage) msg = NULL;
  for (guint attempt = 1;; attempt++)
    {
      g_clear_pointer (&msg, berth_http_message_free);
      msg = dist_message_new (reg, "GET", url_text, error);
      if (msg == NULL)
        return FALSE;
      if (reg->username != NULL)
        {
          g_autofree char *pair = g_strdup_printf ("%s:%s", reg->username, reg->password);
          g_autofree char *encoded = g_base64_encode ((const guchar *) pair, strlen (pair));
          g_autofree char *value = g_strconcat ("Basic ", encoded, NULL);
          berth_http_message_set_header (msg, "Authorization", value);
        }
      g_autoptr (GError) local_error = NULL;
      g_clear_pointer (&body, g_bytes_unref);
      body = send_and_read (msg, MAX_TOKEN_ANSWER, reg->cancellable, &local_error);
      if (body == NULL)
        {
          if (attempt < MAX_ATTEMPTS && dist_retryable_error (local_error) && dist_backoff (reg, attempt, NULL))
            continue;
          return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "token service %s: %s", realm, local_error->message);
        }
      if (retryable_status (berth_http_message_get_status (msg)) && attempt < MAX_ATTEMPTS
          && dist_backoff (reg, attempt, msg))
        continue;
      break;
    }
  guint status = berth_http_message_get_status (msg);
  if (status == HTTP_UNAUTHORIZED || status == HTTP_FORBIDDEN)
    return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED, "registry %s: the token service refused %s",
                        reg->domain, reg->username ? "the credentials given" : "anonymous access (credentials needed)");
  if (status != HTTP_OK)
    {
      g_autofree char *detail = error_detail (body);
      return dist_throw_status (error, msg, detail, realm);
    }
  g_autoptr (GError) parse_error = NULL;
  g_autoptr (JsonNode) root = berth_json_parse_object (body, "the token service's answer", &parse_error);
  JsonObject *object = root ? json_node_get_object (root) : NULL;
  const char *value = berth_json_member_string (object, "token") ?: berth_json_member_string (object, "access_token");
  if (value == NULL)
    return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED, "token service %s answered no token", realm);
  gint64 expires_in = berth_json_member_int (object, "expires_in");
  Token *token = g_new0 (Token, 1);
  token->value = g_strdup (value);
  /* A little early, so a token never expires on its way. */
  token->expires = g_get_monotonic_time () + (MAX (expires_in, TOKEN_DEFAULT_SECONDS) - 5) * G_USEC_PER_SEC;
  g_mutex_lock (&reg->lock);
  g_hash_table_replace (reg->tokens, g_strdup (scope), token);
  g_mutex_unlock (&reg->lock);
  g_debug ("%s: token for %s, %" G_GINT64_FORMAT " s", reg->domain, scope, MAX (expires_in, TOKEN_DEFAULT_SECONDS));
  return TRUE;
}

/* Learns the scheme from a 401's WWW-Authenticate and gets what it asks for. FALSE with
 * UNAUTHENTICATED when nothing more can be tried. */
static gboolean
answer_challenge (Registry *reg, BerthHttpMessage *msg, const char *scope, gboolean retried, GError **error)
{
  const char *header = berth_http_message_get_header (msg, "WWW-Authenticate");
  if (header == NULL)
    return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED, "registry %s: 401 Unauthorized without a challenge", reg->domain);
  g_autofree char *scheme = g_ascii_strdown (header, strcspn (header, " "));
  const char *params = header + strcspn (header, " ");
  g_autoptr (GHashTable) table = parse_auth_params (params);
  if (g_str_equal (scheme, "bearer"))
    {
      g_mutex_lock (&reg->lock);
      g_free (reg->scheme), reg->scheme = g_strdup ("bearer");
      g_free (reg->realm), reg->realm = g_strdup (g_hash_table_lookup (table, "realm"));
      g_free (reg->service), reg->service = g_strdup (g_hash_table_lookup (table, "service"));
      g_mutex_unlock (&reg->lock);
      if (retried)
        return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED, "registry %s refused the token for %s%s", reg->domain,
                            scope, reg->username ? "" : " (no credentials given)");
      return fetch_token (reg, scope, error);
    }
  if (g_str_equal (scheme, "basic"))
    {
      if (reg->username == NULL)
        return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED,
                            "registry %s needs credentials (give --user USER:PASS, or add them to the registry-auth-file)",
                            reg->domain);
      if (retried)
        return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED, "registry %s refused the credentials of user %s",
                            reg->domain, reg->username);
      g_mutex_lock (&reg->lock);
      g_free (reg->scheme), reg->scheme = g_strdup ("basic");
      g_mutex_unlock (&reg->lock);
      return TRUE;
    }
  return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "registry %s asks for %s authentication, which berth does not speak",
                      reg->domain, scheme);
}


/* Sends the message @build makes, answering authentication challenges and retrying 429,
 * 5xx and dropped connections with dist_backoff; every other answer is the caller's. Returns
 * the response body stream and the message. */
GInputStream *
dist_registry_send (Registry *reg, const char *scope, BuildFunc build, gpointer data, BerthHttpMessage **msg_out,
                    GError **error)
{
  gboolean authenticated = FALSE;
  for (guint attempt = 1;; attempt++)
    {
      g_autoptr (BerthHttpMessage) msg = build (reg, data, error);
      if (msg == NULL)
        return NULL;
      add_auth (reg, msg, scope);
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GInputStream) stream = berth_http_send (msg, reg->cancellable, &local_error);
      if (stream == NULL)
        {
          if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              return NULL;
            }
          if (attempt < MAX_ATTEMPTS && dist_retryable_error (local_error))
            {
              g_debug ("%s %s: %s; retrying", berth_http_message_get_method (msg), berth_http_message_get_url (msg),
                       local_error->message);
              if (dist_backoff (reg, attempt, NULL))
                continue;
            }
          const char *hint = local_error->domain == G_TLS_ERROR
                               ? " (a private CA: ca-file in [registry.\"HOST\"]; plain http: plain-http=true)"
                               : "";
          berth_throw (error, BERTH_ERROR_UNAVAILABLE, "cannot reach registry %s: %s%s", reg->domain,
                       local_error->message, hint);
          return NULL;
        }
      guint status = berth_http_message_get_status (msg);
      if (status == HTTP_UNAUTHORIZED)
        {
          g_autofree char *detail = dist_drain_detail (stream, reg->cancellable);
          g_debug ("%s: 401 for %s (%s)", reg->domain, scope, detail ? detail : "no detail");
          if (!answer_challenge (reg, msg, scope, authenticated, error))
            return NULL;
          authenticated = TRUE;
          attempt--; /* an answered challenge is not a failed attempt */
          continue;
        }
      if (retryable_status (status) && attempt < MAX_ATTEMPTS)
        {
          g_autofree char *detail = dist_drain_detail (stream, reg->cancellable);
          g_debug ("%s: %u %s; retrying", reg->domain, status, detail ? detail : "");
          if (dist_backoff (reg, attempt, msg))
            continue;
          return berth_throw (error, BERTH_ERROR_CANCELLED, "cancelled"), NULL;
        }
      *msg_out = g_steal_pointer (&msg);
      return g_steal_pointer (&stream);
    }
}


BerthHttpMessage *
dist_build_request (Registry *reg, gpointer data, GError **error)
{
  Request *req = data;
  BerthHttpMessage *msg = dist_message_new (reg, req->method, req->url, error);
  if (msg == NULL)
    return NULL;
  if (req->accept != NULL)
    berth_http_message_set_header (msg, "Accept", req->accept);
  if (req->range_start > 0)
    {
      g_autofree char *range = g_strdup_printf ("bytes=%" G_GINT64_FORMAT "-", req->range_start);
      berth_http_message_set_header (msg, "Range", range);
    }
  if (req->body != NULL)
    berth_http_message_set_body_bytes (msg, req->content_type, req->body);
  else if (g_str_equal (req->method, "PUT") || g_str_equal (req->method, "POST"))
    berth_http_message_set_body_bytes (msg, NULL, NULL);
  return msg;
}

char *
dist_url_for (Registry *reg, const char *path, const char *kind, const char *what)
{
  return g_strdup_printf ("%s/v2/%s/%s/%s", reg->base, path, kind, what);
}

/* ================= progress ================= */


void
dist_report (Reporter *reporter, const char *digest, const char *kind, const char *status, gint64 offset, gint64 total)
{
  if (reporter->func == NULL)
    return;
  BerthTransferProgress progress = { digest, kind, status, offset, total };
  g_mutex_lock (&reporter->lock);
  reporter->func (&progress, reporter->data);
  g_mutex_unlock (&reporter->lock);
}
