/* cri-images.c — runtime.v1.ImageService over berth's image store and registry pull.
 *
 * A CRI image is an image config: its ID is the config's digest, its repo tags are the
 * names of every image record (in k8s.io) that resolves to that config, its repo
 * digests "<repository>@<target digest>".
 */
#include "config.h"

#include <string.h>
#include <errno.h>
#include <ftw.h>
#include <stdint.h>

#include <berth/berth-error.h>
#include "berth-cri.h"
#include "services/containerd/berth-api-ops.h"
#include "services/containerd/berth-api-util.h"
#include "image/berth-distribution.h"
#include "daemon/berth-gc.h"
#include "image/berth-image-store.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"

typedef Containerd__Services__Images__V1__Image StoredImage;

/* Every image record's name in k8s.io. */
static GPtrArray *
image_names (BerthDaemon *daemon, GError **error)
{
  g_autoptr (GPtrArray) records = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  g_autofree char *prefix = berth_schema_bucket_prefix (BERTH_CRI_NAMESPACE, BERTH_SCHEMA_BUCKET_IMAGES);
  if (!berth_schema_collect (berth_daemon_get_metadata (daemon), prefix, &containerd__services__images__v1__image__descriptor,
                             NULL, NULL, NULL, records, error))
    return NULL;
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < records->len; i++)
    g_ptr_array_add (names, g_strdup (((StoredImage *) records->pdata[i])->name));
  return names;
}

static gboolean
is_image_id (const char *ref)
{
  const char *hex = g_str_has_prefix (ref, "sha256:") ? ref + strlen ("sha256:") : ref;
  if (strlen (hex) != 64)
    return FALSE;
  for (const char *p = hex; *p; p++)
    if (!g_ascii_isxdigit (*p))
      return FALSE;
  return TRUE;
}

/* Whether @ref names the image @info by ID, a unique-looking ID prefix or a repo digest.
 * @hex is @ref's hex digits when it is (a prefix of) an ID, @repo_digest its normal
 * "domain/path@digest" form when it pins a digest. */
static gboolean
image_matches (const BerthImageInfo *info, const char *hex, const char *repo_digest)
{
  if (hex != NULL)
    return g_str_has_prefix (info->config_digest + strlen ("sha256:"), hex);
  if (repo_digest == NULL)
    return FALSE;
  /* A repo digest is the repository of any of the image's names with its manifest's digest. */
  g_autoptr (BerthReference) name = berth_reference_parse (info->name, NULL);
  if (name == NULL)
    return FALSE;
  g_autofree char *mine = g_strdup_printf ("%s/%s@%s", name->domain, name->path, info->target->digest);
  return g_str_equal (mine, repo_digest);
}

