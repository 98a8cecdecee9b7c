/* cmd-transfer.c — berth pull / berth push: the daemon talks to the registry
 * (berth.services.transfer.v1.Transfer); the CLI renders the progress it streams. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <berth/berth-error.h>
#include "berth-cli.h"
#include "berth/services/transfer/v1/transfer.pb-c.h"

typedef struct {
  gint64 offset;
  gint64 total;
  char *status;
} Blob;

static void
blob_free (Blob *blob)
{
  g_free (blob->status);
  g_free (blob);
}

typedef struct {
  CliProgress *progress;
  GHashTable *blobs; /* digest → Blob */
  gint64 done;
  gint64 total;
} View;

/* Keeps a sum over the blobs for the bar; prints a line when a blob changes state. */
static void
view_update (View *view, const Berth__Services__Transfer__V1__Progress *p)
{
  if (p->digest == NULL || *p->digest == '\0')
    return;
  Blob *blob = g_hash_table_lookup (view->blobs, p->digest);
  if (blob == NULL)
    {
      blob = g_new0 (Blob, 1);
      g_hash_table_insert (view->blobs, g_strdup (p->digest), blob);
    }
  view->done += p->offset - blob->offset;
  view->total += p->total - blob->total;
  blob->offset = p->offset;
  blob->total = p->total;
  gboolean changed = g_strcmp0 (blob->status, p->status) != 0;
  g_free (blob->status);
  blob->status = g_strdup (p->status);
  cli_progress_set_total (view->progress, view->total);
  cli_progress_update (view->progress, view->done);
  /* One line per step a blob takes, none for the byte counts in between. */
  if (changed && g_strcmp0 (p->status, "waiting") != 0)
    {
      const char *hex = strchr (p->digest, ':');
      g_autofree char *size = cli_format_size (p->total);
      g_autofree char *line = g_strdup_printf ("%-8s %.12s %-11s %s", p->kind, hex ? hex + 1 : p->digest, p->status, size);
      cli_progress_item (view->progress, line);
    }
}

static gboolean
parse_user (const char *user, char **username, char **password, int *rc)
{
  if (user == NULL)
    return TRUE;
  const char *colon = strchr (user, ':');
  if (colon == NULL || colon == user)
    {
      *rc = cli_fail (NULL, "--user wants USER:PASSWORD");
      return FALSE;
    }
  *username = g_strndup (user, colon - user);
  *password = g_strdup (colon + 1);
  return TRUE;
}

/* Runs @method with @request, rendering its progress; *image_out / *digest_out from the
 * last message. */
static gboolean
run_transfer (BerthCli *cli, const char *method, const ProtobufCMessage *request, const char *what, gboolean quiet,
              char **image_out, char **digest_out, GError **error)
{
  BerthGrpcClient *client = cli_client (cli, error);
  if (client == NULL)
    return FALSE;
  g_autoptr (BerthGrpcClientCall) call = berth_grpc_client_call_start (
    client, method, &berth__services__transfer__v1__progress__descriptor, error);
  if (call == NULL || !berth_grpc_client_call_send (call, request, error) || !berth_grpc_client_call_close_send (call, error))
    return FALSE;
  View view = { cli_progress_new (what, 0, quiet), g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) blob_free), 0, 0 };
  GError *local = NULL;
  for (;;)
    {
      Berth__Services__Transfer__V1__Progress *p = berth_grpc_client_call_recv (call, &local);
      if (p == NULL)
        break;
      if (p->image != NULL && *p->image != '\0')
        {
          g_free (*image_out), *image_out = g_strdup (p->image);
          g_free (*digest_out), *digest_out = g_strdup (p->target_digest);
        }
      else
        view_update (&view, p);
      protobuf_c_message_free_unpacked (&p->base, NULL);
    }
  cli_progress_update (view.progress, view.done);
  cli_progress_finish (view.progress);
  g_hash_table_unref (view.blobs);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (*image_out == NULL)
    return berth_throw (error, BERTH_ERROR_UNKNOWN, "the daemon ended the transfer without naming the image");
  return TRUE;
}

