/* berth-types.c — plain data passed across the plugin interfaces. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-types.h>

BerthMount *
berth_mount_new (const char *type, const char *source, const char *const *options)
{
  BerthMount *mount = g_new0 (BerthMount, 1);
  mount->type = g_strdup (type);
  mount->source = g_strdup (source);
  mount->options = g_strdupv ((char **) options);
  if (mount->options == NULL)
    mount->options = g_new0 (char *, 1);
  return mount;
}

BerthMount *
berth_mount_copy (const BerthMount *mount)
{
  BerthMount *copy = berth_mount_new (mount->type, mount->source, (const char *const *) mount->options);
  copy->target = g_strdup (mount->target);
  return copy;
}

void
berth_mount_free (BerthMount *mount)
{
  if (mount == NULL)
    return;
  g_free (mount->type);
  g_free (mount->source);
  g_free (mount->target);
  g_strfreev (mount->options);
  g_free (mount);
}

G_DEFINE_BOXED_TYPE (BerthMount, berth_mount, berth_mount_copy, berth_mount_free)

GPtrArray *
berth_mount_list_new (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify) berth_mount_free);
}

GHashTable *
berth_labels_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

GHashTable *
berth_labels_copy (GHashTable *labels)
{
  GHashTable *copy = berth_labels_new ();
  if (labels != NULL)
    {
      GHashTableIter iter;
      gpointer key, value;
      g_hash_table_iter_init (&iter, labels);
      while (g_hash_table_iter_next (&iter, &key, &value))
        g_hash_table_insert (copy, g_strdup (key), g_strdup (value));
    }
  return copy;
}

#define LABEL_MAX 4096
#define LABELS_TOTAL_MAX (16 * 1024)

gboolean
berth_labels_validate (GHashTable *labels, GError **error)
{
  if (labels == NULL)
    return TRUE;
  gsize total = 0;
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init (&iter, labels);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      gsize len = strlen (key) + (value ? strlen (value) : 0);
      if (*(const char *) key == '\0')
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "label key must not be empty");
      if (len > LABEL_MAX)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                            "label key and value length (%zu bytes) greater than maximum size (%d bytes), key: %.16s…",
                            len, LABEL_MAX, (const char *) key);
      total += len;
    }
  if (total > LABELS_TOTAL_MAX)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "labels total size (%zu bytes) greater than maximum size (%d bytes)", total,
                        LABELS_TOTAL_MAX);
  return TRUE;
}

BerthDescriptor *
berth_descriptor_new (const char *media_type, const char *digest, gint64 size)
{
  BerthDescriptor *desc = g_new0 (BerthDescriptor, 1);
  desc->media_type = g_strdup (media_type);
  desc->digest = g_strdup (digest);
  desc->size = size;
  return desc;
}

BerthDescriptor *
berth_descriptor_copy (const BerthDescriptor *desc)
{
  BerthDescriptor *copy = berth_descriptor_new (desc->media_type, desc->digest, desc->size);
  if (desc->annotations != NULL)
    copy->annotations = berth_labels_copy (desc->annotations);
  return copy;
}

void
berth_descriptor_free (BerthDescriptor *desc)
{
  if (desc == NULL)
    return;
  g_free (desc->media_type);
  g_free (desc->digest);
  g_clear_pointer (&desc->annotations, g_hash_table_unref);
  g_free (desc);
}

G_DEFINE_BOXED_TYPE (BerthDescriptor, berth_descriptor, berth_descriptor_copy, berth_descriptor_free)

gboolean
berth_digest_validate (const char *digest, GError **error)
{
  if (digest == NULL || !g_str_has_prefix (digest, "sha256:"))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "invalid digest \"%s\": only sha256:<64 hex> is supported",
                        digest ? digest : "");
  const char *hex = digest + strlen ("sha256:");
  if (strlen (hex) != 64)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "invalid digest \"%s\": want 64 hex characters", digest);
  for (const char *p = hex; *p; p++)
    if (!g_ascii_isxdigit (*p) || g_ascii_isupper (*p))
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "invalid digest \"%s\": not lower-case hex", digest);
  return TRUE;
}
