/* berth-distribution.c — the distribution API v2 client on libsoup3, and pull/push on
 * top of the content store, the image records and the unpacker. Built as the
 * berth-registry-client module, opened on the first pull or push (core/daemon/berth-modules.h).
 *
 * libsoup ≥ 3.2 lets any thread send on a session created and configured elsewhere:
 * each operation makes one session in its handler's thread, configures it there, and
 * its layer workers send on it with the synchronous API. */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include <berth/berth.h>
#include "berth-distribution.h"
#include "berth-image-store.h"
#include "berth-unpack.h"

#define DOCKER_DOMAIN "docker.io"
#define DOCKER_REGISTRY_HOST "registry-1.docker.io"
#define MAX_NAME 255
#define MAX_ATTEMPTS 4
#define BACKOFF_USEC (250 * 1000)
#define BACKOFF_MAX_USEC (8 * G_USEC_PER_SEC)
#define BLOB_BUFFER (256 * 1024)
#define PROGRESS_INTERVAL_USEC (100 * 1000)
#define TOKEN_DEFAULT_SECONDS 60
#define MAX_ERROR_BODY (64 * 1024)
#define STATUS_TOO_MANY_REQUESTS 429 /* not in libsoup 3.2's SoupStatus */

#define ACCEPT_MANIFESTS                                                                                               \
  BERTH_MT_OCI_INDEX ", " BERTH_MT_OCI_MANIFEST ", " BERTH_MT_DOCKER_LIST ", " BERTH_MT_DOCKER_MANIFEST

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

typedef struct {
  char *domain;     /* as in references: "docker.io" */
  char *base;       /* "https://registry-1.docker.io" */
  SoupSession *session;
  GTlsDatabase *extra_ca;
  gboolean skip_verify;
  char *username;
  char *password;
  GCancellable *cancellable;
  GMutex lock;      /* the fields below, shared by the layer workers */
  char *scheme;     /* "bearer" or "basic" once a challenge said so */
  char *realm;
  char *service;
  GHashTable *tokens; /* scope list → Token */
} Registry;

static void
registry_free (Registry *reg)
{
  if (reg == NULL)
    return;
  g_free (reg->domain);
  g_free (reg->base);
  g_clear_object (&reg->session);
  g_clear_object (&reg->extra_ca);
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
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Registry, registry_free)

static Registry *
registry_new (BerthDaemon *daemon, const char *domain, gboolean plain_http, gboolean skip_verify, const char *username,
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
      reg->extra_ca = g_tls_file_database_new (host->ca_file, error);
      if (reg->extra_ca == NULL)
        {
          g_prefix_error (error, "registry %s: ca-file: ", domain);
          return NULL;
        }
    }
  if (username != NULL && *username != '\0')
    {
      reg->username = g_strdup (username);
      reg->password = g_strdup (password ? password : "");
    }
  else if (lookup_credentials (config->registry_auth_file, domain, &reg->username, &reg->password))
    g_debug ("credentials for %s from %s", domain, config->registry_auth_file);
  reg->session = soup_session_new_with_options ("user-agent", "berth/" PACKAGE_VERSION, "timeout", 120,
                                                "idle-timeout", 60, NULL);
  /* Challenges are answered here (Bearer is not a scheme libsoup knows). */
  soup_session_remove_feature_by_type (reg->session, SOUP_TYPE_AUTH_MANAGER);
  return g_steal_pointer (&reg);
}

/* Called in the sending thread when the system CAs do not vouch for the peer. */
static gboolean
accept_certificate (SoupMessage *msg, GTlsCertificate *certificate, GTlsCertificateFlags errors, gpointer user_data)
{
  Registry *reg = user_data;
  if (reg->skip_verify)
    return TRUE;
  if (reg->extra_ca == NULL)
    return FALSE;
  GUri *uri = soup_message_get_uri (msg);
  g_autoptr (GSocketConnectable) identity = g_network_address_new (g_uri_get_host (uri), g_uri_get_port (uri));
  GTlsCertificateFlags flags = g_tls_database_verify_chain (reg->extra_ca, certificate,
                                                            G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER, identity, NULL,
                                                            G_TLS_DATABASE_VERIFY_NONE, NULL, NULL);
  g_debug ("%s: certificate checked against the registry's ca-file: flags 0x%x", reg->domain, flags);
  return flags == 0;
}

static SoupMessage *
message_new (Registry *reg, const char *method, const char *url, GError **error)
{
  SoupMessage *msg = soup_message_new (method, url);
  if (msg == NULL)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "not a valid URL: %s", url);
      return NULL;
    }
  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_certificate), reg);
  return msg;
}

static void
add_auth (Registry *reg, SoupMessage *msg, const char *scope)
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
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", value);
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

static GBytes *
read_limited (GInputStream *stream, gsize max, GCancellable *cancellable, GError **error)
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
static char *
drain_detail (GInputStream *stream, GCancellable *cancellable)
{
  if (stream == NULL)
    return NULL;
  g_autoptr (GBytes) body = read_limited (stream, MAX_ERROR_BODY, cancellable, NULL);
  g_input_stream_close (stream, NULL, NULL);
  return error_detail (body);
}

/* The GError for an unexpected HTTP status, @what being what was asked for. */
static gboolean
throw_status (GError **error, SoupMessage *msg, const char *detail, const char *what)
{
  guint status = soup_message_get_status (msg);
  BerthErrorCode code = status == SOUP_STATUS_NOT_FOUND ? BERTH_ERROR_NOT_FOUND
                        : status == SOUP_STATUS_UNAUTHORIZED ? BERTH_ERROR_UNAUTHENTICATED
                        : status == SOUP_STATUS_FORBIDDEN ? BERTH_ERROR_PERMISSION_DENIED
                        : status == SOUP_STATUS_BAD_REQUEST ? BERTH_ERROR_INVALID_ARGUMENT
                        : status == STATUS_TOO_MANY_REQUESTS ? BERTH_ERROR_RESOURCE_EXHAUSTED
                        : status >= 500 ? BERTH_ERROR_UNAVAILABLE
                                        : BERTH_ERROR_UNKNOWN;
  return berth_throw (error, code, "%s: %u %s%s%s", what, status, soup_message_get_reason_phrase (msg),
                      detail ? " — " : "", detail ? detail : "");
}

static gboolean
retryable_status (guint status)
{
  return status == STATUS_TOO_MANY_REQUESTS || status == SOUP_STATUS_INTERNAL_SERVER_ERROR
         || status == SOUP_STATUS_BAD_GATEWAY || status == SOUP_STATUS_SERVICE_UNAVAILABLE
         || status == SOUP_STATUS_GATEWAY_TIMEOUT;
}

static gboolean
retryable_error (const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return FALSE;
  /* A TLS failure will fail again; a reset or a timeout may not. */
  return error->domain != G_TLS_ERROR && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
         && error->domain != G_RESOLVER_ERROR;
}

