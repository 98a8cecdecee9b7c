/* berth.c — the berth CLI: global options, command table, shared helpers. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "berth-cli.h"
#include "image/berth-json.h"
#include "image/berth-reference.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"

#define DEFAULT_ADDRESS "/run/berth/berthd.sock"

/* ---------------- connection ---------------- */

BerthGrpcClient *
cli_client_new (BerthCli *cli, GError **error)
{
  BerthGrpcClient *client = berth_grpc_client_connect (cli->address, error);
  if (client != NULL)
    berth_grpc_client_set_namespace (client, cli->ns);
  return client;
}

BerthGrpcClient *
cli_client (BerthCli *cli, GError **error)
{
  if (cli->client == NULL)
    cli->client = cli_client_new (cli, error);
  return cli->client;
}

gpointer
cli_unary (BerthCli *cli, const char *path, const ProtobufCMessage *request,
           const ProtobufCMessageDescriptor *response_type, GError **error)
{
  BerthGrpcClient *client = cli_client (cli, error);
  if (client == NULL)
    return NULL;
  return berth_grpc_client_unary (client, path, request, response_type, error);
}

/* ---------------- errors and options ---------------- */

int
cli_fail (const GError *error, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *what = g_strdup_vprintf (format, args);
  va_end (args);
  if (error == NULL)
    {
      g_printerr ("berth: %s\n", what);
      return CLI_EXIT_ERROR;
    }
  /* The unreachable-daemon message already says everything; no "what:" in front. */
  if (g_error_matches (error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE) && g_str_has_prefix (error->message, "cannot reach"))
    g_printerr ("berth: %s\n", error->message);
  else
    g_printerr ("berth: %s: %s\n", what, error->message);
  if (g_error_matches (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    return CLI_EXIT_NOT_FOUND;
  return CLI_EXIT_ERROR;
}

int
cli_usage (GOptionContext *context, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("berth: %s\n", message);
  if (context != NULL)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);
      g_printerr ("\n%s", help);
    }
  return CLI_EXIT_ERROR;
}

gboolean
cli_parse (GOptionContext *context, int *argc, char ***argv, int *exit_code)
{
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      g_printerr ("berth: %s (see --help)\n", error->message);
      *exit_code = CLI_EXIT_ERROR;
      return FALSE;
    }
  return TRUE;
}

int
cli_dispatch (BerthCli *cli, const char *group, const BerthCliSubcommand *table, int argc, char **argv)
{
  if (argc >= 2 && strcmp (argv[1], "--help") != 0 && strcmp (argv[1], "-h") != 0)
    for (const BerthCliSubcommand *c = table; c->name != NULL; c++)
      if (strcmp (c->name, argv[1]) == 0)
        {
          g_autofree char *name = g_strdup_printf ("%s %s", group, argv[1]);
          argv[1] = name;
          return c->run (cli, argc - 1, argv + 1);
        }
  FILE *out = argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) ? stdout : stderr;
  if (out == stderr)
    fprintf (out, argc >= 2 ? "berth: unknown command \"%s %s\"\n\n" : "berth: %s needs a subcommand\n\n", group,
             argc >= 2 ? argv[1] : "");
  fprintf (out, "Usage: berth %s COMMAND\n\nCommands:\n", group);
  for (const BerthCliSubcommand *c = table; c->name != NULL; c++)
    fprintf (out, "  %-10s %s\n", c->name, c->summary);
  return out == stdout ? 0 : CLI_EXIT_ERROR;
}

/* ---------------- formatting ---------------- */

char *
cli_format_size (gint64 bytes)
{
  /* Not g_format_size: its no-break space prints as "?" outside UTF-8 locales. */
  static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
  double value = bytes;
  guint unit = 0;
  while (value >= 1000 && unit + 1 < G_N_ELEMENTS (units))
    value /= 1000, unit++;
  return unit == 0 ? g_strdup_printf ("%" G_GINT64_FORMAT " B", bytes) : g_strdup_printf ("%.1f %s", value, units[unit]);
}

