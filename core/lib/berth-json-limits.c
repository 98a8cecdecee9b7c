/* berth-json-limits.c — a flat scan of a JSON document's size and nesting, done before
 * json-glib's recursive parser is handed anything (see berth/berth-json-limits.h). */
#include "config.h"

#include <berth/berth-error.h>
#include <berth/berth-json-limits.h>

gboolean
berth_json_check_limits (const char *data, gsize len, const char *what, GError **error)
{
  if (len > BERTH_JSON_MAX_SIZE)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "%s: a JSON document of %" G_GSIZE_FORMAT " bytes is over the limit of %d bytes", what, len,
                        BERTH_JSON_MAX_SIZE);
  /* Brackets inside strings do not nest; a malformed document (unbalanced, stray
   * quotes) is left for the parser to refuse, only its depth matters here. */
  guint depth = 0;
  gboolean in_string = FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = data[i];
      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == '[' || c == '{')
        {
          if (++depth > BERTH_JSON_MAX_DEPTH)
            return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                                "%s: JSON nested deeper than %d levels (exceeded max depth)", what,
                                BERTH_JSON_MAX_DEPTH);
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}
