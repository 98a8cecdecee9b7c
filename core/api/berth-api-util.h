/* berth-api-util.h — conversions every service needs (core-internal). */
#pragma once

#include "berth-grpc-wire.h"

#include "berth-grpc.h"
#include "berth-metadata.h"
#include "berth-daemon.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "github.com/containerd/containerd/api/types/mount.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"

G_BEGIN_DECLS

/* protoc-c gives each map<string,string> its own entry type; they all share this layout. */
typedef struct {
  ProtobufCMessage base;
  char *key;
  char *value;
} BerthApiMapEntry;

/* Entries → a labels table (berth_labels_new); validates containerd's label limits. */
GHashTable *berth_api_labels_from_entries (void *const *entries, gsize n_entries, GError **error);
/* A labels table → freshly allocated entries of @entry_descriptor (for responses). */
void berth_api_labels_to_entries (GHashTable *labels, const ProtobufCMessageDescriptor *entry_descriptor,
                                  void ***entries_out, size_t *n_out);

Google__Protobuf__Timestamp *berth_api_timestamp_new (gint64 usec);
gint64 berth_api_timestamp_to_usec (const Google__Protobuf__Timestamp *timestamp);

/* Applies a field mask's paths to @labels from @update: "labels" replaces all,
 * "labels.<k>" sets or removes one key. Other paths are left to the caller: returns
 * FALSE with INVALID_ARGUMENT naming a path that is neither. */
gboolean berth_api_update_labels (GHashTable *labels, GHashTable *update, char **paths, gsize n_paths,
                                  const char *const *other_allowed, GError **error);

/* Records namespace @ns as existing (containerd creates namespaces on first use). */
gboolean berth_api_namespace_touch (BerthMetadataTxn *txn, const char *ns, GError **error);

/* Packs @message into the store under @key. */
gboolean berth_api_put_message (BerthMetadataTxn *txn, const char *key, const ProtobufCMessage *message,
                                GError **error);
/* Unpacks the record under @key with @descriptor (NULL, no error, when absent); free
 * with protobuf_c_message_free_unpacked (message, NULL). */
ProtobufCMessage *berth_api_get_message (BerthMetadataTxn *txn, const char *key,
                                         const ProtobufCMessageDescriptor *descriptor, GError **error);

/* A deep copy whose every pointer is owned (pack + unpack through the server's
 * allocator): ready to be a response, freed with berth_grpc_message_free. */
gpointer berth_api_message_copy (const ProtobufCMessage *message);
/* Unpacks a stored record the same way (NULL when it does not parse). */
gpointer berth_api_message_unpack (const ProtobufCMessageDescriptor *descriptor, const guint8 *data, gsize len);

/* Every namespace known to the store ("ns/<name>" records), as g_strdup'd names. */
gboolean berth_api_list_namespaces (BerthMetadataTxn *txn, GPtrArray *names_out, GError **error);
/* Parses a request's filters: protobuf-c's repeated strings are counted, not
 * NULL-terminated, so they never go to a GStrv function directly. */
BerthFilter *berth_api_filter_parse (char **filters, size_t n_filters, GError **error);
/* Whether a counted string array (a field mask's paths) holds @value. */
gboolean berth_api_strings_contain (char **strings, size_t n, const char *value);

/* BerthMount lists → API mounts (the other way: berth_proto_mounts_to_list). */
Containerd__Types__Mount **berth_api_mounts_to (GPtrArray *mounts, size_t *n_out);

/* The value of "labels.<key>" for a filter lookup over a message's map entries. */
const char *berth_api_label_field (const char *const *fieldpath, void *const *entries, size_t n_entries);

/* Unpacks every record under @prefix with @descriptor into @out (berth_grpc_message_free
 * as its free function) when @filter accepts it; keys for which @skip_key says TRUE are
 * passed over. */
gboolean berth_api_collect (BerthMetadata *md, const char *prefix, const ProtobufCMessageDescriptor *descriptor,
                            BerthFilter *filter, BerthFieldLookup lookup, gboolean (*skip_key) (const char *key),
                            GPtrArray *out, GError **error);

/* Whether @key is in the store. */
gboolean berth_api_key_exists (BerthMetadataTxn *txn, const char *key);
/* One-key writes in their own transaction. */
gboolean berth_api_metadata_put_empty (BerthMetadata *md, const char *key, GError **error);
gboolean berth_api_metadata_delete (BerthMetadata *md, const char *key, GError **error);

/* Content visibility per namespace (content.c): "v1/<ns>/content/<digest>". */
char *berth_api_content_key (const char *ns, const char *digest);
/* Records @digest as visible in @ns (labels replaced when @labels ≠ NULL) and, under
 * @lease, as one of its resources. */
gboolean berth_api_content_record (BerthMetadataTxn *txn, const char *ns, const char *lease, const char *digest,
                                   gint64 size, GHashTable *labels, GError **error);

/* A container record (containers.c); free with berth_grpc_message_free. */
Containerd__Services__Containers__V1__Container *berth_api_container_get (BerthMetadataTxn *txn, const char *ns,
                                                                          const char *id, GError **error);

/* The same in a read transaction of its own. */
Containerd__Services__Containers__V1__Container *berth_api_container_read (BerthDaemon *daemon, const char *ns,
                                                                           const char *id, GError **error);

/* Waiting for a process to exit without a thread: @func runs once, when process
 * @exec_id (NULL or "": init) of @task exits (from the thread the runtime announces it
 * in, usually the main one) or at once, in this call, if it has exited already; with
 * @error (NOT_FOUND) when there is no such exec. Call from a worker: it asks the runtime
 * for the process's state. @func runs under the waiter's lock: it must not block or
 * cancel the waiter. After berth_api_exit_waiter_cancel returns, @func does not run. */
typedef struct _BerthApiExitWaiter BerthApiExitWaiter;
typedef void (*BerthApiExitFunc) (const BerthExitStatus *exit, const GError *error, gpointer user_data);
BerthApiExitWaiter *berth_api_wait_exit (BerthTask *task, const char *exec_id, BerthApiExitFunc func,
                                         gpointer user_data);
void berth_api_exit_waiter_cancel (BerthApiExitWaiter *waiter);

G_END_DECLS