/* Sleeps before attempt @attempt (1, 2, …), Retry-After when the registry gave one. */
static gboolean
backoff (Registry *reg, guint attempt, SoupMessage *msg)
{
  gint64 delay = MIN (BACKOFF_USEC << (attempt - 1), BACKOFF_MAX_USEC);
  const char *retry_after = msg ? soup_message_headers_get_one (soup_message_get_response_headers (msg), "Retry-After")
                                : NULL;
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
  g_autoptr (SoupMessage) msg = NULL;
  for (guint attempt = 1;; attempt++)
    {
      g_clear_object (&msg);
      msg = message_new (reg, "GET", url_text, error);
      if (msg == NULL)
        return FALSE;
      if (reg->username != NULL)
        {
          g_autofree char *pair = g_strdup_printf ("%s:%s", reg->username, reg->password);
          g_autofree char *encoded = g_base64_encode ((const guchar *) pair, strlen (pair));
          g_autofree char *value = g_strconcat ("Basic ", encoded, NULL);
          soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", value);
        }
      g_autoptr (GError) local_error = NULL;
      g_clear_pointer (&body, g_bytes_unref);
      body = soup_session_send_and_read (reg->session, msg, reg->cancellable, &local_error);
      if (body == NULL)
        {
          if (attempt < MAX_ATTEMPTS && retryable_error (local_error) && backoff (reg, attempt, NULL))
            continue;
          return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "token service %s: %s", realm, local_error->message);
        }
      if (retryable_status (soup_message_get_status (msg)) && attempt < MAX_ATTEMPTS && backoff (reg, attempt, msg))
        continue;
      break;
    }
  guint status = soup_message_get_status (msg);
  if (status == SOUP_STATUS_UNAUTHORIZED || status == SOUP_STATUS_FORBIDDEN)
    return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED, "registry %s: the token service refused %s",
                        reg->domain, reg->username ? "the credentials given" : "anonymous access (credentials needed)");
  if (status != SOUP_STATUS_OK)
    {
      g_autofree char *detail = error_detail (body);
      return throw_status (error, msg, detail, realm);
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
answer_challenge (Registry *reg, SoupMessage *msg, const char *scope, gboolean retried, GError **error)
{
  const char *header = soup_message_headers_get_one (soup_message_get_response_headers (msg), "WWW-Authenticate");
  if (header == NULL)
    return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED, "registry %s: 401 Unauthorized without a challenge", reg->domain);
  g_autofree char *scheme = g_ascii_strdown (header, strcspn (header, " "));
  const char *params = header + strcspn (header, " ");
  GHashTable *table = soup_header_parse_param_list (params);
  if (g_str_equal (scheme, "bearer"))
    {
      g_mutex_lock (&reg->lock);
      g_free (reg->scheme), reg->scheme = g_strdup ("bearer");
      g_free (reg->realm), reg->realm = g_strdup (g_hash_table_lookup (table, "realm"));
      g_free (reg->service), reg->service = g_strdup (g_hash_table_lookup (table, "service"));
      g_mutex_unlock (&reg->lock);
      soup_header_free_param_list (table);
      if (retried)
        return berth_throw (error, BERTH_ERROR_UNAUTHENTICATED, "registry %s refused the token for %s%s", reg->domain,
                            scope, reg->username ? "" : " (no credentials given)");
      return fetch_token (reg, scope, error);
    }
  soup_header_free_param_list (table);
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

typedef SoupMessage *(*BuildFunc) (Registry *reg, gpointer data, GError **error);

/* Sends the message @build makes, answering authentication challenges and retrying 429,
 * 5xx and dropped connections with backoff; every other answer is the caller's. Returns
 * the response body stream and the message. */
static GInputStream *
registry_send (Registry *reg, const char *scope, BuildFunc build, gpointer data, SoupMessage **msg_out, GError **error)
{
  gboolean authenticated = FALSE;
  for (guint attempt = 1;; attempt++)
    {
      g_autoptr (SoupMessage) msg = build (reg, data, error);
      if (msg == NULL)
        return NULL;
      add_auth (reg, msg, scope);
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GInputStream) stream = soup_session_send (reg->session, msg, reg->cancellable, &local_error);
      if (stream == NULL)
        {
          if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              return NULL;
            }
          if (attempt < MAX_ATTEMPTS && retryable_error (local_error))
            {
              g_debug ("%s %s: %s; retrying", soup_message_get_method (msg), g_uri_get_path (soup_message_get_uri (msg)),
                       local_error->message);
              if (backoff (reg, attempt, NULL))
                continue;
            }
          const char *hint = local_error->domain == G_TLS_ERROR
                               ? " (a private CA: ca-file in [registry.\"HOST\"]; plain http: plain-http=true)"
                               : "";
          berth_throw (error, BERTH_ERROR_UNAVAILABLE, "cannot reach registry %s: %s%s", reg->domain,
                       local_error->message, hint);
          return NULL;
        }
      guint status = soup_message_get_status (msg);
      if (status == SOUP_STATUS_UNAUTHORIZED)
        {
          g_autofree char *detail = drain_detail (stream, reg->cancellable);
          g_debug ("%s: 401 for %s (%s)", reg->domain, scope, detail ? detail : "no detail");
          if (!answer_challenge (reg, msg, scope, authenticated, error))
            return NULL;
          authenticated = TRUE;
          attempt--; /* an answered challenge is not a failed attempt */
          continue;
        }
      if (retryable_status (status) && attempt < MAX_ATTEMPTS)
        {
          g_autofree char *detail = drain_detail (stream, reg->cancellable);
          g_debug ("%s: %u %s; retrying", reg->domain, status, detail ? detail : "");
          if (backoff (reg, attempt, msg))
            continue;
          return berth_throw (error, BERTH_ERROR_CANCELLED, "cancelled"), NULL;
        }
      *msg_out = g_steal_pointer (&msg);
      return g_steal_pointer (&stream);
    }
}

typedef struct {
  const char *method;
  const char *url;
  const char *accept;
  gint64 range_start;       /* > 0: Range: bytes=START- */
  const char *content_type;
  GBytes *body;
} Request;

static SoupMessage *
build_request (Registry *reg, gpointer data, GError **error)
{
  Request *req = data;
  SoupMessage *msg = message_new (reg, req->method, req->url, error);
  if (msg == NULL)
    return NULL;
  SoupMessageHeaders *headers = soup_message_get_request_headers (msg);
  if (req->accept != NULL)
    soup_message_headers_replace (headers, "Accept", req->accept);
  if (req->range_start > 0)
    soup_message_headers_set_range (headers, req->range_start, -1);
  if (req->body != NULL)
    soup_message_set_request_body_from_bytes (msg, req->content_type, req->body);
  else if (g_str_equal (req->method, "PUT") || g_str_equal (req->method, "POST"))
    soup_message_headers_set_content_length (headers, 0);
  return msg;
}

static char *
url_for (Registry *reg, const char *path, const char *kind, const char *what)
{
  return g_strdup_printf ("%s/v2/%s/%s/%s", reg->base, path, kind, what);
}

/* ================= progress ================= */

typedef struct {
  BerthTransferProgressFunc func;
  gpointer data;
  GMutex lock;
} Reporter;

static void
report (Reporter *reporter, const char *digest, const char *kind, const char *status, gint64 offset, gint64 total)
{
  if (reporter->func == NULL)
    return;
  BerthTransferProgress progress = { digest, kind, status, offset, total };
  g_mutex_lock (&reporter->lock);
  reporter->func (&progress, reporter->data);
  g_mutex_unlock (&reporter->lock);
}

/* ================= pull ================= */

typedef struct {
  BerthDaemon *daemon;
  Registry *reg;
  BerthReference *ref;
  char *scope;
  BerthImageIngest *ingest;
  BerthContentStore *store;
  Reporter *reporter;
  GCancellable *cancellable; /* cancelled when any part fails, so the others stop */
} Pull;

