/* cmd-system.c — berth version|info|plugins|events|gc|snapshot|lease|seccomp. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "berth-cli.h"
#include "image/berth-seccomp.h"
#include "berth/services/gc/v1/gc.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"
#include "github.com/containerd/containerd/api/services/version/v1/version.pb-c.h"

#define SNAPSHOTTER_TYPE "io.containerd.snapshotter.v1"
#define RUNTIME_TYPE "io.containerd.runtime.v2"

static gboolean
no_args (int argc, char ***argv, const char *summary, int *rc)
{
  g_autoptr (GOptionContext) context = g_option_context_new (summary);
  if (!cli_parse (context, &argc, argv, rc))
    return FALSE;
  if (argc > 1)
    {
      *rc = cli_usage (context, "unexpected argument %s", (*argv)[1]);
      return FALSE;
    }
  return TRUE;
}

int
cli_cmd_version (BerthCli *cli, int argc, char **argv)
{
  int rc;
  if (!no_args (argc, &argv, "— client and daemon versions", &rc))
    return rc;
  g_print ("Client: berth %s\n", PACKAGE_VERSION);
  g_autoptr (GError) error = NULL;
  Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
  Containerd__Services__Version__V1__VersionResponse *response = cli_unary (
    cli, "/containerd.services.version.v1.Version/Version", &empty.base,
    &containerd__services__version__v1__version_response__descriptor, &error);
  if (response == NULL)
    return cli_fail (error, "version");
  g_print ("Server: berthd %s (revision %s) at %s\n", response->version, response->revision, cli->address);
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return 0;
}

static Containerd__Services__Introspection__V1__PluginsResponse *
list_plugins (BerthCli *cli, GError **error)
{
  Containerd__Services__Introspection__V1__PluginsRequest request = CONTAINERD__SERVICES__INTROSPECTION__V1__PLUGINS_REQUEST__INIT;
  return cli_unary (cli, "/containerd.services.introspection.v1.Introspection/Plugins", &request.base,
                    &containerd__services__introspection__v1__plugins_response__descriptor, error);
}

const char *
cli_default_snapshotter (BerthCli *cli)
{
  static char *name;
  if (name != NULL)
    return name;
  Containerd__Services__Introspection__V1__PluginsRequest request = CONTAINERD__SERVICES__INTROSPECTION__V1__PLUGINS_REQUEST__INIT;
  char *filters[] = { (char *) "type==" SNAPSHOTTER_TYPE };
  request.filters = filters;
  request.n_filters = 1;
  Containerd__Services__Introspection__V1__PluginsResponse *response =
    cli_unary (cli, "/containerd.services.introspection.v1.Introspection/Plugins", &request.base,
               &containerd__services__introspection__v1__plugins_response__descriptor, NULL);
  for (size_t i = 0; response != NULL && name == NULL && i < response->n_plugins; i++)
    for (size_t e = 0; e < response->plugins[i]->n_exports; e++)
      if (strcmp (response->plugins[i]->exports[e]->key, "default") == 0
          && strcmp (response->plugins[i]->exports[e]->value, "true") == 0)
        name = g_strdup (response->plugins[i]->id);
  if (response != NULL)
    protobuf_c_message_free_unpacked (&response->base, NULL);
  if (name == NULL)
    name = g_strdup ("overlayfs");
  return name;
}

int
cli_cmd_plugins (BerthCli *cli, int argc, char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = { { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL }, { NULL } };
  g_autoptr (GOptionContext) context = g_option_context_new ("— list the daemon's plugins and their status");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  Containerd__Services__Introspection__V1__PluginsResponse *response = list_plugins (cli, &error);
  if (response == NULL)
    return cli_fail (error, "plugins");
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_array (builder);
  if (!json)
    g_print ("%-40s %-24s %-8s %s\n", "TYPE", "ID", "STATUS", "ERROR");
  for (size_t i = 0; i < response->n_plugins; i++)
    {
      Containerd__Services__Introspection__V1__Plugin *plugin = response->plugins[i];
      const char *status = plugin->init_err ? "error" : "ok";
      const char *message = plugin->init_err ? plugin->init_err->message : "";
      if (!json)
        {
          g_print ("%-40s %-24s %-8s %s\n", plugin->type, plugin->id, status, message);
          continue;
        }
      json_builder_begin_object (builder);
      cli_json_string (builder, "type", plugin->type);
      cli_json_string (builder, "id", plugin->id);
      cli_json_string (builder, "status", status);
      cli_json_string (builder, "error", message);
      json_builder_end_object (builder);
    }
  cli_json_finish (builder, json);
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return 0;
}

static const char *
cgroup_version (void)
{
  if (g_file_test ("/sys/fs/cgroup/cgroup.controllers", G_FILE_TEST_EXISTS))
    return "2 (unified)";
  if (g_file_test ("/sys/fs/cgroup/unified/cgroup.controllers", G_FILE_TEST_EXISTS))
    return "1 (hybrid, cgroup2 at /sys/fs/cgroup/unified)";
  return "1";
}

/* How many things a List call returns, -1 when it fails. */
static gssize
count (BerthCli *cli, const char *path, const ProtobufCMessageDescriptor *request_type,
       const ProtobufCMessageDescriptor *response_type, const char *repeated_field)
{
  g_autofree ProtobufCMessage *request = g_malloc0 (request_type->sizeof_message);
  protobuf_c_message_init (request_type, request);
  ProtobufCMessage *response = cli_unary (cli, path, request, response_type, NULL);
  if (response == NULL)
    return -1;
  const ProtobufCFieldDescriptor *field = protobuf_c_message_descriptor_get_field_by_name (response_type, repeated_field);
  gssize n = field ? (gssize) * (size_t *) ((char *) response + field->quantifier_offset) : -1;
  protobuf_c_message_free_unpacked (response, NULL);
  return n;
}

