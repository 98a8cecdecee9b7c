/* test-distribution.c — image references as docker normalises them (berthd's and the
 * berth CLI's one parser), and the [registry."HOST"] groups of berthd.conf. */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "daemon/berth-config.h"
#include "image/berth-distribution.h"
#include "image/berth-reference.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The berth CLI resolves image names with this parser too (`berth run`, `image inspect`,
 * `image rm`). Its own normaliser, before it used this one, gave each of these alike:
 * docker.io/library/ for a bare name, docker.io/ for a user's, :latest unless a tag or a
 * digest is given, a registry (a dot, a port or localhost) kept as it is; all but
 * "docker.io/busybox", which it left docker.io/busybox:latest, a name no pull records. */
static void
test_reference_normalise (void)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
    { "busybox", "docker.io/library/busybox:latest" },
    { "busybox:1.36", "docker.io/library/busybox:1.36" },
    { "me/app", "docker.io/me/app:latest" },
    { "library/busybox", "docker.io/library/busybox:latest" },
    { "berth-test/busybox:latest", "docker.io/berth-test/busybox:latest" },
    { "docker.io/library/busybox:latest", "docker.io/library/busybox:latest" },
    { "docker.io/busybox", "docker.io/library/busybox:latest" },
    { "index.docker.io/library/busybox:1", "docker.io/library/busybox:1" },
    { "localhost/app", "localhost/app:latest" },
    { "localhost:5000/a/b/c:v_1.2-x", "localhost:5000/a/b/c:v_1.2-x" },
    { "127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest" },
    { "registry.example.com/a/b/c", "registry.example.com/a/b/c:latest" },
    { "quay.io/org/img__x.y-z:tag", "quay.io/org/img__x.y-z:tag" },
    { "busybox@" DIGEST, "docker.io/library/busybox@" DIGEST },
    { "busybox:1.36@" DIGEST, "docker.io/library/busybox:1.36@" DIGEST },
    { "a/b:c@" DIGEST, "docker.io/a/b:c@" DIGEST },
    { "localhost:5000/x@" DIGEST, "localhost:5000/x@" DIGEST },
    { "reg.io:443/x:1@" DIGEST, "reg.io:443/x:1@" DIGEST },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (BerthReference) parsed = berth_reference_parse (cases[i].in, &error);
      g_assert_no_error (error);
      g_autofree char *text = berth_reference_to_string (parsed);
      g_assert_cmpstr (text, ==, cases[i].out);
      /* What the CLI calls: the same, and a normalised name normalises to itself. */
      g_autofree char *normal = berth_reference_normalize (cases[i].in, &error);
      g_assert_cmpstr (normal, ==, cases[i].out);
      g_autofree char *again = berth_reference_normalize (normal, &error);
      g_assert_cmpstr (again, ==, normal);
    }
  /* Not a reference (ctr may import anything): no normalised name, so the CLI looks the
   * name up only as it is given. */
  g_autoptr (GError) error = NULL;
  g_assert_null (berth_reference_normalize ("Not A Reference", &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
  g_autoptr (BerthReference) ref = berth_reference_parse ("127.0.0.1:5000/a/b:t", NULL);
  g_assert_cmpstr (ref->domain, ==, "127.0.0.1:5000");
  g_assert_cmpstr (ref->path, ==, "a/b");
  g_assert_cmpstr (ref->tag, ==, "t");
  g_assert_null (ref->digest);
}

static void
test_reference_invalid (void)
{
  static const char *const bad[] = {
    "", "Busybox", "busybox:", "busybox:-x", "busybox:a b", "a//b", "/busybox", "busybox/", "a..b", "a___b", "-a",
    "busybox@sha256:abc", "busybox@md5:0123", "host:port/x", "reg.io:99999999/x", "x@", ":tag",
    "reg.io/", "localhost:5000/", "reg.io:443/:tag",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (BerthReference) ref = berth_reference_parse (bad[i], &error);
      if (ref != NULL)
        g_error ("\"%s\" parsed", bad[i]);
      g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
    }
  g_autofree char *long_name = g_strnfill (300, 'a');
  g_autoptr (GError) error = NULL;
  g_assert_null (berth_reference_parse (long_name, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
}

static BerthConfig *
load (const char *text, GError **error)
{
  g_autofree char *path = NULL;
  int fd = g_file_open_tmp ("berth-conf-XXXXXX", &path, NULL);
  g_assert_cmpint (fd, >=, 0);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  close (fd);
  BerthConfig *config = berth_config_load (path, error);
  g_unlink (path);
  return config;
}

static void
test_config_registries (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthConfig) config = load ("[berthd]\nmax-concurrent-downloads=5\nregistry-auth-file=/x/auth.json\n"
                                         "[registry.\"localhost:5000\"]\nplain-http=true\n"
                                         "[registry.quay.io]\nskip-verify=true\nca-file=/etc/hostname\n", &error);
  g_assert_no_error (error);
  g_assert_cmpint (config->max_concurrent_downloads, ==, 5);
  g_assert_cmpstr (config->registry_auth_file, ==, "/x/auth.json");
  const BerthRegistryHostConfig *local = berth_config_get_registry (config, "localhost:5000");
  g_assert_nonnull (local);
  g_assert_true (local->plain_http);
  g_assert_false (local->skip_verify);
  const BerthRegistryHostConfig *quay = berth_config_get_registry (config, "quay.io");
  g_assert_nonnull (quay);
  g_assert_true (quay->skip_verify);
  g_assert_cmpstr (quay->ca_file, ==, "/etc/hostname");
  g_assert_null (berth_config_get_registry (config, "docker.io"));

  static const char *const bad[][2] = {
    { "[registry.\"h:1\"]\nplain-http=maybe\n", ":2: plain-http: want true or false" },
    { "[registry.h]\nmirror=x\n", ":2: unknown key \"mirror\"" },
    { "[registry.h]\nca-file=/no/such/ca.pem\n", "ca-file /no/such/ca.pem is not a readable file" },
    { "[registry.\"\"]\nplain-http=true\n", ":1: [registry.\"\"]" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) local_error = NULL;
      g_autoptr (BerthConfig) none = load (bad[i][0], &local_error);
      g_assert_null (none);
      g_assert_error (local_error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
      if (strstr (local_error->message, bad[i][1]) == NULL)
        g_error ("\"%s\" does not say \"%s\"", local_error->message, bad[i][1]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/distribution/reference/normalise", test_reference_normalise);
  g_test_add_func ("/distribution/reference/invalid", test_reference_invalid);
  g_test_add_func ("/distribution/config/registries", test_config_registries);
  return g_test_run ();
}
