/* test-identifiers.c — containerd's identifier rule (identifiers/validate.go) and the
 * bounds of free-form names, through the public <berth/berth.h>. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>

static gboolean
valid (BerthIdentifierKind kind, const char *id)
{
  g_autoptr (GError) error = NULL;
  gboolean ok = berth_identifier_validate (kind, id, &error);
  if (!ok)
    g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
  return ok;
}

static void
test_identifier_rule (void)
{
  /* containerd's own table (identifiers/validate_test.go). */
  const char *good[] = { "default", "Default", "k8s.io", "foo.boo", "foo.boo.woo", "foo-boo", "foo-boo-woo",
                         "foo_boo", "foo1", "1foo", "a", "0", "foo.1", "a.b-c_d", NULL };
  const char *bad[] = { "", ".foo", "foo.", "foo..boo", "foo--boo", "foo__boo", "foo-_boo", "-foo", "foo-", "_foo",
                        "foo_", "foo/boo", "foo boo", "foo:boo", "fóo", "/tmp/x/mnt", NULL };
  /* Exec ids too: containerd's runtime v2 validates them with the same rule. */
  BerthIdentifierKind kinds[] = { BERTH_IDENTIFIER_NAMESPACE, BERTH_IDENTIFIER_CONTAINER, BERTH_IDENTIFIER_EXEC };
  g_autofree char *max = g_strnfill (76, 'a'), *over = g_strnfill (77, 'a');
  for (guint k = 0; k < G_N_ELEMENTS (kinds); k++)
    {
      for (const char **p = good; *p; p++)
        g_assert_true (valid (kinds[k], *p));
      for (const char **p = bad; *p; p++)
        g_assert_false (valid (kinds[k], *p));
      g_assert_true (valid (kinds[k], max));
      g_assert_false (valid (kinds[k], over));
      g_assert_false (valid (kinds[k], NULL));
    }
}

static void
test_messages (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_false (berth_identifier_validate (BERTH_IDENTIFIER_CONTAINER, "a..b", &error));
  g_assert_nonnull (strstr (error->message, "container id \"a..b\""));
  g_clear_error (&error);
  g_assert_false (berth_identifier_validate (BERTH_IDENTIFIER_LEASE, "", &error));
  g_assert_nonnull (strstr (error->message, "lease id"));
  g_clear_error (&error);
  g_assert_false (berth_identifier_validate (BERTH_IDENTIFIER_EXEC, "e/1", &error));
  g_assert_nonnull (strstr (error->message, "exec id \"e/1\""));
}

static void
test_free_form (void)
{
  /* No character rule where containerd has none: ctr names a lease after a directory. */
  const char *names[] = { "/tmp/x/mnt", "a..b", "-x", "docker.io/library/busybox:1.36", "with space", "ünï", NULL };
  BerthIdentifierKind kinds[] = { BERTH_IDENTIFIER_LEASE, BERTH_IDENTIFIER_IMAGE, BERTH_IDENTIFIER_SNAPSHOT_KEY,
                                  BERTH_IDENTIFIER_CONTENT_REF };
  for (guint k = 0; k < G_N_ELEMENTS (kinds); k++)
    {
      for (const char **p = names; *p; p++)
        g_assert_true (valid (kinds[k], *p));
      g_assert_false (valid (kinds[k], ""));
      gsize max = berth_identifier_max_length (kinds[k]);
      g_autofree char *longest = g_strnfill (max, 'k'), *over = g_strnfill (max + 1, 'k');
      g_assert_true (valid (kinds[k], longest));
      g_assert_false (valid (kinds[k], over));
    }
  /* A 10 kB snapshot key: INVALID_ARGUMENT, not a store error. */
  g_autofree char *huge = g_strnfill (10000, 'k');
  g_assert_false (valid (BERTH_IDENTIFIER_SNAPSHOT_KEY, huge));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/identifiers/rule", test_identifier_rule);
  g_test_add_func ("/identifiers/messages", test_messages);
  g_test_add_func ("/identifiers/free-form", test_free_form);
  return g_test_run ();
}
