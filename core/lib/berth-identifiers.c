/* berth-identifiers.c — containerd's identifier rule, and bounds for free-form names
 * (declared in the public berth/berth-identifiers.h; part of libberth-1). */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-identifiers.h>

/* containerd: identifiers/validate.go. */
#define IDENTIFIER_MAX 76
#define IDENTIFIER_RE "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"

/* Metadata keys hold at most 511 bytes: "v1/<ns ≤ 76>/leases/<lease>/r/snapshots/<snapshotter>/<key>"
 * is the longest composition, so a lease plus a snapshot key must leave room for the rest. */
static const struct {
  const char *what;
  gsize max;
  gboolean identifier; /* containerd's rule applies, not only the length */
} kinds[] = {
  [BERTH_IDENTIFIER_NAMESPACE] = { "namespace", IDENTIFIER_MAX, TRUE },
  [BERTH_IDENTIFIER_CONTAINER] = { "container id", IDENTIFIER_MAX, TRUE },
  /* containerd's runtime v2 (shimTask.Exec) validates exec ids as identifiers. */
  [BERTH_IDENTIFIER_EXEC] = { "exec id", IDENTIFIER_MAX, TRUE },
  [BERTH_IDENTIFIER_LEASE] = { "lease id", 128, FALSE },
  [BERTH_IDENTIFIER_IMAGE] = { "image name", 400, FALSE },
  [BERTH_IDENTIFIER_SNAPSHOT_KEY] = { "snapshot key", 240, FALSE },
  [BERTH_IDENTIFIER_CONTENT_REF] = { "ingest ref", 240, FALSE },
};

static gboolean
matches_identifier (const char *s, gsize len)
{
  /* [A-Za-z0-9]+ groups joined by single separators: no separator first, last or twice. */
  if (!g_ascii_isalnum (s[0]) || !g_ascii_isalnum (s[len - 1]))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (s[i]) && (strchr ("._-", s[i]) == NULL || !g_ascii_isalnum (s[i + 1])))
      return FALSE;
  return TRUE;
}

gsize
berth_identifier_max_length (BerthIdentifierKind kind)
{
  g_return_val_if_fail (kind < G_N_ELEMENTS (kinds), 0);
  return kinds[kind].max;
}

gboolean
berth_identifier_validate (BerthIdentifierKind kind, const char *id, GError **error)
{
  g_return_val_if_fail (kind < G_N_ELEMENTS (kinds), FALSE);
  const char *what = kinds[kind].what;
  gsize len = id ? strlen (id) : 0;
  if (len == 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s must not be empty", what);
  if (len > kinds[kind].max)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s \"%.40s…\" of %zu bytes: greater than maximum length (%zu)",
                        what, id, len, kinds[kind].max);
  if (kinds[kind].identifier && !matches_identifier (id, len))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s \"%s\": identifier must match %s", what, id, IDENTIFIER_RE);
  return TRUE;
}
