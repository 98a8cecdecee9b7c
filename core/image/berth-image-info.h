/* berth-image-info.h — what running a stored image needs, resolved on the daemon's side
 * (core-internal): its manifest for this platform, its config, and the chain ID of its
 * top layer (the snapshot a container's rootfs is prepared on). The CRI services use it;
 * the berth CLI does the same through the API (cli_image_resolve).
 */
#pragma once

#include <json-glib/json-glib.h>
#include "daemon/berth-daemon.h"

G_BEGIN_DECLS

typedef struct {
  char *name;             /* the image record's name */
  BerthDescriptor *target;
  char *manifest_digest;
  char *config_digest;    /* the image's ID */
  JsonNode *config;       /* the config document (object) */
  char *chain_id;         /* NULL for an image without layers */
  gint64 size;            /* config + layers, compressed */
} BerthImageInfo;

/* NOT_FOUND naming @name when namespace @ns has no such image or no manifest for
 * linux/<this architecture>; INVALID_ARGUMENT / DATA_LOSS for malformed documents. */
BerthImageInfo *berth_image_info_resolve (BerthDaemon *daemon, const char *ns, const char *name,
                                          GCancellable *cancellable, GError **error);
void berth_image_info_free (BerthImageInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthImageInfo, berth_image_info_free)

G_END_DECLS