/* A manifest or index by tag or digest: its bytes, media type and digest. */
static GBytes *
fetch_manifest (Pull *pull, const char *reference, const char *expected, char **media_type_out, char **digest_out,
                GError **error)
{
  g_autofree char *url = url_for (pull->reg, pull->ref->path, "manifests", reference);
  Request req = { "GET", url, ACCEPT_MANIFESTS, 0, NULL, NULL };
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) stream = registry_send (pull->reg, pull->scope, build_request, &req, &msg, error);
  if (stream == NULL)
    return NULL;
  g_autofree char *name = berth_reference_to_string (pull->ref);
  guint status = soup_message_get_status (msg);
  if (status != SOUP_STATUS_OK)
    {
      g_autofree char *detail = drain_detail (stream, pull->cancellable);
      if (status == SOUP_STATUS_NOT_FOUND)
        return berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s: not found in the registry%s%s", name,
                            detail ? " — " : "", detail ? detail : ""),
               NULL;
      return throw_status (error, msg, detail, name), NULL;
    }
  g_autoptr (GBytes) bytes = read_limited (stream, BERTH_MAX_JSON, pull->cancellable, error);
  g_input_stream_close (stream, NULL, NULL);
  if (bytes == NULL)
    {
      g_prefix_error (error, "%s: manifest: ", name);
      return NULL;
    }
  g_autofree char *digest = berth_digest_bytes (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  const char *claimed = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Docker-Content-Digest");
  if ((expected != NULL && !g_str_equal (digest, expected)) || (claimed != NULL && g_str_has_prefix (claimed, "sha256:")
                                                                && !g_str_equal (digest, claimed)))
    return berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s: the registry sent a manifest that hashes to %s, not %s", name,
                        digest, expected ? expected : claimed),
           NULL;
  /* The media type: the document's own, else the Content-Type. */
  g_autoptr (GError) parse_error = NULL;
  g_autoptr (JsonNode) root = berth_json_parse_object (bytes, "manifest", &parse_error);
  if (root == NULL)
    return berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s: %s", name, parse_error->message), NULL;
  JsonObject *object = json_node_get_object (root);
  const char *media_type = berth_json_member_string (object, "mediaType");
  const char *content_type = soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL);
  if (media_type == NULL || *media_type == '\0')
    media_type = content_type;
  if ((media_type == NULL || (!berth_media_type_is_index (media_type) && !berth_media_type_is_manifest (media_type)))
      && berth_json_member_int (object, "schemaVersion") == 2)
    media_type = berth_json_member_array (object, "manifests") ? BERTH_MT_OCI_INDEX : BERTH_MT_OCI_MANIFEST;
  if (media_type == NULL || (!berth_media_type_is_index (media_type) && !berth_media_type_is_manifest (media_type)))
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "%s: a %s manifest, which berth does not pull (schema 1?)", name,
                        media_type ? media_type : "typeless"),
           NULL;
  *media_type_out = g_strdup (media_type);
  *digest_out = g_steal_pointer (&digest);
  return g_steal_pointer (&bytes);
}

/* os/arch[/variant] of this request, defaults filled in. */
typedef struct {
  char *os;
  char *arch;
  char *variant;
} Platform;

static void
platform_clear (Platform *p)
{
  g_free (p->os);
  g_free (p->arch);
  g_free (p->variant);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Platform, platform_clear)

static gboolean
platform_parse (const char *text, Platform *p, GError **error)
{
  if (text == NULL || *text == '\0')
    {
      p->os = g_strdup ("linux");
      p->arch = g_strdup (berth_host_architecture ());
      return TRUE;
    }
  g_auto (GStrv) parts = g_strsplit (text, "/", -1);
  guint n = g_strv_length (parts);
  if (n < 2 || n > 3 || *parts[0] == '\0' || *parts[1] == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "platform \"%s\": want OS/ARCH[/VARIANT]", text);
  p->os = g_strdup (parts[0]);
  p->arch = g_strdup (parts[1]);
  p->variant = n == 3 ? g_strdup (parts[2]) : NULL;
  return TRUE;
}

static BerthDescriptor *
pick_platform (Pull *pull, GBytes *index, const Platform *want, GError **error)
{
  g_autofree char *name = berth_reference_to_string (pull->ref);
  g_autoptr (JsonNode) root = berth_json_parse_object (index, name, error);
  if (root == NULL)
    return NULL;
  JsonArray *manifests = berth_json_member_array (json_node_get_object (root), "manifests");
  g_autoptr (GString) offered = g_string_new (NULL);
  for (guint i = 0; i < berth_json_array_length (manifests); i++)
    {
      JsonObject *entry = berth_json_element_object (manifests, i);
      JsonObject *platform = berth_json_member_object (entry, "platform");
      const char *os = berth_json_member_string (platform, "os") ?: "";
      const char *arch = berth_json_member_string (platform, "architecture") ?: "";
      const char *variant = berth_json_member_string (platform, "variant");
      g_string_append_printf (offered, "%s%s/%s%s%s", offered->len ? ", " : "", os, arch, variant ? "/" : "",
                              variant ? variant : "");
      if (g_str_equal (os, want->os) && g_str_equal (arch, want->arch)
          && (want->variant == NULL || g_strcmp0 (variant, want->variant) == 0))
        {
          BerthDescriptor *desc = berth_descriptor_from_json (entry, name, error);
          if (desc != NULL && !berth_media_type_is_manifest (desc->media_type))
            {
              berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "%s: the %s/%s entry is a %s", name, os, arch, desc->media_type);
              berth_descriptor_free (desc);
              return NULL;
            }
          return desc;
        }
    }
  berth_throw (error, BERTH_ERROR_NOT_FOUND, "%s: no manifest for %s/%s%s%s in its index (it has %s)", name, want->os,
               want->arch, want->variant ? "/" : "", want->variant ? want->variant : "",
               offered->len ? offered->str : "none");
  return NULL;
}

typedef struct {
  Pull *pull;
  const BerthDescriptor *desc;
  const char *kind;
  gint64 offset;
  gint64 last_report;
} Fetch;

