/* berth-image-info.c — an image's manifest, config and top chain ID, from the store. */
#include "config.h"

#include <berth/berth-error.h>
#include "berth-image-info.h"
#include "berth-image-store.h"
#include "berth-unpack.h"

void
berth_image_info_free (BerthImageInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->name);
  berth_descriptor_free (info->target);
  g_free (info->manifest_digest);
  g_free (info->config_digest);
  g_clear_pointer (&info->config, json_node_unref);
  g_free (info->chain_id);
  g_free (info);
}

static JsonNode *
read_document (BerthContentStore *store, const char *digest, const char *what, GCancellable *cancellable,
               GError **error)
{
  g_autoptr (GBytes) bytes = berth_image_read_json_blob (store, digest, cancellable, error);
  return bytes ? berth_json_parse_object (bytes, what, error) : NULL;
}

/* The manifest of @digest for linux/<host arch>, following indexes. */
static JsonNode *
platform_manifest (BerthContentStore *store, const char *name, char **digest, GCancellable *cancellable, GError **error)
{
  for (guint depth = 0; depth < 4; depth++)
    {
      g_autoptr (JsonNode) doc = read_document (store, *digest, "image manifest", cancellable, error);
      if (doc == NULL)
        return NULL;
      JsonArray *manifests = berth_json_member_array (json_node_get_object (doc), "manifests");
      if (manifests == NULL)
        return g_steal_pointer (&doc);
      const char *chosen = berth_json_host_manifest (manifests);
      if (chosen == NULL)
        return berth_throw (error, BERTH_ERROR_NOT_FOUND, "image %s has no manifest for linux/%s", name,
                            berth_host_architecture ()), NULL;
      g_free (*digest);
      *digest = g_strdup (chosen);
    }
  return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image %s: indexes nested too deep", name), NULL;
}

BerthImageInfo *
berth_image_info_resolve (BerthDaemon *daemon, const char *ns, const char *name, GCancellable *cancellable,
                          GError **error)
{
  BerthContentStore *store = berth_daemon_get_content_store (daemon, error);
  if (store == NULL)
    return NULL;
  g_autoptr (BerthImageInfo) info = g_new0 (BerthImageInfo, 1);
  info->target = berth_image_get_target (daemon, ns, name, error);
  if (info->target == NULL)
    return NULL;
  info->name = g_strdup (name);
  info->manifest_digest = g_strdup (info->target->digest);
  g_autoptr (JsonNode) manifest_node = platform_manifest (store, name, &info->manifest_digest, cancellable, error);
  if (manifest_node == NULL)
    return NULL;
  JsonObject *manifest = json_node_get_object (manifest_node);
  JsonObject *config_desc = berth_json_member_object (manifest, "config");
  const char *config_digest = config_desc ? berth_json_member_string (config_desc, "digest") : NULL;
  if (config_digest == NULL || !berth_digest_validate (config_digest, NULL))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image %s: manifest %s has no config", name,
                        info->manifest_digest), NULL;
  info->config_digest = g_strdup (config_digest);
  info->config = read_document (store, config_digest, "image config", cancellable, error);
  if (info->config == NULL)
    return NULL;
  info->size = berth_json_member_int (config_desc, "size");
  JsonArray *layers = berth_json_member_array (manifest, "layers");
  JsonObject *rootfs = berth_json_member_object (json_node_get_object (info->config), "rootfs");
  JsonArray *diff_ids = rootfs ? berth_json_member_array (rootfs, "diff_ids") : NULL;
  guint n = berth_json_array_length (layers);
  if (berth_json_array_length (diff_ids) != n)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image %s: config %s lists %u diff_ids for %u layers", name,
                        config_digest, berth_json_array_length (diff_ids), n), NULL;
  for (guint i = 0; i < n; i++)
    {
      const char *diff_id = berth_json_element_string (diff_ids, i);
      if (diff_id == NULL || !berth_digest_validate (diff_id, error))
        return NULL;
      char *next = berth_chain_id_next (info->chain_id, diff_id);
      g_free (info->chain_id);
      info->chain_id = next;
      info->size += berth_json_member_int (berth_json_element_object (layers, i), "size");
    }
  return g_steal_pointer (&info);
}