char *
cli_format_age (gint64 unix_ns)
{
  if (unix_ns <= 0)
    return g_strdup ("-");
  gint64 seconds = g_get_real_time () / G_USEC_PER_SEC - unix_ns / 1000000000;
  if (seconds < 60)
    return g_strdup_printf ("%" G_GINT64_FORMAT " seconds ago", MAX (seconds, 0));
  if (seconds < 3600)
    return g_strdup_printf ("%" G_GINT64_FORMAT " minutes ago", seconds / 60);
  if (seconds < 86400)
    return g_strdup_printf ("%" G_GINT64_FORMAT " hours ago", seconds / 3600);
  return g_strdup_printf ("%" G_GINT64_FORMAT " days ago", seconds / 86400);
}

void
cli_print_json (JsonNode *node)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_pretty (generator, TRUE);
  json_generator_set_root (generator, node);
  g_autofree char *text = json_generator_to_data (generator, NULL);
  g_print ("%s\n", text);
}

void
cli_json_string (JsonBuilder *builder, const char *name, const char *value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_string_value (builder, value ? value : "");
}

void
cli_json_int (JsonBuilder *builder, const char *name, gint64 value)
{
  json_builder_set_member_name (builder, name);
  json_builder_add_int_value (builder, value);
}

typedef struct {
  ProtobufCMessage base;
  char *key;
  char *value;
} CliLabel;

void
cli_json_labels (JsonBuilder *builder, void *const *entries, size_t n)
{
  json_builder_set_member_name (builder, "labels");
  json_builder_begin_object (builder);
  for (size_t i = 0; i < n; i++)
    cli_json_string (builder, ((CliLabel *) entries[i])->key, ((CliLabel *) entries[i])->value);
  json_builder_end_object (builder);
}

void
cli_json_finish (JsonBuilder *builder, gboolean json)
{
  json_builder_end_array (builder);
  if (!json)
    return;
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  cli_print_json (root);
}

BerthGrpcClientCall *
cli_server_stream (BerthCli *cli, const char *path, const ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *response_type, GError **error)
{
  BerthGrpcClient *client = cli_client (cli, error);
  if (client == NULL)
    return NULL;
  g_autoptr (BerthGrpcClientCall) call = berth_grpc_client_call_start (client, path, response_type, error);
  if (call == NULL || !berth_grpc_client_call_send (call, request, error) || !berth_grpc_client_call_close_send (call, error))
    return NULL;
  return g_steal_pointer (&call);
}

/* ---------------- images ---------------- */

GBytes *
cli_read_blob (BerthCli *cli, const char *digest, gsize max, GError **error)
{
  Containerd__Services__Content__V1__ReadContentRequest request = CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
  request.digest = (char *) digest;
  g_autoptr (BerthGrpcClientCall) call = cli_server_stream (cli, "/containerd.services.content.v1.Content/Read", &request.base,
                                                            &containerd__services__content__v1__read_content_response__descriptor, error);
  if (call == NULL)
    return NULL;
  g_autoptr (GByteArray) data = g_byte_array_new ();
  for (;;)
    {
      GError *local = NULL;
      Containerd__Services__Content__V1__ReadContentResponse *chunk = berth_grpc_client_call_recv (call, &local);
      if (chunk == NULL)
        {
          if (local != NULL)
            {
              g_propagate_prefixed_error (error, local, "reading %s: ", digest);
              return NULL;
            }
          break;
        }
      g_byte_array_append (data, chunk->data.data, chunk->data.len);
      protobuf_c_message_free_unpacked (&chunk->base, NULL);
      if (data->len > max)
        {
          berth_throw (error, BERTH_ERROR_OUT_OF_RANGE, "%s is larger than %zu bytes", digest, max);
          return NULL;
        }
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&data));
}

JsonObject *
cli_read_json_blob (BerthCli *cli, const char *digest, GError **error)
{
  g_autoptr (GBytes) bytes = cli_read_blob (cli, digest, 16 * 1024 * 1024, error);
  if (bytes == NULL)
    return NULL;
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);
  g_autoptr (JsonNode) root = berth_json_parse (data, size, digest, error);
  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      berth_throw (error, BERTH_ERROR_DATA_LOSS, "%s is not a JSON object", digest);
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

void
cli_image_free (CliImage *image)
{
  if (image == NULL)
    return;
  g_free (image->name);
  g_free (image->manifest_digest);
  g_clear_pointer (&image->manifest, json_object_unref);
  g_free (image->config_digest);
  g_clear_pointer (&image->config, json_object_unref);
  g_clear_pointer (&image->layers, g_ptr_array_unref);
  g_clear_pointer (&image->chain_ids, g_ptr_array_unref);
  g_free (image);
}

