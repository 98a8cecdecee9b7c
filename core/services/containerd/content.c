/* content.c — containerd.services.content.v1.Content.
 *
 * Bytes live in the content store plugin, shared by every namespace; which blobs a
 * namespace sees, and their labels, live in the metadata store under
 * "v1/<ns>/content/<digest>" (a packed content Info). Ingest refs are namespaced in the
 * backend as "<ns>/<ref>", so one namespace never sees or resumes another's upload.
 */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-identifiers.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "daemon/berth-gc.h"
#include "github.com/containerd/containerd/api/events/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

typedef Containerd__Services__Content__V1__Info Info;
#define INFO_DESC containerd__services__content__v1__info__descriptor
#define INFO_LABELS_DESC containerd__services__content__v1__info__labels_entry__descriptor
#define READ_CHUNK (1024 * 1024)
#define LIST_BATCH 100

static char *
backend_ref (BerthGrpcCall *call, const char *ref)
{
  return g_strdup_printf ("%s/%s", berth_grpc_call_get_namespace (call), ref);
}

/* Strips the "<ns>/" of a backend ref; NULL when it belongs to another namespace. */
static const char *
client_ref (BerthGrpcCall *call, const char *ref)
{
  const char *ns = berth_grpc_call_get_namespace (call);
  gsize len = strlen (ns);
  if (strncmp (ref, ns, len) != 0 || ref[len] != '/')
    return NULL;
  return ref + len + 1;
}

static Info *
info_copy (const Info *record)
{
  Info *copy = berth_grpc_message_new (&INFO_DESC);
  copy->digest = g_strdup (record->digest);
  copy->size = record->size;
  copy->created_at = berth_schema_timestamp_new (berth_schema_timestamp_to_usec (record->created_at));
  copy->updated_at = berth_schema_timestamp_new (berth_schema_timestamp_to_usec (record->updated_at));
  g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) record->labels, record->n_labels, NULL);
  berth_schema_labels_to_entries (labels, &INFO_LABELS_DESC, (void ***) &copy->labels, &copy->n_labels);
  return copy;
}

typedef struct {
  const char *ns;
  const char *digest;
  Info *found;
} GetData;

static gboolean
get_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  GetData *data = user_data;
  g_autofree char *key = berth_schema_content_key (data->ns, data->digest);
  g_autoptr (GError) local_error = NULL;
  data->found = (Info *) berth_schema_get (txn, key, &INFO_DESC, &local_error);
  if (data->found != NULL)
    return TRUE;
  if (local_error != NULL)
    g_propagate_error (error, g_steal_pointer (&local_error));
  else
    berth_throw (error, BERTH_ERROR_NOT_FOUND, "content digest %s: not found", data->digest);
  return FALSE;
}

static Info *
lookup (BerthGrpcCall *call, const char *digest, GError **error)
{
  if (!berth_digest_validate (digest, error))
    return NULL;
  GetData data = { berth_grpc_call_get_namespace (call), digest, NULL };
  if (!berth_metadata_read (berth_daemon_get_metadata (berth_grpc_call_get_daemon (call)), get_txn, &data, error))
    return NULL;
  return data.found;
}

static ProtobufCMessage *
content_info (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Content__V1__InfoRequest *req = (gpointer) request;
  Info *found = lookup (call, req->digest, error);
  if (found == NULL)
    return NULL;
  Containerd__Services__Content__V1__InfoResponse *response =
    berth_grpc_message_new (&containerd__services__content__v1__info_response__descriptor);
  response->info = info_copy (found);
  protobuf_c_message_free_unpacked (&found->base, NULL);
  return &response->base;
}

typedef struct {
  const char *ns;
  const Info *update;
  char **paths;
  gsize n_paths;
  Info *result;
} UpdateData;

