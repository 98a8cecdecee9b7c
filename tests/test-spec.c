/* test-spec.c — libberth-spec: the OCI runtime specs it generates from an image config and
 * options (args, env, users looked up in a real rootfs's /etc, resources, privileged,
 * mounts, capabilities) and the seccomp profiles it turns into linux.seccomp (unknown
 * syscalls dropped, rules gated on capabilities, architectures and kernel versions,
 * malformed profiles reported with their path). */
#include "config.h"

#include <ftw.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <seccomp.h>

#include "image/berth-seccomp.h"
#include "image/berth-spec.h"

#define IMAGE "example.com/test:1"

/* ---- helpers ---- */

static JsonNode *
parse (const char *json)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_data (parser, json, -1, &error));
  g_assert_no_error (error);
  return json_node_ref (json_parser_get_root (parser));
}

/* The node at a dotted path of object members ("process.user.uid"), or NULL. */
static JsonNode *
at (JsonNode *node, const char *path)
{
  g_auto (GStrv) parts = g_strsplit (path, ".", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    {
      if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
        return NULL;
      node = json_object_get_member (json_node_get_object (node), parts[i]);
    }
  return node;
}

static gint64
int_at (JsonNode *node, const char *path)
{
  JsonNode *value = at (node, path);
  g_assert_nonnull (value);
  return json_node_get_int (value);
}

static const char *
string_at (JsonNode *node, const char *path)
{
  JsonNode *value = at (node, path);
  return value != NULL ? json_node_get_string (value) : NULL;
}

/* An array of scalars as one space-separated string, for comparing whole lists at once. */
static char *
joined (JsonNode *node, const char *path)
{
  JsonNode *value = at (node, path);
  if (value == NULL)
    return NULL;
  g_assert_true (JSON_NODE_HOLDS_ARRAY (value));
  JsonArray *array = json_node_get_array (value);
  g_autoptr (GString) out = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      if (i > 0)
        g_string_append_c (out, ' ');
      if (json_node_get_value_type (element) == G_TYPE_STRING)
        g_string_append (out, json_node_get_string (element));
      else
        g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (element));
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static JsonNode *
generate (const BerthSpecOptions *opts, const char *image_config, const char *rootfs, GError **error)
{
  g_autoptr (JsonNode) config = image_config != NULL ? parse (image_config) : NULL;
  return berth_spec_generate (opts, config, rootfs, error);
}

static JsonNode *
generate_ok (const BerthSpecOptions *opts, const char *image_config, const char *rootfs)
{
  g_autoptr (GError) error = NULL;
  JsonNode *spec = generate (opts, image_config, rootfs, &error);
  g_assert_no_error (error);
  g_assert_nonnull (spec);
  return spec;
}

static const BerthSpecOptions no_opts = { .image_name = IMAGE };
static const char *const sh_image = "{\"config\": {\"Cmd\": [\"sh\"]}}";

/* The rule of @seccomp (an OCI linux.seccomp object) naming @syscall with @action, or NULL. */
static JsonObject *
seccomp_rule (JsonNode *seccomp, const char *syscall, const char *action)
{
  JsonArray *rules = json_node_get_array (at (seccomp, "syscalls"));
  for (guint i = 0; i < json_array_get_length (rules); i++)
    {
      JsonObject *rule = json_array_get_object_element (rules, i);
      if (action != NULL && g_strcmp0 (json_object_get_string_member (rule, "action"), action) != 0)
        continue;
      JsonArray *names = json_object_get_array_member (rule, "names");
      for (guint j = 0; j < json_array_get_length (names); j++)
        if (g_strcmp0 (json_array_get_string_element (names, j), syscall) == 0)
          return rule;
    }
  return NULL;
}

/* Allowed unconditionally: an ALLOW rule without argument conditions. */
static gboolean
seccomp_allows (JsonNode *seccomp, const char *syscall)
{
  JsonArray *rules = json_node_get_array (at (seccomp, "syscalls"));
  for (guint i = 0; i < json_array_get_length (rules); i++)
    {
      JsonObject *rule = json_array_get_object_element (rules, i);
      if (g_strcmp0 (json_object_get_string_member (rule, "action"), "SCMP_ACT_ALLOW") != 0
          || json_object_has_member (rule, "args"))
        continue;
      JsonArray *names = json_object_get_array_member (rule, "names");
      for (guint j = 0; j < json_array_get_length (names); j++)
        if (g_strcmp0 (json_array_get_string_element (names, j), syscall) == 0)
          return TRUE;
    }
  return FALSE;
}

static guint
seccomp_name_count (JsonNode *seccomp)
{
  JsonArray *rules = json_node_get_array (at (seccomp, "syscalls"));
  guint n = 0;
  for (guint i = 0; i < json_array_get_length (rules); i++)
    n += json_array_get_length (json_object_get_array_member (json_array_get_object_element (rules, i), "names"));
  return n;
}

static char *
default_profile (void)
{
  return berth_spec_default_seccomp_profile ();
}

static void
write_file (const char *dir, const char *name, const char *contents)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *parent = g_path_get_dirname (path);
  g_autoptr (GError) error = NULL;
  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, contents, -1, &error));
  g_assert_no_error (error);
}

static int
remove_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  return remove (path);
}

