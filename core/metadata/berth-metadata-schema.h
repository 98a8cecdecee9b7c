/* berth-metadata-schema.h — the one place the metadata store's keys and records are
 * spelled (core-internal), like containerd's metadata/buckets.go.
 *
 * GC, the services and the image store must agree byte for byte on every key: build
 * them here and nowhere else. The layout (unchanged since the first root on disk):
 *   "ns/<namespace>"                                    namespace (packed Namespace)
 *   "v1/<ns>/images/<name>"                             image (packed Image)
 *   "v1/<ns>/content/<digest>"                          content visible in ns (packed Info)
 *   "v1/<ns>/containers/<id>"                           container (packed Container)
 *   "v1/<ns>/leases/<id>"                               lease (packed Lease)
 *   "v1/<ns>/leases/<id>/r/content/<digest>"            a lease's resources (empty values)
 *   "v1/<ns>/leases/<id>/r/snapshots/<snapshotter>/<key>"
 *   "v1/<ns>/leases/<id>/r/ingests/<ref>"
 *   "v1/<ns>/snapshots/<snapshotter>/<key>"             snapshot reference
 *   "cri/<ns>/<kind>/<id>"                              the CRI service's own records
 *   "meta/<name>"                                       daemon-wide values
 * Every constructor returns a newly allocated string.
 */
#pragma once

#include <protobuf-c/protobuf-c.h>

#include <berth/berth-types.h>
#include "berth-metadata.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"

G_BEGIN_DECLS

/* ---------------- keys ---------------- */

#define BERTH_SCHEMA_NAMESPACES_PREFIX "ns/"
#define BERTH_SCHEMA_UUID_KEY "meta/uuid"

/* The buckets below "v1/<ns>/", and the lease resource types below ".../r/". */
#define BERTH_SCHEMA_BUCKET_IMAGES "images"
#define BERTH_SCHEMA_BUCKET_CONTENT "content"
#define BERTH_SCHEMA_BUCKET_CONTAINERS "containers"
#define BERTH_SCHEMA_BUCKET_LEASES "leases"
#define BERTH_SCHEMA_BUCKET_SNAPSHOTS "snapshots"
#define BERTH_SCHEMA_RESOURCE_CONTENT "content"
#define BERTH_SCHEMA_RESOURCE_SNAPSHOTS "snapshots"
#define BERTH_SCHEMA_RESOURCE_INGESTS "ingests"

char *berth_schema_namespace_key (const char *ns);
/* The namespace a "ns/<name>" key names (a pointer into @key). */
const char *berth_schema_namespace_from_key (const char *key);
/* "v1/<ns>/<bucket>/": every record of one kind in one namespace. */
char *berth_schema_bucket_prefix (const char *ns, const char *bucket);

char *berth_schema_image_key (const char *ns, const char *name);
char *berth_schema_content_key (const char *ns, const char *digest);
char *berth_schema_container_key (const char *ns, const char *id);
char *berth_schema_lease_key (const char *ns, const char *id);
char *berth_schema_snapshot_key (const char *ns, const char *snapshotter, const char *key);

/* "v1/<ns>/leases/<lease>/r/": every resource of one lease. */
char *berth_schema_lease_resources_prefix (const char *ns, const char *lease);
/* A lease resource: @type is "content", "ingests" or "snapshots/<snapshotter>". */
char *berth_schema_lease_resource_key (const char *ns, const char *lease, const char *type, const char *id);
char *berth_schema_lease_content_key (const char *ns, const char *lease, const char *digest);
char *berth_schema_lease_snapshot_key (const char *ns, const char *lease, const char *snapshotter, const char *key);
char *berth_schema_lease_ingest_key (const char *ns, const char *lease, const char *ref);
/* For a key under "v1/<ns>/leases/": "<type>/<id>" when it is a resource (a pointer
 * into @key; *lease_len_out, when given, is the length of its lease's key), else NULL. */
const char *berth_schema_lease_resource_of (const char *key, gsize *lease_len_out);

/* "cri/<ns>/<kind>/<id>"; with @id NULL, the prefix of every record of @kind. */
char *berth_schema_cri_key (const char *ns, const char *kind, const char *id);

/* ---------------- records ---------------- */

/* Packs @message into the store under @key. */
gboolean berth_schema_put (BerthMetadataTxn *txn, const char *key, const ProtobufCMessage *message, GError **error);
/* Unpacks the record under @key with @descriptor (NULL, no error, when absent); free
 * with protobuf_c_message_free_unpacked (message, NULL). */
ProtobufCMessage *berth_schema_get (BerthMetadataTxn *txn, const char *key,
                                    const ProtobufCMessageDescriptor *descriptor, GError **error);
/* Whether @key is in the store. */
gboolean berth_schema_exists (BerthMetadataTxn *txn, const char *key);
/* Unpacks every record under @prefix with @descriptor into @out (berth_grpc_message_free
 * as its free function) when @filter accepts it; keys for which @skip_key says TRUE are
 * passed over. In a read transaction of its own. */
gboolean berth_schema_collect (BerthMetadata *md, const char *prefix, const ProtobufCMessageDescriptor *descriptor,
                               BerthFilter *filter, BerthFieldLookup lookup, gboolean (*skip_key) (const char *key),
                               GPtrArray *out, GError **error);
/* One-key writes in their own transaction. */
gboolean berth_schema_put_empty (BerthMetadata *md, const char *key, GError **error);
gboolean berth_schema_delete (BerthMetadata *md, const char *key, GError **error);

/* Records namespace @ns as existing (containerd creates namespaces on first use). */
gboolean berth_schema_namespace_touch (BerthMetadataTxn *txn, const char *ns, GError **error);
/* Every namespace known to the store, as g_strdup'd names. */
gboolean berth_schema_list_namespaces (BerthMetadataTxn *txn, GPtrArray *names_out, GError **error);

/* Records @digest as visible in @ns (labels replaced when @labels ≠ NULL, else kept)
 * and, under @lease, as one of its resources. */
gboolean berth_schema_content_record (BerthMetadataTxn *txn, const char *ns, const char *lease, const char *digest,
                                      gint64 size, GHashTable *labels, GError **error);

/* A container record (NOT_FOUND when absent); free with berth_grpc_message_free. */
Containerd__Services__Containers__V1__Container *berth_schema_container_get (BerthMetadataTxn *txn, const char *ns,
                                                                             const char *id, GError **error);
/* The same in a read transaction of its own. */
Containerd__Services__Containers__V1__Container *berth_schema_container_read (BerthMetadata *metadata, const char *ns,
                                                                              const char *id, GError **error);

/* ---------------- record fields ---------------- */

/* protoc-c gives each map<string,string> its own entry type; they all share this layout. */
typedef struct {
  ProtobufCMessage base;
  char *key;
  char *value;
} BerthSchemaMapEntry;

/* Entries → a labels table (berth_labels_new); validates containerd's label limits. */
GHashTable *berth_schema_labels_from_entries (void *const *entries, gsize n_entries, GError **error);
/* A labels table → freshly allocated entries of @entry_descriptor. */
void berth_schema_labels_to_entries (GHashTable *labels, const ProtobufCMessageDescriptor *entry_descriptor,
                                     void ***entries_out, size_t *n_out);

Google__Protobuf__Timestamp *berth_schema_timestamp_new (gint64 usec);
gint64 berth_schema_timestamp_to_usec (const Google__Protobuf__Timestamp *timestamp);

G_END_DECLS
