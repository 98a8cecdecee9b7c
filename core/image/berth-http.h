/* berth-http.h — HTTP requests of the registry client, made by a helper process: berthd
 * run again as `berthd --http-request`, which opens the berth-http-fetch module (libsoup,
 * GnuTLS through GIO) and sends one request. berthd itself never maps libsoup, the TLS
 * stack, Kerberos or SQLite (2 MB of RSS it would keep after its first pull), and what a
 * registry sends over the network is parsed outside the daemon.
 *
 * The helper's protocol, over its stdin (a socket) and stdout (a pipe):
 *   stdin:  request header lines "Name: value\n", an empty line, then the body (exactly
 *           --body-length bytes when the request has one);
 *   stdout: "STATUS REASON\n", response header lines "Name: value\n", an empty line, then
 *           the body until EOF;
 *   exit 0 when the whole body went out; else stderr's last line is
 *   "ERROR DOMAIN CODE MESSAGE" (a GError: its quark's name, code and message).
 * Headers go over stdin, not the command line, so credentials never show in ps.
 * Part of the berth-registry-client module (core-internal). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _BerthHttpMessage BerthHttpMessage;

/* Called as request body bytes go out, with how many went in this step. */
typedef void (*BerthHttpWroteFunc) (gsize written, gpointer user_data);

/* NULL with INVALID_ARGUMENT when @url is not an absolute http(s) URL. */
BerthHttpMessage *berth_http_message_new (const char *method, const char *url, GError **error);
void berth_http_message_free (BerthHttpMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthHttpMessage, berth_http_message_free)

const char *berth_http_message_get_method (BerthHttpMessage *msg);
const char *berth_http_message_get_url (BerthHttpMessage *msg);
/* Replaces any earlier value of @name. */
void berth_http_message_set_header (BerthHttpMessage *msg, const char *name, const char *value);
/* The body, from bytes or from @stream (@length bytes); an empty body sends
 * Content-Length: 0, as PUT and POST need. */
void berth_http_message_set_body_bytes (BerthHttpMessage *msg, const char *content_type, GBytes *body);
void berth_http_message_set_body_stream (BerthHttpMessage *msg, const char *content_type, GInputStream *stream,
                                         gint64 length);
void berth_http_message_set_wrote_func (BerthHttpMessage *msg, BerthHttpWroteFunc func, gpointer user_data);
/* TLS: accept any certificate, or trust @ca_file's CAs on top of the system's. */
void berth_http_message_set_tls (BerthHttpMessage *msg, gboolean skip_verify, const char *ca_file);

/* Sends the request; the response's status and headers are then on @msg, its body in
 * the stream returned (a read past its end reports a transfer that failed midway). The
 * GError of a failed exchange is the helper's (G_IO_ERROR, G_TLS_ERROR,
 * G_RESOLVER_ERROR…), so callers can tell what is worth a retry. */
GInputStream *berth_http_send (BerthHttpMessage *msg, GCancellable *cancellable, GError **error);

guint berth_http_message_get_status (BerthHttpMessage *msg);
const char *berth_http_message_get_reason (BerthHttpMessage *msg);
/* A response header (case-insensitive name), or NULL. */
const char *berth_http_message_get_header (BerthHttpMessage *msg, const char *name);
/* The Content-Type without its parameters, lower case; NULL when absent. */
char *berth_http_message_get_content_type (BerthHttpMessage *msg);
/* "Content-Range: bytes START-END/TOTAL" (TOTAL -1 for "*"). */
gboolean berth_http_message_get_content_range (BerthHttpMessage *msg, gint64 *start, gint64 *end, gint64 *total);

/* The helper's side: what `berthd --http-request` runs (berth-http-fetch module). */
int berth_http_fetch_main (int argc, char **argv);

G_END_DECLS
