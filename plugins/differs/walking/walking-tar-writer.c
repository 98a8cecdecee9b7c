/* walking-tar-writer.c — a pax ("restricted": ustar headers, a pax extended header only
 * for what ustar cannot hold) tar writer, laid out the way libarchive's
 * archive_write_set_format_pax_restricted laid out the layers berth made before, so a
 * layer's bytes, hence its digest, do not change.
 */
#include "config.h"

#include <string.h>
#include <sys/sysmacros.h>

#include <berth/berth.h>

#include "walking-tar-writer.h"

/* ustar's numeric fields as libarchive fills them: 6 octal digits and " \0" for mode,
 * uid, gid and the device numbers, 11 and ' ' for size and mtime (put_number). Past these
 * limits the value also goes to the pax header. */
#define USTAR_ID_MAX ((1u << 18) - 1)
#define USTAR_SIZE_MAX ((G_GUINT64_CONSTANT (1) << 33) - 1)
#define USTAR_TIME_MAX 0x7fffffff

enum {
  OFF_NAME = 0, OFF_MODE = 100, OFF_UID = 108, OFF_GID = 116, OFF_SIZE = 124, OFF_MTIME = 136, OFF_CHKSUM = 148,
  OFF_TYPE = 156, OFF_LINK = 157, OFF_MAGIC = 257, OFF_UNAME = 265, OFF_GNAME = 297, OFF_DEVMAJOR = 329,
  OFF_DEVMINOR = 337, OFF_PREFIX = 345,
};

static const guint8 zeros[TAR_BLOCK];

void
walking_tar_writer_init (TarWriter *w, TarSinkFunc sink, gpointer sink_data)
{
  *w = (TarWriter) { sink, sink_data, 0, 0 };
}

static void
put_octal (guint8 *field, guint64 value, int digits)
{
  for (int i = digits - 1; i >= 0; i--, value >>= 3)
    field[i] = '0' + (value & 7);
}

/* A numeric field of @digits octal digits and its terminator (@width bytes in all).
 * Clipped when @strict (the pax header's own ustar header); else, as libarchive's
 * non-strict ustar, the digits run over the terminator, then base-256 (GNU). */
static void
put_number (guint8 *field, gint64 value, int digits, int width, gboolean strict)
{
  if (strict)
    {
      put_octal (field, CLAMP (value, 0, (G_GINT64_CONSTANT (1) << (digits * 3)) - 1), digits);
      return;
    }
  for (int n = digits; n <= width && value >= 0; n++)
    if (value < (G_GINT64_CONSTANT (1) << (n * 3)))
      {
        put_octal (field, value, n);
        return;
      }
  for (int i = width - 1; i >= 0; i--, value >>= 8)
    field[i] = value & 0xff;
  field[0] |= 0x80;
}

static gboolean
is_ascii (const char *s)
{
  for (; *s; s++)
    if ((guchar) *s >= 0x80)
      return FALSE;
  return TRUE;
}

/* Where ustar's writer splits @name into prefix (≤155) and name (≤100, not empty): at the
 * first '/' leaving at most 100 after it; 0 for a short name, -1 when it cannot. */
static gssize
ustar_split (const char *name)
{
  gsize len = strlen (name);
  if (len <= 100)
    return 0;
  const char *p = strchr (name + len - 101, '/');
  if (p == name)
    p = strchr (p + 1, '/');
  if (p == NULL || p[1] == '\0' || p - name > 155)
    return -1;
  return p - name;
}

/* libarchive's build_ustar_entry_name: @src (@src_len bytes) cut to a name ustar can hold,
 * @insert (or NULL) as a last directory; what stands in the name field of an entry whose
 * real name is in its pax header, and the name of that pax header. */
static char *
ustar_entry_name (const char *src, gsize src_len, const char *insert)
{
  gsize suffix_len = 98; /* what libarchive 3.6 leaves, one short of the field */
  gsize insert_len = insert ? strlen (insert) + 2 : 0;
  gboolean need_slash = FALSE;
  const char *filename_end = src + src_len;
  for (;;)
    {
      if (filename_end > src && filename_end[-1] == '/')
        filename_end--, need_slash = TRUE;
      else if (filename_end > src + 1 && filename_end[-1] == '.' && filename_end[-2] == '/')
        filename_end -= 2, need_slash = TRUE;
      else
        break;
    }
  if (need_slash)
    suffix_len--;
  const char *filename = filename_end - 1;
  while (filename > src && *filename != '/')
    filename--;
  if (*filename == '/' && filename < filename_end - 1)
    filename++;
  suffix_len -= insert_len;
  if (filename_end > filename + suffix_len)
    filename_end = filename + suffix_len;
  suffix_len -= filename_end - filename;
  const char *prefix = src, *prefix_end = MIN (src + 155, filename);
  while (prefix_end > prefix && *prefix_end != '/')
    prefix_end--;
  if (prefix_end < filename && *prefix_end == '/')
    prefix_end++;
  const char *suffix = prefix_end, *suffix_end = MAX (MIN (suffix + suffix_len, filename), suffix);
  while (suffix_end > suffix && *suffix_end != '/')
    suffix_end--;
  if (suffix_end < filename && *suffix_end == '/')
    suffix_end++;
  GString *out = g_string_new_len (prefix, prefix_end - prefix);
  g_string_append_len (out, suffix, suffix_end - suffix);
  if (insert != NULL)
    g_string_append_printf (out, "%s/", insert);
  g_string_append_len (out, filename, filename_end - filename);
  if (need_slash)
    g_string_append_c (out, '/');
  return g_string_free (out, FALSE);
}

