/* introspection.c — containerd.services.introspection.v1.Introspection, fed by the
 * plugin registry: every plugin, including the ones that failed and why. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include "berth-api.h"
#include "berth-api-util.h"
#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.pb-c.h"


static const char *
plugin_field (const char *const *fieldpath, gpointer object)
{
  const BerthPluginRecord *record = object;
  if (fieldpath[0] == NULL || fieldpath[1] != NULL)
    return NULL;
  if (g_str_equal (fieldpath[0], "type"))
    return record->type;
  if (g_str_equal (fieldpath[0], "id"))
    return record->name;
  return NULL;
}

static const char *
host_arch (void)
{
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "unknown";
#endif
}

static ProtobufCMessage *
introspection_plugins (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  const Containerd__Services__Introspection__V1__PluginsRequest *req = (gpointer) request;
  g_autoptr (BerthFilter) filter = berth_api_filter_parse (req->filters, req->n_filters, error);
  if (filter == NULL)
    return NULL;
  GPtrArray *records = berth_registry_get_plugins (berth_daemon_get_registry (user_data));
  g_autoptr (GPtrArray) plugins = g_ptr_array_new ();
  for (guint i = 0; i < records->len; i++)
    {
      BerthPluginRecord *record = records->pdata[i];
      if (!berth_filter_match (filter, plugin_field, record))
        continue;
      Containerd__Services__Introspection__V1__Plugin *plugin =
        berth_grpc_message_new (&containerd__services__introspection__v1__plugin__descriptor);
      plugin->type = g_strdup (record->type);
      plugin->id = g_strdup (record->name);
      plugin->n_requires = g_strv_length (record->requires);
      plugin->requires = g_strdupv (record->requires);
      Containerd__Types__Platform *platform = berth_grpc_message_new (&containerd__types__platform__descriptor);
      platform->os = g_strdup ("linux");
      platform->architecture = g_strdup (host_arch ());
      plugin->n_platforms = 1;
      plugin->platforms = g_new0 (Containerd__Types__Platform *, 1);
      plugin->platforms[0] = platform;
      /* Clients (berth's CLI) learn the daemon's default snapshotter from this export. */
      if (g_str_equal (record->type, BERTH_PLUGIN_TYPE_SNAPSHOTTER)
          && g_strcmp0 (record->name, berth_daemon_get_config (user_data)->default_snapshotter) == 0)
        {
          Containerd__Services__Introspection__V1__Plugin__ExportsEntry *entry =
            berth_grpc_message_new (&containerd__services__introspection__v1__plugin__exports_entry__descriptor);
          entry->key = g_strdup ("default");
          entry->value = g_strdup ("true");
          plugin->n_exports = 1;
          plugin->exports = g_new0 (Containerd__Services__Introspection__V1__Plugin__ExportsEntry *, 1);
          plugin->exports[0] = entry;
        }
      if (record->error != NULL)
        {
          Google__Rpc__Status *status = berth_grpc_message_new (&google__rpc__status__descriptor);
          status->code = record->status == BERTH_PLUGIN_STATUS_SKIPPED ? BERTH_ERROR_FAILED_PRECONDITION
                                                                         : berth_error_to_code (record->error);
          status->message = g_strdup (record->error->message);
          plugin->init_err = status;
        }
      g_ptr_array_add (plugins, plugin);
    }
  Containerd__Services__Introspection__V1__PluginsResponse *response =
    berth_grpc_message_new (&containerd__services__introspection__v1__plugins_response__descriptor);
  response->n_plugins = plugins->len;
  response->plugins = (Containerd__Services__Introspection__V1__Plugin **) g_ptr_array_steal (plugins, NULL);
  return &response->base;
}

/* The server's UUID: made once, kept in the metadata store across restarts. */
static gboolean
uuid_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  char **uuid = user_data;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GBytes) stored = berth_metadata_txn_get (txn, BERTH_SCHEMA_UUID_KEY, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (stored != NULL)
    {
      *uuid = g_strndup (g_bytes_get_data (stored, NULL), g_bytes_get_size (stored));
      return TRUE;
    }
  *uuid = g_uuid_string_random ();
  return berth_metadata_txn_put (txn, BERTH_SCHEMA_UUID_KEY, *uuid, strlen (*uuid), error);
}

static ProtobufCMessage *
introspection_server (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer user_data, GError **error)
{
  g_autofree char *uuid = NULL;
  if (!berth_metadata_write (berth_daemon_get_metadata (user_data), uuid_txn, &uuid, error))
    return NULL;
  Containerd__Services__Introspection__V1__ServerResponse *response =
    berth_grpc_message_new (&containerd__services__introspection__v1__server_response__descriptor);
  response->uuid = g_steal_pointer (&uuid);
  return &response->base;
}

void
berth_api_register_introspection (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Plugins", BERTH_GRPC_UNARY, introspection_plugins, NULL },
    { "Server", BERTH_GRPC_UNARY, introspection_server, NULL },
    { NULL },
  };
  berth_grpc_server_add_service (server, &containerd__services__introspection__v1__introspection__descriptor, methods,
                                 daemon);
}
