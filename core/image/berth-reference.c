/* berth-reference.c — image references ("docker.io/library/busybox:1.36@sha256:…"):
 * parsing and normalising as containerd's reference/docker package does (see
 * berth-reference.h). Built into berthd (CRI names images with it; the registry client
 * is a module) and into the berth CLI, which resolves image names with it. */
#include "config.h"

#include <string.h>

#include <berth/berth.h>
#include "berth-reference.h"

#define DOCKER_DOMAIN "docker.io"
#define MAX_NAME 255

void
berth_reference_free (BerthReference *ref)
{
  if (ref == NULL)
    return;
  g_free (ref->domain);
  g_free (ref->path);
  g_free (ref->tag);
  g_free (ref->digest);
  g_free (ref);
}

static gboolean
is_alnum_lower (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static gboolean
valid_component (const char *s, gsize len)
{
  if (len == 0 || !is_alnum_lower (s[0]) || !is_alnum_lower (s[len - 1]))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (is_alnum_lower (s[i]))
        continue;
      if (s[i] == '.' || s[i] == '_')
        {
          gsize run = 1;
          while (i + run < len && s[i + run] == s[i])
            run++;
          if (!(run == 1 || (s[i] == '_' && run == 2)))
            return FALSE;
          i += run - 1;
          continue;
        }
      if (s[i] == '-')
        continue;
      return FALSE;
    }
  return TRUE;
}

/* host[:port]: DNS labels ([A-Za-z0-9-]) joined by dots, or a bracketed IPv6 address. */
static gboolean
valid_domain (const char *s)
{
  const char *colon = s[0] == '[' ? strstr (s, "]:") : strrchr (s, ':');
  gsize host_len = colon ? (gsize) (colon - s) + (s[0] == '[') : strlen (s);
  if (colon != NULL)
    {
      const char *port = s[0] == '[' ? colon + 2 : colon + 1;
      if (*port == '\0' || strspn (port, "0123456789") != strlen (port) || strlen (port) > 5)
        return FALSE;
    }
  if (host_len == 0)
    return FALSE;
  if (s[0] == '[')
    return s[host_len - 1] == ']' && host_len > 2;
  for (gsize i = 0; i < host_len; i++)
    if (!g_ascii_isalnum (s[i]) && s[i] != '-' && s[i] != '.')
      return FALSE;
  return s[0] != '.' && s[0] != '-' && s[host_len - 1] != '.';
}

static gboolean
valid_tag (const char *tag)
{
  gsize len = strlen (tag);
  if (len == 0 || len > 128 || !(g_ascii_isalnum (tag[0]) || tag[0] == '_'))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (tag[i]) && tag[i] != '_' && tag[i] != '.' && tag[i] != '-')
      return FALSE;
  return TRUE;
}

BerthReference *
berth_reference_parse (const char *text, GError **error)
{
  if (text == NULL || *text == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "an empty image reference"), NULL;
  g_autoptr (BerthReference) ref = g_new0 (BerthReference, 1);
  g_autofree char *rest = g_strdup (text);
  char *at = strchr (rest, '@');
  if (at != NULL)
    {
      *at = '\0';
      ref->digest = g_strdup (at + 1);
      g_autoptr (GError) local_error = NULL;
      if (!berth_digest_validate (ref->digest, &local_error))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "reference \"%s\": %s", text, local_error->message), NULL;
    }
  char *last_slash = strrchr (rest, '/');
  char *colon = strrchr (last_slash ? last_slash : rest, ':');
  if (colon != NULL)
    {
      *colon = '\0';
      ref->tag = g_strdup (colon + 1);
      if (!valid_tag (ref->tag))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                            "reference \"%s\": tag \"%s\" is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", text, ref->tag),
               NULL;
    }
  char *slash = strchr (rest, '/');
  const char *path = rest;
  if (slash != NULL)
    {
      g_autofree char *first = g_strndup (rest, slash - rest);
      if (strchr (first, '.') != NULL || strchr (first, ':') != NULL || g_str_equal (first, "localhost")
          || g_ascii_isupper (first[0]))
        {
          if (!valid_domain (first))
            return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "reference \"%s\": \"%s\" is not a registry host[:port]",
                                text, first),
                   NULL;
          ref->domain = g_steal_pointer (&first);
          path = slash + 1;
        }
    }
  if (*path == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "reference \"%s\": no repository name", text),
           NULL;
  if (ref->domain == NULL || g_str_equal (ref->domain, "index.docker.io"))
    {
      g_free (ref->domain);
      ref->domain = g_strdup (DOCKER_DOMAIN);
    }
  if (g_str_equal (ref->domain, DOCKER_DOMAIN) && strchr (path, '/') == NULL)
    ref->path = g_strconcat ("library/", path, NULL);
  else
    ref->path = g_strdup (path);
  for (const char *p = ref->path; *p; p++)
    if (g_ascii_isupper (*p))
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "reference \"%s\": repository names must be lowercase",
                          text),
             NULL;
  g_auto (GStrv) components = g_strsplit (ref->path, "/", -1);
  for (guint i = 0; components[i] != NULL; i++)
    if (!valid_component (components[i], strlen (components[i])))
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                          "reference \"%s\": \"%s\" is not a valid repository name component", text, components[i]),
             NULL;
  if (strlen (ref->domain) + 1 + strlen (ref->path) > MAX_NAME)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "reference \"%s\": names are at most %d characters", text,
                        MAX_NAME),
           NULL;
  if (ref->tag == NULL && ref->digest == NULL)
    ref->tag = g_strdup ("latest");
  return g_steal_pointer (&ref);
}

char *
berth_reference_to_string (const BerthReference *ref)
{
  return g_strdup_printf ("%s/%s%s%s%s%s", ref->domain, ref->path, ref->tag ? ":" : "", ref->tag ? ref->tag : "",
                          ref->digest ? "@" : "", ref->digest ? ref->digest : "");
}


char *
berth_reference_normalize (const char *text, GError **error)
{
  g_autoptr (BerthReference) ref = berth_reference_parse (text, error);
  return ref != NULL ? berth_reference_to_string (ref) : NULL;
}
