/* berth-json-limits.h — the bounds every JSON document from outside (manifests, indexes,
 * image configs, OCI specs, CRI and registry replies) must keep before a parser sees it.
 * json-glib builds its tree recursively, so a document nested a few hundred thousand
 * levels deep overflows a thread's stack: the depth is counted here, without recursion,
 * first. This header needs no json-glib, so a plugin can check what it parses too.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Real documents nest a dozen levels; Go's encoding/json (containerd) stops at 10000. */
#define BERTH_JSON_MAX_DEPTH 1000
/* An image config with a long history is a few hundred KiB; a manifest or index, less. */
#define BERTH_JSON_MAX_SIZE (8 << 20)

/* INVALID_ARGUMENT naming @what and the limit when @data (@len bytes) is larger than
 * BERTH_JSON_MAX_SIZE or nests arrays and objects deeper than BERTH_JSON_MAX_DEPTH. */
gboolean berth_json_check_limits (const char *data, gsize len, const char *what, GError **error);

G_END_DECLS