static void
remove_tree (const char *dir)
{
  nftw (dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A rootfs with the /etc of a small distribution. */
typedef struct {
  char *rootfs;
} Fixture;

static void
rootfs_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->rootfs = g_dir_make_tmp ("berth-spec-XXXXXX", &error);
  g_assert_no_error (error);
  write_file (f->rootfs, "etc/passwd",
              "root:x:0:0:root:/root:/bin/sh\n"
              "# a comment, and a malformed line next\n"
              "broken\n"
              "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
              "app:x:1000:1001:App:/home/app:/bin/sh\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
  write_file (f->rootfs, "etc/group",
              "root:x:0:\n"
              "wheel:x:10:root,app\n"
              "app:x:1001:app\n"
              "audio:x:29:daemon,app\n"
              "staff:x:50:\n"
              "nogroup:x:65534:\n");
}

static void
rootfs_teardown (Fixture *f, gconstpointer data)
{
  remove_tree (f->rootfs);
  g_free (f->rootfs);
}

/* ---- spec generation ---- */

static void
test_defaults (void)
{
  g_autoptr (JsonNode) spec = generate_ok (&no_opts, sh_image, NULL);
  g_assert_cmpstr (string_at (spec, "ociVersion"), ==, "1.0.2-dev");
  g_assert_cmpstr (string_at (spec, "root.path"), ==, "rootfs");
  g_assert_false (json_node_get_boolean (at (spec, "root.readonly")));
  g_assert_cmpstr (string_at (spec, "process.cwd"), ==, "/");
  g_assert_true (json_node_get_boolean (at (spec, "process.noNewPrivileges")));
  g_assert_false (json_node_get_boolean (at (spec, "process.terminal")));
  g_assert_null (at (spec, "hostname"));
  g_assert_null (at (spec, "linux.cgroupsPath"));

  static const char *caps = "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FSETID CAP_FOWNER CAP_MKNOD CAP_NET_RAW CAP_SETGID "
                            "CAP_SETUID CAP_SETFCAP CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_SYS_CHROOT CAP_KILL "
                            "CAP_AUDIT_WRITE";
  for (const char *const *set = (const char *const[]) { "bounding", "effective", "permitted", NULL }; *set; set++)
    {
      g_autofree char *path = g_strconcat ("process.capabilities.", *set, NULL);
      g_autofree char *got = joined (spec, path);
      g_assert_cmpstr (got, ==, caps);
    }
  g_assert_null (at (spec, "process.capabilities.inheritable"));

  JsonObject *rlimit = json_array_get_object_element (json_node_get_array (at (spec, "process.rlimits")), 0);
  g_assert_cmpstr (json_object_get_string_member (rlimit, "type"), ==, "RLIMIT_NOFILE");
  g_assert_cmpint (json_object_get_int_member (rlimit, "hard"), ==, 1024);
  g_assert_cmpint (json_object_get_int_member (rlimit, "soft"), ==, 1024);

  /* containerd's default mounts, in its order, then the host name-resolution binds */
  JsonArray *mounts = json_node_get_array (at (spec, "mounts"));
  g_autoptr (GString) destinations = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (mounts); i++)
    {
      JsonObject *mount = json_array_get_object_element (mounts, i);
      g_string_append_printf (destinations, "%s%s", i ? " " : "", json_object_get_string_member (mount, "destination"));
      JsonNode *node = json_array_get_element (mounts, i);
      g_autofree char *options = joined (node, "options");
      const char *dest = json_object_get_string_member (mount, "destination");
      if (strcmp (dest, "/dev") == 0)
        g_assert_cmpstr (options, ==, "nosuid strictatime mode=755 size=65536k");
      else if (strcmp (dest, "/dev/shm") == 0)
        g_assert_cmpstr (options, ==, "nosuid noexec nodev mode=1777 size=65536k");
      else if (strcmp (dest, "/sys") == 0 || strcmp (dest, "/sys/fs/cgroup") == 0)
        g_assert_true (g_str_has_suffix (options, " ro"));
      else if (strcmp (dest, "/etc/hosts") == 0 || strcmp (dest, "/etc/resolv.conf") == 0)
        {
          g_assert_cmpstr (options, ==, "rbind ro");
          g_assert_cmpstr (json_object_get_string_member (mount, "source"), ==, dest);
        }
    }
  g_autoptr (GString) expected = g_string_new ("/proc /dev /dev/pts /dev/shm /dev/mqueue /sys /run /sys/fs/cgroup");
  if (g_file_test ("/etc/hosts", G_FILE_TEST_EXISTS))
    g_string_append (expected, " /etc/hosts");
  if (g_file_test ("/etc/resolv.conf", G_FILE_TEST_EXISTS))
    g_string_append (expected, " /etc/resolv.conf");
  g_assert_cmpstr (destinations->str, ==, expected->str);

  JsonArray *namespaces = json_node_get_array (at (spec, "linux.namespaces"));
  g_autoptr (GString) ns = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (namespaces); i++)
    g_string_append_printf (ns, "%s%s", i ? " " : "",
                            json_object_get_string_member (json_array_get_object_element (namespaces, i), "type"));
  g_assert_cmpstr (ns->str, ==, "pid ipc uts mount network");

  g_autofree char *masked = joined (spec, "linux.maskedPaths");
  g_assert_cmpstr (masked, ==, "/proc/acpi /proc/asound /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list "
                               "/proc/timer_stats /proc/sched_debug /sys/firmware /proc/scsi");
  g_autofree char *readonly = joined (spec, "linux.readonlyPaths");
  g_assert_cmpstr (readonly, ==, "/proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger");

  /* devices: deny everything, then containerd's list (null, random, full, tty, zero,
   * urandom, console, pts, ptmx) */
  JsonArray *devices = json_node_get_array (at (spec, "linux.resources.devices"));
  g_assert_cmpuint (json_array_get_length (devices), ==, 10);
  JsonObject *deny = json_array_get_object_element (devices, 0);
  g_assert_false (json_object_get_boolean_member (deny, "allow"));
  g_assert_cmpstr (json_object_get_string_member (deny, "access"), ==, "rwm");
  g_assert_false (json_object_has_member (deny, "major"));
  JsonObject *null_dev = json_array_get_object_element (devices, 1);
  g_assert_true (json_object_get_boolean_member (null_dev, "allow"));
  g_assert_cmpint (json_object_get_int_member (null_dev, "major"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (null_dev, "minor"), ==, 3);
  JsonObject *pts = json_array_get_object_element (devices, 8);
  g_assert_cmpint (json_object_get_int_member (pts, "major"), ==, 136);
  g_assert_false (json_object_has_member (pts, "minor"));
  g_assert_null (at (spec, "linux.resources.memory"));
  g_assert_null (at (spec, "linux.resources.cpu"));
  g_assert_null (at (spec, "linux.resources.pids"));

  g_assert_cmpstr (string_at (spec, "linux.seccomp.defaultAction"), ==, "SCMP_ACT_ERRNO");
  g_assert_cmpint (int_at (spec, "linux.seccomp.defaultErrnoRet"), ==, 1);
}

static void
test_args (void)
{
  const char *image = "{\"config\": {\"Entrypoint\": [\"/bin/entry\", \"-x\"], \"Cmd\": [\"serve\", \"--port=80\"]}}";
  g_autoptr (JsonNode) spec = generate_ok (&no_opts, image, NULL);
  g_autofree char *args = joined (spec, "process.args");
  g_assert_cmpstr (args, ==, "/bin/entry -x serve --port=80");

  /* an override replaces Cmd and keeps Entrypoint, as docker run does */
  char *override[] = { "status", "-v", NULL };
  BerthSpecOptions opts = { .args = override };
  g_autoptr (JsonNode) spec2 = generate_ok (&opts, image, NULL);
  g_autofree char *args2 = joined (spec2, "process.args");
  g_assert_cmpstr (args2, ==, "/bin/entry -x status -v");

  /* Cmd alone; and replaced whole */
  g_autoptr (JsonNode) spec3 = generate_ok (&no_opts, "{\"config\": {\"Cmd\": [\"sh\", \"-c\", \"id\"]}}", NULL);
  g_autofree char *args3 = joined (spec3, "process.args");
  g_assert_cmpstr (args3, ==, "sh -c id");
  g_autoptr (JsonNode) spec4 = generate_ok (&opts, "{\"config\": {\"Cmd\": [\"sh\"], \"Entrypoint\": null}}", NULL);
  g_autofree char *args4 = joined (spec4, "process.args");
  g_assert_cmpstr (args4, ==, "status -v");

  /* no image config at all: the override is the command */
  g_autoptr (JsonNode) spec5 = generate_ok (&opts, NULL, NULL);
  g_autofree char *args5 = joined (spec5, "process.args");
  g_assert_cmpstr (args5, ==, "status -v");

  /* nothing to run */
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) none = generate (&no_opts, "{\"config\": {\"Env\": [\"A=1\"]}}", NULL, &error);
  g_assert_null (none);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, IMAGE));
  g_clear_error (&error);

  /* a malformed image config is reported as such */
  g_autoptr (JsonNode) bad = generate (&no_opts, "{\"config\": {\"Cmd\": \"sh\"}}", NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "Cmd"));
}