static gboolean
update_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  UpdateData *data = user_data;
  GetData get = { data->ns, data->update->digest, NULL };
  if (!get_txn (txn, &get, error))
    return FALSE;
  g_autoptr (GHashTable) labels = berth_schema_labels_from_entries ((void *const *) get.found->labels, get.found->n_labels, NULL);
  gint64 size = get.found->size;
  protobuf_c_message_free_unpacked (&get.found->base, NULL);
  g_autoptr (GHashTable) update =
    berth_schema_labels_from_entries ((void *const *) data->update->labels, data->update->n_labels, error);
  if (update == NULL)
    return FALSE;
  char *all[] = { (char *) "labels" };
  if (!berth_api_update_labels (labels, update, data->n_paths ? data->paths : all, data->n_paths ? data->n_paths : 1,
                                NULL, error))
    return FALSE;
  if (!berth_schema_content_record (txn, data->ns, NULL, data->update->digest, size, labels, error))
    return FALSE;
  get.found = NULL;
  if (!get_txn (txn, &get, error))
    return FALSE;
  data->result = info_copy (get.found);
  protobuf_c_message_free_unpacked (&get.found->base, NULL);
  return TRUE;
}

static ProtobufCMessage *
content_update (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Content__V1__UpdateRequest *req = (gpointer) request;
  if (req->info == NULL || !berth_digest_validate (req->info->digest, error))
    return req->info ? NULL : (berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no info given"), NULL);
  UpdateData data = { berth_grpc_call_get_namespace (call), req->info, req->update_mask ? req->update_mask->paths : NULL,
                      req->update_mask ? req->update_mask->n_paths : 0, NULL };
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), update_txn, &data, error))
    {
      berth_grpc_message_free ((ProtobufCMessage *) data.result);
      return NULL;
    }
  Containerd__Services__Content__V1__UpdateResponse *response =
    berth_grpc_message_new (&containerd__services__content__v1__update_response__descriptor);
  response->info = data.result;
  return &response->base;
}

/* ---- List ---- */

static const char *
info_field (const char *const *fieldpath, gpointer object)
{
  const Info *info = object;
  if (fieldpath[0] == NULL)
    return NULL;
  if (g_str_equal (fieldpath[0], "digest") && fieldpath[1] == NULL)
    return info->digest;
  return berth_api_label_field (fieldpath, (void *const *) info->labels, info->n_labels);
}

static gboolean
content_list (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Content__V1__ListContentRequest *req = (gpointer) request;
  g_autoptr (BerthFilter) filter = berth_api_filter_parse (req->filters, req->n_filters, error);
  if (filter == NULL)
    return FALSE;
  g_autofree char *prefix = berth_schema_bucket_prefix (berth_grpc_call_get_namespace (call), BERTH_SCHEMA_BUCKET_CONTENT);
  g_autoptr (GPtrArray) infos = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  if (!berth_schema_collect (berth_daemon_get_metadata (user_data), prefix, &INFO_DESC, filter, info_field, NULL, infos,
                             error))
    return FALSE;
  return berth_grpc_call_send_list (call, g_steal_pointer (&infos), "info", LIST_BATCH);
}

/* ---- Delete ---- */

typedef struct {
  const char *ns;
  const char *digest;
  gboolean still_used; /* by another namespace */
} DeleteData;

static gboolean
delete_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  DeleteData *data = user_data;
  g_autofree char *key = berth_schema_content_key (data->ns, data->digest);
  if (!berth_metadata_txn_delete (txn, key, error))
    {
      g_clear_error (error);
      return berth_throw (error, BERTH_ERROR_NOT_FOUND, "content digest %s: not found", data->digest);
    }
  data->still_used = FALSE;
  g_autoptr (GPtrArray) namespaces = g_ptr_array_new_with_free_func (g_free);
  if (!berth_schema_list_namespaces (txn, namespaces, error))
    return FALSE;
  for (guint i = 0; i < namespaces->len && !data->still_used; i++)
    {
      g_autofree char *other = berth_schema_content_key (namespaces->pdata[i], data->digest);
      g_autoptr (GBytes) found = berth_metadata_txn_get (txn, other, NULL);
      data->still_used = found != NULL;
    }
  return TRUE;
}

