/* berth-identifiers.h — the one place that says what a name may be, for the core and
 * for plugins alike.
 *
 * containerd 1.6 checks only some names with identifiers.Validate: namespaces,
 * container ids (and what is named after them: task, shim, bundle) and exec ids (its
 * runtime v2 refuses any other before a shim sees it). Everything else — lease ids,
 * image names, snapshot keys, content ingest refs — is free-form there: any non-empty
 * string (ctr names a lease after a directory, "/tmp/x/mnt"). berth stores those as
 * parts of LMDB keys (at most 511 bytes), so a free-form name has a length limit here
 * that containerd lacks; passing it is INVALID_ARGUMENT, never a store error.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  /* containerd's identifiers.Validate: ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$, at most 76 */
  BERTH_IDENTIFIER_NAMESPACE,
  BERTH_IDENTIFIER_CONTAINER,
  BERTH_IDENTIFIER_EXEC,
  /* free-form: non-empty, bounded by what the metadata store's keys can hold */
  BERTH_IDENTIFIER_LEASE,
  BERTH_IDENTIFIER_IMAGE,
  BERTH_IDENTIFIER_SNAPSHOT_KEY,
  BERTH_IDENTIFIER_CONTENT_REF,
} BerthIdentifierKind;

/* INVALID_ARGUMENT naming the object ("container id \"a..b\": ...") unless @id is
 * acceptable for @kind. @id may be NULL (then it is empty). */
gboolean berth_identifier_validate (BerthIdentifierKind kind, const char *id, GError **error);
/* The longest @kind accepted, in bytes. */
gsize berth_identifier_max_length (BerthIdentifierKind kind);

G_END_DECLS
