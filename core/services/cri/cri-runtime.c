/* cri-runtime.c — runtime.v1.RuntimeService: the CRI records, runtime handlers,
 * version, status and runtime config, and the table of every method (pod sandboxes are
 * in cri-sandboxes.c, containers in cri-containers.c and cri-container-status.c). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include "berth-cri.h"
#include "berth-cni.h"
#include "daemon/berth-config.h"
#include "services/containerd/berth-api.h"
#include "services/containerd/berth-api-ops.h"
#include "services/containerd/berth-api-util.h"
#include "image/berth-image-store.h"
#include "image/berth-spec.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb-c.h"

#define RUNC_OPTIONS_TYPE_URL "containerd.runc.v1.Options"
/* Runtime handlers (RuntimeClass names) come from [plugin.cri] runtime-handlers (see
 * load_handlers); "" is always there. */
#define HANDLERS_GROUP "plugin.cri"
#define HANDLERS_KEY "runtime-handlers"
#define DEFAULT_HANDLERS "runc;crun"

typedef struct {
  char *name;
  char *runtime; /* the container's runtime name; NULL: berthd's default-runtime */
  char *binary;  /* the OCI runtime binary (runc options BinaryName); NULL: the runtime's own */
} CriHandler;

static GPtrArray *handlers;  /* CriHandler, "" first */
static char *handlers_error; /* why the configuration was refused: every pod is, with it */

/* ---------------- records, ids, locks ---------------- */

typedef struct {
  const char *key;
  const ProtobufCMessageDescriptor *descriptor;
  const ProtobufCMessage *message;
  gpointer result;
} RecordOp;

char *
cri_record_key (const char *kind, const char *id)
{
  return berth_schema_cri_key (BERTH_CRI_NAMESPACE, kind, id);
}

static gboolean
get_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  RecordOp *op = user_data;
  g_autoptr (GBytes) bytes = berth_metadata_txn_get (txn, op->key, error);
  if (bytes == NULL)
    return FALSE;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  op->result = berth_api_message_unpack (op->descriptor, data, len);
  if (op->result == NULL)
    return berth_throw (error, BERTH_ERROR_DATA_LOSS, "metadata record %s is corrupt", op->key);
  return TRUE;
}

gpointer
berth_cri_record_get (BerthDaemon *daemon, const char *kind, const char *id, const ProtobufCMessageDescriptor *descriptor,
                      GError **error)
{
  if (id == NULL || *id == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no %s id given", kind), NULL;
  g_autofree char *key = cri_record_key (kind, id);
  RecordOp op = { key, descriptor, NULL, NULL };
  g_autoptr (GError) local_error = NULL;
  if (!berth_metadata_read (berth_daemon_get_metadata (daemon), get_txn, &op, &local_error))
    {
      if (local_error != NULL)
        g_propagate_error (error, g_steal_pointer (&local_error));
      else
        berth_throw (error, BERTH_ERROR_NOT_FOUND, "an error occurred when try to find %s \"%s\": not found",
                     g_str_equal (kind, "sandboxes") ? "sandbox" : "container", id);
      return NULL;
    }
  return op.result;
}

static gboolean
put_txn (BerthMetadataTxn *txn, gpointer user_data, GError **error)
{
  RecordOp *op = user_data;
  return berth_schema_put (txn, op->key, op->message, error);
}

gboolean
berth_cri_record_put (BerthDaemon *daemon, const char *kind, const char *id, const ProtobufCMessage *record,
                      GError **error)
{
  g_autofree char *key = cri_record_key (kind, id);
  RecordOp op = { key, NULL, record, NULL };
  return berth_metadata_write (berth_daemon_get_metadata (daemon), put_txn, &op, error);
}

gboolean
berth_cri_record_delete (BerthDaemon *daemon, const char *kind, const char *id, GError **error)
{
  g_autofree char *key = cri_record_key (kind, id);
  return berth_schema_delete (berth_daemon_get_metadata (daemon), key, error);
}

GPtrArray *
berth_cri_record_list (BerthDaemon *daemon, const char *kind, const ProtobufCMessageDescriptor *descriptor,
                       GError **error)
{
  g_autofree char *prefix = cri_record_key (kind, NULL);
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_grpc_message_free);
  if (!berth_schema_collect (berth_daemon_get_metadata (daemon), prefix, descriptor, NULL, NULL, NULL, out, error))
    return g_ptr_array_unref (out), NULL;
  return out;
}

