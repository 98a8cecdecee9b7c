/* cli-reference.c — image references as docker spells them (see cli-reference.h).
 * A file of its own so the reference fuzz target (tests/fuzz/fuzz-reference.c) links it. */
#include "config.h"

#include <string.h>

#include "cli-reference.h"

char *
cli_normalize_image (const char *name)
{
  g_autofree char *with_tag = NULL;
  const char *last_slash = strrchr (name, '/');
  const char *base = last_slash ? last_slash + 1 : name;
  if (strchr (base, ':') == NULL && strchr (name, '@') == NULL)
    with_tag = g_strdup_printf ("%s:latest", name);
  else
    with_tag = g_strdup (name);
  const char *slash = strchr (with_tag, '/');
  if (slash == NULL)
    return g_strdup_printf ("docker.io/library/%s", with_tag);
  g_autofree char *first = g_strndup (with_tag, slash - with_tag);
  if (strchr (first, '.') == NULL && strchr (first, ':') == NULL && strcmp (first, "localhost") != 0)
    return g_strdup_printf ("docker.io/%s", with_tag);
  return g_steal_pointer (&with_tag);
}
