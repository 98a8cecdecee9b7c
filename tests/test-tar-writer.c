/* test-tar-writer.c — the walking differ's pax writer (plugins/differs/walking/
 * walking-tar-writer.c) against libarchive's pax_restricted writer it replaced, entry by
 * entry, byte for byte: a layer made twice from the same tree keeps its digest. Covers
 * what ustar cannot hold (long and non-ASCII names, long link targets, big ids, device
 * numbers, times out of range or with nanoseconds) and what it can. */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <berth/berth.h>
#include "plugins/differs/walking/walking-tar-writer.h"

static la_ssize_t
archive_sink (struct archive *a, void *data, const void *buf, size_t len)
{
  g_byte_array_append (data, buf, len);
  return len;
}

static gboolean
writer_sink (gpointer data, const void *buf, gsize len, GError **error)
{
  g_byte_array_append (data, buf, len);
  return TRUE;
}

typedef struct {
  const char *name;
  mode_t mode;
  guint64 uid, gid;
  gint64 size;
  gint64 mtime;
  long nsec;
  const char *link;
  guint devmajor, devminor;
} Entry;

static void
compare (const Entry *entries, gsize n)
{
  g_autoptr (GByteArray) old = g_byte_array_new (), new = g_byte_array_new ();
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  archive_write_set_bytes_in_last_block (a, 1);
  archive_write_set_bytes_per_block (a, 0); /* unbuffered, to compare entry by entry */
  g_assert_cmpint (archive_write_open (a, old, NULL, archive_sink, NULL), ==, ARCHIVE_OK);
  TarWriter w;
  walking_tar_writer_init (&w, writer_sink, new);
  for (gsize i = 0; i < n; i++)
    {
      const Entry *e = &entries[i];
      struct stat st = { .st_mode = e->mode, .st_uid = e->uid, .st_gid = e->gid, .st_size = e->size,
                         .st_rdev = makedev (e->devmajor, e->devminor) };
      st.st_mtim.tv_sec = e->mtime, st.st_mtim.tv_nsec = e->nsec;
      /* As walking-compare.c did with libarchive. */
      struct archive_entry *entry = archive_entry_new ();
      archive_entry_copy_stat (entry, &st);
      archive_entry_set_pathname (entry, e->name);
      if (S_ISLNK (e->mode))
        archive_entry_set_symlink (entry, e->link);
      if (!S_ISREG (e->mode))
        archive_entry_set_size (entry, 0);
      g_assert_cmpint (archive_write_header (a, entry), ==, ARCHIVE_OK);
      archive_entry_free (entry);
      g_autoptr (GError) error = NULL;
      g_assert_true (walking_tar_writer_header (&w, e->name, &st, e->link, &error));
      g_assert_no_error (error);
      gsize old_len = old->len, new_len = new->len;
      if (S_ISREG (e->mode))
        for (gint64 done = 0; done < e->size; done += 1000)
          {
            guint8 buf[1000];
            gsize len = MIN (sizeof buf, (gsize) (e->size - done));
            memset (buf, 'a' + i % 26, len);
            g_assert_cmpint (archive_write_data (a, buf, len), ==, (la_ssize_t) len);
            g_assert_true (walking_tar_writer_data (&w, buf, len, NULL));
          }
      if (old_len != new_len || memcmp (old->data, new->data, old_len) != 0)
        g_error ("entry %" G_GSIZE_FORMAT " (%.60s…): headers differ (%u vs %u bytes so far)", i, e->name, old->len,
                 new->len);
    }
  g_assert_cmpint (archive_write_close (a), ==, ARCHIVE_OK);
  archive_write_free (a);
  g_assert_true (walking_tar_writer_close (&w, NULL));
  g_assert_cmpuint (old->len, ==, new->len);
  g_assert_true (memcmp (old->data, new->data, old->len) == 0);
}

static char *
repeat (char c, gsize n)
{
  char *s = g_malloc (n + 1);
  memset (s, c, n);
  s[n] = '\0';
  return s;
}

static void
test_ustar (void)
{
  const Entry entries[] = {
    { "etc/", S_IFDIR | 0755, 0, 0, 0, 1700000000, 0 },
    { "etc/passwd", S_IFREG | 0644, 0, 0, 1234, 1700000000, 123456789 },
    { "etc/empty", S_IFREG | 0600, 1000, 1000, 0, 1 },
    { "etc/block", S_IFREG | 04755, 262143, 262143, 512, 0x7ffffffe },
    { "bin/sh", S_IFLNK | 0777, 0, 0, 0, 1700000000, 0, "busybox" },
    { "dev/null", S_IFCHR | 0666, 0, 0, 0, 0, 0, NULL, 1, 3 },
    { "dev/sda", S_IFBLK | 0660, 0, 6, 0, 0, 0, NULL, 8, 0 },
    { "run/fifo", S_IFIFO | 0644, 0, 0, 0, 0 },
    { "a/.wh.gone", S_IFREG | 0644 },
    { "a/.wh..wh..opq", S_IFREG | 0644 },
  };
  compare (entries, G_N_ELEMENTS (entries));
}