CriSandbox *
berth_cri_sandbox_get (BerthDaemon *daemon, const char *id, GError **error)
{
  return berth_cri_record_get (daemon, "sandboxes", id, &berth__cri__v1__sandbox_record__descriptor, error);
}

CriContainer *
berth_cri_container_get (BerthDaemon *daemon, const char *id, GError **error)
{
  return berth_cri_record_get (daemon, "containers", id, &berth__cri__v1__container_record__descriptor, error);
}

static GMutex busy_lock;
static GCond busy_cond;
static GHashTable *busy_ids;

void
berth_cri_lock (const char *id)
{
  g_mutex_lock (&busy_lock);
  if (busy_ids == NULL)
    busy_ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  while (g_hash_table_contains (busy_ids, id))
    g_cond_wait (&busy_cond, &busy_lock);
  g_hash_table_add (busy_ids, g_strdup (id));
  g_mutex_unlock (&busy_lock);
}

void
berth_cri_unlock (const char *id)
{
  g_mutex_lock (&busy_lock);
  g_hash_table_remove (busy_ids, id);
  g_cond_broadcast (&busy_cond);
  g_mutex_unlock (&busy_lock);
}

char *
berth_cri_new_id (void)
{
  GString *id = g_string_sized_new (64);
  for (guint i = 0; i < 8; i++)
    g_string_append_printf (id, "%08x", g_random_int ());
  return g_string_free (id, FALSE);
}

char *
berth_cri_path (BerthDaemon *daemon, const char *what, const char *id)
{
  return g_build_filename (berth_daemon_get_config (daemon)->state, "cri", what, id, NULL);
}

/* The pod's /etc/hosts, /etc/hostname and /etc/resolv.conf live on disk under the root
 * (as containerd's io.containerd.grpc.v1.cri/sandboxes/ID/), not on the state tmpfs:
 * a container writing to them must not be able to fill /run. */
char *
berth_cri_sandbox_dir (BerthDaemon *daemon, const char *id)
{
  return g_build_filename (berth_daemon_get_config (daemon)->root, "io.containerd.grpc.v1.cri", "sandboxes", id, NULL);
}

gboolean
berth_cri_labels_match (void *const *selector, size_t n_selector, void *const *entries, size_t n_entries)
{
  for (size_t i = 0; i < n_selector; i++)
    {
      const BerthSchemaMapEntry *want = selector[i];
      gboolean found = FALSE;
      for (size_t j = 0; j < n_entries && !found; j++)
        {
          const BerthSchemaMapEntry *have = entries[j];
          found = g_strcmp0 (have->key, want->key) == 0 && g_strcmp0 (have->value, want->value) == 0;
        }
      if (!found)
        return FALSE;
    }
  return TRUE;
}

BerthTask *
berth_cri_task (BerthDaemon *daemon, const char *id)
{
  return berth_daemon_find_task (daemon, BERTH_CRI_NAMESPACE, id, NULL);
}

gboolean
berth_cri_task_destroy (BerthDaemon *daemon, BerthTask *task, BerthExitStatus *exit_out, GError **error)
{
  BerthExitStatus exit = { 0 };
  if (berth_task_get_status (task, NULL, &exit) != BERTH_TASK_STATUS_STOPPED)
    {
      g_autoptr (GError) local_error = NULL;
      if (!berth_task_kill (task, NULL, SIGKILL, TRUE, NULL, &local_error))
        g_debug ("killing task %s: %s", berth_task_get_id (task), local_error->message);
      if (!berth_task_wait (task, NULL, &exit, NULL, error))
        return FALSE;
    }
  if (exit_out != NULL)
    *exit_out = exit;
  return berth_api_ops_task_delete (daemon, task, NULL, NULL, error);
}

void
berth_cri_entries_copy (void *const *entries, size_t n, const ProtobufCMessageDescriptor *descriptor, void ***out, size_t *n_out)
{
  *n_out = n;
  *out = g_new0 (void *, n + 1);
  for (size_t i = 0; i < n; i++)
    {
      const BerthSchemaMapEntry *from = entries[i];
      BerthSchemaMapEntry *to = berth_grpc_message_new (descriptor);
      to->key = g_strdup (from->key);
      to->value = g_strdup (from->value);
      (*out)[i] = to;
    }
}