int
cli_cmd_pull (BerthCli *cli, int argc, char **argv)
{
  g_autofree char *user = NULL, *platform = NULL, *snapshotter = NULL;
  gboolean plain_http = FALSE, skip_verify = FALSE, no_unpack = FALSE, quiet = FALSE;
  GOptionEntry entries[] = {
    { "user", 'u', 0, G_OPTION_ARG_STRING, &user, "registry credentials (else berthd's registry-auth-file)", "USER:PASSWORD" },
    { "plain-http", 0, 0, G_OPTION_ARG_NONE, &plain_http, "talk http, not https, to the registry", NULL },
    { "skip-verify", 0, 0, G_OPTION_ARG_NONE, &skip_verify, "do not verify the registry's TLS certificate", NULL },
    { "platform", 0, 0, G_OPTION_ARG_STRING, &platform, "pick this platform from an index (default linux/<this machine>)", "OS/ARCH[/VARIANT]" },
    { "snapshotter", 0, 0, G_OPTION_ARG_STRING, &snapshotter, "unpack into this snapshotter (default: the daemon's)", "NAME" },
    { "no-unpack", 0, 0, G_OPTION_ARG_NONE, &no_unpack, "store the image without unpacking its layers", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no progress output", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("REF — pull an image from a registry (berthd fetches and unpacks it)");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc != 2)
    return cli_usage (context, "pull takes one REF");
  g_autofree char *username = NULL, *password = NULL;
  if (!parse_user (user, &username, &password, &rc))
    return rc;
  Berth__Services__Transfer__V1__RegistryOptions registry = BERTH__SERVICES__TRANSFER__V1__REGISTRY_OPTIONS__INIT;
  registry.username = username;
  registry.password = password;
  registry.plain_http = plain_http;
  registry.skip_verify = skip_verify;
  Berth__Services__Transfer__V1__PullRequest request = BERTH__SERVICES__TRANSFER__V1__PULL_REQUEST__INIT;
  request.reference = argv[1];
  request.platform = platform;
  request.snapshotter = snapshotter;
  request.no_unpack = no_unpack;
  request.registry = &registry;
  g_autoptr (GError) error = NULL;
  g_autofree char *image = NULL, *digest = NULL;
  if (!run_transfer (cli, "/berth.services.transfer.v1.Transfer/Pull", &request.base, argv[1], quiet, &image, &digest,
                     &error))
    return cli_fail (error, "pull %s", argv[1]);
  g_print ("%s\n", image);
  return 0;
}

int
cli_cmd_push (BerthCli *cli, int argc, char **argv)
{
  g_autofree char *user = NULL;
  gboolean plain_http = FALSE, skip_verify = FALSE, quiet = FALSE;
  GOptionEntry entries[] = {
    { "user", 'u', 0, G_OPTION_ARG_STRING, &user, "registry credentials (else berthd's registry-auth-file)", "USER:PASSWORD" },
    { "plain-http", 0, 0, G_OPTION_ARG_NONE, &plain_http, "talk http, not https, to the registry", NULL },
    { "skip-verify", 0, 0, G_OPTION_ARG_NONE, &skip_verify, "do not verify the registry's TLS certificate", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no progress output", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE [DESTINATION] — push a local image to a registry "
                                                             "(to DESTINATION, default IMAGE's own name)");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc != 2 && argc != 3)
    return cli_usage (context, "push takes IMAGE and an optional DESTINATION");
  g_autofree char *username = NULL, *password = NULL;
  if (!parse_user (user, &username, &password, &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  /* The local name as stored ("busybox" → docker.io/library/busybox:latest). */
  g_autoptr (CliImage) local = cli_image_resolve (cli, argv[1], &error);
  if (local == NULL)
    return cli_fail (error, "push");
  Berth__Services__Transfer__V1__RegistryOptions registry = BERTH__SERVICES__TRANSFER__V1__REGISTRY_OPTIONS__INIT;
  registry.username = username;
  registry.password = password;
  registry.plain_http = plain_http;
  registry.skip_verify = skip_verify;
  Berth__Services__Transfer__V1__PushRequest request = BERTH__SERVICES__TRANSFER__V1__PUSH_REQUEST__INIT;
  request.reference = argc == 3 ? argv[2] : local->name;
  request.image = local->name;
  request.registry = &registry;
  g_autofree char *image = NULL, *digest = NULL;
  if (!run_transfer (cli, "/berth.services.transfer.v1.Transfer/Push", &request.base, request.reference, quiet, &image,
                     &digest, &error))
    return cli_fail (error, "push %s", request.reference);
  g_print ("%s %s\n", image, digest);
  return 0;
}
