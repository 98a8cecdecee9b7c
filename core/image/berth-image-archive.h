/* berth-image-archive.h — image archives on the daemon's side (core-internal).
 *
 * Import reads, as one stream (optionally gzip or zstd compressed):
 *   - an OCI image layout tar: oci-layout, index.json, blobs/sha256/<hex>; images are
 *     named by each index entry's io.containerd.image.name annotation, or by
 *     @base_name + ":" + its org.opencontainers.image.ref.name;
 *   - a `docker save` tar: manifest.json (Config, RepoTags, Layers by path) and the files
 *     it names; a Docker schema 2 manifest is made for each entry and each RepoTag
 *     ("busybox:1" → "docker.io/library/busybox:1") becomes an image.
 * Every blob is verified while it streams into the content store (blobs/sha256/<hex>
 * must hash to <hex>), recorded in @ns with the containerd.io/gc.ref.content labels
 * GC follows (index → manifests, manifest → config and layers), and held by a
 * temporary lease until the images exist, so a concurrent GC never takes half an
 * import; on failure the lease goes and GC takes what was written.
 *
 * Export writes an OCI image layout tar of the named images (all their blobs present in
 * the store) plus a Docker-compatible manifest.json, so both `ctr images import` and
 * `docker load` read it.
 */
#pragma once

#include <gio/gio.h>
#include "daemon/berth-daemon.h"

G_BEGIN_DECLS

/* Returns the names of the images created or updated (g_free'd strings). */
GPtrArray *berth_image_archive_import (BerthDaemon *daemon, const char *ns, GInputStream *input, const char *base_name,
                                       GCancellable *cancellable, GError **error);

/* Called, in the importing thread, as each blob is stored (or found already stored). */
typedef void (*BerthImageArchiveProgress) (const char *digest, gint64 size, gpointer user_data);
GPtrArray *berth_image_archive_import_full (BerthDaemon *daemon, const char *ns, GInputStream *input,
                                            const char *base_name, BerthImageArchiveProgress progress,
                                            gpointer progress_data, GCancellable *cancellable, GError **error);

gboolean berth_image_archive_export (BerthDaemon *daemon, const char *ns, const char *const *names,
                                     GOutputStream *output, GCancellable *cancellable, GError **error);

/* What the berth-image-archive module exports (core/daemon/berth-modules.h); the two
 * functions above call them, opening the module on first use. */
GPtrArray *berth_image_archive_module_import (BerthDaemon *daemon, const char *ns, GInputStream *input,
                                              const char *base_name, BerthImageArchiveProgress progress,
                                              gpointer progress_data, GCancellable *cancellable, GError **error);
gboolean berth_image_archive_module_export (BerthDaemon *daemon, const char *ns, const char *const *names,
                                            GOutputStream *output, GCancellable *cancellable, GError **error);

G_END_DECLS