static void
handler_free (CriHandler *h)
{
  g_free (h->name);
  g_free (h->runtime);
  g_free (h->binary);
  g_free (h);
}

static CriHandler *
handler_lookup_in (GPtrArray *list, const char *name)
{
  for (guint i = 0; list != NULL && i < list->len; i++)
    if (g_str_equal (((CriHandler *) list->pdata[i])->name, name))
      return list->pdata[i];
  return NULL;
}

static const CriHandler *
handler_lookup (const char *name)
{
  return handler_lookup_in (handlers, name);
}

static char *
nonempty (const char *text, gssize len)
{
  g_autofree char *copy = g_strstrip (g_strndup (text, len < 0 ? strlen (text) : (gsize) len));
  return *copy ? g_steal_pointer (&copy) : NULL;
}

/* [plugin.cri] runtime-handlers: ';'-separated entries
 *   NAME                    berthd's default runtime running the OCI runtime binary NAME
 *   NAME=RUNTIME            the container runtime RUNTIME (e.g. a shim v2 name such as
 *                           io.containerd.runc.v2, or a runtime plugin's id), its own binary
 *   NAME=[RUNTIME]:BINARY   RUNTIME (default: berthd's default-runtime) running BINARY
 * An entry with an empty NAME ("=RUNTIME[:BINARY]") redefines the default handler "".
 * Without the key: "runc;crun". */
static gboolean
load_handlers (const BerthConfig *config, GError **error)
{
  g_autoptr (GPtrArray) loaded = g_ptr_array_new_with_free_func ((GDestroyNotify) handler_free);
  CriHandler *fallback = g_new0 (CriHandler, 1);
  fallback->name = g_strdup ("");
  g_ptr_array_add (loaded, fallback);
  g_autofree char *text = NULL;
  if (config->keyfile != NULL && g_key_file_has_group (config->keyfile, HANDLERS_GROUP))
    {
      g_auto (GStrv) keys = g_key_file_get_keys (config->keyfile, HANDLERS_GROUP, NULL, NULL);
      for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
        if (!g_str_equal (keys[i], HANDLERS_KEY))
          {
            g_autofree char *where = berth_config_location (config, HANDLERS_GROUP, keys[i]);
            return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%sunknown key \"%s\" in [%s] (known: %s)", where,
                                keys[i], HANDLERS_GROUP, HANDLERS_KEY);
          }
      text = g_key_file_get_value (config->keyfile, HANDLERS_GROUP, HANDLERS_KEY, NULL);
    }
  g_auto (GStrv) entries = g_strsplit (text ? text : DEFAULT_HANDLERS, ";", -1);
  for (guint i = 0; entries[i] != NULL; i++)
    {
      const char *entry = entries[i], *eq = strchr (entry, '=');
      g_autofree char *name = eq ? nonempty (entry, eq - entry) : nonempty (entry, -1);
      if (name == NULL && eq == NULL)
        continue;
      CriHandler *h = name ? (CriHandler *) handler_lookup_in (loaded, name) : fallback;
      if (h != NULL && h != fallback)
        {
          g_autofree char *where = berth_config_location (config, HANDLERS_GROUP, HANDLERS_KEY);
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%sruntime handler \"%s\" is defined twice", where,
                              name);
        }
      if (h == NULL)
        {
          h = g_new0 (CriHandler, 1);
          h->name = g_steal_pointer (&name);
          g_ptr_array_add (loaded, h);
        }
      if (eq == NULL)
        {
          h->binary = g_strdup (h->name);
          continue;
        }
      const char *colon = strchr (eq + 1, ':');
      g_clear_pointer (&h->runtime, g_free);
      h->runtime = nonempty (eq + 1, colon ? colon - (eq + 1) : -1);
      h->binary = colon ? nonempty (colon + 1, -1) : NULL;
      if (h->runtime == NULL && h->binary == NULL)
        {
          g_autofree char *where = berth_config_location (config, HANDLERS_GROUP, HANDLERS_KEY);
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                              "%sruntime handler \"%s\" names neither a runtime nor a binary (want NAME=RUNTIME, "
                              "NAME=:BINARY or NAME=RUNTIME:BINARY)", where, h->name);
        }
    }
  g_clear_pointer (&handlers, g_ptr_array_unref);
  handlers = g_steal_pointer (&loaded);
  return TRUE;
}