static void
test_env (void)
{
  const char *image = "{\"config\": {\"Cmd\": [\"sh\"], \"Env\": [\"PATH=/opt/bin:/bin\", \"LANG=C\", \"KEEP=1\"]}}";
  char *env[] = { "LANG=C.UTF-8", "KEEP", "NEW=a=b", NULL };
  BerthSpecOptions opts = { .env = env };
  g_autoptr (JsonNode) spec = generate_ok (&opts, image, NULL);
  g_autofree char *got = joined (spec, "process.env");
  /* the image's order, its PATH kept, LANG replaced in place, KEEP removed, NEW appended */
  g_assert_cmpstr (got, ==, "PATH=/opt/bin:/bin LANG=C.UTF-8 NEW=a=b");

  /* no PATH in the image: the default one */
  g_autoptr (JsonNode) spec2 = generate_ok (&no_opts, "{\"config\": {\"Cmd\": [\"sh\"], \"Env\": [\"A=1\"]}}", NULL);
  g_autofree char *got2 = joined (spec2, "process.env");
  g_assert_cmpstr (got2, ==, "A=1 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

  /* a terminal brings TERM, which the user may still override */
  char *term_env[] = { "TERM=dumb", NULL };
  BerthSpecOptions tty = { .terminal = TRUE };
  g_autoptr (JsonNode) spec3 = generate_ok (&tty, sh_image, NULL);
  g_assert_true (json_node_get_boolean (at (spec3, "process.terminal")));
  g_autofree char *got3 = joined (spec3, "process.env");
  g_assert_true (g_str_has_suffix (got3, " TERM=xterm"));
  tty.env = term_env;
  g_autoptr (JsonNode) spec4 = generate_ok (&tty, sh_image, NULL);
  g_autofree char *got4 = joined (spec4, "process.env");
  g_assert_true (g_str_has_suffix (got4, " TERM=dumb"));
  g_assert_null (strstr (got4, "xterm"));

  char *bad_env[] = { "=oops", NULL };
  BerthSpecOptions bad = { .env = bad_env };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) none = generate (&bad, sh_image, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static void
test_workdir_hostname_readonly (void)
{
  g_autoptr (JsonNode) spec = generate_ok (&no_opts, "{\"config\": {\"Cmd\": [\"sh\"], \"WorkingDir\": \"/srv\"}}", NULL);
  g_assert_cmpstr (string_at (spec, "process.cwd"), ==, "/srv");

  BerthSpecOptions opts = { .workdir = "/tmp", .hostname = "box", .read_only = TRUE };
  g_autoptr (JsonNode) spec2 = generate_ok (&opts, "{\"config\": {\"Cmd\": [\"sh\"], \"WorkingDir\": \"/srv\"}}", NULL);
  g_assert_cmpstr (string_at (spec2, "process.cwd"), ==, "/tmp");
  g_assert_cmpstr (string_at (spec2, "hostname"), ==, "box");
  g_assert_true (json_node_get_boolean (at (spec2, "root.readonly")));

  BerthSpecOptions relative = { .workdir = "srv" };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) none = generate (&relative, sh_image, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static JsonNode *
generate_user (Fixture *f, const char *user, const char *image_user)
{
  BerthSpecOptions opts = { .user = user, .image_name = IMAGE };
  g_autofree char *image = image_user != NULL
                             ? g_strdup_printf ("{\"config\": {\"Cmd\": [\"sh\"], \"User\": \"%s\"}}", image_user)
                             : g_strdup (sh_image);
  return generate_ok (&opts, image, f->rootfs);
}

#define assert_user(spec, uid, gid, gids)                                                                             \
  G_STMT_START                                                                                                        \
  {                                                                                                                   \
    g_autofree char *got_gids = joined ((spec), "process.user.additionalGids");                                      \
    g_assert_cmpint (int_at ((spec), "process.user.uid"), ==, (uid));                                                \
    g_assert_cmpint (int_at ((spec), "process.user.gid"), ==, (gid));                                                \
    g_assert_cmpstr (got_gids, ==, (gids));                                                                          \
  }                                                                                                                   \
  G_STMT_END

static void
test_user_names (Fixture *f, gconstpointer data)
{
  g_autoptr (JsonNode) nobody = generate_user (f, "nobody", NULL);
  assert_user (nobody, 65534, 65534, "65534");

  /* primary group first, then the groups listing the user (containerd's additional gids) */
  g_autoptr (JsonNode) app = generate_user (f, "app", NULL);
  assert_user (app, 1000, 1001, "1001 10 29");

  g_autoptr (JsonNode) app_staff = generate_user (f, "app:staff", NULL);
  assert_user (app_staff, 1000, 50, "50 10 29");

  /* no user: root, with root's supplementary groups */
  g_autoptr (JsonNode) root = generate_user (f, NULL, NULL);
  assert_user (root, 0, 0, "0 10");

  /* the image's User applies unless the options name one */
  g_autoptr (JsonNode) image_user = generate_user (f, NULL, "daemon");
  assert_user (image_user, 1, 1, "1 29");
  g_autoptr (JsonNode) overridden = generate_user (f, "nobody", "daemon");
  assert_user (overridden, 65534, 65534, "65534");
}

static void
test_user_numeric (Fixture *f, gconstpointer data)
{
  /* a uid listed in /etc/passwd takes its gid and groups from there */
  g_autoptr (JsonNode) listed = generate_user (f, "1000", NULL);
  assert_user (listed, 1000, 1001, "1001 10 29");
  /* an unlisted uid gets gid 0 */
  g_autoptr (JsonNode) unlisted = generate_user (f, "4242", NULL);
  assert_user (unlisted, 4242, 0, "0");
  g_autoptr (JsonNode) both = generate_user (f, "4242:4343", NULL);
  assert_user (both, 4242, 4343, "4343");
  g_autoptr (JsonNode) mixed = generate_user (f, "4242:wheel", NULL);
  assert_user (mixed, 4242, 10, "10");

  /* numbers need no rootfs */
  BerthSpecOptions opts = { .user = "123:456" };
  g_autoptr (JsonNode) no_rootfs = generate_ok (&opts, sh_image, NULL);
  assert_user (no_rootfs, 123, 456, "456");
}

static void
test_user_symlinked_passwd (Fixture *f, gconstpointer data)
{
  /* an absolute symlink in the image means the image's file, never the host's */
  g_autofree char *passwd = g_build_filename (f->rootfs, "etc", "passwd", NULL);
  g_assert_cmpint (g_unlink (passwd), ==, 0);
  write_file (f->rootfs, "data/passwd", "root:x:0:0::/:/bin/sh\ncustom:x:4711:4712::/:/bin/sh\n");
  g_assert_cmpint (symlink ("/data/passwd", passwd), ==, 0);
  g_autoptr (JsonNode) custom = generate_user (f, "custom", NULL);
  assert_user (custom, 4711, 4712, "4712");

  /* a relative one climbing out stays inside too */
  g_assert_cmpint (g_unlink (passwd), ==, 0);
  g_assert_cmpint (symlink ("../../../../../../../../data/passwd", passwd), ==, 0);
  g_autoptr (JsonNode) custom2 = generate_user (f, "custom", NULL);
  assert_user (custom2, 4711, 4712, "4712");
}

static void
test_user_errors (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  BerthSpecOptions opts = { .user = "ghost", .image_name = IMAGE };
  g_autoptr (JsonNode) ghost = generate (&opts, sh_image, f->rootfs, &error);
  g_assert_null (ghost);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "ghost"));
  g_assert_nonnull (strstr (error->message, IMAGE));
  g_test_message ("unknown user: %s", error->message);
  g_clear_error (&error);

  opts.user = "app:nogroup-here";
  g_autoptr (JsonNode) group = generate (&opts, sh_image, f->rootfs, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "nogroup-here"));
  g_clear_error (&error);

  /* the image's own User, when it is unknown, is named the same way */
  BerthSpecOptions image_user = { .image_name = IMAGE };
  g_autoptr (JsonNode) from_image = generate (&image_user, "{\"config\": {\"Cmd\": [\"sh\"], \"User\": \"svc\"}}",
                                              f->rootfs, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "svc"));
  g_clear_error (&error);

  /* a rootfs that is not there is an error, not an image without users */
  g_autofree char *gone = g_build_filename (f->rootfs, "gone", NULL);
  opts.user = "1000";
  g_autoptr (JsonNode) no_dir = generate (&opts, sh_image, gone, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, gone));
  g_clear_error (&error);

  /* names need a rootfs with an /etc/passwd */
  opts.user = "app";
  g_autoptr (JsonNode) no_rootfs = generate (&opts, sh_image, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_autofree char *passwd = g_build_filename (f->rootfs, "etc", "passwd", NULL);
  g_assert_cmpint (g_unlink (passwd), ==, 0);
  g_autoptr (JsonNode) no_passwd = generate (&opts, sh_image, f->rootfs, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "/etc/passwd"));
  g_clear_error (&error);

  for (const char *const *bad = (const char *const[]) { "a:b:c", ":5", "5:", NULL }; *bad; bad++)
    {
      opts.user = *bad;
      g_autoptr (JsonNode) spec = generate (&opts, sh_image, f->rootfs, &error);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
    }
}