CliImage *
cli_image_resolve (BerthCli *cli, const char *name, GError **error)
{
  /* NULL for a name that is no reference: it has no other form. */
  g_autofree char *full = berth_reference_normalize (name, NULL);
  Containerd__Services__Images__V1__GetImageRequest request = CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
  /* Exactly as given first (ctr-imported names may be anything), then normalized. */
  request.name = (char *) name;
  GError *local = NULL;
  Containerd__Services__Images__V1__GetImageResponse *response = cli_unary (
    cli, "/containerd.services.images.v1.Images/Get", &request.base, &containerd__services__images__v1__get_image_response__descriptor,
    &local);
  if (response == NULL && g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND) && full != NULL
      && strcmp (full, name) != 0)
    {
      g_clear_error (&local);
      request.name = full;
      response = cli_unary (cli, "/containerd.services.images.v1.Images/Get", &request.base,
                            &containerd__services__images__v1__get_image_response__descriptor, &local);
    }
  if (response == NULL)
    {
      if (g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        {
          berth_throw (error, BERTH_ERROR_NOT_FOUND,
                       "no image %s in namespace %s (see `berth image ls`, or bring it in with `berth image import FILE`)",
                       name, cli->ns);
          g_error_free (local);
        }
      else
        g_propagate_error (error, local);
      return NULL;
    }
  g_autoptr (CliImage) image = g_new0 (CliImage, 1);
  image->name = g_strdup (response->image->name);
  g_autofree char *digest = g_strdup (response->image->target->digest);
  g_autofree char *media_type = g_strdup (response->image->target->media_type);
  image->size = response->image->target->size;
  protobuf_c_message_free_unpacked (&response->base, NULL);

  /* An index: take this host's linux manifest. */
  for (guint depth = 0; depth < 4; depth++)
    {
      g_autoptr (JsonObject) doc = cli_read_json_blob (cli, digest, error);
      if (doc == NULL)
        return NULL;
      JsonArray *manifests = berth_json_member_array (doc, "manifests");
      if (manifests == NULL)
        {
          image->manifest = g_steal_pointer (&doc);
          image->manifest_digest = g_steal_pointer (&digest);
          break;
        }
      const char *chosen = berth_json_host_manifest (manifests);
      if (chosen == NULL)
        {
          berth_throw (error, BERTH_ERROR_NOT_FOUND, "image %s has no manifest for linux/%s", image->name,
                       berth_host_architecture ());
          return NULL;
        }
      g_free (digest);
      digest = g_strdup (chosen);
    }
  if (image->manifest == NULL)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image %s: indexes nested too deep", image->name);
      return NULL;
    }
  (void) media_type;
  JsonObject *config_desc = berth_json_member_object (image->manifest, "config");
  image->config_digest = g_strdup (berth_json_member_string (config_desc, "digest"));
  if (image->config_digest == NULL)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image %s: manifest %s has no config", image->name,
                   image->manifest_digest);
      return NULL;
    }
  image->config = cli_read_json_blob (cli, image->config_digest, error);
  if (image->config == NULL)
    return NULL;
  image->size = berth_json_member_int (config_desc, "size");
  image->layers = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  image->chain_ids = g_ptr_array_new_with_free_func (g_free);
  JsonArray *layers = berth_json_member_array (image->manifest, "layers");
  JsonObject *rootfs = berth_json_member_object (image->config, "rootfs");
  JsonArray *diff_ids = berth_json_member_array (rootfs, "diff_ids");
  guint n = berth_json_array_length (layers);
  if (diff_ids == NULL || berth_json_array_length (diff_ids) != n)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image %s: config %s lists %u diff_ids for %u layers", image->name,
                   image->config_digest, berth_json_array_length (diff_ids), n);
      return NULL;
    }
  g_autofree char *chain = NULL;
  for (guint i = 0; i < n; i++)
    {
      JsonObject *layer = berth_json_element_object (layers, i);
      const char *diff_id = berth_json_element_string (diff_ids, i);
      if (layer == NULL || diff_id == NULL)
        {
          berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "image %s: layer %u of manifest %s or its diff_id is malformed",
                       image->name, i, image->manifest_digest);
          return NULL;
        }
      image->size += berth_json_member_int (layer, "size");
      g_ptr_array_add (image->layers, json_object_ref (layer));
      if (chain == NULL)
        chain = g_strdup (diff_id);
      else
        {
          /* The OCI chain id: sha256 of "parent-chain diff-id". */
          g_autofree char *text = g_strdup_printf ("%s %s", chain, diff_id);
          g_autofree char *hex = g_compute_checksum_for_string (G_CHECKSUM_SHA256, text, -1);
          g_free (chain);
          chain = g_strdup_printf ("sha256:%s", hex);
        }
      g_ptr_array_add (image->chain_ids, g_strdup (chain));
    }
  return g_steal_pointer (&image);
}