/* Streams the blob into @writer from its current offset; TRUE when it has every byte. */
static gboolean
download (Fetch *f, BerthContentWriter *writer, GError **error)
{
  Pull *pull = f->pull;
  g_autofree char *url = url_for (pull->reg, pull->ref->path, "blobs", f->desc->digest);
  Request req = { "GET", url, NULL, f->offset, NULL, NULL };
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) stream = registry_send (pull->reg, pull->scope, build_request, &req, &msg, error);
  if (stream == NULL)
    return FALSE;
  guint status = soup_message_get_status (msg);
  if (status == SOUP_STATUS_PARTIAL_CONTENT)
    {
      goffset start = -1, end = -1, total = -1;
      if (!soup_message_headers_get_content_range (soup_message_get_response_headers (msg), &start, &end, &total)
          || start != f->offset)
        {
          /* Not the part asked for: start over, without a range. */
          g_input_stream_close (stream, NULL, NULL);
          f->offset = 0;
          return berth_content_writer_truncate (writer, 0, error) && download (f, writer, error);
        }
      g_debug ("%s: resuming at %" G_GINT64_FORMAT, f->desc->digest, f->offset);
    }
  else if (status == SOUP_STATUS_OK)
    {
      if (f->offset > 0)
        {
          g_debug ("%s: the registry ignored the range; starting over", f->desc->digest);
          f->offset = 0;
          if (!berth_content_writer_truncate (writer, 0, error))
            return FALSE;
        }
    }
  else
    {
      g_autofree char *detail = drain_detail (stream, pull->cancellable);
      g_autofree char *what = g_strdup_printf ("%s %s", f->kind, f->desc->digest);
      return throw_status (error, msg, detail, what);
    }
  g_autofree guint8 *buf = g_malloc (BLOB_BUFFER);
  for (;;)
    {
      gssize n = g_input_stream_read (stream, buf, BLOB_BUFFER, pull->cancellable, error);
      if (n < 0)
        return FALSE;
      if (n == 0)
        break;
      if (f->offset + n > f->desc->size)
        return berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s %s: the registry sent more than its %" G_GINT64_FORMAT
                            " bytes", f->kind, f->desc->digest, f->desc->size);
      if (!berth_content_writer_write (writer, buf, n, pull->cancellable, error))
        return FALSE;
      f->offset += n;
      gint64 now = g_get_monotonic_time ();
      if (now - f->last_report >= PROGRESS_INTERVAL_USEC)
        {
          f->last_report = now;
          report (pull->reporter, f->desc->digest, f->kind, BERTH_TRANSFER_DOWNLOADING, f->offset, f->desc->size);
        }
    }
  g_input_stream_close (stream, NULL, NULL);
  /* A connection that ended early reads as a short body: resumable, not bad content. */
  if (f->offset < f->desc->size)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT, "the transfer ended at byte %" G_GINT64_FORMAT " of %"
                   G_GINT64_FORMAT, f->offset, f->desc->size);
      return FALSE;
    }
  return TRUE;
}

/* One blob into the store, recorded under the pull's lease: adopted when the store has
 * it, else downloaded (resuming an earlier partial ingest) and verified on commit. */
static gboolean
fetch_blob (Pull *pull, const BerthDescriptor *desc, const char *kind, GError **error)
{
  /* The size bounds the download (download () stops there), so it must be known before
   * a byte is fetched: a descriptor without one would let a registry stream forever. */
  gint64 max = berth_daemon_get_config (pull->daemon)->max_blob_size;
  if (desc->size <= 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s %s: its descriptor declares a size of %" G_GINT64_FORMAT
                        " bytes; refusing to fetch a blob of unknown size", kind, desc->digest, desc->size);
  if (max > 0 && desc->size > max)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s %s: %" G_GINT64_FORMAT " bytes is over the "
                        "[berthd] max-blob-size of %" G_GINT64_FORMAT " bytes", kind, desc->digest, desc->size, max);
  g_autoptr (BerthContentInfo) info = berth_content_store_info (pull->store, desc->digest, NULL, NULL);
  if (info != NULL && info->size == desc->size)
    {
      if (!berth_image_ingest_adopt (pull->ingest, desc, kind, error))
        return FALSE;
      report (pull->reporter, desc->digest, kind, BERTH_TRANSFER_EXISTS, info->size, info->size);
      return TRUE;
    }
  const char *ns = berth_image_ingest_get_namespace (pull->ingest);
  /* The same ref for every pull of this blob: an interrupted one is resumed. */
  g_autofree char *name = g_strdup_printf ("berth-pull-%s", desc->digest);
  g_autofree char *ref = g_strdup_printf ("%s/%s", ns, name);
  if (!berth_image_ingest_hold_ref (pull->ingest, name, error))
    return FALSE;
  g_autoptr (BerthContentWriter) writer = NULL;
  for (guint wait = 0;; wait++)
    {
      g_autoptr (GError) local_error = NULL;
      writer = berth_content_store_open_writer (pull->store, ref, desc->size, desc->digest, pull->cancellable, &local_error);
      if (writer != NULL)
        break;
      if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE) || wait > 6000)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      /* Another pull is writing it: wait for its commit, then take the blob. */
      g_usleep (100000);
      if (g_cancellable_set_error_if_cancelled (pull->cancellable, error))
        return FALSE;
      g_autoptr (BerthContentInfo) now = berth_content_store_info (pull->store, desc->digest, NULL, NULL);
      if (now != NULL)
        return fetch_blob (pull, desc, kind, error);
    }
  g_autoptr (BerthContentStatus) status = berth_content_writer_status (writer, error);
  if (status == NULL)
    return FALSE;
  Fetch f = { pull, desc, kind, status->offset, 0 };
  if (f.offset > desc->size)
    {
      f.offset = 0;
      if (!berth_content_writer_truncate (writer, 0, error))
        return FALSE;
    }
  report (pull->reporter, desc->digest, kind, BERTH_TRANSFER_DOWNLOADING, f.offset, desc->size);
  g_autoptr (GError) local_error = NULL;
  for (guint attempt = 1; f.offset < desc->size; attempt++)
    {
      g_clear_error (&local_error);
      gint64 before = f.offset;
      if (download (&f, writer, &local_error))
        break;
      /* A connection dropped mid-blob: resume where it stopped. */
      gboolean moved = f.offset > before;
      if (local_error->domain == BERTH_ERROR || g_cancellable_is_cancelled (pull->cancellable)
          || !retryable_error (local_error) || (attempt >= MAX_ATTEMPTS && !moved))
        break;
      g_debug ("%s: %s at %" G_GINT64_FORMAT "; resuming", desc->digest, local_error->message, f.offset);
      report (pull->reporter, desc->digest, kind, BERTH_TRANSFER_RETRYING, f.offset, desc->size);
      if (moved)
        attempt = 0;
      else if (!backoff (pull->reg, attempt, NULL))
        break;
    }
  if (local_error != NULL)
    {
      /* More bytes than declared: what came is not the blob, and no retry may resume it. */
      if (g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_DATA_LOSS))
        {
          g_clear_object (&writer);
          berth_content_store_abort (pull->store, ref, NULL, NULL);
        }
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s %s: ", kind, desc->digest);
      return FALSE;
    }
  g_autofree char *what = g_strdup_printf ("%s %s", kind, desc->digest);
  g_autofree char *digest = berth_image_ingest_commit (pull->ingest, writer, desc->size, desc->digest, what, &local_error);
  if (digest == NULL)
    {
      /* Bad bytes are dropped: a retry must not resume them. */
      g_clear_object (&writer);
      berth_content_store_abort (pull->store, ref, NULL, NULL);
      if (g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION))
        {
          berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s sent content that does not match its digest: %s",
                       pull->reg->domain, local_error->message);
          return FALSE;
        }
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  report (pull->reporter, desc->digest, kind, BERTH_TRANSFER_DONE, desc->size, desc->size);
  return TRUE;
}

/* Layers fetched by workers while the pulling thread unpacks them in order. */
typedef struct {
  Pull *pull;
  GPtrArray *layers;   /* BerthDescriptor */
  GMutex lock;
  GCond cond;
  guint next;          /* next layer a worker takes */
  gboolean *done;      /* per layer */
  GError *error;       /* the first failure */
} Layers;

static gpointer
layer_worker (gpointer data)
{
  Layers *layers = data;
  for (;;)
    {
      g_mutex_lock (&layers->lock);
      guint i = layers->next++;
      gboolean stop = i >= layers->layers->len || layers->error != NULL;
      g_mutex_unlock (&layers->lock);
      if (stop)
        return NULL;
      GError *error = NULL;
      gboolean ok = fetch_blob (layers->pull, layers->layers->pdata[i], "layer", &error);
      g_mutex_lock (&layers->lock);
      if (ok)
        layers->done[i] = TRUE;
      else if (layers->error == NULL)
        layers->error = error, error = NULL;
      g_cond_broadcast (&layers->cond);
      g_mutex_unlock (&layers->lock);
      g_clear_error (&error);
      if (!ok)
        {
          g_cancellable_cancel (layers->pull->cancellable);
          return NULL;
        }
    }
}