BerthImageInfo *
berth_cri_image_lookup (BerthDaemon *daemon, const char *ref, GCancellable *cancellable, GError **error)
{
  if (ref == NULL || *ref == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no image given"), NULL;
  g_autoptr (GError) local_error = NULL;
  BerthImageInfo *info = berth_image_info_resolve (daemon, BERTH_CRI_NAMESPACE, ref, cancellable, &local_error);
  if (info != NULL || !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    return info ? info : (g_propagate_error (error, g_steal_pointer (&local_error)), NULL);
  g_clear_error (&local_error);

  /* As containerd's CRI: an ID ("sha256:HEX" or "HEX"), a prefix of one (as crictl shows
   * them: any unique prefix), a name (normalised: "busybox" is
   * docker.io/library/busybox:latest), or a repo digest, "name@sha256:HEX", of a
   * manifest berth pulled under another name. */
  const char *hex = g_str_has_prefix (ref, "sha256:") ? ref + strlen ("sha256:") : ref;
  gboolean is_hex = *hex != '\0' && strlen (hex) <= 64 && strspn (hex, "0123456789abcdef") == strlen (hex);
  g_autofree char *repo_digest = NULL;
    {
      g_autoptr (BerthReference) parsed = berth_reference_parse (ref, NULL);
      g_autofree char *normal = parsed ? berth_reference_to_string (parsed) : NULL;
      if (normal != NULL && !g_str_equal (normal, ref))
        {
          info = berth_image_info_resolve (daemon, BERTH_CRI_NAMESPACE, normal, cancellable, &local_error);
          if (info != NULL || !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
            return info ? info : (g_propagate_error (error, g_steal_pointer (&local_error)), NULL);
        }
      if (parsed != NULL && parsed->digest != NULL && !is_hex)
        repo_digest = g_strdup_printf ("%s/%s@%s", parsed->domain, parsed->path, parsed->digest);
    }
  if (is_hex || repo_digest != NULL)
    {
      g_autoptr (GPtrArray) names = image_names (daemon, error);
      if (names == NULL)
        return NULL;
      BerthImageInfo *found = NULL;
      for (guint i = 0; i < names->len; i++)
        {
          g_autoptr (BerthImageInfo) candidate =
            berth_image_info_resolve (daemon, BERTH_CRI_NAMESPACE, names->pdata[i], cancellable, NULL);
          if (candidate == NULL || !image_matches (candidate, is_hex ? hex : NULL, repo_digest))
            continue;
          if (found != NULL && !g_str_equal (found->config_digest, candidate->config_digest))
            {
              berth_image_info_free (found);
              return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image \"%s\": ambiguous, more than one "
                                  "image ID starts with it", ref), NULL;
            }
          if (found == NULL)
            found = g_steal_pointer (&candidate);
        }
      if (found != NULL)
        return found;
    }
  return berth_throw (error, BERTH_ERROR_NOT_FOUND, "image \"%s\": not found", ref), NULL;
}

/* The CRI images in the store, keyed by ID. */
static GHashTable *
collect_images (BerthDaemon *daemon, GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) names = image_names (daemon, error);
  if (names == NULL)
    return NULL;
  GHashTable *images = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) berth_grpc_message_free);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autoptr (GError) local_error = NULL;
      g_autoptr (BerthImageInfo) info = berth_image_info_resolve (daemon, BERTH_CRI_NAMESPACE, name, cancellable,
                                                                  &local_error);
      if (info == NULL)
        {
          g_debug ("image %s: %s", name, local_error->message);
          continue;
        }
      Runtime__V1__Image *image = g_hash_table_lookup (images, info->config_digest);
      if (image == NULL)
        {
          image = berth_grpc_message_new (&runtime__v1__image__descriptor);
          image->id = g_strdup (info->config_digest);
          image->size = info->size;
          image->spec = berth_grpc_message_new (&runtime__v1__image_spec__descriptor);
          image->spec->image = g_strdup (info->config_digest);
          JsonObject *cfg = berth_json_member_object (json_node_get_object (info->config), "config");
          const char *user = cfg ? berth_json_member_string (cfg, "User") : NULL;
          g_autofree char *user_part = user ? g_strndup (user, strcspn (user, ":")) : NULL;
          char *end = NULL;
          gint64 uid = user_part && *user_part ? g_ascii_strtoll (user_part, &end, 10) : 0;
          if (user_part && *user_part && end && *end == '\0')
            {
              image->uid = berth_grpc_message_new (&runtime__v1__int64_value__descriptor);
              image->uid->value = uid;
            }
          else
            image->username = g_strdup (user_part ? user_part : "");
          image->repo_tags = g_new0 (char *, 1);
          image->repo_digests = g_new0 (char *, 1);
          g_hash_table_insert (images, g_strdup (info->config_digest), image);
        }
      /* "name:tag" is a tag; "name@digest" only names a digest. */
      g_autofree char *repo = g_strndup (name, strcspn (name, "@"));
      const char *slash = strrchr (repo, '/');
      char *colon = strrchr (slash ? slash : repo, ':');
      if (strchr (name, '@') == NULL && !is_image_id (name))
        {
          image->repo_tags = g_renew (char *, image->repo_tags, image->n_repo_tags + 2);
          image->repo_tags[image->n_repo_tags++] = g_strdup (name);
          image->repo_tags[image->n_repo_tags] = NULL;
        }
      if (colon != NULL)
        *colon = '\0';
      g_autofree char *digest = g_strdup_printf ("%s@%s", repo, info->target->digest);
      gboolean known = FALSE;
      for (size_t k = 0; k < image->n_repo_digests && !known; k++)
        known = g_str_equal (image->repo_digests[k], digest);
      if (!known && !is_image_id (name))
        {
          image->repo_digests = g_renew (char *, image->repo_digests, image->n_repo_digests + 2);
          image->repo_digests[image->n_repo_digests++] = g_steal_pointer (&digest);
          image->repo_digests[image->n_repo_digests] = NULL;
        }
    }
  return images;
}

