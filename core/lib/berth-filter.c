/* berth-filter.c — containerd's filter syntax.
 *
 *   filters   := filter ... (several strings: any may match)
 *   filter    := selector ( "," selector )*        (all must match)
 *   selector  := fieldpath [ ( "==" | "!=" | "~=" ) value ]
 *   fieldpath := field ( "." field )*
 *   field     := quoted | [A-Za-z0-9_]+
 *   value     := quoted | anything up to the next ","
 * A selector without an operator asks only that the field is present.
 */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-types.h>

typedef enum { OP_PRESENT, OP_EQUAL, OP_NOT_EQUAL, OP_MATCHES } FilterOp;

typedef struct {
  GStrv fieldpath;
  FilterOp op;
  char *value;
  GRegex *regex;
} Selector;

struct _BerthFilter {
  GPtrArray *alternatives; /* GPtrArray of Selector* */
};

static void
selector_free (Selector *selector)
{
  g_strfreev (selector->fieldpath);
  g_free (selector->value);
  g_clear_pointer (&selector->regex, g_regex_unref);
  g_free (selector);
}

void
berth_filter_free (BerthFilter *filter)
{
  if (filter == NULL)
    return;
  g_ptr_array_unref (filter->alternatives);
  g_free (filter);
}

typedef struct {
  const char *text; /* the whole filter, for messages */
  const char *p;
} Scanner;

static gboolean
scan_error (Scanner *s, GError **error, const char *what)
{
  return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "filter \"%s\": %s at position %ld", s->text, what,
                      (long) (s->p - s->text));
}

/* A "quoted" string with \-escapes; *out owned by the caller. */
static gboolean
scan_quoted (Scanner *s, char **out, GError **error)
{
  char quote = *s->p++;
  GString *value = g_string_new (NULL);
  while (*s->p != '\0' && *s->p != quote)
    {
      if (*s->p == '\\' && s->p[1] != '\0')
        s->p++;
      g_string_append_c (value, *s->p++);
    }
  if (*s->p != quote)
    {
      g_string_free (value, TRUE);
      return scan_error (s, error, "unterminated quoted string");
    }
  s->p++;
  *out = g_string_free (value, FALSE);
  return TRUE;
}

static gboolean
scan_field (Scanner *s, char **out, GError **error)
{
  if (*s->p == '"' || *s->p == '`')
    return scan_quoted (s, out, error);
  const char *start = s->p;
  while (g_ascii_isalnum (*s->p) || *s->p == '_' || *s->p == '-' || *s->p == '/')
    s->p++;
  if (s->p == start)
    return scan_error (s, error, "expected a field name");
  *out = g_strndup (start, s->p - start);
  return TRUE;
}

static Selector *
scan_selector (Scanner *s, GError **error)
{
  g_autoptr (GPtrArray) path = g_ptr_array_new_with_free_func (g_free);
  for (;;)
    {
      char *field = NULL;
      while (*s->p == ' ')
        s->p++;
      if (!scan_field (s, &field, error))
        return NULL;
      g_ptr_array_add (path, field);
      if (*s->p != '.')
        break;
      s->p++;
    }
  g_ptr_array_add (path, NULL);
  Selector *selector = g_new0 (Selector, 1);
  selector->fieldpath = (GStrv) g_ptr_array_steal (path, NULL);
  while (*s->p == ' ')
    s->p++;
  if (*s->p == ',' || *s->p == '\0')
    return selector;
  if (g_str_has_prefix (s->p, "=="))
    selector->op = OP_EQUAL;
  else if (g_str_has_prefix (s->p, "!="))
    selector->op = OP_NOT_EQUAL;
  else if (g_str_has_prefix (s->p, "~="))
    selector->op = OP_MATCHES;
  else
    {
      selector_free (selector);
      scan_error (s, error, "expected ==, != or ~=");
      return NULL;
    }
  s->p += 2;
  while (*s->p == ' ')
    s->p++;
  if (*s->p == '"' || *s->p == '`')
    {
      if (!scan_quoted (s, &selector->value, error))
        {
          selector_free (selector);
          return NULL;
        }
    }
  else
    {
      const char *start = s->p;
      while (*s->p != '\0' && *s->p != ',')
        s->p++;
      selector->value = g_strstrip (g_strndup (start, s->p - start));
    }
  if (selector->op == OP_MATCHES)
    {
      g_autoptr (GError) regex_error = NULL;
      selector->regex = g_regex_new (selector->value, 0, 0, &regex_error);
      if (selector->regex == NULL)
        {
          scan_error (s, error, regex_error->message);
          selector_free (selector);
          return NULL;
        }
    }
  return selector;
}

BerthFilter *
berth_filter_parse (const char *const *filters, GError **error)
{
  g_autoptr (BerthFilter) filter = g_new0 (BerthFilter, 1);
  filter->alternatives = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  for (const char *const *f = filters; f != NULL && *f != NULL; f++)
    {
      if (**f == '\0')
        continue;
      Scanner s = { *f, *f };
      g_autoptr (GPtrArray) selectors = g_ptr_array_new_with_free_func ((GDestroyNotify) selector_free);
      for (;;)
        {
          Selector *selector = scan_selector (&s, error);
          if (selector == NULL)
            return NULL;
          g_ptr_array_add (selectors, selector);
          while (*s.p == ' ')
            s.p++;
          if (*s.p == '\0')
            break;
          if (*s.p != ',')
            {
              scan_error (&s, error, "expected ,");
              return NULL;
            }
          s.p++;
        }
      g_ptr_array_add (filter->alternatives, g_steal_pointer (&selectors));
    }
  return g_steal_pointer (&filter);
}

static gboolean
selector_match (Selector *selector, BerthFieldLookup lookup, gpointer object)
{
  const char *value = lookup ((const char *const *) selector->fieldpath, object);
  switch (selector->op)
    {
    case OP_PRESENT: return value != NULL;
    case OP_EQUAL: return value != NULL && g_str_equal (value, selector->value);
    case OP_NOT_EQUAL: return value == NULL || !g_str_equal (value, selector->value);
    case OP_MATCHES: return value != NULL && g_regex_match (selector->regex, value, 0, NULL);
    }
  return FALSE;
}

gboolean
berth_filter_match (BerthFilter *filter, BerthFieldLookup lookup, gpointer object)
{
  if (filter == NULL || filter->alternatives->len == 0)
    return TRUE;
  for (guint i = 0; i < filter->alternatives->len; i++)
    {
      GPtrArray *selectors = filter->alternatives->pdata[i];
      gboolean all = TRUE;
      for (guint j = 0; j < selectors->len && all; j++)
        all = selector_match (selectors->pdata[j], lookup, object);
      if (all)
        return TRUE;
    }
  return FALSE;
}