/* Waits until layer @i is in the store; FALSE (error set) when the fetch failed. */
static gboolean
wait_layer (Layers *layers, guint i, GError **error)
{
  g_mutex_lock (&layers->lock);
  while (!layers->done[i] && layers->error == NULL)
    g_cond_wait (&layers->cond, &layers->lock);
  gboolean ok = layers->error == NULL;
  g_mutex_unlock (&layers->lock);
  return ok || berth_throw (error, BERTH_ERROR_ABORTED, "a layer fetch failed");
}

static void
forward_cancel (GCancellable *parent, gpointer child)
{
  g_cancellable_cancel (child);
}

static gboolean
pull_layers (Pull *pull, GPtrArray *layer_descs, JsonArray *diff_ids, BerthUnpacker *unpacker, guint workers,
             GError **error)
{
  Layers layers = { pull, layer_descs };
  g_mutex_init (&layers.lock);
  g_cond_init (&layers.cond);
  layers.done = g_new0 (gboolean, MAX (layer_descs->len, 1));
  for (guint i = 0; i < layer_descs->len; i++)
    {
      const BerthDescriptor *layer = layer_descs->pdata[i];
      report (pull->reporter, layer->digest, "layer", BERTH_TRANSFER_WAITING, 0, layer->size);
    }
  g_autoptr (GPtrArray) threads = g_ptr_array_new ();
  for (guint w = 0; w < MIN (workers, layer_descs->len); w++)
    g_ptr_array_add (threads, g_thread_new ("berth-pull", layer_worker, &layers));
  g_autoptr (GError) local_error = NULL;
  for (guint i = 0; unpacker != NULL && i < layer_descs->len && local_error == NULL; i++)
    {
      const BerthDescriptor *layer = layer_descs->pdata[i];
      if (!wait_layer (&layers, i, &local_error))
        break;
      report (pull->reporter, layer->digest, "layer", BERTH_TRANSFER_UNPACKING, layer->size, layer->size);
      gboolean applied = FALSE;
      if (!berth_unpacker_apply (unpacker, layer, berth_json_element_string (diff_ids, i), &applied, pull->cancellable,
                                 &local_error))
        {
          g_cancellable_cancel (pull->cancellable);
          break;
        }
      /* The differ computed the diff ID: it labels the layer as containerd's unpacker does. */
      berth_image_ingest_add_label (pull->ingest, layer->digest, BERTH_LABEL_UNCOMPRESSED,
                                    berth_json_element_string (diff_ids, i));
      report (pull->reporter, layer->digest, "layer", BERTH_TRANSFER_UNPACKED, layer->size, layer->size);
    }
  for (guint t = 0; t < threads->len; t++)
    g_thread_join (threads->pdata[t]);
  /* A fetch's own error says more than the unpack's "cancelled". */
  if (layers.error != NULL)
    {
      g_clear_error (&local_error);
      local_error = g_steal_pointer (&layers.error);
    }
  g_free (layers.done);
  g_mutex_clear (&layers.lock);
  g_cond_clear (&layers.cond);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  return TRUE;
}

static void
add_source_label (Pull *pull, const char *digest)
{
  /* containerd's key: the host without its port. */
  g_autofree char *host = g_strdup (pull->ref->domain);
  char *colon = strrchr (host, ':');
  if (colon != NULL && strchr (host, ']') < colon)
    *colon = '\0';
  g_autofree char *key = g_strconcat (BERTH_LABEL_DISTRIBUTION_SOURCE, host, NULL);
  berth_image_ingest_add_label (pull->ingest, digest, key, pull->ref->path);
}

