/* berth-distribution-private.h — what the registry client (berth-distribution.c) gives
 * the pull and push halves (berth-distribution-pull.c, -push.c) of the
 * berth-registry-client module. Hidden (G_GNUC_INTERNAL): nothing here leaves the module. */
#pragma once


#include <berth/berth.h>
#include "berth-distribution.h"
#include "berth-http.h"

G_BEGIN_DECLS

#define MAX_ATTEMPTS 4
#define BLOB_BUFFER (256 * 1024)
#define PROGRESS_INTERVAL_USEC (100 * 1000)
#define HTTP_OK 200
#define HTTP_CREATED 201
#define HTTP_ACCEPTED 202
#define HTTP_PARTIAL_CONTENT 206
#define HTTP_BAD_REQUEST 400
#define HTTP_UNAUTHORIZED 401
#define HTTP_FORBIDDEN 403
#define HTTP_NOT_FOUND 404
#define HTTP_RANGE_NOT_SATISFIABLE 416
#define HTTP_TOO_MANY_REQUESTS 429
#define HTTP_INTERNAL_SERVER_ERROR 500
#define HTTP_NOT_IMPLEMENTED 501
#define HTTP_BAD_GATEWAY 502
#define HTTP_SERVICE_UNAVAILABLE 503
#define HTTP_GATEWAY_TIMEOUT 504

#define ACCEPT_MANIFESTS                                                                                               \
  BERTH_MT_OCI_INDEX ", " BERTH_MT_OCI_MANIFEST ", " BERTH_MT_DOCKER_LIST ", " BERTH_MT_DOCKER_MANIFEST

/* ---------------- a registry, as one operation talks to it ---------------- */

typedef struct {
  char *domain;     /* as in references: "docker.io" */
  char *base;       /* "https://registry-1.docker.io" */
  char *ca_file;     /* trusted on top of the system CAs */
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

/* A session for @domain as berthd.conf's [registry."HOST"] and the request say
 * (@username/@password NULL: the registry-auth-file's, if any). */
G_GNUC_INTERNAL Registry *dist_registry_new (BerthDaemon *daemon, const char *domain, gboolean plain_http,
                                             gboolean skip_verify, const char *username, const char *password,
                                             GCancellable *cancellable, GError **error);
G_GNUC_INTERNAL void dist_registry_free (Registry *reg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Registry, dist_registry_free)

/* A message to @url, for dist_registry_send's BuildFunc. */
G_GNUC_INTERNAL BerthHttpMessage *dist_message_new (Registry *reg, const char *method, const char *url, GError **error);

typedef BerthHttpMessage *(*BuildFunc) (Registry *reg, gpointer data, GError **error);

/* Sends the message @build makes, answering authentication challenges and retrying 429,
 * 5xx and dropped connections with backoff; every other answer is the caller's. Returns
 * the response body stream and the message. */
G_GNUC_INTERNAL GInputStream *dist_registry_send (Registry *reg, const char *scope, BuildFunc build, gpointer data,
                                                  BerthHttpMessage **msg_out, GError **error);

/* The plain request most calls make: dist_build_request is its BuildFunc. */
typedef struct {
  const char *method;
  const char *url;
  const char *accept;
  gint64 range_start;       /* > 0: Range: bytes=START- */
  const char *content_type;
  GBytes *body;
} Request;
G_GNUC_INTERNAL BerthHttpMessage *dist_build_request (Registry *reg, gpointer data, GError **error);
/* "BASE/v2/PATH/KIND/WHAT". */
G_GNUC_INTERNAL char *dist_url_for (Registry *reg, const char *path, const char *kind, const char *what);

/* ---------------- answers ---------------- */

/* A whole body of at most @max bytes (RESOURCE_EXHAUSTED past that). */
G_GNUC_INTERNAL GBytes *dist_read_limited (GInputStream *stream, gsize max, GCancellable *cancellable, GError **error);
/* Reads what is left of an error answer and releases the connection: the registry's
 * "CODE: message", or NULL. */
G_GNUC_INTERNAL char *dist_drain_detail (GInputStream *stream, GCancellable *cancellable);
/* The GError for an unexpected HTTP status, @what being what was asked for. */
G_GNUC_INTERNAL gboolean dist_throw_status (GError **error, BerthHttpMessage *msg, const char *detail, const char *what);
G_GNUC_INTERNAL gboolean dist_retryable_error (const GError *error);
/* Sleeps before attempt @attempt (1, 2, …), Retry-After when @msg gave one; FALSE:
 * cancelled. */
G_GNUC_INTERNAL gboolean dist_backoff (Registry *reg, guint attempt, BerthHttpMessage *msg);

/* ---------------- progress ---------------- */

typedef struct {
  BerthTransferProgressFunc func;
  gpointer data;
  GMutex lock;
} Reporter;
/* Calls the client's progress function, one report at a time. */
G_GNUC_INTERNAL void dist_report (Reporter *reporter, const char *digest, const char *kind, const char *status,
                                  gint64 offset, gint64 total);

G_END_DECLS