static void
test_resources (void)
{
  BerthSpecOptions opts = {
    .memory_limit = 64 * 1024 * 1024, .cpus = 1.5, .pids_limit = 100, .namespace = "default", .id = "web",
  };
  g_autoptr (JsonNode) spec = generate_ok (&opts, sh_image, NULL);
  g_assert_cmpint (int_at (spec, "linux.resources.memory.limit"), ==, 64 * 1024 * 1024);
  g_assert_cmpint (int_at (spec, "linux.resources.cpu.quota"), ==, 150000);
  g_assert_cmpint (int_at (spec, "linux.resources.cpu.period"), ==, 100000);
  g_assert_cmpint (int_at (spec, "linux.resources.pids.limit"), ==, 100);
  g_assert_cmpstr (string_at (spec, "linux.cgroupsPath"), ==, "/default/web");

  opts.cpus = 0.25;
  opts.cgroups_path = "/custom/path";
  g_autoptr (JsonNode) spec2 = generate_ok (&opts, sh_image, NULL);
  g_assert_cmpint (int_at (spec2, "linux.resources.cpu.quota"), ==, 25000);
  g_assert_cmpstr (string_at (spec2, "linux.cgroupsPath"), ==, "/custom/path");

  g_autoptr (GError) error = NULL;
  const double bad_cpus[] = { 0.001, -1 };
  for (gsize i = 0; i < G_N_ELEMENTS (bad_cpus); i++)
    {
      BerthSpecOptions bad = { .cpus = bad_cpus[i] };
      g_autoptr (JsonNode) none = generate (&bad, sh_image, NULL, &error);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
    }
  BerthSpecOptions bad_memory = { .memory_limit = -5 };
  g_autoptr (JsonNode) none = generate (&bad_memory, sh_image, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static void
test_privileged (void)
{
  BerthSpecOptions opts = { .privileged = TRUE };
  g_autoptr (JsonNode) spec = generate_ok (&opts, sh_image, NULL);
  g_assert_null (at (spec, "linux.seccomp"));
  g_assert_null (at (spec, "linux.maskedPaths"));
  g_assert_null (at (spec, "linux.readonlyPaths"));

  /* every capability we hold ourselves (containerd's WithAllCurrentCapabilities) */
  g_autofree char *caps = joined (spec, "process.capabilities.bounding");
  g_autofree char *status = NULL;
  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  guint64 bounding = g_ascii_strtoull (strstr (status, "CapBnd:") + strlen ("CapBnd:"), NULL, 16);
  g_auto (GStrv) cap_list = g_strsplit (caps, " ", -1);
  g_assert_cmpuint (g_strv_length (cap_list), ==, __builtin_popcountll (bounding & G_GUINT64_CONSTANT (0x1ffffffffff)));
  g_assert_nonnull (strstr (caps, "CAP_SYS_ADMIN"));

  JsonArray *devices = json_node_get_array (at (spec, "linux.resources.devices"));
  g_assert_cmpuint (json_array_get_length (devices), ==, 1);
  g_assert_true (json_object_get_boolean_member (json_array_get_object_element (devices, 0), "allow"));

  JsonArray *mounts = json_node_get_array (at (spec, "mounts"));
  for (guint i = 0; i < json_array_get_length (mounts); i++)
    {
      JsonNode *mount = json_array_get_element (mounts, i);
      const char *dest = string_at (mount, "destination");
      g_autofree char *options = joined (mount, "options");
      if (strcmp (dest, "/sys") == 0 || strcmp (dest, "/sys/fs/cgroup") == 0)
        g_assert_true (g_str_has_suffix (options, " rw"));
    }

  /* "unconfined" drops seccomp alone; masked paths stay */
  BerthSpecOptions unconfined = { .seccomp_profile = "unconfined" };
  g_autoptr (JsonNode) spec2 = generate_ok (&unconfined, sh_image, NULL);
  g_assert_null (at (spec2, "linux.seccomp"));
  g_assert_nonnull (at (spec2, "linux.maskedPaths"));
}

static void
test_mounts (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("berth-spec-mount-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *hosts = g_build_filename (dir, "hosts", NULL);
  write_file (dir, "hosts", "127.0.0.1 localhost\n");
  g_autofree char *ro = g_strdup_printf ("%s:/data:ro", dir);
  g_autofree char *rw = g_strdup_printf ("%s:/scratch", dir);
  g_autofree char *replace = g_strdup_printf ("%s:/etc/hosts:ro", hosts);
  char *mounts[] = { ro, rw, replace, NULL };
  BerthSpecOptions opts = { .mounts = mounts };
  g_autoptr (JsonNode) spec = generate_ok (&opts, sh_image, NULL);

  JsonArray *array = json_node_get_array (at (spec, "mounts"));
  guint n = json_array_get_length (array);
  guint hosts_mounts = 0;
  gboolean saw_data = FALSE, saw_scratch = FALSE;
  for (guint i = 0; i < n; i++)
    {
      JsonNode *mount = json_array_get_element (array, i);
      const char *dest = string_at (mount, "destination");
      g_autofree char *options = joined (mount, "options");
      if (strcmp (dest, "/data") == 0)
        {
          saw_data = TRUE;
          g_assert_cmpstr (string_at (mount, "type"), ==, "bind");
          g_assert_cmpstr (string_at (mount, "source"), ==, dir);
          g_assert_cmpstr (options, ==, "rbind ro");
        }
      else if (strcmp (dest, "/scratch") == 0)
        {
          saw_scratch = TRUE;
          g_assert_cmpstr (options, ==, "rbind rw");
        }
      else if (strcmp (dest, "/etc/hosts") == 0)
        {
          /* the user's bind replaces the host's /etc/hosts at the same place */
          hosts_mounts++;
          g_assert_cmpstr (string_at (mount, "source"), ==, hosts);
        }
    }
  g_assert_true (saw_data && saw_scratch);
  g_assert_cmpuint (hosts_mounts, ==, 1);
  /* user binds come after the defaults, so they can mount over them */
  g_assert_cmpstr (string_at (json_array_get_element (array, n - 1), "destination"), ==, "/scratch");

  g_autofree char *missing = g_strdup_printf ("%s/nope:/x", dir);
  g_autofree char *relative_src = g_strdup ("data:/x");
  g_autofree char *dotdot = g_strdup_printf ("%s:/x/../etc", dir);
  g_autofree char *bad_mode = g_strdup_printf ("%s:/x:rx", dir);
  const struct {
    const char *spec;
    int code;
  } bad[] = {
    { missing, G_IO_ERROR_NOT_FOUND },
    { relative_src, G_IO_ERROR_INVALID_ARGUMENT },
    { dotdot, G_IO_ERROR_INVALID_ARGUMENT },
    { bad_mode, G_IO_ERROR_INVALID_ARGUMENT },
    { "/tmp", G_IO_ERROR_INVALID_ARGUMENT },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      char *one[] = { (char *) bad[i].spec, NULL };
      BerthSpecOptions bad_opts = { .mounts = one };
      g_autoptr (JsonNode) none = generate (&bad_opts, sh_image, NULL, &error);
      g_assert_null (none);
      g_assert_error (error, G_IO_ERROR, bad[i].code);
      g_assert_nonnull (strstr (error->message, bad[i].spec));
      g_clear_error (&error);
    }
  remove_tree (dir);
}

static void
test_caps (void)
{
  char *add[] = { "sys_admin", "CAP_NET_ADMIN", NULL };
  char *drop[] = { "MKNOD", "CAP_NET_RAW", NULL };
  BerthSpecOptions opts = { .cap_add = add, .cap_drop = drop };
  g_autoptr (JsonNode) spec = generate_ok (&opts, sh_image, NULL);
  g_autofree char *caps = joined (spec, "process.capabilities.effective");
  g_assert_cmpstr (caps, ==, "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FSETID CAP_FOWNER CAP_SETGID CAP_SETUID CAP_SETFCAP "
                             "CAP_SETPCAP CAP_NET_BIND_SERVICE CAP_SYS_CHROOT CAP_KILL CAP_AUDIT_WRITE "
                             "CAP_SYS_ADMIN CAP_NET_ADMIN");
  /* seccomp follows the bounding set: CAP_SYS_ADMIN opens mount and unshare */
  JsonNode *seccomp = at (spec, "linux.seccomp");
  g_assert_true (seccomp_allows (seccomp, "mount"));
  g_assert_true (seccomp_allows (seccomp, "unshare"));

  char *all[] = { "ALL", NULL };
  BerthSpecOptions none_opts = { .cap_drop = all };
  g_autoptr (JsonNode) spec2 = generate_ok (&none_opts, sh_image, NULL);
  g_autofree char *none = joined (spec2, "process.capabilities.bounding");
  g_assert_cmpstr (none, ==, "");

  char *unknown[] = { "CAP_FLY", NULL };
  BerthSpecOptions bad = { .cap_add = unknown };
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) spec3 = generate (&bad, sh_image, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "CAP_FLY"));
}

/* ---- seccomp ---- */

static JsonNode *
seccomp_ok (const char *profile_json, const char *arch, const char *const *caps)
{
  g_autoptr (JsonNode) profile = parse (profile_json);
  g_autoptr (GError) error = NULL;
  JsonNode *oci = berth_seccomp_profile_to_oci (profile, "test", arch, caps, &error);
  g_assert_no_error (error);
  g_assert_nonnull (oci);
  return oci;
}

static JsonNode *
default_seccomp (const char *arch, const char *const *caps)
{
  g_autofree char *path = default_profile ();
  g_autoptr (GError) error = NULL;
  JsonNode *oci = berth_seccomp_load (path, arch, caps, &error);
  g_assert_no_error (error);
  return oci;
}

static const char *const default_caps[] = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", NULL,
};