char *
berth_distribution_module_pull (BerthDaemon *daemon, const char *ns, const BerthPullOptions *options,
                         BerthTransferProgressFunc progress, gpointer progress_data, char **target_out,
                         GCancellable *cancellable, GError **error)
{
  g_autoptr (BerthReference) ref = berth_reference_parse (options->reference, error);
  if (ref == NULL)
    return NULL;
  g_auto (Platform) platform = { 0 };
  if (!platform_parse (options->platform, &platform, error))
    return NULL;
  g_autofree char *name = berth_reference_to_string (ref);
  g_autoptr (GCancellable) op_cancellable = g_cancellable_new ();
  gulong handler = cancellable ? g_cancellable_connect (cancellable, G_CALLBACK (forward_cancel), op_cancellable, NULL) : 0;
  Reporter reporter = { progress, progress_data };
  g_mutex_init (&reporter.lock);
  g_autoptr (Registry) reg = registry_new (daemon, ref->domain, options->plain_http, options->skip_verify,
                                           options->username, options->password, op_cancellable, error);
  g_autofree char *scope = g_strdup_printf ("repository:%s:pull", ref->path);
  Pull pull = { daemon, reg, ref, scope, NULL, NULL, &reporter, op_cancellable };
  g_autoptr (BerthImageIngest) ingest = NULL;
  g_autoptr (BerthUnpacker) unpacker = NULL;
  g_autoptr (GBytes) root_bytes = NULL;
  g_autoptr (GBytes) manifest_bytes = NULL;
  g_autoptr (BerthDescriptor) root = NULL;
  g_autoptr (BerthDescriptor) manifest = NULL;
  g_autoptr (BerthDescriptor) config = NULL;
  g_autoptr (GPtrArray) layers = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_descriptor_free);
  g_autoptr (JsonNode) config_root = NULL;
  char *result = NULL;
  g_autofree char *root_type = NULL, *root_digest = NULL;
  if (reg == NULL)
    goto out;
  g_debug ("pull %s from %s", name, reg->base);
  root_bytes = fetch_manifest (&pull, ref->digest ? ref->digest : ref->tag, ref->digest, &root_type, &root_digest, error);
  if (root_bytes == NULL)
    goto out;
  root = berth_descriptor_new (root_type, root_digest, g_bytes_get_size (root_bytes));
  report (&reporter, root->digest, berth_media_type_is_index (root_type) ? "index" : "manifest", BERTH_TRANSFER_RESOLVED,
          root->size, root->size);
  ingest = berth_image_ingest_new (daemon, ns, "pull", op_cancellable, error);
  if (ingest == NULL)
    goto out;
  if (!options->no_unpack)
    {
      /* Its snapshots belong to the pull's lease until the config's label holds them. */
      unpacker = berth_unpacker_new (daemon, ns, options->snapshotter, berth_image_ingest_get_lease (ingest), error);
      if (unpacker == NULL)
        goto out;
    }
  pull.ingest = ingest;
  pull.store = berth_image_ingest_get_store (ingest);
  {
    g_autofree char *blob_name = g_strdup_printf ("manifest-%s", root->digest);
    g_autofree char *stored = berth_image_ingest_store_bytes (ingest, blob_name, root_bytes, root->digest, error);
    if (stored == NULL)
      goto out;
    add_source_label (&pull, root->digest);
  }
  if (berth_media_type_is_index (root->media_type))
    {
      manifest = pick_platform (&pull, root_bytes, &platform, error);
      if (manifest == NULL)
        goto out;
      g_autofree char *type = NULL, *digest = NULL;
      manifest_bytes = fetch_manifest (&pull, manifest->digest, manifest->digest, &type, &digest, error);
      if (manifest_bytes == NULL)
        goto out;
      g_autofree char *blob_name = g_strdup_printf ("manifest-%s", manifest->digest);
      g_autofree char *stored = berth_image_ingest_store_bytes (ingest, blob_name, manifest_bytes, manifest->digest, error);
      if (stored == NULL)
        goto out;
      add_source_label (&pull, manifest->digest);
      report (&reporter, manifest->digest, "manifest", BERTH_TRANSFER_DONE, manifest->size, manifest->size);
    }
  else
    {
      manifest = berth_descriptor_copy (root);
      manifest_bytes = g_bytes_ref (root_bytes);
    }
  {
    g_autoptr (JsonNode) doc = berth_json_parse_object (manifest_bytes, manifest->digest, error);
    if (doc == NULL)
      goto out;
    JsonObject *object = json_node_get_object (doc);
    config = berth_descriptor_from_json (berth_json_member_object (object, "config"), manifest->digest, error);
    if (config == NULL)
      goto out;
    JsonArray *array = berth_json_member_array (object, "layers");
    if (berth_json_array_length (array) > BERTH_IMAGE_MAX_CHILDREN)
      {
        berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s lists %u layers, over the limit of %d", manifest->digest,
                     berth_json_array_length (array), BERTH_IMAGE_MAX_CHILDREN);
        goto out;
      }
    for (guint i = 0; i < berth_json_array_length (array); i++)
      {
        BerthDescriptor *layer = berth_descriptor_from_json (berth_json_element_object (array, i), manifest->digest, error);
        if (layer == NULL)
          goto out;
        g_ptr_array_add (layers, layer);
      }
  }
  if (!fetch_blob (&pull, config, "config", error))
    goto out;
  add_source_label (&pull, config->digest);
  JsonArray *diff_ids = NULL;
  {
    g_autoptr (GBytes) bytes = berth_image_read_json_blob (pull.store, config->digest, op_cancellable, error);
    config_root = bytes ? berth_json_parse_object (bytes, config->digest, error) : NULL;
    if (config_root == NULL)
      goto out;
    diff_ids = berth_json_member_array (berth_json_member_object (json_node_get_object (config_root), "rootfs"),
                                        "diff_ids");
    if (unpacker != NULL && berth_json_array_length (diff_ids) != layers->len)
      {
        berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s: config %s lists %u diff_ids for %u layers", name,
                     config->digest, berth_json_array_length (diff_ids), layers->len);
        goto out;
      }
  }
  guint workers = CLAMP (berth_daemon_get_config (daemon)->max_concurrent_downloads, 1, 32);
  if (!pull_layers (&pull, layers, diff_ids, unpacker, workers, error))
    goto out;
  for (guint i = 0; i < layers->len; i++)
    add_source_label (&pull, ((BerthDescriptor *) layers->pdata[i])->digest);
  if (unpacker != NULL && berth_unpacker_get_chain_id (unpacker) != NULL)
    {
      g_autofree char *key = g_strconcat (BERTH_LABEL_REF_SNAPSHOT, berth_unpacker_get_snapshotter (unpacker), NULL);
      berth_image_ingest_add_label (ingest, config->digest, key, berth_unpacker_get_chain_id (unpacker));
    }
  if (!berth_image_ingest_label_tree (ingest, root, error))
    goto out;
  berth_image_ingest_add_image (ingest, name, root);
  {
    g_autoptr (GPtrArray) names = berth_image_ingest_finish (ingest, error);
    if (names == NULL)
      goto out;
  }
  if (target_out != NULL)
    *target_out = g_strdup (root->digest);
  result = g_steal_pointer (&name);
out:
  if (handler != 0)
    g_cancellable_disconnect (cancellable, handler);
  if (result == NULL && error != NULL && *error != NULL && g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
      && cancellable != NULL && g_cancellable_is_cancelled (cancellable))
    g_debug ("pull %s cancelled", options->reference);
  g_mutex_clear (&reporter.lock);
  return result;
}

/* ================= push ================= */

typedef struct {
  BerthDaemon *daemon;
  const char *ns;
  Registry *reg;
  BerthReference *ref;
  char *scope;
  BerthContentStore *store;
  Reporter *reporter;
  GCancellable *cancellable;
  GPtrArray *blobs;      /* BerthDescriptor, children before parents */
  GPtrArray *kinds;      /* const char * per blob */
  GHashTable *seen;
  gint64 chunk_size;     /* blobs larger go up in PATCH chunks of this size; 0: never */
} Push;

static gboolean
collect (Push *push, const BerthDescriptor *desc, const char *kind, gboolean optional, guint depth, GError **error)
{
  if (g_hash_table_contains (push->seen, desc->digest))
    return TRUE;
  if (depth > 8)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "indexes nested deeper than 8 at %s", desc->digest);
  g_autoptr (BerthContentInfo) info = berth_image_blob_visible (push->daemon, push->ns, desc->digest)
                                        ? berth_content_store_info (push->store, desc->digest, NULL, NULL)
                                        : NULL;
  if (info == NULL)
    return optional ? TRUE
                    : berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                                   "%s %s is not in the content store of namespace %s", kind, desc->digest, push->ns);
  g_hash_table_add (push->seen, g_strdup (desc->digest));
  g_autoptr (GPtrArray) children = berth_image_read_children (push->store, desc, push->cancellable, error);
  if (children == NULL)
    return FALSE;
  for (guint i = 0; i < children->len; i++)
    {
      const BerthImageChild *child = children->pdata[i];
      /* Platforms never pulled cannot be pushed; the registry takes the index without them. */
      gboolean child_optional = child->kind == BERTH_IMAGE_CHILD_MANIFEST;
      if (!collect (push, child->desc, berth_image_child_kind_name (child->kind), child_optional, depth + 1, error))
        return FALSE;
    }
  BerthDescriptor *copy = berth_descriptor_copy (desc);
  copy->size = info->size;
  g_ptr_array_add (push->blobs, copy);
  g_ptr_array_add (push->kinds, (gpointer) kind);
  return TRUE;
}

/* A Location header, made absolute. */
static char *
upload_location (Push *push, SoupMessage *msg, GError **error)
{
  const char *location = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Location");
  if (location == NULL)
    return berth_throw (error, BERTH_ERROR_UNKNOWN, "registry %s started an upload without a Location", push->reg->domain),
           NULL;
  g_autofree char *base = g_uri_to_string (soup_message_get_uri (msg));
  return g_uri_resolve_relative (base, location, G_URI_FLAGS_NONE, error);
}

typedef struct {
  Push *push;
  const BerthDescriptor *desc;
  const char *kind;
  const char *url;   /* the upload session's current location */
  gboolean chunked;  /* the bytes went up in PATCH requests */
  gint64 sent;
  gint64 last_report;
} Upload;

static void
wrote_body_data (SoupMessage *msg, guint chunk_size, gpointer user_data)
{
  Upload *up = user_data;
  up->sent += chunk_size;
  gint64 now = g_get_monotonic_time ();
  if (now - up->last_report >= PROGRESS_INTERVAL_USEC)
    {
      up->last_report = now;
      report (up->push->reporter, up->desc->digest, up->kind, BERTH_TRANSFER_UPLOADING, up->sent, up->desc->size);
    }
}