/* One "LEN key=value\n" record; LEN counts its own digits. */
static void
pax_record (GString *pax, const char *key, const char *value)
{
  gsize body = 1 + strlen (key) + 1 + strlen (value) + 1;
  gsize len = body + (gsize) g_snprintf (NULL, 0, "%" G_GSIZE_FORMAT, body);
  len = body + (gsize) g_snprintf (NULL, 0, "%" G_GSIZE_FORMAT, len); /* one more digit at most */
  g_string_append_printf (pax, "%" G_GSIZE_FORMAT " %s=%s\n", len, key, value);
}

static void
fill_header (guint8 *h, gboolean strict, const char *name, gssize split, char type, guint mode, guint64 uid,
             guint64 gid, guint64 size, gint64 mtime, const char *link, guint devmajor, guint devminor)
{
  memset (h, 0, TAR_BLOCK);
  if (split > 0)
    {
      memcpy (h + OFF_PREFIX, name, split);
      strncpy ((char *) h + OFF_NAME, name + split + 1, 100);
    }
  else
    strncpy ((char *) h + OFF_NAME, name, 100);
  memcpy (h + OFF_MODE + 6, " ", 2), put_number (h + OFF_MODE, mode & 07777, 6, 8, strict);
  memcpy (h + OFF_UID + 6, " ", 2), put_number (h + OFF_UID, uid, 6, 8, strict);
  memcpy (h + OFF_GID + 6, " ", 2), put_number (h + OFF_GID, gid, 6, 8, strict);
  h[OFF_SIZE + 11] = ' ', put_number (h + OFF_SIZE, size, 11, 11, strict);
  h[OFF_MTIME + 11] = ' ';
  put_number (h + OFF_MTIME, strict ? CLAMP (mtime, 0, USTAR_TIME_MAX) : mtime, 11, 11, strict);
  memset (h + OFF_CHKSUM, ' ', 8);
  h[OFF_TYPE] = type;
  if (link != NULL)
    strncpy ((char *) h + OFF_LINK, link, 100);
  memcpy (h + OFF_MAGIC, "ustar\0" "00", 8);
  memcpy (h + OFF_DEVMAJOR + 6, " ", 2), put_number (h + OFF_DEVMAJOR, devmajor, 6, 8, strict);
  memcpy (h + OFF_DEVMINOR + 6, " ", 2), put_number (h + OFF_DEVMINOR, devminor, 6, 8, strict);
  guint sum = 0;
  for (int i = 0; i < TAR_BLOCK; i++)
    sum += h[i];
  put_octal (h + OFF_CHKSUM, sum, 6);
  h[OFF_CHKSUM + 6] = '\0';
}

/* libarchive's build_pax_attribute_name: "DIR/PaxHeader/BASE", cut to fit ustar. */
static char *
pax_header_name (const char *name)
{
  const char *end = name + strlen (name);
  for (;;)
    {
      if (end > name && end[-1] == '/')
        end--;
      else if (end > name + 1 && end[-1] == '.' && end[-2] == '/')
        end--;
      else
        break;
    }
  if (end == name)
    return g_strdup (*name ? "/PaxHeader/rootdir" : "PaxHeader/blank");
  if (*name == '.' && end == name + 1)
    return g_strdup ("PaxHeader/currentdir");
  return ustar_entry_name (name, end - name, "PaxHeader");
}

static gboolean
finish_entry (TarWriter *w, GError **error)
{
  while (w->remaining > 0)
    {
      gsize n = MIN (w->remaining, sizeof zeros);
      if (!w->sink (w->sink_data, zeros, n, error))
        return FALSE;
      w->remaining -= n;
    }
  gboolean ok = w->padding == 0 || w->sink (w->sink_data, zeros, w->padding, error);
  w->padding = 0;
  return ok;
}