int
cli_cmd_info (BerthCli *cli, int argc, char **argv)
{
  int rc;
  if (!no_args (argc, &argv, "— daemon version, plugins, cgroups and counts", &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
  Containerd__Services__Version__V1__VersionResponse *version = cli_unary (
    cli, "/containerd.services.version.v1.Version/Version", &empty.base,
    &containerd__services__version__v1__version_response__descriptor, &error);
  if (version == NULL)
    return cli_fail (error, "info");
  Containerd__Services__Introspection__V1__PluginsResponse *plugins = list_plugins (cli, &error);
  if (plugins == NULL)
    {
      protobuf_c_message_free_unpacked (&version->base, NULL);
      return cli_fail (error, "info");
    }
  g_print ("Server version: berthd %s (revision %s)\n", version->version, version->revision);
  g_print ("Socket: %s\n", cli->address);
  g_print ("Namespace: %s\n", cli->ns);
  g_print ("Cgroup version: %s\n", cgroup_version ());
  guint ok = 0, failed = 0;
  g_autoptr (GString) snapshotters = g_string_new ("");
  g_autoptr (GString) runtimes = g_string_new ("");
  for (size_t i = 0; i < plugins->n_plugins; i++)
    {
      Containerd__Services__Introspection__V1__Plugin *p = plugins->plugins[i];
      if (p->init_err)
        failed++;
      else
        ok++;
      GString *list = strcmp (p->type, SNAPSHOTTER_TYPE) == 0 ? snapshotters : strcmp (p->type, RUNTIME_TYPE) == 0 ? runtimes : NULL;
      if (list != NULL && p->init_err == NULL)
        g_string_append_printf (list, "%s%s", list->len ? ", " : "", p->id);
    }
  g_print ("Plugins: %u loaded, %u failed (berth plugins)\n", ok, failed);
  g_print ("Snapshotters: %s\n", snapshotters->str);
  g_print ("Runtimes: %s\n", runtimes->str);
  g_print ("Namespaces: %zd\n", count (cli, "/containerd.services.namespaces.v1.Namespaces/List",
                                       &containerd__services__namespaces__v1__list_namespaces_request__descriptor,
                                       &containerd__services__namespaces__v1__list_namespaces_response__descriptor, "namespaces"));
  g_print ("Images: %zd\n", count (cli, "/containerd.services.images.v1.Images/List",
                                   &containerd__services__images__v1__list_images_request__descriptor,
                                   &containerd__services__images__v1__list_images_response__descriptor, "images"));
  g_print ("Containers: %zd\n", count (cli, "/containerd.services.containers.v1.Containers/List",
                                       &containerd__services__containers__v1__list_containers_request__descriptor,
                                       &containerd__services__containers__v1__list_containers_response__descriptor, "containers"));
  g_print ("Tasks: %zd\n", count (cli, "/containerd.services.tasks.v1.Tasks/List",
                                  &containerd__services__tasks__v1__list_tasks_request__descriptor,
                                  &containerd__services__tasks__v1__list_tasks_response__descriptor, "tasks"));
  protobuf_c_message_free_unpacked (&plugins->base, NULL);
  protobuf_c_message_free_unpacked (&version->base, NULL);
  return 0;
}

int
cli_cmd_events (BerthCli *cli, int argc, char **argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("[FILTER…] — print events as they happen (containerd filter syntax)");
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  Containerd__Services__Events__V1__SubscribeRequest request = CONTAINERD__SERVICES__EVENTS__V1__SUBSCRIBE_REQUEST__INIT;
  request.filters = argv + 1;
  request.n_filters = argc - 1;
  g_autoptr (BerthGrpcClientCall) call = cli_server_stream (cli, "/containerd.services.events.v1.Events/Subscribe", &request.base,
                                                            &containerd__services__events__v1__envelope__descriptor, &error);
  if (call == NULL)
    return cli_fail (error, "events");
  for (;;)
    {
      Containerd__Services__Events__V1__Envelope *envelope = berth_grpc_client_call_recv (call, &error);
      if (envelope == NULL)
        break;
      g_autoptr (GDateTime) when = envelope->timestamp
                                     ? g_date_time_new_from_unix_utc (envelope->timestamp->seconds)
                                     : g_date_time_new_now_utc ();
      g_autofree char *stamp = g_date_time_format_iso8601 (when);
      const char *type = envelope->event && envelope->event->type_url ? envelope->event->type_url : "";
      g_print ("%s %s %s %s\n", stamp, envelope->namespace_, envelope->topic, type);
      fflush (stdout);
      protobuf_c_message_free_unpacked (&envelope->base, NULL);
    }
  if (error != NULL)
    return cli_fail (error, "events");
  return 0;
}

int
cli_cmd_gc (BerthCli *cli, int argc, char **argv)
{
  int rc;
  if (!no_args (argc, &argv, "— collect garbage now: unreferenced content, snapshots, expired leases", &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  Berth__Services__Gc__V1__CollectRequest request = BERTH__SERVICES__GC__V1__COLLECT_REQUEST__INIT;
  Berth__Services__Gc__V1__CollectResponse *response = cli_unary (
    cli, "/berth.services.gc.v1.GC/Collect", &request.base, &berth__services__gc__v1__collect_response__descriptor, &error);
  if (response == NULL)
    return cli_fail (error, "gc");
  g_print ("removed %u blobs, %u content records, %u snapshots, %u ingests; %u leases expired (%.1f ms)\n",
           response->blobs_removed, response->content_records_removed, response->snapshots_removed,
           response->ingests_removed, response->leases_expired, response->duration_ns / 1e6);
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return 0;
}

static const char *
kind_name (Containerd__Services__Snapshots__V1__Kind kind)
{
  switch (kind)
    {
    case CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__VIEW: return "view";
    case CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__ACTIVE: return "active";
    case CONTAINERD__SERVICES__SNAPSHOTS__V1__KIND__COMMITTED: return "committed";
    default: return "unknown";
    }
}

static int
snapshot_ls (BerthCli *cli, int argc, char **argv)
{
  g_autofree char *snapshotter = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "snapshotter", 0, 0, G_OPTION_ARG_STRING, &snapshotter, "snapshotter (default: the daemon's)", "NAME" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("[FILTER…] — list snapshots");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  Containerd__Services__Snapshots__V1__ListSnapshotsRequest request = CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_REQUEST__INIT;
  request.snapshotter = snapshotter ? snapshotter : (char *) cli_default_snapshotter (cli);
  request.filters = argv + 1;
  request.n_filters = argc - 1;
  g_autoptr (BerthGrpcClientCall) call = cli_server_stream (cli, "/containerd.services.snapshots.v1.Snapshots/List", &request.base,
                                                            &containerd__services__snapshots__v1__list_snapshots_response__descriptor, &error);
  if (call == NULL)
    return cli_fail (error, "snapshot ls");
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_array (builder);
  if (!json)
    g_print ("%-72s %-72s %s\n", "KEY", "PARENT", "KIND");
  for (;;)
    {
      Containerd__Services__Snapshots__V1__ListSnapshotsResponse *page = berth_grpc_client_call_recv (call, &error);
      if (page == NULL)
        break;
      for (size_t i = 0; i < page->n_info; i++)
        {
          Containerd__Services__Snapshots__V1__Info *info = page->info[i];
          if (!json)
            {
              g_print ("%-72s %-72s %s\n", info->name, info->parent, kind_name (info->kind));
              continue;
            }
          json_builder_begin_object (builder);
          cli_json_string (builder, "key", info->name);
          cli_json_string (builder, "parent", info->parent);
          cli_json_string (builder, "kind", kind_name (info->kind));
          json_builder_end_object (builder);
        }
      protobuf_c_message_free_unpacked (&page->base, NULL);
    }
  if (error != NULL)
    return cli_fail (error, "snapshot ls");
  cli_json_finish (builder, json);
  return 0;
}

int
cli_cmd_snapshot (BerthCli *cli, int argc, char **argv)
{
  static const BerthCliSubcommand table[] = { { "ls", snapshot_ls, "list snapshots" }, { NULL } };
  return cli_dispatch (cli, "snapshot", table, argc, argv);
}

static int
lease_ls (BerthCli *cli, int argc, char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = { { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL }, { NULL } };
  g_autoptr (GOptionContext) context = g_option_context_new ("[FILTER…] — list leases");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  Containerd__Services__Leases__V1__ListRequest request = CONTAINERD__SERVICES__LEASES__V1__LIST_REQUEST__INIT;
  request.filters = argv + 1;
  request.n_filters = argc - 1;
  Containerd__Services__Leases__V1__ListResponse *response = cli_unary (
    cli, "/containerd.services.leases.v1.Leases/List", &request.base, &containerd__services__leases__v1__list_response__descriptor, &error);
  if (response == NULL)
    return cli_fail (error, "lease ls");
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_array (builder);
  if (!json)
    g_print ("%-40s %-20s %s\n", "ID", "CREATED", "LABELS");
  for (size_t i = 0; i < response->n_leases; i++)
    {
      Containerd__Services__Leases__V1__Lease *lease = response->leases[i];
      gint64 created_ns = lease->created_at ? lease->created_at->seconds * 1000000000 + lease->created_at->nanos : 0;
      g_autoptr (GString) labels = g_string_new ("");
      for (size_t l = 0; l < lease->n_labels; l++)
        g_string_append_printf (labels, "%s%s=%s", l ? "," : "", lease->labels[l]->key, lease->labels[l]->value);
      if (!json)
        {
          g_autofree char *age = cli_format_age (created_ns);
          g_print ("%-40s %-20s %s\n", lease->id, age, labels->str);
          continue;
        }
      json_builder_begin_object (builder);
      cli_json_string (builder, "id", lease->id);
      cli_json_int (builder, "createdAt", created_ns / 1000000000);
      cli_json_labels (builder, (void *const *) lease->labels, lease->n_labels);
      json_builder_end_object (builder);
    }
  cli_json_finish (builder, json);
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return 0;
}

int
cli_cmd_lease (BerthCli *cli, int argc, char **argv)
{
  static const BerthCliSubcommand table[] = { { "ls", lease_ls, "list leases" }, { NULL } };
  return cli_dispatch (cli, "lease", table, argc, argv);
}

static int
seccomp_check (BerthCli *cli, int argc, char **argv)
{
  (void) cli;
  g_autoptr (GOptionContext) context = g_option_context_new ("FILE — validate a docker-format seccomp profile for this host");
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc != 2)
    return cli_usage (context, "seccomp check takes one FILE");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) unknown = NULL;
  if (!berth_seccomp_check_file (argv[1], &unknown, &error))
    return cli_fail (error, "seccomp check");
  if (unknown->len == 0)
    {
      g_print ("%s: every syscall name is known on %s\n", argv[1], berth_seccomp_native_arch ());
      return 0;
    }
  g_print ("%s: %u syscall names unknown on %s (they are dropped when the profile is used):\n", argv[1], unknown->len,
           berth_seccomp_native_arch ());
  for (guint i = 0; i < unknown->len; i++)
    g_print ("  %s\n", (const char *) unknown->pdata[i]);
  return 1;
}

int
cli_cmd_seccomp (BerthCli *cli, int argc, char **argv)
{
  static const BerthCliSubcommand table[] = { { "check", seccomp_check, "validate a seccomp profile" }, { NULL } };
  return cli_dispatch (cli, "seccomp", table, argc, argv);
}