static ProtobufCMessage *
cri_list_images (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ListImagesRequest *req = (gpointer) request;
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  g_autoptr (GHashTable) images = collect_images (daemon, cancellable, error);
  if (images == NULL)
    return NULL;
  const char *wanted = req->filter && req->filter->image ? req->filter->image->image : NULL;
  g_autofree char *wanted_id = NULL;
  if (wanted != NULL && *wanted != '\0')
    {
      g_autoptr (BerthImageInfo) info = berth_cri_image_lookup (daemon, wanted, cancellable, NULL);
      wanted_id = g_strdup (info ? info->config_digest : "");
    }
  g_autoptr (GPtrArray) out = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key, value;
  g_hash_table_iter_init (&iter, images);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (wanted_id == NULL || g_str_equal (wanted_id, key))
      {
        g_ptr_array_add (out, value);
        g_hash_table_iter_steal (&iter);
        g_free (key);
      }
  Runtime__V1__ListImagesResponse *response = berth_grpc_message_new (&runtime__v1__list_images_response__descriptor);
  response->n_images = out->len;
  response->images = (Runtime__V1__Image **) g_ptr_array_steal (out, NULL);
  return &response->base;
}

static ProtobufCMessage *
cri_image_status (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__ImageStatusRequest *req = (gpointer) request;
  if (req->image == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no image given"), NULL;
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  Runtime__V1__ImageStatusResponse *response = berth_grpc_message_new (&runtime__v1__image_status_response__descriptor);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (BerthImageInfo) info = berth_cri_image_lookup (daemon, req->image->image, cancellable, &local_error);
  if (info == NULL)
    {
      /* An image that is not there is an empty answer, not an error. */
      if (g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return &response->base;
      berth_grpc_message_free (&response->base);
      return g_propagate_error (error, g_steal_pointer (&local_error)), NULL;
    }
  g_autoptr (GHashTable) images = collect_images (daemon, cancellable, error);
  if (images == NULL)
    return berth_grpc_message_free (&response->base), NULL;
  gpointer image = NULL, id = NULL;
  g_hash_table_steal_extended (images, info->config_digest, &id, &image);
  g_free (id);
  response->image = image;
  if (req->verbose && image != NULL)
    {
      g_autoptr (GHashTable) extra = berth_labels_new ();
      g_autofree char *config = berth_json_to_text (info->config, NULL);
      g_hash_table_insert (extra, g_strdup ("info"), g_strdup_printf ("{\"imageSpec\": %s}", config));
      berth_schema_labels_to_entries (extra, &runtime__v1__image_status_response__info_entry__descriptor,
                                      (void ***) &response->info, &response->n_info);
    }
  return &response->base;
}

static ProtobufCMessage *
cri_pull_image (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__PullImageRequest *req = (gpointer) request;
  if (req->image == NULL || req->image->image == NULL || *req->image->image == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no image given"), NULL;
  BerthPullOptions options = { .reference = req->image->image };
  g_autofree char *user = NULL, *password = NULL;
  const Runtime__V1__AuthConfig *auth = req->auth;
  if (auth != NULL && auth->username && *auth->username)
    {
      options.username = auth->username;
      options.password = auth->password;
    }
  else if (auth != NULL && auth->auth && *auth->auth)
    {
      /* docker's "auth": base64 of "user:password". */
      gsize len = 0;
      g_autofree guchar *decoded = g_base64_decode (auth->auth, &len);
      g_autofree char *text = g_strndup ((const char *) decoded, len);
      const char *colon = strchr (text, ':');
      if (colon == NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "auth is not base64 of USER:PASSWORD"), NULL;
      user = g_strndup (text, colon - text);
      password = g_strdup (colon + 1);
      options.username = user;
      options.password = password;
    }
  else if (auth != NULL && ((auth->identity_token && *auth->identity_token)
                            || (auth->registry_token && *auth->registry_token)))
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "identity and registry tokens are not supported; give a "
                        "username and password"), NULL;
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  g_autofree char *name = berth_distribution_pull (daemon, BERTH_CRI_NAMESPACE, &options, NULL, NULL, NULL, cancellable,
                                                   error);
  if (name == NULL)
    return NULL;
  g_autoptr (BerthImageInfo) info = berth_image_info_resolve (daemon, BERTH_CRI_NAMESPACE, name, cancellable, error);
  if (info == NULL)
    return NULL;
  Runtime__V1__PullImageResponse *response = berth_grpc_message_new (&runtime__v1__pull_image_response__descriptor);
  response->image_ref = g_strdup (info->config_digest);
  return &response->base;
}

static ProtobufCMessage *
cri_remove_image (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__RemoveImageRequest *req = (gpointer) request;
  if (req->image == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no image given"), NULL;
  GCancellable *cancellable = berth_grpc_call_get_cancellable (call);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (BerthImageInfo) info = berth_cri_image_lookup (daemon, req->image->image, cancellable, &local_error);
  if (info == NULL)
    {
      /* Removing what is gone succeeds. */
      if (!g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return g_propagate_error (error, g_steal_pointer (&local_error)), NULL;
      return berth_grpc_message_new (&runtime__v1__remove_image_response__descriptor);
    }
  /* Every name of the image goes: the CRI removes an image, not a tag. */
  g_autoptr (GPtrArray) names = image_names (daemon, error);
  if (names == NULL)
    return NULL;
  for (guint i = 0; i < names->len; i++)
    {
      g_autoptr (BerthImageInfo) other =
        berth_image_info_resolve (daemon, BERTH_CRI_NAMESPACE, names->pdata[i], cancellable, NULL);
      if (other == NULL || !g_str_equal (other->config_digest, info->config_digest))
        continue;
      g_clear_error (&local_error);
      if (!berth_api_ops_image_delete (daemon, BERTH_CRI_NAMESPACE, names->pdata[i], &local_error)
          && !g_error_matches (local_error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        return g_propagate_error (error, g_steal_pointer (&local_error)), NULL;
    }
  g_clear_error (&local_error);
  if (!berth_gc_run (daemon, cancellable, NULL, &local_error))
    g_debug ("garbage collection after removing image %s: %s", info->config_digest, local_error->message);
  return berth_grpc_message_new (&runtime__v1__remove_image_response__descriptor);
}

/* Bytes and inodes under the image filesystem's directory, as containerd's snapshot
 * usage counts them: allocated blocks, each inode once, not crossing into mounts (a
 * running container's rootfs). nftw's callback has no user data: one walk at a time. */
static GMutex usage_lock;
static guint64 usage_bytes, usage_inodes;
static GHashTable *usage_seen;

static int
usage_visit (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) path, (void) flag, (void) ftw;
  if (st->st_nlink > 1)
    {
      g_autofree char *key = g_strdup_printf ("%ju:%ju", (uintmax_t) st->st_dev, (uintmax_t) st->st_ino);
      if (!g_hash_table_add (usage_seen, g_steal_pointer (&key)))
        return 0;
    }
  usage_bytes += (guint64) st->st_blocks * 512;
  usage_inodes++;
  return 0;
}

static ProtobufCMessage *
cri_image_fs_info (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  /* The default snapshotter's directory, where images are unpacked (containerd reports
   * its snapshotter's, e.g. /var/lib/containerd/io.containerd.snapshotter.v1.overlayfs). */
  const BerthConfig *config = berth_daemon_get_config (daemon);
  g_autofree char *dir = g_strdup_printf ("%s/io.containerd.snapshotter.v1.%s", config->root,
                                          config->default_snapshotter);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "image filesystem %s: not there yet", dir), NULL;
  g_mutex_lock (&usage_lock);
  usage_bytes = usage_inodes = 0;
  usage_seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  int rc = nftw (dir, usage_visit, 32, FTW_PHYS | FTW_MOUNT);
  int saved = errno;
  guint64 bytes = usage_bytes, inodes = usage_inodes;
  g_clear_pointer (&usage_seen, g_hash_table_unref);
  g_mutex_unlock (&usage_lock);
  if (rc < 0)
    {
      errno = saved;
      return berth_throw_errno (error, "walking %s", dir), NULL;
    }
  Runtime__V1__FilesystemUsage *usage = berth_grpc_message_new (&runtime__v1__filesystem_usage__descriptor);
  usage->timestamp = g_get_real_time () * 1000;
  usage->fs_id = berth_grpc_message_new (&runtime__v1__filesystem_identifier__descriptor);
  usage->fs_id->mountpoint = g_steal_pointer (&dir);
  usage->used_bytes = berth_grpc_message_new (&runtime__v1__uint64_value__descriptor);
  usage->used_bytes->value = bytes;
  usage->inodes_used = berth_grpc_message_new (&runtime__v1__uint64_value__descriptor);
  usage->inodes_used->value = inodes;
  Runtime__V1__ImageFsInfoResponse *response = berth_grpc_message_new (&runtime__v1__image_fs_info_response__descriptor);
  response->n_image_filesystems = 1;
  response->image_filesystems = g_new0 (Runtime__V1__FilesystemUsage *, 2);
  response->image_filesystems[0] = usage;
  return &response->base;
}

void
berth_cri_register_images (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "ListImages", BERTH_GRPC_UNARY, cri_list_images, NULL },
    { "ImageStatus", BERTH_GRPC_UNARY, cri_image_status, NULL },
    { "PullImage", BERTH_GRPC_UNARY, cri_pull_image, NULL },
    { "RemoveImage", BERTH_GRPC_UNARY, cri_remove_image, NULL },
    { "ImageFsInfo", BERTH_GRPC_UNARY, cri_image_fs_info, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &runtime__v1__image_service__descriptor, methods, daemon);
}
