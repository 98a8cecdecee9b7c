/* test-daemon-util.c — see test-daemon-util.h. */
#include "config.h"

#include "daemon/berth-config.h"
#include "test-daemon-util.h"

BerthDaemon *
test_daemon_new (char **tmp_out)
{
  static const char *const plugins[] = { "plugins/content/local", "plugins/snapshotters/native", NULL };
  return test_daemon_new_with (tmp_out, plugins);
}

BerthDaemon *
test_daemon_new_with (char **tmp_out, const char *const *plugins)
{
  const char *top = g_getenv ("BERTH_TOP_BUILDDIR");
  g_autoptr (GError) error = NULL;
  char *tmp = g_dir_make_tmp ("berth-test-XXXXXX", &error);
  g_assert_no_error (error);
  BerthConfig *config = berth_config_new_default ();
  g_free (config->root);
  config->root = g_build_filename (tmp, "root", NULL);
  g_free (config->state);
  config->state = g_build_filename (tmp, "state", NULL);
  g_strfreev (config->plugin_dirs);
  /* The built paths become the list itself: no copy, nothing to free twice or leak. */
  config->plugin_dirs = g_new0 (char *, g_strv_length ((GStrv) plugins) + 1);
  for (guint i = 0; plugins[i] != NULL; i++)
    config->plugin_dirs[i] = g_build_filename (top ? top : ".", plugins[i], ".libs", NULL);
  g_setenv ("BERTH_PLUGIN_SCANNER", "", TRUE); /* load in-process: no scanner binary needed */
  BerthDaemon *daemon = berth_daemon_new (config, &error);
  g_assert_no_error (error);
  *tmp_out = tmp;
  return daemon;
}

void
test_remove_tree (const char *path)
{
  g_autofree char *quoted = g_shell_quote (path);
  g_autofree char *cmd = g_strconcat ("rm -rf ", quoted, NULL);
  g_assert_cmpint (system (cmd), ==, 0);
}