static void
test_long_names (void)
{
  g_autofree char *n99 = repeat ('a', 99), *n100 = repeat ('b', 100), *n101 = repeat ('c', 101);
  g_autofree char *d155 = repeat ('d', 154), *d156 = repeat ('e', 155), *n150 = repeat ('n', 150);
  g_autofree char *t100 = repeat ('t', 100), *t101 = repeat ('u', 101), *t300 = repeat ('v', 300);
  g_autofree char *p1 = g_strdup_printf ("%s/%s", d155, n99);        /* 255: splits */
  g_autofree char *p2 = g_strdup_printf ("%s/%s", d156, n99);        /* prefix 156: pax */
  g_autofree char *p3 = g_strdup_printf ("x/%s/%s/f", n99, n99);     /* splits at a later '/' */
  g_autofree char *p4 = g_strdup_printf ("%s/%s/%s/", n99, n99, n99); /* a long directory */
  g_autofree char *p5 = g_strdup_printf ("long/%s", n150);           /* a name over 100: pax */
  g_autofree char *p6 = g_strdup_printf ("%s/%s", n100, n101);
  g_autofree char *p7 = g_strdup_printf ("/%s/x", n100);             /* a leading '/' */
  const Entry entries[] = {
    { n99, S_IFREG | 0644, 0, 0, 1, 5 },
    { n100, S_IFREG | 0644, 0, 0, 1, 5 },
    { n101, S_IFREG | 0644, 0, 0, 1, 5, 999 },
    { p1, S_IFREG | 0644, 0, 0, 1, 5 },
    { p2, S_IFREG | 0644, 0, 0, 1, 5, 500000000 },
    { p3, S_IFREG | 0644, 0, 0, 1, 5 },
    { p4, S_IFDIR | 0755, 0, 0, 0, 5 },
    { p5, S_IFREG | 0644, 0, 0, 700, 5 },
    { p6, S_IFREG | 0644, 0, 0, 1, 5 },
    { p7, S_IFREG | 0644, 0, 0, 1, 5 },
    { "l100", S_IFLNK | 0777, 0, 0, 0, 5, 0, t100 },
    { "l101", S_IFLNK | 0777, 0, 0, 0, 5, 0, t101 },
    { p5, S_IFLNK | 0777, 0, 0, 0, 5, 0, t300 },
  };
  compare (entries, G_N_ELEMENTS (entries));
}

static void
test_non_ascii (void)
{
  g_autofree char *n120 = repeat ('w', 120);
  g_autofree char *p1 = g_strdup_printf ("ü/%s-é", n120);
  const Entry entries[] = {
    { "dir-ü/", S_IFDIR | 0755, 0, 0, 0, 5 },
    { "dir-ü/file-é", S_IFREG | 0644, 0, 0, 3, 5, 1 },
    { p1, S_IFREG | 0644, 0, 0, 3, 5 },
    { "link", S_IFLNK | 0777, 0, 0, 0, 5, 0, "ziel-ß" },
  };
  compare (entries, G_N_ELEMENTS (entries));
}

static void
test_numbers (void)
{
  const Entry entries[] = {
    { "uid", S_IFREG | 0644, 262144, 0, 1, 5 },
    { "gid", S_IFREG | 0644, 0, 2097151, 1, 5 },
    { "ids", S_IFREG | 0644, 3000000, 3000001, 1, 5, 7 },
    { "ids-huge", S_IFREG | 0644, 4000000000u, 16777216, 1, 5 },
    { "old", S_IFREG | 0644, 0, 0, 1, -1, 0 },
    { "old-nsec", S_IFREG | 0644, 0, 0, 1, -100, 250000000 },
    { "future", S_IFREG | 0644, 0, 0, 1, 0x7fffffff },
    { "far-future", S_IFREG | 0644, 0, 0, 1, G_GINT64_CONSTANT (100000000000), 1 },
    { "dev-big", S_IFCHR | 0600, 0, 0, 0, 5, 0, NULL, 300000, 5 },
    { "dev-bigger", S_IFBLK | 0600, 0, 0, 0, 5, 0, NULL, 4095, 1048575 },
  };
  compare (entries, G_N_ELEMENTS (entries));
}

/* A file that shrank after its header: zeros up to the declared size. */
static void
test_short_data (void)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  TarWriter w;
  walking_tar_writer_init (&w, writer_sink, out);
  struct stat st = { .st_mode = S_IFREG | 0644, .st_size = 1000 };
  g_assert_true (walking_tar_writer_header (&w, "f", &st, NULL, NULL));
  g_assert_true (walking_tar_writer_data (&w, "abc", 3, NULL));
  g_autoptr (GError) error = NULL;
  g_assert_false (walking_tar_writer_data (&w, out->data, 998, &error)); /* more than declared */
  g_assert_nonnull (error);
  g_assert_true (walking_tar_writer_close (&w, NULL));
  g_assert_cmpuint (out->len, ==, 512 + 1024 + 1024);
  g_assert_cmpmem (out->data + 512, 3, "abc", 3);
  for (guint i = 512 + 3; i < out->len; i++)
    g_assert_cmpint (out->data[i], ==, 0);
}

int
main (int argc, char **argv)
{
  /* libarchive converts names to UTF-8 through the locale; the writer takes bytes. */
  setlocale (LC_ALL, "C.UTF-8");
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tar-writer/ustar", test_ustar);
  g_test_add_func ("/tar-writer/long-names", test_long_names);
  g_test_add_func ("/tar-writer/non-ascii", test_non_ascii);
  g_test_add_func ("/tar-writer/numbers", test_numbers);
  g_test_add_func ("/tar-writer/short-data", test_short_data);
  return g_test_run ();
}
