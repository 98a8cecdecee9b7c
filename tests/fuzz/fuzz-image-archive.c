/* fuzz-image-archive.c — image import (berth_image_archive_import): the tar reader and
 * the index.json / manifest / config / docker manifest.json parsers, on a test daemon
 * core.
 *
 * Raw tar, gzip or zstd input goes in as it is. Anything else is a recipe, so the fuzzer
 * can reach the JSON parsers past the digest checks: parts separated by "\n--\n"; in
 * part J, "@N" becomes the digest of part N ("sha256:…"), "%N" its path in the archive
 * ("blobs/sha256/…") and "#N" its size, for 1 ≤ N ≤ 9 and N > J (parts are rewritten
 * last first). Part 0 is manifest.json (a docker save archive) when it starts with '[',
 * else index.json beside an oci-layout file; parts 1… are blobs/sha256/<their digest>.
 *
 * Oracles: no crash, no leak, an error set exactly when no image list comes back, and
 * every image name returned is non-empty. */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>

#include <berth/berth.h>
#include "image/berth-image-archive.h"
#include "test-daemon-util.h"
#include "fuzz.h"

static char *tmp;
static BerthDaemon *daemon_;

static void
cleanup (void)
{
  berth_daemon_free (daemon_);
  test_remove_tree (tmp);
  g_free (tmp);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  daemon_ = test_daemon_new (&tmp);
  atexit (cleanup);
  return 0;
}

static gboolean
is_raw (const uint8_t *data, size_t size)
{
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
    return TRUE; /* gzip */
  if (size >= 4 && memcmp (data, "\x28\xb5\x2f\xfd", 4) == 0)
    return TRUE; /* zstd */
  return size >= 262 && memcmp (data + 257, "ustar", 5) == 0;
}

static char *
sha256_hex (GBytes *bytes)
{
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);
}

static void
add_file (struct archive *a, const char *path, GBytes *bytes)
{
  struct archive_entry *entry = archive_entry_new ();
  archive_entry_set_pathname (entry, path);
  archive_entry_set_filetype (entry, AE_IFREG);
  archive_entry_set_perm (entry, 0644);
  archive_entry_set_size (entry, g_bytes_get_size (bytes));
  g_assert_cmpint (archive_write_header (a, entry), ==, ARCHIVE_OK);
  gsize len = 0;
  const void *p = g_bytes_get_data (bytes, &len);
  if (len > 0)
    g_assert_cmpint (archive_write_data (a, p, len), ==, (la_ssize_t) len);
  archive_entry_free (entry);
}

static GBytes *
build_archive (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  /* g_strndup stops at a NUL: parts are text, which is what the parsers read. */
  g_auto (GStrv) parts = g_strsplit (text, "\n--\n", 10);
  guint n = g_strv_length (parts);
  if (n == 0) /* "" splits into no part at all */
    {
      g_strfreev (parts);
      parts = g_new0 (char *, 2);
      parts[0] = g_strdup ("");
      n = 1;
    }
  g_autoptr (GPtrArray) blobs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_ptr_array_set_size (blobs, n);
  g_autoptr (GPtrArray) hexes = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_set_size (hexes, n);
  for (gint j = (gint) n - 1; j >= 0; j--)
    {
      GString *out = g_string_new (NULL);
      for (const char *p = parts[j]; *p != '\0'; p++)
        {
          guint k = p[1] >= '1' && p[1] <= '9' ? (guint) (p[1] - '0') : 0;
          if ((*p == '@' || *p == '%' || *p == '#') && k > (guint) j && k < n)
            {
              if (*p == '@')
                g_string_append_printf (out, "sha256:%s", (char *) hexes->pdata[k]);
              else if (*p == '%')
                g_string_append_printf (out, "blobs/sha256/%s", (char *) hexes->pdata[k]);
              else
                g_string_append_printf (out, "%zu", g_bytes_get_size (blobs->pdata[k]));
              p++;
            }
          else
            g_string_append_c (out, *p);
        }
      blobs->pdata[j] = g_string_free_to_bytes (out);
      hexes->pdata[j] = sha256_hex (blobs->pdata[j]);
    }

  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  /* Each entry: its data in 512-byte blocks and at most a few blocks of headers. */
  gsize capacity = 4 * 10240, used = 0;
  for (guint k = 0; k < n; k++)
    capacity += g_bytes_get_size (blobs->pdata[k]) + 4096;
  g_autofree guint8 *buf = g_malloc (capacity);
  g_assert_cmpint (archive_write_open_memory (a, buf, capacity, &used), ==, ARCHIVE_OK);
  gboolean docker = parts[0][0] == '[';
  if (!docker)
    {
      g_autoptr (GBytes) layout = g_bytes_new_static ("{\"imageLayoutVersion\":\"1.0.0\"}", 30);
      add_file (a, "oci-layout", layout);
    }
  add_file (a, docker ? "manifest.json" : "index.json", blobs->pdata[0]);
  for (guint k = 1; k < n; k++)
    {
      g_autofree char *path = g_strdup_printf ("blobs/sha256/%s", (char *) hexes->pdata[k]);
      add_file (a, path, blobs->pdata[k]);
    }
  g_assert_cmpint (archive_write_close (a), ==, ARCHIVE_OK);
  archive_write_free (a);
  return g_bytes_new (buf, used);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) archive = is_raw (data, size) ? g_bytes_new (data, size) : build_archive (data, size);
  g_autoptr (GInputStream) in = g_memory_input_stream_new_from_bytes (archive);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = berth_image_archive_import (daemon_, "fuzz", in, "fuzz", NULL, &error);
  g_assert_true ((names == NULL) == (error != NULL));
  for (guint i = 0; names != NULL && i < names->len; i++)
    g_assert_true (names->pdata[i] != NULL && *(char *) names->pdata[i] != '\0');
  return 0;
}
