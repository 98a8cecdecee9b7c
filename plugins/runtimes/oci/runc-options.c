/* runc-options.c — a few lines of protobuf wire format instead of linking the core's
 * generated code into a plugin. Every input comes from a client: no read past @len, no
 * shift past 64 bits, no arithmetic on a NULL pointer (an empty Any value has no data). */
#include "config.h"

#include <string.h>

#include "runc-options.h"

#define BINARY_NAME_FIELD 6

/* A varint at data[*pos] (at most 10 bytes, none at or past @len). */
static gboolean
read_varint (const guint8 *data, gsize len, gsize *pos, guint64 *out)
{
  *out = 0;
  for (int shift = 0; *pos < len && shift < 64; shift += 7)
    {
      guint8 byte = data[(*pos)++];
      *out |= (guint64) (byte & 0x7f) << shift;
      if (!(byte & 0x80))
        return TRUE;
    }
  return FALSE;
}

char *
oci_runc_options_binary_name (const guint8 *data, gsize len)
{
  /* Offsets, not pointers: data may be NULL with len 0. */
  for (gsize pos = 0; pos < len;)
    {
      guint64 key = 0, value = 0;
      if (!read_varint (data, len, &pos, &key))
        return NULL;
      guint wire = key & 7;
      if (wire != 0 && wire != 2)
        return NULL; /* runc's options use no other wire types */
      if (!read_varint (data, len, &pos, &value))
        return NULL;
      if (wire == 0)
        continue;
      if (value > len - pos)
        return NULL;
      if ((key >> 3) == BINARY_NAME_FIELD)
        {
          /* A name with a NUL in it is malformed (not cut short to another name). */
          if (memchr (data + pos, '\0', value) != NULL)
            return NULL;
          return g_strndup ((const char *) data + pos, value);
        }
      pos += value;
    }
  return NULL;
}
