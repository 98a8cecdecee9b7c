/* test-registry.c — the plugin registry and config against real .so files. */
#include "config.h"

#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/berth-config.h"
#include "daemon/berth-daemon-private.h"
#include "daemon/berth-registry.h"

typedef struct {
  char *tmp;
  char *plugin_dir;
  BerthConfig *config;
} Fixture;

static const char *
builddir (void)
{
  const char *dir = g_getenv ("BERTH_TOP_BUILDDIR");
  return dir ? dir : ".";
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->tmp = g_dir_make_tmp ("berth-registry-XXXXXX", NULL);
  f->plugin_dir = g_build_filename (f->tmp, "plugins", NULL);
  g_mkdir (f->plugin_dir, 0700);
  f->config = berth_config_new_default ();
  g_free (f->config->root);
  f->config->root = g_build_filename (f->tmp, "root", NULL);
  g_free (f->config->state);
  f->config->state = g_build_filename (f->tmp, "state", NULL);
  g_strfreev (f->config->plugin_dirs);
  f->config->plugin_dirs = g_strdupv ((char *[]) { f->plugin_dir, NULL });
  g_free (f->config->libexec_dir);
  f->config->libexec_dir = g_build_filename (builddir (), "core", NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->tmp);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->tmp);
  g_free (f->plugin_dir);
  berth_config_free (f->config);
}

static void
add_plugin (Fixture *f, const char *name)
{
  g_autofree char *so = g_strdup_printf ("%s.so", name);
  g_autofree char *target = g_build_filename (builddir (), "tests", "plugins", ".libs", so, NULL);
  g_autofree char *abs = g_canonicalize_filename (target, NULL);
  g_autofree char *link = g_build_filename (f->plugin_dir, so, NULL);
  g_assert_true (g_file_test (abs, G_FILE_TEST_EXISTS));
  g_assert_no_errno (symlink (abs, link));
}

static const BerthPluginRecord *
find (BerthRegistry *registry, const char *name)
{
  GPtrArray *plugins = berth_registry_get_plugins (registry);
  for (guint i = 0; i < plugins->len; i++)
    {
      const BerthPluginRecord *record = plugins->pdata[i];
      if (g_str_equal (record->name, name))
        return record;
    }
  g_error ("no plugin record named %s", name);
}

static guint
position (BerthRegistry *registry, const char *name)
{
  GPtrArray *plugins = berth_registry_get_plugins (registry);
  for (guint i = 0; i < plugins->len; i++)
    if (g_str_equal (((BerthPluginRecord *) plugins->pdata[i])->name, name))
      return i;
  g_assert_not_reached ();
}

static void
assert_failed_with (BerthRegistry *registry, const char *name, const char *fragment)
{
  const BerthPluginRecord *record = find (registry, name);
  g_assert_cmpint (record->status, ==, BERTH_PLUGIN_STATUS_FAILED);
  g_assert_null (record->instance);
  g_assert_nonnull (record->error);
  if (strstr (record->error->message, fragment) == NULL)
    g_error ("plugin %s: error \"%s\" does not say \"%s\"", name, record->error->message, fragment);
}

static BerthRegistry *
load (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  BerthRegistry *registry = berth_registry_new (f->config);
  g_assert_true (berth_registry_load (registry, &error));
  g_assert_no_error (error);
  return registry;
}

static void
test_dependency_order (Fixture *f, gconstpointer data)
{
  /* "needs-dep" sorts before "dep" by name; the registry must still init dep first. */
  add_plugin (f, "needs-dep");
  add_plugin (f, "dep");
  g_autoptr (BerthRegistry) registry = load (f);
  g_assert_cmpint (find (registry, "dep")->status, ==, BERTH_PLUGIN_STATUS_LOADED);
  g_assert_cmpint (find (registry, "needs-dep")->status, ==, BERTH_PLUGIN_STATUS_LOADED);
  g_assert_cmpuint (position (registry, "dep"), <, position (registry, "needs-dep"));
  g_assert_cmpstr (find (registry, "dep")->id, ==, "io.berth.test.v1.dep");
  g_assert_nonnull (berth_registry_get_instance (registry, "io.berth.test.v1.needs-dep"));
  /* Each plugin got its private root. */
  g_autofree char *root = g_build_filename (f->config->root, "io.berth.test.v1.dep", NULL);
  g_assert_true (g_file_test (root, G_FILE_TEST_IS_DIR));
}