static ProtobufCMessage *
content_delete (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Content__V1__DeleteContentRequest *req = (gpointer) request;
  if (!berth_digest_validate (req->digest, error))
    return NULL;
  DeleteData data = { berth_grpc_call_get_namespace (call), req->digest, FALSE };
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), delete_txn, &data, error))
    return NULL;
  /* The blob goes when no namespace sees it any more. */
  if (!data.still_used)
    {
      BerthContentStore *store = berth_daemon_get_content_store (user_data, NULL);
      g_autoptr (GError) local_error = NULL;
      if (store != NULL && !berth_content_store_delete (store, req->digest, NULL, &local_error)
          && !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        g_warning ("removing blob %s: %s", req->digest, local_error->message);
    }
  Containerd__Events__ContentDelete event = CONTAINERD__EVENTS__CONTENT_DELETE__INIT;
  event.digest = req->digest;
  berth_events_publish (berth_daemon_get_events (user_data), data.ns, "/content/delete", &event.base);
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

/* ---- Read ---- */

/* Pulled (berth_grpc_call_pull): a chunk each time the client has room for one, so a
 * reader that stops reading holds no thread. */
typedef struct {
  GInputStream *in;
  char *digest;
  gint64 offset;
  gint64 end;
} ReadState;

static void
read_state_free (ReadState *state)
{
  g_clear_object (&state->in);
  g_free (state->digest);
  g_free (state);
}

static gboolean
read_pull (BerthGrpcCall *call, gpointer data, GError **error)
{
  ReadState *state = data;
  if (state->offset >= state->end)
    return FALSE;
  g_autofree guint8 *buf = g_malloc (MIN (READ_CHUNK, state->end - state->offset));
  gsize got = 0;
  if (!g_input_stream_read_all (state->in, buf, MIN (READ_CHUNK, state->end - state->offset), &got,
                                berth_grpc_call_get_cancellable (call), error))
    return FALSE;
  if (got == 0)
    return berth_throw (error, BERTH_ERROR_DATA_LOSS, "blob %s ended early at %" G_GINT64_FORMAT, state->digest,
                        state->offset);
  Containerd__Services__Content__V1__ReadContentResponse chunk =
    CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_RESPONSE__INIT;
  chunk.offset = state->offset;
  chunk.data.data = buf;
  chunk.data.len = got;
  if (!berth_grpc_call_send (call, &chunk.base, error))
    return FALSE;
  state->offset += got;
  return state->offset < state->end;
}

static gboolean
content_read (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Content__V1__ReadContentRequest *req = (gpointer) request;
  Info *found = lookup (call, req->digest, error);
  if (found == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (&found->base, NULL);
  BerthContentStore *store = berth_daemon_get_content_store (user_data, error);
  if (store == NULL)
    return FALSE;
  gint64 size = 0;
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  g_autoptr (GInputStream) in = berth_content_store_open_reader (store, req->digest, &size, cancellable, error);
  if (in == NULL)
    return FALSE;
  if (req->offset < 0 || req->offset > size || req->size < 0)
    return berth_throw (error, BERTH_ERROR_OUT_OF_RANGE, "read of %" G_GINT64_FORMAT " bytes at %" G_GINT64_FORMAT
                        " outside blob %s of %" G_GINT64_FORMAT " bytes", req->size, req->offset, req->digest, size);
  gint64 end = req->size > 0 ? MIN (size, req->offset + req->size) : size;
  if (req->offset > 0 && !g_seekable_seek (G_SEEKABLE (in), req->offset, G_SEEK_SET, cancellable, error))
    return FALSE;
  if (req->offset >= end)
    return TRUE;
  ReadState *state = g_new0 (ReadState, 1);
  state->in = g_steal_pointer (&in);
  state->digest = g_strdup (req->digest);
  state->offset = req->offset;
  state->end = end;
  berth_grpc_call_pull (call, read_pull, state, (GDestroyNotify) read_state_free);
  return FALSE;
}

/* ---- ingests ---- */

static Containerd__Services__Content__V1__Status *
status_message (const BerthContentStatus *status, const char *ref)
{
  Containerd__Services__Content__V1__Status *out =
    berth_grpc_message_new (&containerd__services__content__v1__status__descriptor);
  out->ref = g_strdup (ref);
  out->offset = status->offset;
  out->total = status->total;
  out->expected = g_strdup (status->expected ? status->expected : "");
  out->started_at = berth_schema_timestamp_new (status->started_at);
  out->updated_at = berth_schema_timestamp_new (status->updated_at);
  return out;
}

static ProtobufCMessage *
content_status (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Content__V1__StatusRequest *req = (gpointer) request;
  BerthContentStore *store = berth_daemon_get_content_store (user_data, error);
  if (store == NULL)
    return NULL;
  g_autofree char *ref = backend_ref (call, req->ref);
  g_autoptr (BerthContentStatus) status = berth_content_store_status (store, ref, NULL, error);
  if (status == NULL)
    return NULL;
  Containerd__Services__Content__V1__StatusResponse *response =
    berth_grpc_message_new (&containerd__services__content__v1__status_response__descriptor);
  response->status = status_message (status, req->ref);
  return &response->base;
}

static const char *
status_field (const char *const *fieldpath, gpointer object)
{
  if (fieldpath[0] != NULL && fieldpath[1] == NULL && g_str_equal (fieldpath[0], "ref"))
    return object;
  return NULL;
}

static ProtobufCMessage *
content_list_statuses (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Content__V1__ListStatusesRequest *req = (gpointer) request;
  g_autoptr (BerthFilter) filter = berth_api_filter_parse (req->filters, req->n_filters, error);
  if (filter == NULL)
    return NULL;
  BerthContentStore *store = berth_daemon_get_content_store (user_data, error);
  if (store == NULL)
    return NULL;
  g_autoptr (GPtrArray) statuses = berth_content_store_list_statuses (store, NULL, error);
  if (statuses == NULL)
    return NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new ();
  for (guint i = 0; i < statuses->len; i++)
    {
      BerthContentStatus *status = statuses->pdata[i];
      const char *ref = client_ref (call, status->ref);
      if (ref != NULL && berth_filter_match (filter, status_field, (gpointer) ref))
        g_ptr_array_add (out, status_message (status, ref));
    }
  Containerd__Services__Content__V1__ListStatusesResponse *response =
    berth_grpc_message_new (&containerd__services__content__v1__list_statuses_response__descriptor);
  response->n_statuses = out->len;
  response->statuses = (Containerd__Services__Content__V1__Status **) g_ptr_array_steal (out, NULL);
  return &response->base;
}

static ProtobufCMessage *
content_abort (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Content__V1__AbortRequest *req = (gpointer) request;
  BerthContentStore *store = berth_daemon_get_content_store (user_data, error);
  if (store == NULL)
    return NULL;
  g_autofree char *ref = backend_ref (call, req->ref);
  if (!berth_content_store_abort (store, ref, NULL, error))
    return NULL;
  return berth_grpc_message_new (&google__protobuf__empty__descriptor);
}

/* ---- Write ----
 *
 * containerd's server semantics (services/content/contentserver + metadata/content.go):
 * a Write whose expected digest the namespace already sees answers ALREADY_EXISTS (and
 * adds the blob to the call's lease); one whose blob the store holds for another
 * namespace has nothing to upload — Status reports it complete and the commit only
 * records it here (containerd's default "shared" content policy); a commit of a blob the
 * namespace already had answers ALREADY_EXISTS. The stream ends after a commit. */

typedef Containerd__Services__Content__V1__WriteContentRequest WriteRequest;

/* One Write stream: the ingest it opened and what the client said so far. */
typedef struct {
  BerthGrpcCall *call;
  BerthDaemon *daemon;
  BerthContentStore *store;
  BerthContentWriter *writer; /* NULL until opened, and while shared */
  gboolean opened;
  char *shared;               /* digest of a blob the store already holds, nothing to write */
  gint64 shared_size;
  gint64 started_at;
  char *client_ref;
  char *ref;
  char *expected;
  gint64 total;
  const char *lease;
} WriteSession;

static void
write_session_clear (WriteSession *ws)
{
  g_clear_object (&ws->writer);
  g_free (ws->shared);
  g_free (ws->client_ref);
  g_free (ws->ref);
  g_free (ws->expected);
}

static gboolean
has_lease (WriteSession *ws)
{
  return ws->lease != NULL && *ws->lease != '\0';
}

static char *
lease_resource_key (WriteSession *ws, const char *type, const char *id)
{
  return berth_schema_lease_resource_key (berth_grpc_call_get_namespace (ws->call), ws->lease, type, id);
}

typedef struct {
  const char *ns;
  const char *lease;
  const char *digest;
  gint64 size;
  GHashTable *labels;
  gboolean existed;
} CommitData;

/* Records the blob in the namespace, or, when the namespace had it already, only adds
 * it to the lease (labels untouched, as containerd does). */
static gboolean
commit_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  CommitData *data = user_data;
  g_autofree char *key = berth_schema_content_key (data->ns, data->digest);
  data->existed = berth_schema_exists (txn, key);
  if (!data->existed)
    return berth_schema_content_record (txn, data->ns, data->lease, data->digest, data->size, data->labels, error);
  if (data->lease == NULL || *data->lease == '\0')
    return TRUE;
  g_autofree char *resource = berth_schema_lease_content_key (data->ns, data->lease, data->digest);
  return berth_metadata_txn_put (txn, resource, "", 0, error);
}

static gboolean
visible_in_namespace (BerthGrpcCall *call, const char *digest)
{
  g_autoptr (GError) ignored = NULL;
  Info *found = lookup (call, digest, &ignored);
  if (found == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (&found->base, NULL);
  return TRUE;
}

/* Takes the expected digest and total a request announces. */
static gboolean
write_take_expectations (WriteSession *ws, const WriteRequest *req, GError **error)
{
  if (req->expected != NULL && *req->expected != '\0')
    {
      if (!berth_digest_validate (req->expected, error))
        return FALSE;
      g_free (ws->expected);
      ws->expected = g_strdup (req->expected);
      if (visible_in_namespace (ws->call, ws->expected))
        {
          if (has_lease (ws))
            {
              /* The lease must hold what its writer found in place, or GC may take it. */
              g_autofree char *key = lease_resource_key (ws, "content", ws->expected);
              if (!berth_schema_put_empty (berth_daemon_get_metadata (ws->daemon), key, error))
                return FALSE;
            }
          if (ws->writer != NULL)
            {
              g_clear_object (&ws->writer);
              berth_content_store_abort (ws->store, ws->ref, NULL, NULL);
            }
          return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "blob with expected digest %s exists", ws->expected);
        }
    }
  if (req->total > 0)
    ws->total = req->total;
  return TRUE;
}

static gboolean
write_open_backend (WriteSession *ws, GError **error)
{
  g_clear_pointer (&ws->shared, g_free);
  ws->writer = berth_content_store_open_writer (ws->store, ws->ref, ws->total, ws->expected,
                                                berth_grpc_call_get_cancellable (ws->call), error);
  return ws->writer != NULL;
}

static gboolean
write_open (WriteSession *ws, const WriteRequest *req, GError **error)
{
  if (!berth_identifier_validate (BERTH_IDENTIFIER_CONTENT_REF, req->ref, error))
    return FALSE;
  ws->store = berth_daemon_get_content_store (ws->daemon, error);
  if (ws->store == NULL)
    return FALSE;
  ws->opened = TRUE;
  ws->started_at = g_get_real_time ();
  ws->lease = berth_grpc_call_get_header (ws->call, "containerd-lease");
  ws->client_ref = g_strdup (req->ref);
  ws->ref = backend_ref (ws->call, req->ref);
  if (!write_take_expectations (ws, req, error))
    return FALSE;
  if (has_lease (ws))
    {
      g_autofree char *key = lease_resource_key (ws, "ingests", ws->client_ref);
      if (!berth_schema_put_empty (berth_daemon_get_metadata (ws->daemon), key, error))
        return FALSE;
    }
  if (ws->expected != NULL)
    {
      g_autoptr (BerthContentInfo) info = berth_content_store_info (ws->store, ws->expected, NULL, NULL);
      if (info != NULL && (ws->total == 0 || ws->total == info->size))
        {
          ws->shared = g_strdup (ws->expected);
          ws->shared_size = ws->total = info->size;
          return TRUE;
        }
    }
  return write_open_backend (ws, error);
}

static BerthContentStatus *
write_status (WriteSession *ws, GError **error)
{
  if (ws->writer != NULL)
    return berth_content_writer_status (ws->writer, error);
  BerthContentStatus *status = g_new0 (BerthContentStatus, 1);
  status->ref = g_strdup (ws->ref);
  status->offset = status->total = ws->shared_size;
  status->expected = g_strdup (ws->shared);
  status->started_at = status->updated_at = ws->started_at;
  return status;
}

static char *
write_digest (WriteSession *ws)
{
  return ws->writer != NULL ? berth_content_writer_digest (ws->writer) : g_strdup (ws->shared);
}

/* The commit of a shared blob checks what a real commit would, and that the blob is
 * still there (another namespace may have let it go since the stream opened). */
static char *
commit_shared (WriteSession *ws, GError **error)
{
  if (ws->total != ws->shared_size)
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "unexpected commit size %" G_GINT64_FORMAT ", expected %"
                   G_GINT64_FORMAT, ws->shared_size, ws->total);
      return NULL;
    }
  if (ws->expected != NULL && !g_str_equal (ws->expected, ws->shared))
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "unexpected commit digest %s, expected %s", ws->shared,
                   ws->expected);
      return NULL;
    }
  g_autoptr (BerthContentInfo) info = berth_content_store_info (ws->store, ws->shared, NULL, NULL);
  if (info == NULL)
    {
      berth_throw (error, BERTH_ERROR_ABORTED, "content %s was removed during the write; write it again", ws->shared);
      return NULL;
    }
  return g_strdup (ws->shared);
}

