/* cmd-image.c — berth image import|export|ls|rm|inspect (pull/push: cmd-transfer.c). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "berth-cli.h"
#include "image/berth-json.h"
#include "berth/services/archive/v1/archive.pb-c.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/diff/v1/diff.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"

#define IMPORT_CHUNK (1024 * 1024)

/* ---------------- unpack ---------------- */

static gboolean
snapshot_exists (BerthCli *cli, const char *snapshotter, const char *key, GError **error)
{
  Containerd__Services__Snapshots__V1__StatSnapshotRequest request = CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
  request.snapshotter = (char *) snapshotter;
  request.key = (char *) key;
  GError *local = NULL;
  ProtobufCMessage *response = cli_unary (cli, "/containerd.services.snapshots.v1.Snapshots/Stat", &request.base,
                                          &containerd__services__snapshots__v1__stat_snapshot_response__descriptor, &local);
  if (response != NULL)
    {
      protobuf_c_message_free_unpacked (response, NULL);
      return TRUE;
    }
  if (!g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    g_propagate_error (error, local);
  else
    g_error_free (local);
  return FALSE;
}

static void
snapshot_remove (BerthCli *cli, const char *snapshotter, const char *key)
{
  Containerd__Services__Snapshots__V1__RemoveSnapshotRequest request = CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
  request.snapshotter = (char *) snapshotter;
  request.key = (char *) key;
  ProtobufCMessage *response = cli_unary (cli, "/containerd.services.snapshots.v1.Snapshots/Remove", &request.base,
                                          &google__protobuf__empty__descriptor, NULL);
  if (response != NULL)
    protobuf_c_message_free_unpacked (response, NULL);
}

static gboolean
apply_layer (BerthCli *cli, const char *snapshotter, JsonObject *layer, const char *parent, const char *chain_id,
             GError **error)
{
  g_autofree char *key = g_strdup_printf ("extract-%d-%08x %s", getpid (), g_random_int (), chain_id);
  Containerd__Services__Snapshots__V1__PrepareSnapshotRequest prepare = CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
  prepare.snapshotter = (char *) snapshotter;
  prepare.key = key;
  prepare.parent = (char *) (parent ? parent : "");
  Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *prepared = cli_unary (
    cli, "/containerd.services.snapshots.v1.Snapshots/Prepare", &prepare.base,
    &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor, error);
  if (prepared == NULL)
    return FALSE;

  Containerd__Types__Descriptor desc = CONTAINERD__TYPES__DESCRIPTOR__INIT;
  desc.media_type = (char *) (berth_json_member_string (layer, "mediaType") ?: "");
  desc.digest = (char *) (berth_json_member_string (layer, "digest") ?: "");
  desc.size = berth_json_member_int (layer, "size");
  Containerd__Services__Diff__V1__ApplyRequest apply = CONTAINERD__SERVICES__DIFF__V1__APPLY_REQUEST__INIT;
  apply.diff = &desc;
  apply.mounts = prepared->mounts;
  apply.n_mounts = prepared->n_mounts;
  ProtobufCMessage *applied = cli_unary (cli, "/containerd.services.diff.v1.Diff/Apply", &apply.base,
                                         &containerd__services__diff__v1__apply_response__descriptor, error);
  protobuf_c_message_free_unpacked (&prepared->base, NULL);
  if (applied == NULL)
    {
      g_prefix_error (error, "layer %s: ", desc.digest);
      snapshot_remove (cli, snapshotter, key);
      return FALSE;
    }
  protobuf_c_message_free_unpacked (applied, NULL);

  Containerd__Services__Snapshots__V1__CommitSnapshotRequest commit = CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
  commit.snapshotter = (char *) snapshotter;
  commit.name = (char *) chain_id;
  commit.key = key;
  GError *local = NULL;
  ProtobufCMessage *committed = cli_unary (cli, "/containerd.services.snapshots.v1.Snapshots/Commit", &commit.base,
                                           &google__protobuf__empty__descriptor, &local);
  if (committed != NULL)
    {
      protobuf_c_message_free_unpacked (committed, NULL);
      return TRUE;
    }
  snapshot_remove (cli, snapshotter, key);
  /* Someone else unpacked the same layer meanwhile: theirs is as good. */
  if (g_error_matches (local, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
    {
      g_error_free (local);
      return TRUE;
    }
  g_propagate_error (error, local);
  return FALSE;
}

gboolean
cli_image_unpack (BerthCli *cli, CliImage *image, const char *snapshotter, GError **error)
{
  const char *parent = NULL;
  for (guint i = 0; i < image->layers->len; i++)
    {
      const char *chain_id = image->chain_ids->pdata[i];
      GError *local = NULL;
      if (!snapshot_exists (cli, snapshotter, chain_id, &local))
        {
          if (local != NULL)
            {
              g_propagate_error (error, local);
              return FALSE;
            }
          if (!apply_layer (cli, snapshotter, image->layers->pdata[i], parent, chain_id, error))
            return FALSE;
        }
      parent = chain_id;
    }
  if (parent == NULL)
    return TRUE;
  /* The config holds the top snapshot for GC, as containerd's unpacker does. */
  g_autofree char *label = g_strdup_printf ("containerd.io/gc.ref.snapshot.%s", snapshotter);
  g_autofree char *path = g_strdup_printf ("labels.%s", label);
  Containerd__Services__Content__V1__Info__LabelsEntry entry = CONTAINERD__SERVICES__CONTENT__V1__INFO__LABELS_ENTRY__INIT;
  entry.key = label;
  entry.value = (char *) parent;
  Containerd__Services__Content__V1__Info__LabelsEntry *entries[] = { &entry };
  Containerd__Services__Content__V1__Info info = CONTAINERD__SERVICES__CONTENT__V1__INFO__INIT;
  info.digest = image->config_digest;
  info.labels = entries;
  info.n_labels = 1;
  char *paths[] = { path };
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  mask.paths = paths;
  mask.n_paths = 1;
  Containerd__Services__Content__V1__UpdateRequest update = CONTAINERD__SERVICES__CONTENT__V1__UPDATE_REQUEST__INIT;
  update.info = &info;
  update.update_mask = &mask;
  ProtobufCMessage *updated = cli_unary (cli, "/containerd.services.content.v1.Content/Update", &update.base,
                                         &containerd__services__content__v1__update_response__descriptor, error);
  if (updated == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (updated, NULL);
  return TRUE;
}

/* ---------------- import ---------------- */

int
cli_cmd_image_import (BerthCli *cli, int argc, char **argv)
{
  g_autofree char *base_name = NULL;
  g_autofree char *snapshotter = NULL;
  gboolean no_unpack = FALSE, quiet = FALSE;
  GOptionEntry entries[] = {
    { "base-name", 0, 0, G_OPTION_ARG_STRING, &base_name, "name images without an io.containerd.image.name annotation BASE:REF", "BASE" },
    { "snapshotter", 0, 0, G_OPTION_ARG_STRING, &snapshotter, "unpack into this snapshotter (default: the daemon's)", "NAME" },
    { "no-unpack", 0, 0, G_OPTION_ARG_NONE, &no_unpack, "store the image without unpacking its layers", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no progress output", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("FILE — import an OCI layout or `docker save` archive (- for stdin)");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc != 2)
    return cli_usage (context, "image import takes one FILE");
  const char *file = argv[1];

  g_autoptr (GError) error = NULL;
  berth_autofd int fd = strcmp (file, "-") == 0 ? dup (STDIN_FILENO) : open (file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cli_fail (NULL, "image import: cannot open %s: %s", file, g_strerror (errno));
  struct stat st;
  gint64 total = fstat (fd, &st) == 0 && S_ISREG (st.st_mode) ? st.st_size : 0;

  BerthGrpcClient *client = cli_client (cli, &error);
  if (client == NULL)
    return cli_fail (error, "image import");
  g_autoptr (BerthGrpcClientCall) call = berth_grpc_client_call_start (
    client, "/berth.services.archive.v1.Archive/Import", &berth__services__archive__v1__import_response__descriptor, &error);
  if (call == NULL)
    return cli_fail (error, "image import %s", file);

  g_autofree char *what = g_path_get_basename (file);
  CliProgress *progress = cli_progress_new (what, total, quiet);
  g_autofree guint8 *buf = g_malloc (IMPORT_CHUNK);
  gint64 sent = 0;
  gboolean first = TRUE;
  for (;;)
    {
      ssize_t n = read (fd, buf, IMPORT_CHUNK);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          cli_progress_finish (progress);
          return cli_fail (NULL, "image import: reading %s: %s", file, g_strerror (errno));
        }
      if (n == 0 && !first)
        break;
      Berth__Services__Archive__V1__ImportRequest request = BERTH__SERVICES__ARCHIVE__V1__IMPORT_REQUEST__INIT;
      request.data.data = buf;
      request.data.len = n;
      if (first && base_name != NULL)
        request.base_name = base_name;
      first = FALSE;
      if (!berth_grpc_client_call_send (call, &request.base, &error))
        break; /* the status below says why */
      sent += n;
      cli_progress_update (progress, sent);
      if (n == 0)
        break;
    }
  g_clear_error (&error);
  berth_grpc_client_call_close_send (call, NULL);
  g_autoptr (GPtrArray) images = g_ptr_array_new_with_free_func (g_free);
  guint blobs = 0;
  for (;;)
    {
      Berth__Services__Archive__V1__ImportResponse *response = berth_grpc_client_call_recv (call, &error);
      if (response == NULL)
        break;
      if (response->digest && *response->digest)
        {
          blobs++;
          g_autofree char *size = cli_format_size (response->size);
          g_autofree char *line = g_strdup_printf ("stored %s (%s)", response->digest, size);
          cli_progress_item (progress, line);
        }
      for (size_t i = 0; i < response->n_images; i++)
        g_ptr_array_add (images, g_strdup (response->images[i]));
      protobuf_c_message_free_unpacked (&response->base, NULL);
    }
  cli_progress_update (progress, sent);
  cli_progress_finish (progress);
  if (error != NULL)
    return cli_fail (error, "image import %s", file);

  for (guint i = 0; i < images->len; i++)
    {
      const char *name = images->pdata[i];
      if (!no_unpack)
        {
          g_autoptr (CliImage) image = cli_image_resolve (cli, name, &error);
          if (image == NULL || !cli_image_unpack (cli, image, snapshotter ? snapshotter : cli_default_snapshotter (cli), &error))
            return cli_fail (error, "image import: unpacking %s", name);
        }
      g_print ("%s\n", name);
    }
  return 0;
}

/* ---------------- export ---------------- */

static int
image_export (BerthCli *cli, int argc, char **argv)
{
  GOptionEntry entries[] = { { NULL } };
  g_autoptr (GOptionContext) context = g_option_context_new ("FILE IMAGE… — write images as an OCI layout tar (docker load reads it too)");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 3)
    return cli_usage (context, "image export takes FILE and at least one IMAGE");
  const char *file = argv[1];
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (int i = 2; i < argc; i++)
    {
      g_autoptr (CliImage) image = cli_image_resolve (cli, argv[i], &error);
      if (image == NULL)
        return cli_fail (error, "image export");
      g_ptr_array_add (names, g_strdup (image->name));
    }
  Berth__Services__Archive__V1__ExportRequest request = BERTH__SERVICES__ARCHIVE__V1__EXPORT_REQUEST__INIT;
  request.names = (char **) names->pdata;
  request.n_names = names->len;
  g_autoptr (BerthGrpcClientCall) call = cli_server_stream (cli, "/berth.services.archive.v1.Archive/Export", &request.base,
                                                            &berth__services__archive__v1__export_response__descriptor, &error);
  if (call == NULL)
    return cli_fail (error, "image export");

  /* Written to a temporary file and renamed: a failed export leaves no half archive. */
  gboolean to_stdout = strcmp (file, "-") == 0;
  g_autofree char *tmp = to_stdout ? NULL : g_strdup_printf ("%s.tmp-%d", file, getpid ());
  berth_autofd int fd = to_stdout ? dup (STDOUT_FILENO) : open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return cli_fail (NULL, "image export: cannot create %s: %s", to_stdout ? "stdout" : tmp, g_strerror (errno));
  for (;;)
    {
      Berth__Services__Archive__V1__ExportResponse *chunk = berth_grpc_client_call_recv (call, &error);
      if (chunk == NULL)
        break;
      gboolean ok = write (fd, chunk->data.data, chunk->data.len) == (ssize_t) chunk->data.len;
      int saved = errno;
      protobuf_c_message_free_unpacked (&chunk->base, NULL);
      if (!ok)
        {
          if (tmp)
            unlink (tmp);
          return cli_fail (NULL, "image export: writing %s: %s", file, g_strerror (saved));
        }
    }
  if (error != NULL)
    {
      if (tmp)
        unlink (tmp);
      return cli_fail (error, "image export");
    }
  if (!to_stdout && (fsync (fd) < 0 || rename (tmp, file) < 0))
    {
      int saved = errno;
      unlink (tmp);
      return cli_fail (NULL, "image export: %s: %s", file, g_strerror (saved));
    }
  return 0;
}

/* ---------------- ls / rm / inspect ---------------- */

static int
image_ls (BerthCli *cli, int argc, char **argv)
{
  gboolean json = FALSE, quiet = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "print names only", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("[FILTER…] — list images (containerd filter syntax)");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  Containerd__Services__Images__V1__ListImagesRequest request = CONTAINERD__SERVICES__IMAGES__V1__LIST_IMAGES_REQUEST__INIT;
  request.filters = argv + 1;
  request.n_filters = argc - 1;
  Containerd__Services__Images__V1__ListImagesResponse *response = cli_unary (
    cli, "/containerd.services.images.v1.Images/List", &request.base,
    &containerd__services__images__v1__list_images_response__descriptor, &error);
  if (response == NULL)
    return cli_fail (error, "image ls");
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_array (builder);
  if (!json && !quiet)
    g_print ("%-50s %-19s %-10s %s\n", "IMAGE", "DIGEST", "SIZE", "CREATED");
  for (size_t i = 0; i < response->n_images; i++)
    {
      Containerd__Services__Images__V1__Image *image = response->images[i];
      if (quiet)
        {
          g_print ("%s\n", image->name);
          continue;
        }
      /* The full size needs the manifest; an image whose blobs are gone still lists. */
      g_autoptr (CliImage) resolved = cli_image_resolve (cli, image->name, NULL);
      gint64 size = resolved ? resolved->size : image->target->size;
      gint64 created_ns = image->created_at ? image->created_at->seconds * 1000000000 + image->created_at->nanos : 0;
      if (json)
        {
          json_builder_begin_object (builder);
          cli_json_string (builder, "name", image->name);
          cli_json_string (builder, "digest", image->target->digest);
          cli_json_string (builder, "mediaType", image->target->media_type);
          cli_json_int (builder, "size", size);
          cli_json_int (builder, "createdAt", created_ns / 1000000000);
          cli_json_labels (builder, (void *const *) image->labels, image->n_labels);
          json_builder_end_object (builder);
          continue;
        }
      g_autofree char *size_text = cli_format_size (size);
      g_autofree char *age = cli_format_age (created_ns);
      const char *hex = strchr (image->target->digest, ':');
      g_print ("%-50s %-19.19s %-10s %s\n", image->name, hex ? hex + 1 : image->target->digest, size_text, age);
    }
  cli_json_finish (builder, json);
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return 0;
}

static int
image_rm (BerthCli *cli, int argc, char **argv)
{
  gboolean sync = FALSE;
  GOptionEntry entries[] = {
    { "sync", 0, 0, G_OPTION_ARG_NONE, &sync, "collect garbage before returning", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE… — remove images");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 2)
    return cli_usage (context, "image rm needs at least one IMAGE");
  int result = 0;
  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CliImage) image = cli_image_resolve (cli, argv[i], NULL);
      Containerd__Services__Images__V1__DeleteImageRequest request = CONTAINERD__SERVICES__IMAGES__V1__DELETE_IMAGE_REQUEST__INIT;
      request.name = image ? image->name : argv[i];
      request.sync = sync;
      ProtobufCMessage *response = cli_unary (cli, "/containerd.services.images.v1.Images/Delete", &request.base,
                                              &google__protobuf__empty__descriptor, &error);
      if (response == NULL)
        {
          if (g_error_matches (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
            {
              g_clear_error (&error);
              berth_throw (&error, BERTH_ERROR_NOT_FOUND, "no such image (see `berth image ls`)");
            }
          result = cli_fail (error, "image rm %s", argv[i]);
          continue;
        }
      protobuf_c_message_free_unpacked (response, NULL);
      g_print ("%s\n", request.name);
    }
  return result;
}

static int
image_inspect (BerthCli *cli, int argc, char **argv)
{
  GOptionEntry entries[] = { { NULL } };
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE — print an image's manifest and config as JSON");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc != 2)
    return cli_usage (context, "image inspect takes one IMAGE");
  g_autoptr (GError) error = NULL;
  g_autoptr (CliImage) image = cli_image_resolve (cli, argv[1], &error);
  if (image == NULL)
    return cli_fail (error, "image inspect");
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  cli_json_string (builder, "name", image->name);
  cli_json_string (builder, "manifestDigest", image->manifest_digest);
  cli_json_int (builder, "size", image->size);
  json_builder_set_member_name (builder, "chainIDs");
  json_builder_begin_array (builder);
  for (guint i = 0; i < image->chain_ids->len; i++)
    json_builder_add_string_value (builder, image->chain_ids->pdata[i]);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "manifest");
  JsonNode *manifest = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (manifest, image->manifest);
  json_builder_add_value (builder, manifest);
  json_builder_set_member_name (builder, "config");
  JsonNode *config = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (config, image->config);
  json_builder_add_value (builder, config);
  json_builder_end_object (builder);
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  cli_print_json (root);
  return 0;
}

static int
image_import_sub (BerthCli *cli, int argc, char **argv)
{
  return cli_cmd_image_import (cli, argc, argv);
}

int
cli_cmd_image (BerthCli *cli, int argc, char **argv)
{
  static const BerthCliSubcommand table[] = {
    { "import", image_import_sub, "import an OCI layout or docker save archive" },
    { "export", image_export, "export images as an OCI layout tar" },
    { "ls", image_ls, "list images" },
    { "rm", image_rm, "remove images" },
    { "inspect", image_inspect, "print an image's manifest and config" },
    { NULL },
  };
  return cli_dispatch (cli, "image", table, argc, argv);
}

int
cli_cmd_images (BerthCli *cli, int argc, char **argv)
{
  return image_ls (cli, argc, argv);
}