Google__Protobuf__Any *
berth_cri_runtime_options (BerthDaemon *daemon, const char *handler_name, const char **runtime_name)
{
  const CriHandler *handler = handler_lookup (handler_name ? handler_name : "");
  *runtime_name = handler && handler->runtime ? handler->runtime : berth_daemon_get_config (daemon)->default_runtime;
  if (handler == NULL || handler->binary == NULL)
    return NULL;
  Containerd__Runc__V1__Options options = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  options.binary_name = handler->binary;
  Google__Protobuf__Any *any = berth_grpc_message_new (&google__protobuf__any__descriptor);
  any->type_url = g_strdup (RUNC_OPTIONS_TYPE_URL);
  any->value.len = protobuf_c_message_get_packed_size (&options.base);
  any->value.data = g_malloc (any->value.len + 1);
  protobuf_c_message_pack (&options.base, any->value.data);
  return any;
}

/* ---------------- version, status, runtime config ---------------- */

static ProtobufCMessage *
cri_version (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  Runtime__V1__VersionResponse *response = berth_grpc_message_new (&runtime__v1__version_response__descriptor);
  response->version = g_strdup ("0.1.0");
  response->runtime_name = g_strdup ("berth");
  response->runtime_version = g_strdup (PACKAGE_VERSION);
  response->runtime_api_version = g_strdup ("v1");
  return &response->base;
}

static Runtime__V1__RuntimeCondition *
condition_new (const char *type, gboolean status, const char *reason, const char *message)
{
  Runtime__V1__RuntimeCondition *c = berth_grpc_message_new (&runtime__v1__runtime_condition__descriptor);
  c->type = g_strdup (type);
  c->status = status;
  c->reason = g_strdup (reason ? reason : "");
  c->message = g_strdup (message ? message : "");
  return c;
}

/* Status's verbose "cniconfig", shaped as containerd's (go-cni's ConfigResult), which
 * `crictl info` prints: the CNI directories and the network berth loaded. */
static char *
cni_config_info (const BerthConfig *config, const char *network)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "PluginDirs");
  json_builder_begin_array (b);
  json_builder_add_string_value (b, config->cri_cni_bin_dir);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "PluginConfDir");
  json_builder_add_string_value (b, config->cri_cni_conf_dir);
  json_builder_set_member_name (b, "PluginMaxConfNum");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "Prefix");
  json_builder_add_string_value (b, "eth");
  json_builder_set_member_name (b, "Networks");
  json_builder_begin_array (b);
  g_autoptr (GBytes) bytes = network ? g_bytes_new_static (network, strlen (network)) : NULL;
  g_autoptr (JsonNode) root = bytes ? berth_json_parse_object (bytes, "CNI configuration", NULL) : NULL;
  if (root != NULL)
    {
      JsonObject *list = json_node_get_object (root);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "Config");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "Name");
      json_builder_add_string_value (b, berth_json_member_string (list, "name"));
      json_builder_set_member_name (b, "CNIVersion");
      json_builder_add_string_value (b, berth_json_member_string (list, "cniVersion"));
      json_builder_set_member_name (b, "Plugins");
      json_builder_begin_array (b);
      JsonArray *plugins = berth_json_member_array (list, "plugins");
      for (guint i = 0; plugins != NULL && i < json_array_get_length (plugins); i++)
        {
          JsonNode *plugin = json_array_get_element (plugins, i);
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "Network");
          json_builder_add_value (b, json_node_copy (plugin));
          json_builder_set_member_name (b, "Source");
          g_autofree char *text = berth_json_to_text (plugin, NULL);
          json_builder_add_string_value (b, text);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_set_member_name (b, "Source");
      json_builder_add_string_value (b, network);
      json_builder_end_object (b);
      json_builder_set_member_name (b, "IFName");
      json_builder_add_string_value (b, "eth0");
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) node = json_builder_get_root (b);
  return berth_json_to_text (node, NULL);
}

/* Status's verbose "config": the CRI settings berthd runs with. */
static char *
cri_config_info (const BerthConfig *config)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  const struct { const char *key, *value; } fields[] = {
    { "containerdRootDir", config->root },   { "containerdStateDir", config->state },
    { "snapshotter", config->default_snapshotter }, { "defaultRuntimeName", config->default_runtime },
    { "streamServerAddress", config->cri_stream_address },
  };
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      json_builder_set_member_name (b, fields[i].key);
      json_builder_add_string_value (b, fields[i].value ? fields[i].value : "");
    }
  json_builder_set_member_name (b, "cni");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "binDir");
  json_builder_add_string_value (b, config->cri_cni_bin_dir);
  json_builder_set_member_name (b, "confDir");
  json_builder_add_string_value (b, config->cri_cni_conf_dir);
  json_builder_end_object (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) node = json_builder_get_root (b);
  return berth_json_to_text (node, NULL);
}

