/* berth-digest.h — streaming SHA-256 with the CPU's SHA extensions (nettle);
 * GChecksum is several times slower. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _BerthDigester BerthDigester;

BerthDigester *berth_digester_new (void);
void berth_digester_update (BerthDigester *digester, const void *data, gsize len);
/* "sha256:<hex>" of everything so far; the digester can keep going. */
char *berth_digester_get_digest (BerthDigester *digester);
BerthDigester *berth_digester_copy (BerthDigester *digester);
void berth_digester_free (BerthDigester *digester);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthDigester, berth_digester_free)

/* One-shot. */
char *berth_digest_bytes (const void *data, gsize len);

G_END_DECLS
