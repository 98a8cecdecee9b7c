/* runc-options.h — the one field of runc's Options message the OCI runtime reads. Its
 * own file so that tests/fuzz/fuzz-runc-options.c can feed it client bytes. */
#pragma once

#include <glib.h>

/* BinaryName (field 6) of a containerd.runc.v1.Options message of @len bytes at @data
 * (may be NULL when @len is 0), or NULL when it has none or is malformed. */
char *oci_runc_options_binary_name (const guint8 *data, gsize len);
