/* berth-digest.c — streaming SHA-256 through OpenSSL EVP, loaded on first use.
 *
 * libcrypto is opened with dlopen when the first digester is made rather than linked:
 * mapping and initialising it costs every berthd about 1.4 MB of resident pages, and an
 * idle daemon hashes nothing. Where libcrypto cannot be opened the digester falls back
 * to GChecksum — the same digests, several times slower (no SHA extensions). */
#include "config.h"

#include <gmodule.h>
#include <openssl/evp.h>

#include <berth/berth-digest.h>

typedef struct {
  EVP_MD_CTX *(*ctx_new) (void);
  void (*ctx_free) (EVP_MD_CTX *ctx);
  int (*ctx_copy) (EVP_MD_CTX *out, const EVP_MD_CTX *in);
  const EVP_MD *(*sha256) (void);
  int (*init) (EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl);
  int (*update) (EVP_MD_CTX *ctx, const void *data, size_t len);
  int (*final) (EVP_MD_CTX *ctx, unsigned char *md, unsigned int *len);
} Evp;

struct _BerthDigester {
  EVP_MD_CTX *ctx;       /* with libcrypto */
  GChecksum *checksum;   /* without it */
  guint64 length;
};

/* NULL when libcrypto is not available. Never unloaded: digesters live anywhere. */
static const Evp *
evp_get (void)
{
  static Evp evp;
  static gsize loaded;
  static gboolean available;
  if (g_once_init_enter (&loaded))
    {
      GModule *module = g_module_open (BERTH_LIBCRYPTO_SONAME, G_MODULE_BIND_LOCAL);
      available = module != NULL
                  && g_module_symbol (module, "EVP_MD_CTX_new", (gpointer *) &evp.ctx_new)
                  && g_module_symbol (module, "EVP_MD_CTX_free", (gpointer *) &evp.ctx_free)
                  && g_module_symbol (module, "EVP_MD_CTX_copy_ex", (gpointer *) &evp.ctx_copy)
                  && g_module_symbol (module, "EVP_sha256", (gpointer *) &evp.sha256)
                  && g_module_symbol (module, "EVP_DigestInit_ex", (gpointer *) &evp.init)
                  && g_module_symbol (module, "EVP_DigestUpdate", (gpointer *) &evp.update)
                  && g_module_symbol (module, "EVP_DigestFinal_ex", (gpointer *) &evp.final);
      if (!available)
        g_message ("%s: %s; hashing with GChecksum (slower)", BERTH_LIBCRYPTO_SONAME,
                   module ? "lacks the EVP digest calls" : g_module_error ());
      g_once_init_leave (&loaded, 1);
    }
  return available ? &evp : NULL;
}

BerthDigester *
berth_digester_new (void)
{
  BerthDigester *digester = g_new0 (BerthDigester, 1);
  const Evp *evp = evp_get ();
  if (evp == NULL)
    {
      digester->checksum = g_checksum_new (G_CHECKSUM_SHA256);
      return digester;
    }
  digester->ctx = evp->ctx_new ();
  if (digester->ctx == NULL || !evp->init (digester->ctx, evp->sha256 (), NULL))
    g_error ("OpenSSL cannot set up SHA-256");
  return digester;
}

void
berth_digester_update (BerthDigester *digester, const void *data, gsize len)
{
  if (digester->checksum != NULL)
    g_checksum_update (digester->checksum, data, (gssize) len);
  else
    evp_get ()->update (digester->ctx, data, len);
  digester->length += len;
}

char *
berth_digester_get_digest (BerthDigester *digester)
{
  g_autoptr (BerthDigester) copy = berth_digester_copy (digester);
  if (copy->checksum != NULL)
    return g_strconcat ("sha256:", g_checksum_get_string (copy->checksum), NULL);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  evp_get ()->final (copy->ctx, md, &md_len);
  GString *out = g_string_sized_new (7 + 2 * md_len);
  g_string_append (out, "sha256:");
  for (unsigned int i = 0; i < md_len; i++)
    g_string_append_printf (out, "%02x", md[i]);
  return g_string_free (out, FALSE);
}

guint64
berth_digester_get_length (BerthDigester *digester)
{
  return digester->length;
}

BerthDigester *
berth_digester_copy (BerthDigester *digester)
{
  BerthDigester *copy = g_new0 (BerthDigester, 1);
  if (digester->checksum != NULL)
    copy->checksum = g_checksum_copy (digester->checksum);
  else
    {
      const Evp *evp = evp_get ();
      copy->ctx = evp->ctx_new ();
      if (copy->ctx == NULL || !evp->ctx_copy (copy->ctx, digester->ctx))
        g_error ("OpenSSL cannot copy a SHA-256 state");
    }
  copy->length = digester->length;
  return copy;
}

void
berth_digester_free (BerthDigester *digester)
{
  if (digester == NULL)
    return;
  if (digester->checksum != NULL)
    g_checksum_free (digester->checksum);
  else
    evp_get ()->ctx_free (digester->ctx);
  g_free (digester);
}

char *
berth_digest_bytes (const void *data, gsize len)
{
  g_autoptr (BerthDigester) digester = berth_digester_new ();
  berth_digester_update (digester, data, len);
  return berth_digester_get_digest (digester);
}