/* ---------------- progress ---------------- */

struct _CliProgress {
  char *what;
  gint64 total;
  gint64 done;
  gint64 start;
  gint64 last_draw;
  gboolean tty;
  gboolean quiet;
};

CliProgress *
cli_progress_new (const char *what, gint64 total, gboolean quiet)
{
  CliProgress *progress = g_new0 (CliProgress, 1);
  progress->what = g_strdup (what);
  progress->total = total;
  progress->start = g_get_monotonic_time ();
  progress->tty = isatty (STDERR_FILENO);
  progress->quiet = quiet;
  return progress;
}

static void
progress_draw (CliProgress *progress, gboolean final)
{
  double elapsed = (g_get_monotonic_time () - progress->start) / 1e6;
  double rate = elapsed > 0 ? progress->done / elapsed : 0;
  g_autofree char *done = cli_format_size (progress->done);
  g_autofree char *total = cli_format_size (progress->total);
  g_autofree char *speed = cli_format_size ((gint64) rate);
  char bar[31];
  double fraction = progress->total > 0 ? MIN (1.0, (double) progress->done / progress->total) : 1.0;
  int filled = (int) (fraction * 30);
  memset (bar, '=', filled);
  memset (bar + filled, ' ', 30 - filled);
  bar[30] = 0;
  if (filled > 0 && filled < 30)
    bar[filled - 1] = '>';
  g_autofree char *eta = NULL;
  if (!final && rate > 0 && progress->total > progress->done)
    eta = g_strdup_printf (" ETA %.0fs", (progress->total - progress->done) / rate);
  fprintf (stderr, "\r%-24.24s [%s] %s/%s %s/s%s\033[K%s", progress->what, bar, done, total, speed, eta ? eta : "",
           final ? "\n" : "");
  fflush (stderr);
}

void
cli_progress_update (CliProgress *progress, gint64 done)
{
  progress->done = done;
  if (progress->quiet || !progress->tty)
    return;
  gint64 now = g_get_monotonic_time ();
  if (now - progress->last_draw < 100000)
    return;
  progress->last_draw = now;
  progress_draw (progress, FALSE);
}

void
cli_progress_set_total (CliProgress *progress, gint64 total)
{
  progress->total = total;
}

void
cli_progress_item (CliProgress *progress, const char *text)
{
  if (progress->quiet)
    return;
  if (progress->tty)
    {
      fprintf (stderr, "\r%s\033[K\n", text);
      progress_draw (progress, FALSE);
    }
  else
    fprintf (stderr, "%s\n", text);
}

void
cli_progress_finish (CliProgress *progress)
{
  if (!progress->quiet)
    {
      if (progress->tty)
        progress_draw (progress, TRUE);
      else
        {
          g_autofree char *done = cli_format_size (progress->done);
          double elapsed = (g_get_monotonic_time () - progress->start) / 1e6;
          fprintf (stderr, "%s: %s in %.1fs\n", progress->what, done, elapsed);
        }
    }
  g_free (progress->what);
  g_free (progress);
}

/* ---------------- main ---------------- */

