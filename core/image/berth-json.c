/* berth-json.c — reading JSON from hostile sources (image manifests, configs, indexes)
 * and this machine's architecture as image platforms name it; shared by berthd and the CLI. */
#include "config.h"

#include "berth-json.h"
#include <berth/berth.h>

const char *
berth_host_architecture (void)
{
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

static JsonNode *
member (JsonObject *object, const char *name)
{
  return object != NULL ? json_object_get_member (object, name) : NULL;
}

JsonObject *
berth_json_member_object (JsonObject *object, const char *name)
{
  JsonNode *node = member (object, name);
  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

JsonArray *
berth_json_member_array (JsonObject *object, const char *name)
{
  JsonNode *node = member (object, name);
  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static const char *
node_string (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
           ? json_node_get_string (node)
           : NULL;
}

const char *
berth_json_member_string (JsonObject *object, const char *name)
{
  return node_string (member (object, name));
}

gint64
berth_json_member_int (JsonObject *object, const char *name)
{
  JsonNode *node = member (object, name);
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64
           ? json_node_get_int (node)
           : 0;
}

guint
berth_json_array_length (JsonArray *array)
{
  return array != NULL ? json_array_get_length (array) : 0;
}

JsonObject *
berth_json_element_object (JsonArray *array, guint i)
{
  JsonNode *node = json_array_get_element (array, i);
  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

const char *
berth_json_element_string (JsonArray *array, guint i)
{
  return node_string (json_array_get_element (array, i));
}

JsonNode *
berth_json_parse (const char *data, gsize len, const char *what, GError **error)
{
  if (!berth_json_check_limits (data, len, what, error))
    return NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local_error = NULL;
  if (!json_parser_load_from_data (parser, data, len, &local_error))
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s is not valid JSON: %s", what, local_error->message);
      return NULL;
    }
  JsonNode *root = json_parser_steal_root (parser);
  if (root == NULL)
    berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s is empty, not a JSON document", what);
  return root;
}

JsonNode *
berth_json_parse_object (GBytes *bytes, const char *what, GError **error)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (bytes, &len);
  g_autoptr (JsonNode) root = berth_json_parse (data, len, what, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s is not a JSON object", what);
      return NULL;
    }
  return g_steal_pointer (&root);
}

char *
berth_json_to_text (JsonNode *node, gsize *len)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_root (generator, node);
  return json_generator_to_data (generator, len);
}

const char *
berth_json_host_manifest (JsonArray *manifests)
{
  for (guint i = 0; i < berth_json_array_length (manifests); i++)
    {
      JsonObject *entry = berth_json_element_object (manifests, i);
      JsonObject *platform = berth_json_member_object (entry, "platform");
      const char *digest = berth_json_member_string (entry, "digest");
      if (digest != NULL
          && (platform == NULL
              || (g_strcmp0 (berth_json_member_string (platform, "os"), "linux") == 0
                  && g_strcmp0 (berth_json_member_string (platform, "architecture"), berth_host_architecture ()) == 0)))
        return digest;
    }
  return NULL;
}
