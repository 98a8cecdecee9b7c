/* berth-distribution-push.c — push: upload an image's blobs (whole, or in PATCH chunks
 * where the registry takes them), then its manifests.
 * Part of the berth-registry-client module, on the registry client of
 * berth-distribution.c. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>
#include "berth-distribution-private.h"
#include "berth-image-store.h"

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
upload_location (Push *push, BerthHttpMessage *msg, GError **error)
{
  const char *location = berth_http_message_get_header (msg, "Location");
  if (location == NULL)
    return berth_throw (error, BERTH_ERROR_UNKNOWN, "registry %s started an upload without a Location", push->reg->domain),
           NULL;
  return g_uri_resolve_relative (berth_http_message_get_url (msg), location, G_URI_FLAGS_NONE, error);
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
wrote_body_data (gsize chunk_size, gpointer user_data)
{
  Upload *up = user_data;
  up->sent += chunk_size;
  gint64 now = g_get_monotonic_time ();
  if (now - up->last_report >= PROGRESS_INTERVAL_USEC)
    {
      up->last_report = now;
      dist_report (up->push->reporter, up->desc->digest, up->kind, BERTH_TRANSFER_UPLOADING, up->sent, up->desc->size);
    }
}

/* The PUT closing an upload session: with the whole blob as its body (monolithic), or
 * empty when PATCH requests sent the bytes already. */
static BerthHttpMessage *
build_put_blob (Registry *reg, gpointer data, GError **error)
{
  Upload *up = data;
  g_autofree char *url = g_strdup_printf ("%s%cdigest=%s", up->url, strchr (up->url, '?') ? '&' : '?', up->desc->digest);
  g_autoptr (BerthHttpMessage) msg = dist_message_new (reg, "PUT", url, error);
  if (msg == NULL)
    return NULL;
  if (up->chunked)
    {
      berth_http_message_set_body_bytes (msg, NULL, NULL);
      return g_steal_pointer (&msg);
    }
  g_autoptr (GInputStream) in = berth_content_store_open_reader (up->push->store, up->desc->digest, NULL,
                                                                 up->push->cancellable, error);
  if (in == NULL)
    return NULL;
  up->sent = 0;
  berth_http_message_set_body_stream (msg, "application/octet-stream", in, up->desc->size);
  berth_http_message_set_wrote_func (msg, wrote_body_data, up);
  return g_steal_pointer (&msg);
}

typedef struct {
  Upload *up;
  GBytes *bytes;
  gint64 offset;
} Chunk;

static BerthHttpMessage *
build_patch (Registry *reg, gpointer data, GError **error)
{
  Chunk *chunk = data;
  BerthHttpMessage *msg = dist_message_new (reg, "PATCH", chunk->up->url, error);
  if (msg == NULL)
    return NULL;
  /* The distribution API's form: no "bytes " unit, both ends inclusive. */
  g_autofree char *range = g_strdup_printf ("%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT, chunk->offset,
                                            chunk->offset + (gint64) g_bytes_get_size (chunk->bytes) - 1);
  berth_http_message_set_header (msg, "Content-Range", range);
  berth_http_message_set_body_bytes (msg, "application/octet-stream", chunk->bytes);
  chunk->up->sent = chunk->offset;
  berth_http_message_set_wrote_func (msg, wrote_body_data, chunk->up);
  return msg;
}

/* A registry that turns down the first PATCH of a session this way takes only
 * monolithic uploads (or not Content-Range): 405/501 say so, 400/404/411/416 are how
 * some proxies and older registries say it. */
static gboolean
chunks_refused (guint status)
{
  return status == HTTP_NOT_IMPLEMENTED
         || (status >= 400 && status < 500 && status != HTTP_UNAUTHORIZED && status != HTTP_FORBIDDEN
             && status != HTTP_TOO_MANY_REQUESTS);
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
      g_autoptr (BerthHttpMessage) msg = NULL;
      g_autoptr (GInputStream) answer = dist_registry_send (push->reg, push->scope, build_patch, &chunk, &msg, error);
      if (answer == NULL)
        return CHUNKS_FAILED;
      g_autofree char *detail = dist_drain_detail (answer, push->cancellable);
      guint status = berth_http_message_get_status (msg);
      if (status != HTTP_ACCEPTED && offset == 0 && chunks_refused (status))
        {
          g_info ("registry %s refused a chunked upload (%u %s%s%s); uploading whole blobs", push->reg->domain, status,
                  berth_http_message_get_reason (msg), detail ? ": " : "", detail ? detail : "");
          return CHUNKS_REFUSED;
        }
      if (status != HTTP_ACCEPTED)
        {
          g_autofree char *what = g_strdup_printf ("uploading bytes %" G_GINT64_FORMAT "- of %s %s", offset, up->kind,
                                                   up->desc->digest);
          /* A retried PATCH that had partly arrived gets 416: a fresh session will do. */
          if (status == HTTP_RANGE_NOT_SATISFIABLE)
            return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "%s: the registry lost track of the session", what),
                   CHUNKS_FAILED;
          return dist_throw_status (error, msg, detail, what), CHUNKS_FAILED;
        }
      offset += got;
      const char *held = berth_http_message_get_header (msg, "Range");
      const char *dash = held ? strchr (held, '-') : NULL;
      if (dash != NULL && g_ascii_strtoll (dash + 1, NULL, 10) != offset - 1)
        return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "registry %s holds bytes %s of the upload of %s, not 0-%"
                            G_GINT64_FORMAT, push->reg->domain, held, up->desc->digest, offset - 1), CHUNKS_FAILED;
      char *next = upload_location (push, msg, error);
      if (next == NULL)
        return CHUNKS_FAILED;
      g_free (*location);
      up->url = *location = next;
      dist_report (push->reporter, up->desc->digest, up->kind, BERTH_TRANSFER_UPLOADING, offset, up->desc->size);
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
  g_autoptr (BerthHttpMessage) msg = NULL;
  g_autoptr (GInputStream) stream = dist_registry_send (push->reg, scope, dist_build_request, &req, &msg, error);
  if (stream == NULL)
    return FALSE;
  g_autofree char *detail = dist_drain_detail (stream, push->cancellable);
  guint status = berth_http_message_get_status (msg);
  if (status == HTTP_CREATED && from != NULL)
    {
      g_debug ("%s: mounted from %s", desc->digest, from);
      *location_out = NULL;
      return TRUE;
    }
  if (status != HTTP_ACCEPTED)
    {
      g_autofree char *what = g_strdup_printf ("starting the upload of %s", desc->digest);
      return dist_throw_status (error, msg, detail, what);
    }
  *location_out = upload_location (push, msg, error);
  return *location_out != NULL;
}