static const BerthCliSubcommand commands[] = {
  { "run", cli_cmd_run, "create and run a container from an image" },
  { "ps", cli_cmd_ps, "list containers" },
  { "exec", cli_cmd_exec, "run a command in a running container" },
  { "logs", cli_cmd_logs, "print a detached container's output" },
  { "stop", cli_cmd_stop, "stop containers (SIGTERM, then SIGKILL)" },
  { "kill", cli_cmd_kill, "send a signal to containers" },
  { "rm", cli_cmd_rm, "remove containers" },
  { "image", cli_cmd_image, "manage images: import, export, ls, rm, inspect" },
  { "images", cli_cmd_images, "list images (berth image ls)" },
  { "import", cli_cmd_image_import, "import an image archive (berth image import)" },
  { "pull", cli_cmd_pull, "pull an image from a registry" },
  { "push", cli_cmd_push, "push an image to a registry" },
  { "events", cli_cmd_events, "print daemon events as they happen" },
  { "plugins", cli_cmd_plugins, "list the daemon's plugins and their status" },
  { "info", cli_cmd_info, "daemon version, plugins, cgroups and counts" },
  { "version", cli_cmd_version, "client and daemon versions" },
  { "snapshot", cli_cmd_snapshot, "snapshots: ls" },
  { "lease", cli_cmd_lease, "leases: ls" },
  { "gc", cli_cmd_gc, "collect garbage now" },
  { "seccomp", cli_cmd_seccomp, "seccomp profiles: check FILE" },
  { NULL },
};

static void
print_usage (FILE *out)
{
  fprintf (out, "Usage: berth [--address SOCKET] [--namespace NS] COMMAND [ARG…]\n\n"
                "berth drives berthd, a container runtime daemon with containerd's API.\n\n"
                "Options:\n"
                "  -a, --address SOCKET    berthd's socket (default $BERTH_ADDRESS or " DEFAULT_ADDRESS ")\n"
                "  -n, --namespace NS      namespace (default $BERTH_NAMESPACE or \"default\")\n"
                "      --debug             debug logging\n\n"
                "Commands:\n");
  for (const BerthCliSubcommand *c = commands; c->name != NULL; c++)
    fprintf (out, "  %-10s %s\n", c->name, c->summary);
  fprintf (out, "\nRun 'berth COMMAND --help' for a command's options.\n");
}

int
main (int argc, char **argv)
{
  BerthCli cli = { 0 };
  const char *env_address = g_getenv ("BERTH_ADDRESS");
  const char *env_ns = g_getenv ("BERTH_NAMESPACE");
  cli.address = g_strdup (env_address && *env_address ? env_address : DEFAULT_ADDRESS);
  cli.ns = g_strdup (env_ns && *env_ns ? env_ns : "default");

  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++)
    {
      const char *arg = argv[i];
      const char *value = NULL;
      if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
        {
          print_usage (stdout);
          return 0;
        }
      if (strcmp (arg, "--version") == 0)
        {
          g_print ("berth %s\n", PACKAGE_VERSION);
          return 0;
        }
      if (strcmp (arg, "--debug") == 0)
        {
          cli.debug = TRUE;
          g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);
          continue;
        }
      gboolean is_address = strcmp (arg, "-a") == 0 || strcmp (arg, "--address") == 0;
      gboolean is_ns = strcmp (arg, "-n") == 0 || strcmp (arg, "--namespace") == 0;
      if (g_str_has_prefix (arg, "--address="))
        is_address = TRUE, value = arg + 10;
      else if (g_str_has_prefix (arg, "--namespace="))
        is_ns = TRUE, value = arg + 12;
      else if ((is_address || is_ns) && i + 1 < argc)
        value = argv[++i];
      if (value == NULL)
        {
          g_printerr ("berth: unknown or incomplete option %s (see berth --help)\n", arg);
          return CLI_EXIT_ERROR;
        }
      if (is_address)
        g_free (cli.address), cli.address = g_strdup (value);
      else
        g_free (cli.ns), cli.ns = g_strdup (value);
    }
  if (i >= argc)
    {
      print_usage (stderr);
      return CLI_EXIT_ERROR;
    }
  int rc = -1;
  for (const BerthCliSubcommand *c = commands; c->name != NULL; c++)
    if (strcmp (c->name, argv[i]) == 0)
      {
        rc = c->run (&cli, argc - i, argv + i);
        break;
      }
  if (rc < 0)
    {
      g_printerr ("berth: unknown command \"%s\" (see berth --help)\n", argv[i]);
      rc = CLI_EXIT_ERROR;
    }
  g_clear_pointer (&cli.client, berth_grpc_client_free);
  g_free (cli.address);
  g_free (cli.ns);
  return rc;
}
