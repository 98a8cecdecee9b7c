/* berth-differ.h — BerthDiffer: layers in and out of mounted snapshots.
 *
 * Apply unpacks a layer blob from the content store onto mounts (OCI whiteouts, hostile
 * archives refused); Compare writes the difference between two mount sets as a new
 * layer blob into the content store. A differ gets the content store it works with
 * from its plugin context (it requires BERTH_PLUGIN_TYPE_CONTENT).
 */
#pragma once

#include <gio/gio.h>
#include <berth/berth-types.h>

G_BEGIN_DECLS

#define BERTH_TYPE_DIFFER (berth_differ_get_type ())
G_DECLARE_INTERFACE (BerthDiffer, berth_differ, BERTH, DIFFER, GObject)

struct _BerthDifferInterface {
  GTypeInterface g_iface;
  /* Applies @layer (tar, tar+gzip, tar+zstd; OCI or Docker media types) onto @mounts.
   * Returns the applied descriptor: uncompressed media type, digest = the diff ID
   * (verified while applying), size = uncompressed bytes. @payloads (may be NULL):
   * type URL → GBytes, as containerd's ApplyRequest.payloads. */
  BerthDescriptor *(*apply) (BerthDiffer *self, const BerthDescriptor *layer, GPtrArray *mounts,
                             GHashTable *payloads, GCancellable *cancellable, GError **error);
  /* Writes upper − lower as a layer of @media_type (NULL: tar+gzip) under ingest @ref
   * (NULL: a fresh one) with @labels on the blob; returns its descriptor. The blob's
   * labels gain "containerd.io/uncompressed" = its diff ID. */
  BerthDescriptor *(*compare) (BerthDiffer *self, GPtrArray *lower, GPtrArray *upper,
                               const char *media_type, const char *ref, GHashTable *labels,
                               GCancellable *cancellable, GError **error);
};

BerthDescriptor *berth_differ_apply (BerthDiffer *self, const BerthDescriptor *layer, GPtrArray *mounts,
                                     GHashTable *payloads, GCancellable *cancellable, GError **error);
BerthDescriptor *berth_differ_compare (BerthDiffer *self, GPtrArray *lower, GPtrArray *upper,
                                       const char *media_type, const char *ref, GHashTable *labels,
                                       GCancellable *cancellable, GError **error);

G_END_DECLS
