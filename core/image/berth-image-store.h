/* berth-image-store.h — images as blobs in the content store plus records in the
 * metadata (core-internal): what archive import and registry pull share.
 *
 * A BerthImageIngest is one operation that brings an image in. It owns a temporary
 * lease (expiring after an hour, in case berthd dies mid-way) that holds every blob
 * and snapshot it makes until the images naming them exist, so a concurrent GC never
 * takes half an image; freeing the ingest drops the lease, and on failure GC takes what
 * was written. Blobs are committed into the content store and recorded in the
 * namespace with GC held off between the two steps; label_tree adds the
 * containerd.io/gc.ref.content labels GC follows (index → manifests, manifest →
 * config and layers); finish writes those labels and the image records in one
 * transaction and publishes /images/create or /images/update.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include "daemon/berth-daemon.h"
#include "berth-json.h"

G_BEGIN_DECLS

#define BERTH_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define BERTH_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define BERTH_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define BERTH_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define BERTH_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define BERTH_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define BERTH_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define BERTH_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define BERTH_LABEL_REF_CONTENT "containerd.io/gc.ref.content."
#define BERTH_LABEL_REF_SNAPSHOT "containerd.io/gc.ref.snapshot."
/* + "<registry host>" = comma-separated repositories the blob came from (containerd's). */
#define BERTH_LABEL_DISTRIBUTION_SOURCE "containerd.io/distribution.source."
#define BERTH_LABEL_UNCOMPRESSED "containerd.io/uncompressed"
/* Most manifests an index, or layers a manifest, may list (a walk of an image visits each
 * distinct document once, but labels every entry). */
#define BERTH_IMAGE_MAX_CHILDREN 10000
/* Largest manifest, index or config read into memory. */
#define BERTH_MAX_JSON BERTH_JSON_MAX_SIZE

gboolean berth_media_type_is_index (const char *media_type);
gboolean berth_media_type_is_manifest (const char *media_type);
/* An OCI descriptor object; INVALID_ARGUMENT naming @what when malformed. */
BerthDescriptor *berth_descriptor_from_json (JsonObject *object, const char *what, GError **error);
JsonNode *berth_descriptor_to_json (const BerthDescriptor *desc);

/* A manifest, index or config blob (≤ BERTH_MAX_JSON). */
GBytes *berth_image_read_json_blob (BerthContentStore *store, const char *digest, GCancellable *cancellable,
                                    GError **error);
typedef enum {
  BERTH_IMAGE_CHILD_MANIFEST, /* an entry of an index */
  BERTH_IMAGE_CHILD_CONFIG,
  BERTH_IMAGE_CHILD_LAYER,
} BerthImageChildKind;

typedef struct {
  BerthImageChildKind kind;
  guint index; /* its position among the index's manifests or the manifest's layers */
  BerthDescriptor *desc;
} BerthImageChild;

/* The blobs an index or a manifest (@desc) names, in document order: an index's manifests;
 * a manifest's config, then its layers. Empty for any other media type. INVALID_ARGUMENT
 * when the document or one of its descriptors is malformed. Import, export and push all
 * walk an image through this. */
GPtrArray *berth_image_read_children (BerthContentStore *store, const BerthDescriptor *desc,
                                      GCancellable *cancellable, GError **error);
const char *berth_image_child_kind_name (BerthImageChildKind kind);

/* Whether namespace @ns sees blob @digest. */
gboolean berth_image_blob_visible (BerthDaemon *daemon, const char *ns, const char *digest);
/* The image's target; NOT_FOUND naming it when @ns has no such image. */
BerthDescriptor *berth_image_get_target (BerthDaemon *daemon, const char *ns, const char *name, GError **error);
/* The labels namespace @ns has on blob @digest (empty when none). */
GHashTable *berth_image_blob_labels (BerthDaemon *daemon, const char *ns, const char *digest, GError **error);

typedef struct _BerthImageIngest BerthImageIngest;

/* Creates the operation's lease; @purpose names it ("import", "pull"). */
BerthImageIngest *berth_image_ingest_new (BerthDaemon *daemon, const char *ns, const char *purpose,
                                          GCancellable *cancellable, GError **error);
/* Drops the lease. */
void berth_image_ingest_free (BerthImageIngest *ingest);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthImageIngest, berth_image_ingest_free)

BerthDaemon *berth_image_ingest_get_daemon (BerthImageIngest *ingest);
BerthContentStore *berth_image_ingest_get_store (BerthImageIngest *ingest);
const char *berth_image_ingest_get_namespace (BerthImageIngest *ingest);
const char *berth_image_ingest_get_lease (BerthImageIngest *ingest);
GCancellable *berth_image_ingest_get_cancellable (BerthImageIngest *ingest);
/* "<ns>/<lease>/<name>": a backend ingest ref private to this operation. */
char *berth_image_ingest_ref (BerthImageIngest *ingest, const char *name);

/* Puts ingest "<ns>/@name" (a backend ref) under the lease: GC leaves it alone while
 * the lease lives, and a later operation may resume it. */
gboolean berth_image_ingest_hold_ref (BerthImageIngest *ingest, const char *name, GError **error);

/* Commits @writer (a blob already stored is as good) and records it in the namespace
 * under the lease. Errors are prefixed with @what. Returns the digest. */
char *berth_image_ingest_commit (BerthImageIngest *ingest, BerthContentWriter *writer, gint64 size,
                                 const char *expected, const char *what, GError **error);
/* Stores @bytes under ingest name @name (verified against @expected when given). */
char *berth_image_ingest_store_bytes (BerthImageIngest *ingest, const char *name, GBytes *bytes,
                                      const char *expected, GError **error);
/* Makes a blob already in the store visible in the namespace, under the lease.
 * NOT_FOUND naming @owner when the store lacks it; FAILED_PRECONDITION when its size is
 * not @desc's. */
gboolean berth_image_ingest_adopt (BerthImageIngest *ingest, const BerthDescriptor *desc, const char *owner,
                                   GError **error);
/* Adopts @desc's children recursively and labels each parent with references to them;
 * index entries the store lacks are skipped (a multi-platform index usually comes with
 * one platform). */
gboolean berth_image_ingest_label_tree (BerthImageIngest *ingest, const BerthDescriptor *desc, GError **error);
/* One more label for @digest's record, written by finish. Values of
 * BERTH_LABEL_DISTRIBUTION_SOURCE keys merge with what the record has. */
void berth_image_ingest_add_label (BerthImageIngest *ingest, const char *digest, const char *key, const char *value);
/* Image @name → @target, written by finish (the last target given for a name wins). */
void berth_image_ingest_add_image (BerthImageIngest *ingest, const char *name, const BerthDescriptor *target);
/* Writes the labels and the images in one transaction and publishes their events.
 * Returns the image names (g_free'd strings). */
GPtrArray *berth_image_ingest_finish (BerthImageIngest *ingest, GError **error);

G_END_DECLS
