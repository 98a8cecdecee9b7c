/* berth-digest.c — streaming SHA-256 through OpenSSL EVP. */
#include "config.h"

#include <openssl/evp.h>

#include <berth/berth-digest.h>

struct _BerthDigester {
  EVP_MD_CTX *ctx;
};

BerthDigester *
berth_digester_new (void)
{
  BerthDigester *digester = g_new0 (BerthDigester, 1);
  digester->ctx = EVP_MD_CTX_new ();
  if (digester->ctx == NULL || !EVP_DigestInit_ex (digester->ctx, EVP_sha256 (), NULL))
    g_error ("OpenSSL cannot set up SHA-256");
  return digester;
}

void
berth_digester_update (BerthDigester *digester, const void *data, gsize len)
{
  EVP_DigestUpdate (digester->ctx, data, len);
}

char *
berth_digester_get_digest (BerthDigester *digester)
{
  g_autoptr (BerthDigester) copy = berth_digester_copy (digester);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_DigestFinal_ex (copy->ctx, md, &md_len);
  GString *out = g_string_sized_new (7 + 2 * md_len);
  g_string_append (out, "sha256:");
  for (unsigned int i = 0; i < md_len; i++)
    g_string_append_printf (out, "%02x", md[i]);
  return g_string_free (out, FALSE);
}

BerthDigester *
berth_digester_copy (BerthDigester *digester)
{
  BerthDigester *copy = g_new0 (BerthDigester, 1);
  copy->ctx = EVP_MD_CTX_new ();
  EVP_MD_CTX_copy_ex (copy->ctx, digester->ctx);
  return copy;
}

void
berth_digester_free (BerthDigester *digester)
{
  if (digester == NULL)
    return;
  EVP_MD_CTX_free (digester->ctx);
  g_free (digester);
}

char *
berth_digest_bytes (const void *data, gsize len)
{
  g_autoptr (BerthDigester) digester = berth_digester_new ();
  berth_digester_update (digester, data, len);
  return berth_digester_get_digest (digester);
}