static gboolean
write_commit (WriteSession *ws, const WriteRequest *req, gint64 size, GError **error)
{
  g_autoptr (GHashTable) labels = NULL;
  if (req->n_labels > 0)
    {
      labels = berth_schema_labels_from_entries ((void *const *) req->labels, req->n_labels, error);
      if (labels == NULL)
        return FALSE;
    }
  g_autoptr (GError) commit_error = NULL;
  g_autofree char *digest = NULL;
  berth_gc_hold ();
  if (ws->writer == NULL)
    digest = commit_shared (ws, &commit_error);
  else
    {
      digest = berth_content_writer_commit (ws->writer, ws->total, ws->expected,
                                            berth_grpc_call_get_cancellable (ws->call), &commit_error);
      /* Stored already (for another namespace): from now on this one sees it too. */
      if (digest == NULL && g_error_matches (commit_error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
        {
          g_clear_error (&commit_error);
          digest = berth_content_writer_digest (ws->writer);
        }
    }
  if (digest == NULL)
    {
      berth_gc_release ();
      g_propagate_error (error, g_steal_pointer (&commit_error));
      return FALSE;
    }
  CommitData data = { berth_grpc_call_get_namespace (ws->call), ws->lease, digest, size, labels, FALSE };
  gboolean recorded = berth_metadata_write (berth_daemon_get_metadata (ws->daemon), commit_txn, &data, error);
  berth_gc_release ();
  if (!recorded)
    return FALSE;
  if (has_lease (ws))
    {
      g_autofree char *key = lease_resource_key (ws, "ingests", ws->client_ref);
      berth_schema_delete (berth_daemon_get_metadata (ws->daemon), key, NULL);
    }
  if (data.existed)
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "content %s: already exists", digest);
  return TRUE;
}

/* Appending to a blob another namespace holds: as containerd's shared writer does, the
 * ingest starts as a copy of that blob. */
static gboolean
write_materialize_shared (WriteSession *ws, GError **error)
{
  g_autofree char *shared = g_strdup (ws->shared);
  GCancellable *cancellable = berth_grpc_call_get_cancellable (ws->call);
  gint64 size = 0;
  g_autoptr (GInputStream) in = berth_content_store_open_reader (ws->store, shared, &size, cancellable, error);
  if (in == NULL || !write_open_backend (ws, error) || !berth_content_writer_truncate (ws->writer, 0, error))
    return FALSE;
  g_autofree guint8 *buf = g_malloc (1 << 20);
  for (gint64 done = 0; done < size;)
    {
      gssize n = g_input_stream_read (in, buf, MIN ((gint64) (1 << 20), size - done), cancellable, error);
      if (n <= 0)
        return n < 0 ? FALSE : berth_throw (error, BERTH_ERROR_DATA_LOSS, "content %s shrank while copying", shared);
      if (!berth_content_writer_write (ws->writer, buf, n, cancellable, error))
        return FALSE;
      done += n;
    }
  return TRUE;
}

/* WRITE and COMMIT: data goes at the current offset; offset 0 restarts the ingest. */
static gboolean
write_data (WriteSession *ws, const WriteRequest *req, gint64 *offset, GError **error)
{
  if (req->offset > 0 && req->offset != *offset)
    return berth_throw (error, BERTH_ERROR_OUT_OF_RANGE,
                        "write @%" G_GINT64_FORMAT " must occur at current offset %" G_GINT64_FORMAT, req->offset, *offset);
  if (req->offset == 0 && *offset > 0)
    {
      /* A restart of a shared blob becomes a real upload. */
      if (ws->writer == NULL && !write_open_backend (ws, error))
        return FALSE;
      if (!berth_content_writer_truncate (ws->writer, 0, error))
        return FALSE;
      *offset = 0;
    }
  if (req->data.len == 0)
    return TRUE;
  if (ws->writer == NULL && !write_materialize_shared (ws, error))
    return FALSE;
  if (!berth_content_writer_write (ws->writer, req->data.data, req->data.len, berth_grpc_call_get_cancellable (ws->call),
                                   error))
    return FALSE;
  *offset += req->data.len;
  return TRUE;
}

/* Handles one request of the stream and answers it. */
static gboolean
write_step (WriteSession *ws, const WriteRequest *req, GError **error)
{
  if (!ws->opened ? !write_open (ws, req, error) : !write_take_expectations (ws, req, error))
    return FALSE;
  g_autoptr (BerthContentStatus) status = write_status (ws, error);
  if (status == NULL)
    return FALSE;
  Containerd__Services__Content__V1__WriteContentResponse msg = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_RESPONSE__INIT;
  msg.action = req->action;
  msg.offset = status->offset;
  g_autoptr (ProtobufCMessage) started = NULL, updated = NULL;
  switch (req->action)
    {
    case CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__STAT:
      started = &berth_schema_timestamp_new (status->started_at)->base;
      updated = &berth_schema_timestamp_new (status->updated_at)->base;
      msg.started_at = (Google__Protobuf__Timestamp *) started;
      msg.updated_at = (Google__Protobuf__Timestamp *) updated;
      msg.total = ws->total;
      break;
    case CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__WRITE:
    case CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT:
      if (!write_data (ws, req, &msg.offset, error))
        return FALSE;
      if (req->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT && !write_commit (ws, req, msg.offset, error))
        return FALSE;
      break;
    default:
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "unknown write action %d", req->action);
    }
  g_autofree char *digest = write_digest (ws);
  msg.digest = digest;
  /* A step must not wait for the client to read: one that lets 4 MiB of these small
   * answers pile up is dropped instead. */
  return berth_grpc_call_try_send (ws->call, &msg.base, error);
}

