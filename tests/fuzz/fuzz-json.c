/* fuzz-json.c — berth_json_parse, the one door every JSON document from outside goes
 * through (manifests, indexes, configs, OCI specs, CNI results), with its size and depth
 * limits checked before json-glib's recursive parser sees the bytes.
 *
 * Oracles: no crash (a document nested deeper than the stack allows must be refused, not
 * parsed: the corpus keeps one of 500 000 levels); an error set exactly when no node
 * comes back, INVALID_ARGUMENT and non-empty; a parsed document nests no deeper than
 * BERTH_JSON_MAX_DEPTH and prints as JSON that parses again. */
#include "config.h"

#include <berth/berth.h>
#include "image/berth-json.h"
#include "fuzz.h"

static guint
depth_of (JsonNode *node)
{
  guint deepest = 0;
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          guint d = depth_of (json_array_get_element (array, i));
          deepest = MAX (deepest, d);
        }
      return deepest + 1;
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      g_autoptr (GList) members = json_object_get_values (json_node_get_object (node));
      for (GList *l = members; l != NULL; l = l->next)
        {
          guint d = depth_of (l->data);
          deepest = MAX (deepest, d);
        }
      return deepest + 1;
    }
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = berth_json_parse ((const char *) data, size, "fuzz input", &error);
  if (node == NULL)
    {
      if (error == NULL || !g_error_matches (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT) || error->message[0] == '\0')
        FUZZ_FAIL ("no node, but no INVALID_ARGUMENT with a message either");
      return 0;
    }
  if (error != NULL)
    FUZZ_FAIL ("a node and an error: %s", error->message);
  guint depth = depth_of (node);
  if (depth > BERTH_JSON_MAX_DEPTH)
    FUZZ_FAIL ("parsed a document nested %u levels, over the limit of %d", depth, BERTH_JSON_MAX_DEPTH);
  gsize len = 0;
  g_autofree char *text = berth_json_to_text (node, &len);
  g_autoptr (JsonNode) again = berth_json_parse (text, len, "printed fuzz input", &error);
  if (again == NULL)
    FUZZ_FAIL ("printed document does not parse again: %s\n%s", error->message, text);
  return 0;
}
