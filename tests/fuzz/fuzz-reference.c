/* fuzz-reference.c — the berth CLI's image reference normaliser (cli_normalize_image).
 * Oracles: any string gives a name that starts with a registry host (one holding a '.'
 * or ':' or "localhost") followed by '/', and normalising is idempotent. */
#include "config.h"

#include <string.h>

#include "client/cli-reference.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *name = g_strndup ((const char *) data, size); /* stops at a NUL, as a C string from argv would */
  g_autofree char *normal = cli_normalize_image (name);
  g_assert_nonnull (normal);
  const char *slash = strchr (normal, '/');
  g_assert_nonnull (slash);
  g_autofree char *host = g_strndup (normal, slash - normal);
  g_assert_true (strchr (host, '.') != NULL || strchr (host, ':') != NULL || g_str_equal (host, "localhost"));
  g_autofree char *again = cli_normalize_image (normal);
  g_assert_cmpstr (again, ==, normal);
  return 0;
}
