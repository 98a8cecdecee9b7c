/* fuzz-runc-options.c — the OCI runtime's reader of runc's Options (BinaryName), fed
 * the bytes of the Any a client sends with Tasks.Create. The input is copied to a
 * buffer of exactly its size (an empty one is NULL, as g_bytes_get_data gives), so
 * ASan sees any read past it and UBSan any NULL+0. Oracle: a name found is a
 * NUL-free part of the input, shorter than it (its key and length came first). */
#include "config.h"

#include <string.h>

#include "../plugins/runtimes/oci/runc-options.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree guint8 *copy = size > 0 ? g_memdup2 (data, size) : NULL;
  g_autofree char *name = oci_runc_options_binary_name (copy, size);
  if (name == NULL)
    return 0;
  size_t len = strlen (name);
  if (len >= size || memmem (data, size, name, len) == NULL)
    FUZZ_FAIL ("binary name \"%s\" is not in the input", name);
  return 0;
}
