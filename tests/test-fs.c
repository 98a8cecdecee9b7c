/* berth_remove_tree_at: removes trees, never follows symlinks, never crosses a mount. */
#include "config.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <berth/berth.h>

static char *
make_tree (void)
{
  char *root = g_dir_make_tmp ("berth-fs-XXXXXX", NULL);
  g_autofree char *deep = g_build_filename (root, "tree", "a", "b", "c", NULL);
  g_assert_cmpint (g_mkdir_with_parents (deep, 0755), ==, 0);
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *name = g_strdup_printf ("%s/f%d", deep, i);
      g_assert_true (g_file_set_contents (name, "x", 1, NULL));
    }
  g_autofree char *outside = g_build_filename (root, "outside", NULL);
  g_assert_true (g_file_set_contents (outside, "keep", 4, NULL));
  g_autofree char *link = g_build_filename (root, "tree", "a", "link", NULL);
  g_assert_cmpint (symlink (outside, link), ==, 0);
  g_autofree char *dirlink = g_build_filename (root, "tree", "dirlink", NULL);
  g_assert_cmpint (symlink (root, dirlink), ==, 0);
  return root;
}

static void
test_removes_tree (void)
{
  g_autofree char *root = make_tree ();
  g_autofree char *tree = g_build_filename (root, "tree", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (berth_remove_tree_at (AT_FDCWD, tree, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (tree, G_FILE_TEST_EXISTS));
  g_autofree char *outside = g_build_filename (root, "outside", NULL);
  g_assert_true (g_file_test (outside, G_FILE_TEST_IS_REGULAR)); /* links were not followed */
  g_assert_true (berth_remove_tree_at (AT_FDCWD, tree, &error)); /* missing is fine */
  g_assert_true (berth_remove_tree_at (AT_FDCWD, root, &error));
}

static void
test_refuses_mount_point (void)
{
  if (geteuid () != 0)
    {
      g_test_skip ("mounting needs root");
      return;
    }
  g_autofree char *root = make_tree ();
  g_autofree char *mnt = g_build_filename (root, "tree", "a", "mnt", NULL);
  g_assert_cmpint (g_mkdir_with_parents (mnt, 0755), ==, 0);
  g_assert_cmpint (mount ("tmpfs", mnt, "tmpfs", 0, "size=1m"), ==, 0);
  g_autofree char *precious = g_build_filename (mnt, "precious", NULL);
  g_assert_true (g_file_set_contents (precious, "data", 4, NULL));
  g_autofree char *tree = g_build_filename (root, "tree", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_false (berth_remove_tree_at (AT_FDCWD, tree, &error));
  g_assert_nonnull (strstr (error->message, "mounted"));
  g_assert_true (g_file_test (precious, G_FILE_TEST_IS_REGULAR));
  g_clear_error (&error);
  g_assert_false (berth_remove_tree_at (AT_FDCWD, mnt, &error)); /* the mount point itself */
  g_assert_true (g_file_test (precious, G_FILE_TEST_IS_REGULAR));
  g_clear_error (&error);
  g_assert_cmpint (umount (mnt), ==, 0);
  g_assert_true (berth_remove_tree_at (AT_FDCWD, root, &error));
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/fs/remove-tree", test_removes_tree);
  g_test_add_func ("/fs/remove-tree-refuses-mount-point", test_refuses_mount_point);
  return g_test_run ();
}