/* The PUT closing an upload session: with the whole blob as its body (monolithic), or
 * empty when PATCH requests sent the bytes already. */
static SoupMessage *
build_put_blob (Registry *reg, gpointer data, GError **error)
{
  Upload *up = data;
  g_autofree char *url = g_strdup_printf ("%s%cdigest=%s", up->url, strchr (up->url, '?') ? '&' : '?', up->desc->digest);
  g_autoptr (SoupMessage) msg = message_new (reg, "PUT", url, error);
  if (msg == NULL)
    return NULL;
  if (up->chunked)
    {
      soup_message_headers_set_content_length (soup_message_get_request_headers (msg), 0);
      return g_steal_pointer (&msg);
    }
  g_autoptr (GInputStream) in = berth_content_store_open_reader (up->push->store, up->desc->digest, NULL,
                                                                 up->push->cancellable, error);
  if (in == NULL)
    return NULL;
  up->sent = 0;
  soup_message_set_request_body (msg, "application/octet-stream", in, up->desc->size);
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (wrote_body_data), up);
  return g_steal_pointer (&msg);
}

typedef struct {
  Upload *up;
  GBytes *bytes;
  gint64 offset;
} Chunk;

static SoupMessage *
build_patch (Registry *reg, gpointer data, GError **error)
{
  Chunk *chunk = data;
  SoupMessage *msg = message_new (reg, "PATCH", chunk->up->url, error);
  if (msg == NULL)
    return NULL;
  /* The distribution API's form: no "bytes " unit, both ends inclusive. */
  g_autofree char *range = g_strdup_printf ("%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT, chunk->offset,
                                            chunk->offset + (gint64) g_bytes_get_size (chunk->bytes) - 1);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Content-Range", range);
  soup_message_set_request_body_from_bytes (msg, "application/octet-stream", chunk->bytes);
  chunk->up->sent = chunk->offset;
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (wrote_body_data), chunk->up);
  return msg;
}

/* A registry that turns down the first PATCH of a session this way takes only
 * monolithic uploads (or not Content-Range): 405/501 say so, 400/404/411/416 are how
 * some proxies and older registries say it. */
static gboolean
chunks_refused (guint status)
{
  return status == SOUP_STATUS_NOT_IMPLEMENTED
         || (status >= 400 && status < 500 && status != SOUP_STATUS_UNAUTHORIZED && status != SOUP_STATUS_FORBIDDEN
             && status != STATUS_TOO_MANY_REQUESTS);
}

typedef enum { CHUNKS_SENT, CHUNKS_REFUSED, CHUNKS_FAILED } ChunksOutcome;

/* Sends the blob in PATCH requests of push->chunk_size bytes, each to the Location the
 * previous answer gave (*location follows it, for the closing PUT). One chunk at a time
 * is in memory, so a retried PATCH resends the same bytes. */
static ChunksOutcome
upload_chunks (Upload *up, char **location, GError **error)
{
  Push *push = up->push;
  g_autoptr (GInputStream) in = berth_content_store_open_reader (push->store, up->desc->digest, NULL,
                                                                 push->cancellable, error);
  if (in == NULL)
    return CHUNKS_FAILED;
  gsize buffer_size = MIN (push->chunk_size, up->desc->size);
  g_autofree guint8 *buffer = g_malloc (buffer_size);
  for (gint64 offset = 0; offset < up->desc->size;)
    {
      gsize got = 0;
      if (!g_input_stream_read_all (in, buffer, MIN ((gint64) buffer_size, up->desc->size - offset), &got,
                                    push->cancellable, error))
        return CHUNKS_FAILED;
      if (got == 0)
        return berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s ends at %" G_GINT64_FORMAT " of its %" G_GINT64_FORMAT
                            " bytes", up->desc->digest, offset, up->desc->size), CHUNKS_FAILED;
      g_autoptr (GBytes) bytes = g_bytes_new_static (buffer, got);
      Chunk chunk = { up, bytes, offset };
      g_autoptr (SoupMessage) msg = NULL;
      g_autoptr (GInputStream) answer = registry_send (push->reg, push->scope, build_patch, &chunk, &msg, error);
      if (answer == NULL)
        return CHUNKS_FAILED;
      g_autofree char *detail = drain_detail (answer, push->cancellable);
      guint status = soup_message_get_status (msg);
      if (status != SOUP_STATUS_ACCEPTED && offset == 0 && chunks_refused (status))
        {
          g_info ("registry %s refused a chunked upload (%u %s%s%s); uploading whole blobs", push->reg->domain, status,
                  soup_message_get_reason_phrase (msg), detail ? ": " : "", detail ? detail : "");
          return CHUNKS_REFUSED;
        }
      if (status != SOUP_STATUS_ACCEPTED)
        {
          g_autofree char *what = g_strdup_printf ("uploading bytes %" G_GINT64_FORMAT "- of %s %s", offset, up->kind,
                                                   up->desc->digest);
          /* A retried PATCH that had partly arrived gets 416: a fresh session will do. */
          if (status == SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE)
            return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "%s: the registry lost track of the session", what),
                   CHUNKS_FAILED;
          return throw_status (error, msg, detail, what), CHUNKS_FAILED;
        }
      offset += got;
      const char *held = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Range");
      const char *dash = held ? strchr (held, '-') : NULL;
      if (dash != NULL && g_ascii_strtoll (dash + 1, NULL, 10) != offset - 1)
        return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "registry %s holds bytes %s of the upload of %s, not 0-%"
                            G_GINT64_FORMAT, push->reg->domain, held, up->desc->digest, offset - 1), CHUNKS_FAILED;
      char *next = upload_location (push, msg, error);
      if (next == NULL)
        return CHUNKS_FAILED;
      g_free (*location);
      up->url = *location = next;
      report (push->reporter, up->desc->digest, up->kind, BERTH_TRANSFER_UPLOADING, offset, up->desc->size);
    }
  return CHUNKS_SENT;
}

/* Mount from another repository of the same registry, or start an upload; TRUE with
 * *location_out NULL when the mount made the blob exist. */
static gboolean
start_upload (Push *push, const BerthDescriptor *desc, char **location_out, GError **error)
{
  g_autoptr (GHashTable) labels = berth_image_blob_labels (push->daemon, push->ns, desc->digest, NULL);
  g_autofree char *host = g_strdup (push->ref->domain);
  char *colon = strrchr (host, ':');
  if (colon != NULL && strchr (host, ']') < colon)
    *colon = '\0';
  g_autofree char *key = g_strconcat (BERTH_LABEL_DISTRIBUTION_SOURCE, host, NULL);
  const char *sources = labels ? g_hash_table_lookup (labels, key) : NULL;
  g_auto (GStrv) repos = sources ? g_strsplit (sources, ",", -1) : g_new0 (char *, 1);
  const char *from = NULL;
  for (guint i = 0; repos[i] != NULL && from == NULL; i++)
    if (*repos[i] != '\0' && !g_str_equal (repos[i], push->ref->path))
      from = repos[i];
  g_autofree char *url = from ? g_strdup_printf ("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", push->reg->base,
                                                 push->ref->path, desc->digest, from)
                              : g_strdup_printf ("%s/v2/%s/blobs/uploads/", push->reg->base, push->ref->path);
  g_autofree char *scope = from ? g_strdup_printf ("%s repository:%s:pull", push->scope, from) : g_strdup (push->scope);
  Request req = { "POST", url, NULL, 0, NULL, NULL };
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) stream = registry_send (push->reg, scope, build_request, &req, &msg, error);
  if (stream == NULL)
    return FALSE;
  g_autofree char *detail = drain_detail (stream, push->cancellable);
  guint status = soup_message_get_status (msg);
  if (status == SOUP_STATUS_CREATED && from != NULL)
    {
      g_debug ("%s: mounted from %s", desc->digest, from);
      *location_out = NULL;
      return TRUE;
    }
  if (status != SOUP_STATUS_ACCEPTED)
    {
      g_autofree char *what = g_strdup_printf ("starting the upload of %s", desc->digest);
      return throw_status (error, msg, detail, what);
    }
  *location_out = upload_location (push, msg, error);
  return *location_out != NULL;
}