static gboolean
push_blob (Push *push, const BerthDescriptor *desc, const char *kind, GError **error)
{
  g_autofree char *head_url = dist_url_for (push->reg, push->ref->path, "blobs", desc->digest);
  Request head = { "HEAD", head_url, NULL, 0, NULL, NULL };
  g_autoptr (BerthHttpMessage) msg = NULL;
  g_autoptr (GInputStream) stream = dist_registry_send (push->reg, push->scope, dist_build_request, &head, &msg, error);
  if (stream == NULL)
    return FALSE;
  g_input_stream_close (stream, NULL, NULL);
  if (berth_http_message_get_status (msg) == HTTP_OK)
    {
      dist_report (push->reporter, desc->digest, kind, BERTH_TRANSFER_EXISTS, desc->size, desc->size);
      return TRUE;
    }
  for (guint attempt = 1;; attempt++)
    {
      g_autofree char *location = NULL;
      if (!start_upload (push, desc, &location, error))
        return FALSE;
      if (location == NULL)
        {
          dist_report (push->reporter, desc->digest, kind, BERTH_TRANSFER_MOUNTED, desc->size, desc->size);
          return TRUE;
        }
      Upload up = { push, desc, kind, location, FALSE, 0, 0 };
      dist_report (push->reporter, desc->digest, kind, BERTH_TRANSFER_UPLOADING, 0, desc->size);
      g_autoptr (GError) local_error = NULL;
      g_autoptr (BerthHttpMessage) put = NULL;
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
        answer = dist_registry_send (push->reg, push->scope, build_put_blob, &up, &put, &local_error);
      if (answer == NULL)
        {
          if (g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE) && attempt < MAX_ATTEMPTS
              && dist_backoff (push->reg, attempt, NULL))
            continue; /* a fresh upload session: the old one may be half-written */
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s %s: ", kind, desc->digest);
          return FALSE;
        }
      g_autofree char *detail = dist_drain_detail (answer, push->cancellable);
      if (berth_http_message_get_status (put) != HTTP_CREATED)
        {
          g_autofree char *what = g_strdup_printf ("uploading %s %s", kind, desc->digest);
          return dist_throw_status (error, put, detail, what);
        }
      dist_report (push->reporter, desc->digest, kind, BERTH_TRANSFER_DONE, desc->size, desc->size);
      return TRUE;
    }
}

static gboolean
push_manifest (Push *push, const BerthDescriptor *desc, const char *kind, const char *reference, GError **error)
{
  g_autoptr (GBytes) bytes = berth_image_read_json_blob (push->store, desc->digest, push->cancellable, error);
  if (bytes == NULL)
    return FALSE;
  g_autofree char *url = dist_url_for (push->reg, push->ref->path, "manifests", reference);
  Request req = { "PUT", url, NULL, 0, desc->media_type, bytes };
  g_autoptr (BerthHttpMessage) msg = NULL;
  g_autoptr (GInputStream) stream = dist_registry_send (push->reg, push->scope, dist_build_request, &req, &msg, error);
  if (stream == NULL)
    return FALSE;
  g_autofree char *detail = dist_drain_detail (stream, push->cancellable);
  if (berth_http_message_get_status (msg) != HTTP_CREATED)
    {
      g_autofree char *what = g_strdup_printf ("putting %s %s as %s", kind, desc->digest, reference);
      return dist_throw_status (error, msg, detail, what);
    }
  dist_report (push->reporter, desc->digest, kind, BERTH_TRANSFER_DONE, desc->size, desc->size);
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
  g_autoptr (Registry) reg = dist_registry_new (daemon, ref->domain, options->plain_http, options->skip_verify,
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
      dist_report (&reporter, blob->digest, kinds->pdata[i], BERTH_TRANSFER_WAITING, 0, blob->size);
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
