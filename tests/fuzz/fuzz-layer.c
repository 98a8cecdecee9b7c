/* fuzz-layer.c — the walking differ's layer applier (tar, whiteouts, opaque dirs,
 * links; gzip and zstd) fed arbitrary archives, through the real plugin on a test
 * daemon core. Input: one byte of mode (bits 0-1: plain tar, gzip or zstd; bit 2: apply
 * as an overlay upper dir, where whiteouts become 0/0 devices, instead of a plain
 * directory), then the layer blob.
 *
 * Oracles: no crash, and nothing is created outside the root: each input is applied in
 * WORK/root beside an empty marker dir WORK/outside, and afterwards WORK must hold
 * exactly those two and outside must still be empty. */
#include "config.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <berth/berth.h>
#include "test-daemon-util.h"
#include "fuzz.h"

static char *tmp;
static BerthDaemon *daemon_;
static BerthContentStore *store;
static BerthDiffer *differ;

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
  static const char *const plugins[] = { "plugins/content/local", "plugins/differs/walking", NULL };
  g_autoptr (GError) error = NULL;
  daemon_ = test_daemon_new_with (&tmp, plugins);
  store = berth_daemon_get_content_store (daemon_, &error);
  g_assert_no_error (error);
  differ = berth_daemon_get_differ (daemon_, NULL, &error);
  g_assert_no_error (error);
  atexit (cleanup);
  return 0;
}

static int
remove_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  if (remove (path) < 0)
    FUZZ_FAIL ("removing %s: %s", path, g_strerror (errno));
  return 0;
}

static void
check_contained (const char *work)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) dir = g_dir_open (work, 0, &error);
  g_assert_no_error (error);
  for (const char *name; (name = g_dir_read_name (dir)) != NULL;)
    if (!g_str_equal (name, "root") && !g_str_equal (name, "outside"))
      FUZZ_FAIL ("the layer created %s/%s, outside its root", work, name);
  g_autofree char *outside = g_build_filename (work, "outside", NULL);
  g_autoptr (GDir) marker = g_dir_open (outside, 0, &error);
  if (marker == NULL)
    FUZZ_FAIL ("the marker dir beside the root is gone: %s", error->message);
  const char *found = g_dir_read_name (marker);
  if (found != NULL)
    FUZZ_FAIL ("the layer created %s/%s, outside its root", outside, found);
  struct stat st;
  g_assert_cmpint (lstat (outside, &st), ==, 0);
  g_assert_true (S_ISDIR (st.st_mode));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  static const char *const media_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
  };
  const char *media_type = media_types[data[0] & 3];
  gboolean overlay = (data[0] & 4) != 0;
  data++, size--;

  g_autoptr (GError) error = NULL;
  g_autoptr (BerthContentWriter) writer = berth_content_store_open_writer (store, "fuzz-layer", size, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (berth_content_writer_write (writer, data, size, NULL, &error));
  g_autofree char *digest = berth_content_writer_commit (writer, size, NULL, NULL, &error);
  if (digest == NULL && g_error_matches (error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
    {
      digest = berth_content_writer_digest (writer);
      g_clear_error (&error);
    }
  g_assert_no_error (error);

  g_autofree char *work = g_build_filename (tmp, "apply", NULL);
  g_autofree char *root = g_build_filename (work, "root", NULL);
  g_autofree char *outside = g_build_filename (work, "outside", NULL);
  g_assert_cmpint (g_mkdir_with_parents (root, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (outside, 0755), ==, 0);

  g_autoptr (GPtrArray) mounts = berth_mount_list_new ();
  if (overlay)
    {
      g_autofree char *upper = g_strdup_printf ("upperdir=%s", root);
      const char *options[] = { "lowerdir=/nonexistent", upper, "workdir=/nonexistent", NULL };
      g_ptr_array_add (mounts, berth_mount_new ("overlay", "overlay", options));
    }
  else
    {
      const char *options[] = { "rbind", "rw", NULL };
      g_ptr_array_add (mounts, berth_mount_new ("bind", root, options));
    }
  g_autoptr (BerthDescriptor) layer = berth_descriptor_new (media_type, digest, size);
  g_autoptr (BerthDescriptor) applied = berth_differ_apply (differ, layer, mounts, NULL, NULL, &error);
  g_assert_true ((applied == NULL) == (error != NULL));

  check_contained (work);
  g_assert_cmpint (nftw (work, remove_one, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
  g_autoptr (GError) delete_error = NULL;
  berth_content_store_delete (store, digest, NULL, &delete_error);
  return 0;
}