static void
test_seccomp_unknown_dropped (void)
{
  const char *profile = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                        "{\"names\": [\"read\", \"no_such_syscall_berth\", \"write\"], \"action\": \"SCMP_ACT_ALLOW\"},"
                        "{\"names\": [\"another_fake_one\"], \"action\": \"SCMP_ACT_ALLOW\"},"
                        "{\"names\": [\"getpid\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38}]}";
  g_assert_cmpint (seccomp_syscall_resolve_name ("no_such_syscall_berth"), ==, __NR_SCMP_ERROR);
  g_autoptr (JsonNode) oci = seccomp_ok (profile, NULL, NULL);
  JsonArray *rules = json_node_get_array (at (oci, "syscalls"));
  /* the rule of only unknown names is gone; the other keeps its known names */
  g_assert_cmpuint (json_array_get_length (rules), ==, 2);
  g_autofree char *names = joined (json_array_get_element (rules, 0), "names");
  g_assert_cmpstr (names, ==, "read write");
  g_assert_cmpint (int_at (json_array_get_element (rules, 1), "errnoRet"), ==, 38);
  g_assert_null (at (oci, "defaultErrnoRet"));
  g_assert_cmpstr (string_at (oci, "defaultAction"), ==, "SCMP_ACT_ERRNO");

  /* berth seccomp check names them */
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("berth-seccomp-XXXXXX", &error);
  g_assert_no_error (error);
  write_file (dir, "p.json", profile);
  g_autofree char *path = g_build_filename (dir, "p.json", NULL);
  g_autoptr (GPtrArray) unknown = NULL;
  g_assert_true (berth_seccomp_check_file (path, &unknown, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (unknown->len, ==, 2);
  g_assert_cmpstr (unknown->pdata[0], ==, "no_such_syscall_berth");
  g_assert_cmpstr (unknown->pdata[1], ==, "another_fake_one");
  remove_tree (dir);
}

static void
test_seccomp_caps (void)
{
  g_autoptr (JsonNode) plain = default_seccomp (NULL, default_caps);
  static const char *const never[] = { "keyctl", "add_key", "request_key", "pivot_root", NULL };
  static const char *const admin_only[] = { "mount", "umount2", "unshare", "setns", "sethostname", NULL };
  for (guint i = 0; admin_only[i] != NULL; i++)
    g_assert_null (seccomp_rule (plain, admin_only[i], NULL));
  for (guint i = 0; never[i] != NULL; i++)
    g_assert_null (seccomp_rule (plain, never[i], NULL));
  /* ptrace itself is fine since 4.8 (it can no longer bypass seccomp); reading other
   * processes' memory is not */
  g_assert_true (seccomp_allows (plain, "ptrace"));
  g_assert_null (seccomp_rule (plain, "process_vm_readv", NULL));
  g_assert_null (seccomp_rule (plain, "reboot", NULL));
  g_assert_null (seccomp_rule (plain, "init_module", NULL));

  /* clone only without namespace flags, clone3 ENOSYS so libc falls back to clone */
  JsonObject *clone = seccomp_rule (plain, "clone", "SCMP_ACT_ALLOW");
  g_assert_nonnull (clone);
  JsonObject *arg = json_array_get_object_element (json_object_get_array_member (clone, "args"), 0);
  g_assert_cmpstr (json_object_get_string_member (arg, "op"), ==, "SCMP_CMP_MASKED_EQ");
  g_assert_cmpint (json_object_get_int_member (arg, "value"), ==, 0x7E020000);
  g_assert_cmpint (json_object_get_int_member (arg, "valueTwo"), ==, 0);
  JsonObject *clone3 = seccomp_rule (plain, "clone3", NULL);
  g_assert_cmpstr (json_object_get_string_member (clone3, "action"), ==, "SCMP_ACT_ERRNO");
  g_assert_cmpint (json_object_get_int_member (clone3, "errnoRet"), ==, 38);

  /* personality only with the listed arguments */
  JsonObject *personality = seccomp_rule (plain, "personality", NULL);
  g_assert_true (json_object_has_member (personality, "args"));
  g_assert_false (seccomp_allows (plain, "personality"));

  const char *with_admin[G_N_ELEMENTS (default_caps) + 1];
  memcpy (with_admin, default_caps, sizeof default_caps);
  with_admin[G_N_ELEMENTS (default_caps) - 1] = "CAP_SYS_ADMIN";
  with_admin[G_N_ELEMENTS (default_caps)] = NULL;
  g_autoptr (JsonNode) admin = default_seccomp (NULL, with_admin);
  for (guint i = 0; admin_only[i] != NULL; i++)
    g_assert_true (seccomp_allows (admin, admin_only[i]));
  g_assert_true (seccomp_allows (admin, "clone"));
  g_assert_true (seccomp_allows (admin, "clone3"));
  g_assert_null (seccomp_rule (admin, "clone3", "SCMP_ACT_ERRNO"));
  for (guint i = 0; never[i] != NULL; i++)
    g_assert_null (seccomp_rule (admin, never[i], NULL));

  /* one rule per capability */
  g_autoptr (JsonNode) ptrace = default_seccomp (NULL, (const char *const[]) { "CAP_SYS_PTRACE", NULL });
  g_assert_true (seccomp_allows (ptrace, "process_vm_readv"));
  g_assert_null (seccomp_rule (ptrace, "mount", NULL));
  g_autoptr (JsonNode) boot = default_seccomp (NULL, (const char *const[]) { "CAP_SYS_BOOT", "CAP_SYS_MODULE", NULL });
  g_assert_true (seccomp_allows (boot, "reboot"));
  g_assert_true (seccomp_allows (boot, "init_module"));
  g_assert_true (seccomp_allows (boot, "finit_module"));

  /* an include listing two capabilities needs both (docker's rule) */
  const char *both = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"mount\"], "
                     "\"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\", \"CAP_SYS_BOOT\"]}}]}";
  g_autoptr (JsonNode) one = seccomp_ok (both, NULL, (const char *const[]) { "CAP_SYS_ADMIN", NULL });
  g_assert_null (seccomp_rule (one, "mount", NULL));
  g_autoptr (JsonNode) two = seccomp_ok (both, NULL, (const char *const[]) { "CAP_SYS_BOOT", "CAP_SYS_ADMIN", NULL });
  g_assert_nonnull (seccomp_rule (two, "mount", NULL));
}

static void
test_seccomp_arch (void)
{
  g_autoptr (JsonNode) x86 = default_seccomp ("SCMP_ARCH_X86_64", default_caps);
  g_autofree char *x86_arches = joined (x86, "architectures");
  g_assert_cmpstr (x86_arches, ==, "SCMP_ARCH_X86_64 SCMP_ARCH_X86 SCMP_ARCH_X32");
  g_assert_true (seccomp_allows (x86, "arch_prctl"));
  g_assert_true (seccomp_allows (x86, "modify_ldt"));
  g_assert_null (seccomp_rule (x86, "cacheflush", NULL));

  g_autoptr (JsonNode) arm = default_seccomp ("SCMP_ARCH_AARCH64", default_caps);
  g_autofree char *arm_arches = joined (arm, "architectures");
  g_assert_cmpstr (arm_arches, ==, "SCMP_ARCH_AARCH64 SCMP_ARCH_ARM");
  g_assert_null (seccomp_rule (arm, "arch_prctl", NULL));
  g_assert_null (seccomp_rule (arm, "modify_ldt", NULL));
  g_assert_true (seccomp_allows (arm, "cacheflush"));

  /* s390x passes clone's flags second */
  g_autoptr (JsonNode) s390x = default_seccomp ("SCMP_ARCH_S390X", default_caps);
  JsonObject *clone = seccomp_rule (s390x, "clone", "SCMP_ACT_ALLOW");
  JsonObject *arg = json_array_get_object_element (json_object_get_array_member (clone, "args"), 0);
  g_assert_cmpint (json_object_get_int_member (arg, "index"), ==, 1);

  /* the host's own, by default */
  g_autoptr (JsonNode) native = default_seccomp (NULL, default_caps);
  g_autofree char *native_arches = joined (native, "architectures");
  g_assert_true (g_str_has_prefix (native_arches, berth_seccomp_native_arch ()));

  /* includes.arches accept Go's names (docker's) and libseccomp's alike */
  const char *profile = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [\"SCMP_ARCH_AARCH64\"], "
                        "\"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", "
                        "\"includes\": {\"arches\": [\"SCMP_ARCH_AARCH64\"]}}, {\"names\": [\"write\"], "
                        "\"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"arches\": [\"arm64\"]}}]}";
  g_autoptr (JsonNode) legacy = seccomp_ok (profile, "SCMP_ARCH_AARCH64", NULL);
  g_autofree char *legacy_arches = joined (legacy, "architectures");
  g_assert_cmpstr (legacy_arches, ==, "SCMP_ARCH_AARCH64");
  g_assert_true (seccomp_allows (legacy, "read"));
  g_assert_null (seccomp_rule (legacy, "write", NULL));
}

static void
test_seccomp_min_kernel (void)
{
  const char *profile = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": ["
                        "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"minKernel\": \"2.6\"}},"
                        "{\"names\": [\"write\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"minKernel\": \"99.1\"}}]}";
  g_autoptr (JsonNode) oci = seccomp_ok (profile, NULL, NULL);
  g_assert_true (seccomp_allows (oci, "read"));
  g_assert_null (seccomp_rule (oci, "write", NULL));
}

static void
test_seccomp_malformed (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("berth-seccomp-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *path = g_build_filename (dir, "broken.json", NULL);

  /* JSON syntax: the path and json-glib's line:col */
  write_file (dir, "broken.json", "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [,]\n}\n");
  g_assert_false (berth_seccomp_check_file (path, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_autofree char *where = g_strdup_printf ("%s:3:", path);
  g_assert_nonnull (strstr (error->message, where));
  g_test_message ("syntax: %s", error->message);
  g_clear_error (&error);

  /* structure: the path and the rule */
  const struct {
    const char *json;
    const char *says;
  } bad[] = {
    { "{\"syscalls\": []}", "defaultAction" },
    { "[1, 2]", "not a JSON object" },
    { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_MAYBE\"}]}",
      "syscalls[0]" },
    { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"}, "
      "{\"names\": \"write\", \"action\": \"SCMP_ACT_ALLOW\"}]}",
      "syscalls[1]" },
    { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", "
      "\"args\": [{\"index\": 9, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}]}",
      "syscalls[0].args[0]" },
    { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", "
      "\"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_ALMOST\"}]}]}",
      "op" },
    { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"archMap\": [{\"architecture\": \"SCMP_ARCH_VAX\"}]}", "SCMP_ARCH_VAX" },
    { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", "
      "\"includes\": {\"minKernel\": \"new\"}}]}",
      "minKernel" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      write_file (dir, "broken.json", bad[i].json);
      g_assert_false (berth_seccomp_check_file (path, NULL, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_assert_nonnull (strstr (error->message, path));
      g_assert_nonnull (strstr (error->message, bad[i].says));
      g_test_message ("%s", error->message);
      g_clear_error (&error);
    }

  /* generating a spec with it fails the same way */
  BerthSpecOptions opts = { .seccomp_profile = path };
  g_autoptr (JsonNode) spec = generate (&opts, sh_image, NULL, &error);
  g_assert_null (spec);
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);

  g_autofree char *missing = g_build_filename (dir, "missing.json", NULL);
  g_assert_false (berth_seccomp_check_file (missing, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, missing));
  remove_tree (dir);
}

static void
test_seccomp_default_profile (void)
{
  g_autofree char *path = default_profile ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) unknown = NULL;
  g_assert_true (berth_seccomp_check_file (path, &unknown, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < unknown->len; i++)
    g_test_message ("this libseccomp does not know %s", (const char *) unknown->pdata[i]);

  g_autoptr (JsonNode) oci = default_seccomp (NULL, default_caps);
  guint count = seccomp_name_count (oci);
  g_test_message ("default profile: %u syscall names for the default capabilities on %s", count,
                  berth_seccomp_native_arch ());
  g_assert_cmpuint (count, >, 250);
  g_assert_cmpstr (string_at (oci, "defaultAction"), ==, "SCMP_ACT_ERRNO");
  g_assert_cmpint (int_at (oci, "defaultErrnoRet"), ==, 1);
  static const char *const common[] = { "read", "write", "openat", "execve", "exit_group", "futex", "mmap", NULL };
  for (guint i = 0; common[i] != NULL; i++)
    g_assert_true (seccomp_allows (oci, common[i]));

  /* and it is what a generated spec carries */
  g_autoptr (JsonNode) spec = generate_ok (&no_opts, sh_image, NULL);
  g_autofree char *a = json_to_string (at (spec, "linux.seccomp"), FALSE);
  g_autofree char *b = json_to_string (oci, FALSE);
  g_assert_cmpstr (a, ==, b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* the profile from the source tree, not an installed one */
  if (g_getenv ("BERTH_DATADIR") == NULL)
    {
      g_autofree char *datadir = g_test_build_filename (G_TEST_DIST, "..", "data", NULL);
      g_setenv ("BERTH_DATADIR", datadir, TRUE);
    }

  g_test_add_func ("/spec/defaults", test_defaults);
  g_test_add_func ("/spec/args", test_args);
  g_test_add_func ("/spec/env", test_env);
  g_test_add_func ("/spec/workdir-hostname-readonly", test_workdir_hostname_readonly);
  g_test_add ("/spec/user/names", Fixture, NULL, rootfs_setup, test_user_names, rootfs_teardown);
  g_test_add ("/spec/user/numeric", Fixture, NULL, rootfs_setup, test_user_numeric, rootfs_teardown);
  g_test_add ("/spec/user/symlinked-passwd", Fixture, NULL, rootfs_setup, test_user_symlinked_passwd, rootfs_teardown);
  g_test_add ("/spec/user/errors", Fixture, NULL, rootfs_setup, test_user_errors, rootfs_teardown);
  g_test_add_func ("/spec/resources", test_resources);
  g_test_add_func ("/spec/privileged", test_privileged);
  g_test_add_func ("/spec/mounts", test_mounts);
  g_test_add_func ("/spec/caps", test_caps);
  g_test_add_func ("/seccomp/unknown-dropped", test_seccomp_unknown_dropped);
  g_test_add_func ("/seccomp/caps", test_seccomp_caps);
  g_test_add_func ("/seccomp/arch", test_seccomp_arch);
  g_test_add_func ("/seccomp/min-kernel", test_seccomp_min_kernel);
  g_test_add_func ("/seccomp/malformed", test_seccomp_malformed);
  g_test_add_func ("/seccomp/default-profile", test_seccomp_default_profile);
  return g_test_run ();
}