static ProtobufCMessage *
cri_status (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const Runtime__V1__StatusRequest *req = (gpointer) request;
  BerthConfig *config = berth_daemon_get_config (daemon);
  g_autoptr (GError) runtime_error = NULL, network_error = NULL;
  gboolean runtime_ready = berth_daemon_get_runtime (daemon, NULL, &runtime_error) != NULL;
  g_autofree char *network = berth_cni_load_network (config->cri_cni_conf_dir, NULL, &network_error);
  Runtime__V1__StatusResponse *response = berth_grpc_message_new (&runtime__v1__status_response__descriptor);
  response->status = berth_grpc_message_new (&runtime__v1__runtime_status__descriptor);
  response->status->n_conditions = 2;
  response->status->conditions = g_new0 (Runtime__V1__RuntimeCondition *, 3);
  response->status->conditions[0] = condition_new ("RuntimeReady", runtime_ready, runtime_ready ? NULL : "RuntimeNotReady",
                                                   runtime_error ? runtime_error->message : NULL);
  response->status->conditions[1] = condition_new ("NetworkReady", network != NULL,
                                                   network ? NULL : "NetworkPluginNotReady",
                                                   network_error ? network_error->message : NULL);
  response->n_runtime_handlers = handlers ? handlers->len : 0;
  response->runtime_handlers = g_new0 (Runtime__V1__RuntimeHandler *, response->n_runtime_handlers + 1);
  for (guint i = 0; i < response->n_runtime_handlers; i++)
    {
      Runtime__V1__RuntimeHandler *handler = berth_grpc_message_new (&runtime__v1__runtime_handler__descriptor);
      handler->name = g_strdup (((CriHandler *) handlers->pdata[i])->name);
      handler->features = berth_grpc_message_new (&runtime__v1__runtime_handler_features__descriptor);
      response->runtime_handlers[i] = handler;
    }
  if (req->verbose)
    {
      g_autoptr (GHashTable) info = berth_labels_new ();
      g_hash_table_insert (info, g_strdup ("cniconfig"), cni_config_info (config, network));
      g_hash_table_insert (info, g_strdup ("config"), cri_config_info (config));
      /* Each value is JSON: a string here. */
      g_autoptr (JsonNode) load_status = json_node_new (JSON_NODE_VALUE);
      json_node_set_string (load_status, network_error ? network_error->message : "OK");
      g_hash_table_insert (info, g_strdup ("lastCNILoadStatus"), berth_json_to_text (load_status, NULL));
      berth_schema_labels_to_entries (info, &runtime__v1__status_response__info_entry__descriptor,
                                      (void ***) &response->info, &response->n_info);
    }
  return &response->base;
}

static ProtobufCMessage *
cri_runtime_config (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  Runtime__V1__RuntimeConfigResponse *response = berth_grpc_message_new (&runtime__v1__runtime_config_response__descriptor);
  response->linux = berth_grpc_message_new (&runtime__v1__linux_runtime_configuration__descriptor);
  /* berth writes cgroup paths as given, cgroupfs style. */
  response->linux->cgroup_driver = RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
  return &response->base;
}

static ProtobufCMessage *
cri_update_runtime_config (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  /* The pod CIDR goes to the CNI configuration, which berth reads as it is. */
  return berth_grpc_message_new (&runtime__v1__update_runtime_config_response__descriptor);
}

static ProtobufCMessage *
cri_unimplemented (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)
{
  const char *method = strrchr (berth_grpc_call_get_method (call), '/');
  return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED,
                      "%s is not implemented by berth yet (checkpoints, container events and pod metrics are not; "
                      "see the README's CRI section)",
                      method ? method + 1 : "this method"), NULL;
}

/* FAILED_PRECONDITION when the configured handlers could not be loaded, INVALID_ARGUMENT
 * naming the known ones when @handler is not one of them. */