static gboolean
push_blob (Push *push, const BerthDescriptor *desc, const char *kind, GError **error)
{
  g_autofree char *head_url = url_for (push->reg, push->ref->path, "blobs", desc->digest);
  Request head = { "HEAD", head_url, NULL, 0, NULL, NULL };
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) stream = registry_send (push->reg, push->scope, build_request, &head, &msg, error);
  if (stream == NULL)
    return FALSE;
  g_input_stream_close (stream, NULL, NULL);
  if (soup_message_get_status (msg) == SOUP_STATUS_OK)
    {
      report (push->reporter, desc->digest, kind, BERTH_TRANSFER_EXISTS, desc->size, desc->size);
      return TRUE;
    }
  for (guint attempt = 1;; attempt++)
    {
      g_autofree char *location = NULL;
      if (!start_upload (push, desc, &location, error))
        return FALSE;
      if (location == NULL)
        {
          report (push->reporter, desc->digest, kind, BERTH_TRANSFER_MOUNTED, desc->size, desc->size);
          return TRUE;
        }
      Upload up = { push, desc, kind, location, FALSE, 0, 0 };
      report (push->reporter, desc->digest, kind, BERTH_TRANSFER_UPLOADING, 0, desc->size);
      g_autoptr (GError) local_error = NULL;
      g_autoptr (SoupMessage) put = NULL;
      g_autoptr (GInputStream) answer = NULL;
      if (push->chunk_size > 0 && desc->size > push->chunk_size)
        {
          ChunksOutcome outcome = upload_chunks (&up, &location, &local_error);
          if (outcome == CHUNKS_REFUSED)
            {
              push->chunk_size = 0; /* for the rest of this push too */
              attempt--;            /* not a failure: start over, monolithic */
              continue;
            }
          up.chunked = outcome == CHUNKS_SENT;
        }
      if (local_error == NULL)
        answer = registry_send (push->reg, push->scope, build_put_blob, &up, &put, &local_error);
      if (answer == NULL)
        {
          if (g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE) && attempt < MAX_ATTEMPTS
              && backoff (push->reg, attempt, NULL))
            continue; /* a fresh upload session: the old one may be half-written */
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s %s: ", kind, desc->digest);
          return FALSE;
        }
      g_autofree char *detail = drain_detail (answer, push->cancellable);
      if (soup_message_get_status (put) != SOUP_STATUS_CREATED)
        {
          g_autofree char *what = g_strdup_printf ("uploading %s %s", kind, desc->digest);
          return throw_status (error, put, detail, what);
        }
      report (push->reporter, desc->digest, kind, BERTH_TRANSFER_DONE, desc->size, desc->size);
      return TRUE;
    }
}

static gboolean
push_manifest (Push *push, const BerthDescriptor *desc, const char *kind, const char *reference, GError **error)
{
  g_autoptr (GBytes) bytes = berth_image_read_json_blob (push->store, desc->digest, push->cancellable, error);
  if (bytes == NULL)
    return FALSE;
  g_autofree char *url = url_for (push->reg, push->ref->path, "manifests", reference);
  Request req = { "PUT", url, NULL, 0, desc->media_type, bytes };
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) stream = registry_send (push->reg, push->scope, build_request, &req, &msg, error);
  if (stream == NULL)
    return FALSE;
  g_autofree char *detail = drain_detail (stream, push->cancellable);
  if (soup_message_get_status (msg) != SOUP_STATUS_CREATED)
    {
      g_autofree char *what = g_strdup_printf ("putting %s %s as %s", kind, desc->digest, reference);
      return throw_status (error, msg, detail, what);
    }
  report (push->reporter, desc->digest, kind, BERTH_TRANSFER_DONE, desc->size, desc->size);
  return TRUE;
}

char *
berth_distribution_module_push (BerthDaemon *daemon, const char *ns, const BerthPushOptions *options,
                         BerthTransferProgressFunc progress, gpointer progress_data, GCancellable *cancellable,
                         GError **error)
{
  g_autoptr (BerthReference) ref = berth_reference_parse (options->reference, error);
  if (ref == NULL)
    return NULL;
  g_autofree char *name = berth_reference_to_string (ref);
  const char *image = options->image && *options->image ? options->image : name;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (BerthDescriptor) target = berth_image_get_target (daemon, ns, image, &local_error);
  if (target == NULL)
    {
      if (g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return berth_throw (error, BERTH_ERROR_NOT_FOUND, "no image %s in namespace %s to push", image, ns), NULL;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  BerthContentStore *store = berth_daemon_get_content_store (daemon, error);
  if (store == NULL)
    return NULL;
  Reporter reporter = { progress, progress_data };
  g_mutex_init (&reporter.lock);
  g_autoptr (Registry) reg = registry_new (daemon, ref->domain, options->plain_http, options->skip_verify,
                                           options->username, options->password, cancellable, error);
  g_autofree char *scope = g_strdup_printf ("repository:%s:pull,push", ref->path);
  g_autoptr (GPtrArray) blobs = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_descriptor_free);
  g_autoptr (GPtrArray) kinds = g_ptr_array_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Push push = { daemon, ns, reg, ref, scope, store, &reporter, cancellable, blobs, kinds, seen,
                berth_daemon_get_config (daemon)->push_chunk_size };
  char *result = NULL;
  const char *root_kind = berth_media_type_is_index (target->media_type) ? "index" : "manifest";
  if (ref->digest != NULL && !g_str_equal (ref->digest, target->digest))
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s pins %s, but image %s is %s", name, ref->digest, image,
                   target->digest);
      goto out;
    }
  if (reg == NULL || !collect (&push, target, root_kind, FALSE, 0, error))
    goto out;
  g_debug ("push %s as %s to %s: %u blobs", image, name, reg->base, blobs->len);
  for (guint i = 0; i < blobs->len; i++)
    {
      const BerthDescriptor *blob = blobs->pdata[i];
      report (&reporter, blob->digest, kinds->pdata[i], BERTH_TRANSFER_WAITING, 0, blob->size);
    }
  for (guint i = 0; i < blobs->len; i++)
    {
      const BerthDescriptor *blob = blobs->pdata[i];
      const char *kind = kinds->pdata[i];
      gboolean is_root = i + 1 == blobs->len;
      gboolean ok = berth_media_type_is_index (blob->media_type) || berth_media_type_is_manifest (blob->media_type)
                      ? push_manifest (&push, blob, kind, is_root ? (ref->tag ? ref->tag : ref->digest) : blob->digest,
                                       error)
                      : push_blob (&push, blob, kind, error);
      if (!ok)
        goto out;
    }
  result = g_strdup (target->digest);
out:
  g_mutex_clear (&reporter.lock);
  return result;
}
