/* fuzz-reference.c — the image reference parser (berth_reference_parse), berthd's and the
 * berth CLI's. Oracles: any string is either refused with INVALID_ARGUMENT or gives a
 * reference with a domain, a path and a tag or digest; its normalised name parses to
 * itself (normalising is idempotent). */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include "image/berth-reference.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size); /* stops at a NUL, as a C string from argv would */
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthReference) ref = berth_reference_parse (text, &error);
  if (ref == NULL)
    {
      g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
      return 0;
    }
  g_assert_true (*ref->domain != '\0' && *ref->path != '\0');
  g_assert_true (ref->tag != NULL || ref->digest != NULL);
  g_autofree char *normal = berth_reference_to_string (ref);
  g_autofree char *again = berth_reference_normalize (normal, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (again, ==, normal);
  return 0;
}
