/* berth-distribution.h — the registry client (distribution API v2, its HTTP requests sent
 * by berthd's helper process: berth-http.h), pull and push on the daemon's side
 * (core-internal). References are berth-reference.h's.
 *
 * Pull resolves the reference (manifest or index; an index gives the requested
 * platform's manifest), streams every blob straight into the content store (verified
 * while it is written; a partial ingest left by an earlier attempt resumes with a
 * Range request), fetches up to max-concurrent-downloads layers at once while
 * unpacking the ones already there in order, and records the image under the normalised
 * name — all under one lease, so GC takes nothing in flight and everything of a
 * failed pull. Push uploads what the registry lacks (HEAD check, cross-repository
 * mount when the blob's containerd.io/distribution.source label names a repository of
 * the same registry, otherwise a monolithic PUT, or PATCH chunks of push-chunk-size for
 * larger blobs, falling back to monolithic when the registry refuses them), then the
 * manifests, the tag last.
 *
 * Registries are reached over https with the system CAs, plus a per-host CA file, or
 * over plain http, as [registry."HOST"] groups of berthd.conf say (or the request).
 * Authentication answers the registry's WWW-Authenticate challenge: Bearer tokens from
 * its token service (cached per scope until they expire) or Basic, with credentials
 * from the request or the registry-auth-file (docker's config.json format). 429 and
 * 5xx answers and dropped connections are retried with backoff.
 *
 * Errors: INVALID_ARGUMENT for a malformed reference, NOT_FOUND naming the reference
 * for an unknown repository or tag, UNAUTHENTICATED / PERMISSION_DENIED for refused
 * credentials, DATA_LOSS for content that does not match its digest, UNAVAILABLE for a
 * registry that cannot be reached.
 */
#pragma once

#include <gio/gio.h>
#include "daemon/berth-daemon.h"
#include "berth-reference.h"

G_BEGIN_DECLS

/* What a transfer reports, per blob, as it goes. Status is one of the strings below. */
#define BERTH_TRANSFER_RESOLVED "resolved"
#define BERTH_TRANSFER_WAITING "waiting"
#define BERTH_TRANSFER_DOWNLOADING "downloading"
#define BERTH_TRANSFER_UPLOADING "uploading"
#define BERTH_TRANSFER_RETRYING "retrying"
#define BERTH_TRANSFER_EXISTS "exists"
#define BERTH_TRANSFER_MOUNTED "mounted"
#define BERTH_TRANSFER_DONE "done"
#define BERTH_TRANSFER_UNPACKING "unpacking"
#define BERTH_TRANSFER_UNPACKED "unpacked"

typedef struct {
  const char *digest;
  const char *kind;   /* "index", "manifest", "config", "layer" */
  const char *status;
  gint64 offset;      /* bytes moved so far */
  gint64 total;
} BerthTransferProgress;

/* Called from several threads, never two at once. */
typedef void (*BerthTransferProgressFunc) (const BerthTransferProgress *progress, gpointer user_data);

typedef struct {
  const char *reference;
  const char *platform;    /* "os/arch[/variant]"; NULL: linux and this machine's architecture */
  const char *snapshotter; /* unpack into this one; NULL: the default */
  gboolean no_unpack;
  gboolean plain_http;     /* on top of the host's config */
  gboolean skip_verify;
  const char *username;    /* NULL: from the registry-auth-file */
  const char *password;
} BerthPullOptions;

/* Returns the image's name; *target_out (may be NULL) its root descriptor's digest. */
char *berth_distribution_pull (BerthDaemon *daemon, const char *ns, const BerthPullOptions *options,
                               BerthTransferProgressFunc progress, gpointer progress_data, char **target_out,
                               GCancellable *cancellable, GError **error);

typedef struct {
  const char *reference;   /* where to push */
  const char *image;       /* the local image; NULL: the reference, normalised */
  gboolean plain_http;
  gboolean skip_verify;
  const char *username;
  const char *password;
} BerthPushOptions;

/* Returns the digest pushed. */
char *berth_distribution_push (BerthDaemon *daemon, const char *ns, const BerthPushOptions *options,
                               BerthTransferProgressFunc progress, gpointer progress_data,
                               GCancellable *cancellable, GError **error);

/* What the berth-registry-client module exports (core/daemon/berth-modules.h);
 * berth_distribution_pull and _push call them, opening the module on first use. */
char *berth_distribution_module_pull (BerthDaemon *daemon, const char *ns, const BerthPullOptions *options,
                                      BerthTransferProgressFunc progress, gpointer progress_data, char **target_out,
                                      GCancellable *cancellable, GError **error);
char *berth_distribution_module_push (BerthDaemon *daemon, const char *ns, const BerthPushOptions *options,
                                      BerthTransferProgressFunc progress, gpointer progress_data,
                                      GCancellable *cancellable, GError **error);

G_END_DECLS