static void
write_session_free (WriteSession *ws)
{
  write_session_clear (ws);
  g_free (ws);
}

/* One request of the stream, on a worker only when it has arrived: an idle writer
 * holds no thread (berth-grpc.h). */
static gboolean
content_write_step (BerthGrpcCall *call, const ProtobufCMessage *message, gpointer *state, gpointer user_data,
                    GError **error)
{
  const WriteRequest *req = (gpointer) message;
  if (req == NULL)
    return FALSE; /* the client closed its side: done */
  if (*state == NULL)
    {
      WriteSession *ws = g_new0 (WriteSession, 1);
      ws->call = call;
      ws->daemon = user_data;
      *state = ws;
    }
  if (!write_step (*state, req, error))
    return FALSE;
  return req->action != CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT;
}

void
berth_api_register_content (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Info", BERTH_GRPC_UNARY, content_info, NULL },
    { "Update", BERTH_GRPC_UNARY, content_update, NULL },
    { "List", BERTH_GRPC_SERVER_STREAMING, NULL, content_list },
    { "Delete", BERTH_GRPC_UNARY, content_delete, NULL },
    { "Read", BERTH_GRPC_SERVER_STREAMING, NULL, content_read },
    { "Status", BERTH_GRPC_UNARY, content_status, NULL },
    { "ListStatuses", BERTH_GRPC_UNARY, content_list_statuses, NULL },
    { "Write", BERTH_GRPC_BIDI_STREAMING, NULL, NULL, content_write_step, (GDestroyNotify) write_session_free },
    { "Abort", BERTH_GRPC_UNARY, content_abort, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__content__v1__content__descriptor, methods, daemon);
}