gboolean
walking_tar_writer_header (TarWriter *w, const char *name, const struct stat *st, const char *link_target,
                           GError **error)
{
  if (!finish_entry (w, error))
    return FALSE;
  char type;
  switch (st->st_mode & S_IFMT)
    {
    case S_IFREG: type = '0'; break;
    case S_IFLNK: type = '2'; break;
    case S_IFCHR: type = '3'; break;
    case S_IFBLK: type = '4'; break;
    case S_IFDIR: type = '5'; break;
    case S_IFIFO: type = '6'; break;
    default:
      return berth_throw (error, BERTH_ERROR_INTERNAL, "%s: tar format cannot archive this type of file (%o)", name,
                          st->st_mode & S_IFMT);
    }
  guint64 size = S_ISREG (st->st_mode) ? (guint64) st->st_size : 0;
  gboolean device = S_ISCHR (st->st_mode) || S_ISBLK (st->st_mode);
  if (link_target == NULL)
    link_target = "";

  g_autoptr (GString) pax = g_string_new (NULL);
  g_autofree char *ustar_name = NULL;
  if (!is_ascii (name) || ustar_split (name) < 0)
    {
      pax_record (pax, "path", name);
      ustar_name = ustar_entry_name (name, strlen (name), NULL);
    }
  if (strlen (link_target) > 100 || !is_ascii (link_target))
    {
      pax_record (pax, "linkpath", link_target);
      if (strlen (link_target) > 100)
        link_target = "././@LongSymLink";
    }
  /* In libarchive's order. */
  char num[64];
  if (size > USTAR_SIZE_MAX)
    pax_record (pax, "size", (g_snprintf (num, sizeof num, "%" G_GUINT64_FORMAT, size), num));
  if ((guint64) st->st_gid > USTAR_ID_MAX)
    pax_record (pax, "gid", (g_snprintf (num, sizeof num, "%" G_GUINT64_FORMAT, (guint64) st->st_gid), num));
  if ((guint64) st->st_uid > USTAR_ID_MAX)
    pax_record (pax, "uid", (g_snprintf (num, sizeof num, "%" G_GUINT64_FORMAT, (guint64) st->st_uid), num));
  guint devmajor = device ? major (st->st_rdev) : 0, devminor = device ? minor (st->st_rdev) : 0;
  if (devmajor > USTAR_ID_MAX)
    pax_record (pax, "SCHILY.devmajor", (g_snprintf (num, sizeof num, "%u", devmajor), num));
  if (devminor > USTAR_ID_MAX)
    pax_record (pax, "SCHILY.devminor", (g_snprintf (num, sizeof num, "%u", devminor), num));
  gint64 mtime = st->st_mtim.tv_sec;
  /* Like libarchive in restricted mode, sub-second mtime only rides along an extended
   * header written anyway (a ustar-only entry keeps whole seconds). */
  gboolean mtime_out = mtime < 0 || mtime >= USTAR_TIME_MAX;
  if ((pax->len > 0 || mtime_out) && (mtime_out || st->st_mtim.tv_nsec != 0))
    {
      int n = g_snprintf (num, sizeof num, "%" G_GINT64_FORMAT ".%09ld", mtime, (long) st->st_mtim.tv_nsec);
      while (num[n - 1] == '0')
        num[--n] = '\0';
      if (num[n - 1] == '.')
        num[--n] = '\0';
      pax_record (pax, "mtime", num);
    }

  guint8 h[TAR_BLOCK];
  if (pax->len > 0)
    {
      g_autofree char *pax_name = pax_header_name (name);
      fill_header (h, TRUE, pax_name, ustar_split (pax_name), 'x', st->st_mode, st->st_uid, st->st_gid, pax->len,
                   mtime, NULL, 0, 0);
      gsize pad = (TAR_BLOCK - pax->len % TAR_BLOCK) % TAR_BLOCK;
      if (!w->sink (w->sink_data, h, TAR_BLOCK, error) || !w->sink (w->sink_data, pax->str, pax->len, error)
          || (pad > 0 && !w->sink (w->sink_data, zeros, pad, error)))
        return FALSE;
    }
  /* Past ustar: the name field gets a cut name, readers take the pax "path". */
  const char *field_name = ustar_name ? ustar_name : name;
  fill_header (h, FALSE, field_name, ustar_split (field_name), type, st->st_mode, st->st_uid, st->st_gid, size, mtime,
               link_target, devmajor, devminor);
  if (!w->sink (w->sink_data, h, TAR_BLOCK, error))
    return FALSE;
  w->remaining = size;
  w->padding = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
  return TRUE;
}

gboolean
walking_tar_writer_data (TarWriter *w, const void *buf, gsize len, GError **error)
{
  if (len > w->remaining)
    return berth_throw (error, BERTH_ERROR_INTERNAL, "%" G_GSIZE_FORMAT " bytes more than the tar header declared",
                        len - (gsize) w->remaining);
  if (len > 0 && !w->sink (w->sink_data, buf, len, error))
    return FALSE;
  w->remaining -= len;
  return TRUE;
}

gboolean
walking_tar_writer_close (TarWriter *w, GError **error)
{
  return finish_entry (w, error) && w->sink (w->sink_data, zeros, TAR_BLOCK, error)
         && w->sink (w->sink_data, zeros, TAR_BLOCK, error);
}