static void
test_failures_are_isolated (Fixture *f, gconstpointer data)
{
  const char *names[] = { "dep", "cycle-x", "cycle-y", "missing-dep", "bad-abi", "newer-minor", "older-minor", "no-descriptor", "init-error", "crash" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    add_plugin (f, names[i]);
  g_autofree char *garbage = g_build_filename (f->plugin_dir, "garbage.so", NULL);
  g_assert_true (g_file_set_contents (garbage, "this is not an ELF file\n", -1, NULL));

  g_autoptr (BerthRegistry) registry = load (f);
  g_assert_cmpint (find (registry, "dep")->status, ==, BERTH_PLUGIN_STATUS_LOADED);
  assert_failed_with (registry, "cycle-x", "dependency cycle");
  assert_failed_with (registry, "cycle-y", "dependency cycle");
  assert_failed_with (registry, "missing-dep", "requires io.berth.nothing.v1, which no loadable plugin provides");
  g_autofree char *other_major = g_strdup_printf ("bad-abi.so: plugin built against berth %d.0, but this berthd is %d.%d",
                                                  BERTH_MAJOR_VERSION + 41, BERTH_MAJOR_VERSION, BERTH_MINOR_VERSION);
  assert_failed_with (registry, "bad-abi.so", other_major);
  g_autofree char *newer_minor = g_strdup_printf ("newer-minor.so: plugin built against berth %d.%d, but this berthd is %d.%d",
                                                  BERTH_MAJOR_VERSION, BERTH_MINOR_VERSION + 1, BERTH_MAJOR_VERSION,
                                                  BERTH_MINOR_VERSION);
  assert_failed_with (registry, "newer-minor.so", newer_minor);
  /* Built against the previous minor: minor releases only append, so it loads. */
  g_assert_cmpint (find (registry, "older-minor")->status, ==, BERTH_PLUGIN_STATUS_LOADED);
  assert_failed_with (registry, "no-descriptor.so", "no \"berth_plugin_descriptor\" symbol");
  assert_failed_with (registry, "init-error", "init: test plugin refuses to start");
  assert_failed_with (registry, "crash.so", "crashed while loading (signal ");
  assert_failed_with (registry, "garbage.so", "not a loadable plugin");
}

static void
test_probe_cache (Fixture *f, gconstpointer data)
{
  add_plugin (f, "dep");
  add_plugin (f, "crash");
  g_clear_object (&(BerthRegistry *) { load (f) });

  /* Cached verdicts: a scanner that always fails is never asked. */
  g_autoptr (BerthRegistry) cached = berth_registry_new (f->config);
  berth_registry_set_scanner (cached, "/bin/false");
  g_assert_true (berth_registry_load (cached, NULL));
  g_assert_cmpint (find (cached, "dep")->status, ==, BERTH_PLUGIN_STATUS_LOADED);
  assert_failed_with (cached, "crash.so", "crashed while loading");

  /* A changed file is probed again. */
  g_autofree char *so = g_build_filename (f->plugin_dir, "dep.so", NULL);
  g_autofree char *target = g_file_read_link (so, NULL);
  g_autofree char *copy = g_build_filename (f->tmp, "dep-copy.so", NULL);
  g_autofree char *cmd = g_strdup_printf ("cp '%s' '%s' && echo >> '%s' && ln -sf '%s' '%s'", target, copy, copy, copy, so);
  g_assert_cmpint (system (cmd), ==, 0);
  g_autoptr (BerthRegistry) reprobed = berth_registry_new (f->config);
  berth_registry_set_scanner (reprobed, "/bin/false");
  g_assert_true (berth_registry_load (reprobed, NULL));
  g_assert_cmpint (find (reprobed, "dep.so")->status, ==, BERTH_PLUGIN_STATUS_FAILED);
}

static void
test_disabled (Fixture *f, gconstpointer data)
{
  add_plugin (f, "dep");
  add_plugin (f, "needs-dep");
  g_strfreev (f->config->disabled_plugins);
  f->config->disabled_plugins = g_strdupv ((char *[]) { "dep", NULL });
  g_autoptr (BerthRegistry) registry = load (f);
  g_assert_cmpint (find (registry, "dep")->status, ==, BERTH_PLUGIN_STATUS_SKIPPED);
  assert_failed_with (registry, "needs-dep", "requires io.berth.test.v1.dep");
}

static BerthConfig *
config_from (Fixture *f, const char *text, GError **error)
{
  g_autofree char *path = g_build_filename (f->tmp, "berthd.conf", NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return berth_config_load (path, error);
}

static void
use_config (Fixture *f, BerthConfig *loaded)
{
  /* Keep the fixture's paths, take the file's plugin groups. */
  g_clear_pointer (&f->config->keyfile, g_key_file_unref);
  f->config->keyfile = g_key_file_ref (loaded->keyfile);
  g_free (f->config->text);
  f->config->text = g_strdup (loaded->text);
  g_free (f->config->path);
  f->config->path = g_strdup (loaded->path);
}

static void
test_plugin_config (Fixture *f, gconstpointer data)
{
  add_plugin (f, "configured");
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthConfig) good = config_from (f, "[berthd]\nlog-level=debug\n\n[plugin.io.berth.test.v1.configured]\nlevel=7\nmode=fast\n", &error);
  g_assert_no_error (error);
  use_config (f, good);
  g_autoptr (BerthRegistry) registry = load (f);
  g_assert_cmpint (find (registry, "configured")->status, ==, BERTH_PLUGIN_STATUS_LOADED);

  const struct {
    const char *text;
    const char *fragment;
  } bad[] = {
    { "[plugin.io.berth.test.v1.configured]\nlevel=7\nspeed=9\n", ":3: unknown key \"speed\" in [plugin.io.berth.test.v1.configured] (known: level, mode)" },
    { "[plugin.io.berth.test.v1.configured]\n\nlevel=lots\n", ":3: level = \"lots\" in [plugin.io.berth.test.v1.configured] is not an integer" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (BerthConfig) loaded = config_from (f, bad[i].text, &error);
      g_assert_no_error (error);
      use_config (f, loaded);
      g_autoptr (BerthRegistry) failing = berth_registry_new (f->config);
      g_assert_false (berth_registry_load (failing, &error));
      g_assert_nonnull (error);
      if (strstr (error->message, bad[i].fragment) == NULL)
        g_error ("config error \"%s\" does not say \"%s\"", error->message, bad[i].fragment);
      g_clear_error (&error);
    }
}

static void
test_config_errors (Fixture *f, gconstpointer data)
{
  const struct {
    const char *text;
    const char *fragment;
  } cases[] = {
    { "[berthd]\nroot=/x\nthis line is wrong\n", "berthd.conf:3: not a key=value pair" },
    { "root=/x\n", "berthd.conf:1: key outside any group" },
    { "[berthd\nroot=/x\n", "berthd.conf:1: malformed group header" },
    { "[berthd]\n# comment\nroots=/x\n", "berthd.conf:3: unknown key \"roots\" in [berthd]" },
    { "[berthd]\nmax-message-size=lots\n", "berthd.conf:2: max-message-size = \"lots\" is not a size" },
    { "[berthd]\n\n\nlog-level=loud\n", "berthd.conf:4: log-level \"loud\" is not one of" },
    { "[berthd]\nroot=/x\n[snapshotters]\n", "berthd.conf:3: unknown group [snapshotters]" },
    { "[berthd]\nroot=\n", "berthd.conf:2: root must not be empty" },
    /* GKeyFile drops a lone trailing backslash; in a CRLF file and on a last line too. */
    { "[berthd]\nroot=/srv/berth\\\n", "berthd.conf:2: root: the value ends in a lone backslash" },
    { "[berthd]\r\nlog-level=info\r\nroot=/srv\\\\\\", "berthd.conf:3: root: the value ends in a lone backslash" },
    { "[berthd]\r\nplugin-dirs=/a;/b\\\r\n", "berthd.conf:2: plugin-dirs: the value ends in a lone backslash" },
    { "[plugin.io.berth.x]\nlevel=7\\\r", "berthd.conf:2: level: the value ends in a lone backslash" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (BerthConfig) config = config_from (f, cases[i].text, &error);
      g_assert_null (config);
      g_assert_nonnull (error);
      if (strstr (error->message, cases[i].fragment) == NULL)
        g_error ("case %u: \"%s\" does not say \"%s\"", i, error->message, cases[i].fragment);
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthConfig) good = config_from (f, "[berthd]\nroot=/srv/berth\nmax-message-size=32M\nplugin-dirs=/a;/b\n", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (good->root, ==, "/srv/berth");
  g_assert_cmpint (good->max_message_size, ==, 32 * 1024 * 1024);
  g_assert_cmpstr (good->plugin_dirs[1], ==, "/b");
  /* A CRLF file whose last line has no newline reads like any other; \\ is one backslash. */
  g_autoptr (BerthConfig) crlf = config_from (f, "[berthd]\r\nroot=/srv/b\\\\\r\nstate=/run/b\r", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (crlf->root, ==, "/srv/b\\");
  g_assert_cmpstr (crlf->state, ==, "/run/b");
  g_assert_null (berth_config_load ("/nonexistent/berthd.conf", &error));
  g_assert_nonnull (strstr (error->message, "/nonexistent/berthd.conf"));
}

static void
test_second_daemon_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  BerthConfig *first_config = berth_config_new_default ();
  BerthConfig *second_config = berth_config_new_default ();
  for (BerthConfig **c = (BerthConfig *[]) { first_config, second_config, NULL }; *c; c++)
    {
      g_free ((*c)->root), (*c)->root = g_strdup (f->config->root);
      g_free ((*c)->state), (*c)->state = g_strdup (f->config->state);
      g_strfreev ((*c)->plugin_dirs), (*c)->plugin_dirs = g_strdupv (f->config->plugin_dirs);
    }
  BerthDaemon *first = berth_daemon_new (first_config, &error);
  g_assert_no_error (error);
  g_assert_null (berth_daemon_new (second_config, &error));
  g_autofree char *pid = g_strdup_printf ("another berthd (pid %d) is already using root %s", (int) getpid (),
                                          f->config->root);
  if (strstr (error->message, pid) == NULL)
    g_error ("\"%s\" does not say \"%s\"", error->message, pid);
  g_autofree char *lock = g_build_filename (f->config->root, "berthd.lock", NULL);
  g_assert_true (g_file_test (lock, G_FILE_TEST_EXISTS));
  berth_daemon_free (first);
  g_assert_false (g_file_test (lock, G_FILE_TEST_EXISTS));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL);
  /* Plugin failures are reported as warnings on purpose; they are not test failures. */
  g_log_set_fatal_mask (NULL, G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/registry/dependency-order", test_dependency_order);
  ADD ("/registry/failures-are-isolated", test_failures_are_isolated);
  ADD ("/registry/probe-cache", test_probe_cache);
  ADD ("/registry/disabled", test_disabled);
  ADD ("/registry/plugin-config", test_plugin_config);
  ADD ("/config/errors", test_config_errors);
  ADD ("/daemon/second-daemon-refused", test_second_daemon_refused);
  return g_test_run ();
}