gboolean
cri_handler_check (const char *handler, GError **error)
{
  if (handlers_error != NULL)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "%s", handlers_error);
  if (handler_lookup (handler) == NULL)
    {
      g_autoptr (GString) known = g_string_new (NULL);
      for (guint i = 0; i < handlers->len; i++)
        g_string_append_printf (known, "%s\"%s\"", i ? ", " : "", ((CriHandler *) handlers->pdata[i])->name);
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "unknown runtime handler \"%s\" (berth has %s; "
                          "[plugin.cri] runtime-handlers)", handler, known->str);
    }
  return TRUE;
}

void
berth_cri_register (BerthGrpcServer *server, BerthDaemon *daemon)
{
  static const BerthGrpcMethod methods[] = {
    { "Version", BERTH_GRPC_UNARY, cri_version, NULL },
    { "Status", BERTH_GRPC_UNARY, cri_status, NULL },
    { "RuntimeConfig", BERTH_GRPC_UNARY, cri_runtime_config, NULL },
    { "UpdateRuntimeConfig", BERTH_GRPC_UNARY, cri_update_runtime_config, NULL },
    { "RunPodSandbox", BERTH_GRPC_UNARY, cri_run_pod_sandbox, NULL },
    { "StopPodSandbox", BERTH_GRPC_UNARY, cri_stop_pod_sandbox, NULL },
    { "RemovePodSandbox", BERTH_GRPC_UNARY, cri_remove_pod_sandbox, NULL },
    { "PodSandboxStatus", BERTH_GRPC_UNARY, cri_pod_sandbox_status, NULL },
    { "ListPodSandbox", BERTH_GRPC_UNARY, cri_list_pod_sandbox, NULL },
    { "PodSandboxStats", BERTH_GRPC_UNARY, cri_pod_sandbox_stats, NULL },
    { "CreateContainer", BERTH_GRPC_UNARY, cri_create_container, NULL },
    { "StartContainer", BERTH_GRPC_UNARY, cri_start_container, NULL },
    { "StopContainer", BERTH_GRPC_UNARY, cri_stop_container, NULL },
    { "RemoveContainer", BERTH_GRPC_UNARY, cri_remove_container, NULL },
    { "ListContainers", BERTH_GRPC_UNARY, cri_list_containers, NULL },
    { "ContainerStatus", BERTH_GRPC_UNARY, cri_container_status, NULL },
    { "UpdateContainerResources", BERTH_GRPC_UNARY, cri_update_container_resources, NULL },
    { "ReopenContainerLog", BERTH_GRPC_UNARY, cri_reopen_container_log, NULL },
    { "ExecSync", BERTH_GRPC_UNARY, cri_exec_sync, NULL },
    { "ContainerStats", BERTH_GRPC_UNARY, cri_container_stats, NULL },
    { "ListContainerStats", BERTH_GRPC_UNARY, cri_list_container_stats, NULL },
    { "Exec", BERTH_GRPC_UNARY, cri_exec, NULL },
    { "Attach", BERTH_GRPC_UNARY, cri_attach, NULL },
    { "PortForward", BERTH_GRPC_UNARY, cri_port_forward, NULL },
    { "ListPodSandboxStats", BERTH_GRPC_UNARY, cri_list_pod_sandbox_stats, NULL },
    { "CheckpointContainer", BERTH_GRPC_UNARY, cri_unimplemented, NULL },
    { "ListMetricDescriptors", BERTH_GRPC_UNARY, cri_unimplemented, NULL },
    { "ListPodSandboxMetrics", BERTH_GRPC_UNARY, cri_unimplemented, NULL },
    { NULL },
  };
  g_autoptr (GError) local_error = NULL;
  g_clear_pointer (&handlers_error, g_free);
  /* No daemon (the gRPC fuzzer registers the services alone): the default handlers. */
  g_autoptr (BerthConfig) defaults = daemon == NULL ? berth_config_new_default () : NULL;
  if (!load_handlers (daemon != NULL ? berth_daemon_get_config (daemon) : defaults, &local_error))
    {
      /* Registration cannot fail berthd's start: the CRI refuses every pod instead. */
      g_warning ("CRI runtime handlers: %s", local_error->message);
      handlers_error = g_strdup_printf ("CRI runtime handlers: %s", local_error->message);
      g_autoptr (BerthConfig) fallback = berth_config_new_default ();
      load_handlers (fallback, NULL);
    }
  berth_grpc_server_add_service (server, &runtime__v1__runtime_service__descriptor, methods, daemon);
  berth_cri_register_images (server, daemon);
}
