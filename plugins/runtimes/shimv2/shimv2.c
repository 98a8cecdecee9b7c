/* shimv2.c — the shim-v2 runtime plugin: any containerd shim (containerd-shim-runc-v2,
 * kata, runsc, runwasi, …) run as containerd 1.6 runs it.
 *
 * A runtime name maps to a binary by containerd's rule (io.containerd.NAME.VERSION →
 * containerd-shim-NAME-VERSION, looked up in berthd's PATH only, never a path a client
 * sent) or by [plugin.runtime.shimv2] runtimes. Each task's bundle is
 * "<state>/<namespace>/<id>/": config.json, rootfs/ (the shim mounts it), the "log" FIFO
 * the shim writes to, and what the shim leaves: "address" (its ttrpc socket) and
 * "shim.pid". "shim-binary-path" records the binary for cleanup and restart.
 * (Bundles are "<state>/<ns>/<id>", so "<state>/events.sock" never clashes with one: a
 * namespace is a directory.)
 *
 * `SHIM start` (in the bundle, with -namespace/-address/-publish-binary/-id,
 * TTRPC_ADDRESS in the environment and the runtime options on stdin) prints the address;
 * every other call is containerd.task.v2.Task over ttrpc. `SHIM delete` cleans up after
 * a shim that failed or died. Shims publish their events to "<state>/events.sock"
 * (containerd.services.events.ttrpc.v1.Events/Forward), which this plugin serves and
 * hands to the daemon through its "event" signal.
 *
 * This file is the runtime: creating a task (bundle, `SHIM start`, Create), finding and
 * restoring tasks, the events endpoint, and the plugin. The task's calls are in
 * shimv2-task.c, the shim process in shimv2-shim.c, exits in shimv2-exits.c.
 */
#include "config.h"

#include <string.h>

#include "shimv2-private.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb-c.h"

#define EVENTS_SERVICE "containerd.services.events.ttrpc.v1.Events"

enum { PROP_0, PROP_RUNTIME_NAMES };
enum { SIGNAL_EVENT, N_SIGNALS };
static guint signals[N_SIGNALS];

static void shimv2_runtime_iface_init (BerthRuntimeInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShimV2Runtime, shimv2_runtime, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_RUNTIME, shimv2_runtime_iface_init))

static char *
read_bundle_file (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return g_strstrip (text);
}

/* ---------------- the runtime ---------------- */

/* The shim binary for @name: from config, else containerd's rule in berthd's PATH. */
static char *
resolve_binary (ShimV2Runtime *self, const char *name, GError **error)
{
  const char *configured = g_hash_table_lookup (self->binaries, name);
  if (configured != NULL)
    return g_strdup (configured);
  g_auto (GStrv) parts = g_strsplit (name, ".", -1);
  guint n = g_strv_length (parts);
  if (n < 2 || *parts[n - 2] == '\0' || *parts[n - 1] == '\0' || strchr (name, '/') != NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "runtime \"%s\": not a shim name (io.containerd.NAME.VERSION, run by containerd-shim-NAME-VERSION)",
                        name), NULL;
  g_autofree char *binary = g_strdup_printf ("containerd-shim-%s-%s", parts[n - 2], parts[n - 1]);
  char *path = g_find_program_in_path (binary);
  if (path == NULL)
    berth_throw (error, BERTH_ERROR_NOT_FOUND, "runtime \"%s\": shim binary %s not found in PATH", name, binary);
  return path;
}

static gboolean
write_bundle (ShimV2Task *task, GBytes *spec_json, GError **error)
{
  if (spec_json == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "the container has no OCI spec");
  g_autofree char *rootfs = g_build_filename (task->dir, "rootfs", NULL);
  g_autofree char *config = g_build_filename (task->dir, "config.json", NULL);
  g_autofree char *binary_file = g_build_filename (task->dir, "shim-binary-path", NULL);
  gsize len = 0;
  const char *data = g_bytes_get_data (spec_json, &len);
  if (g_mkdir_with_parents (rootfs, 0711) < 0)
    return berth_throw_errno (error, "creating %s", rootfs);
  return g_file_set_contents (config, data, len, error) && g_file_set_contents (binary_file, task->binary, -1, error);
}

/* `SHIM start`: the shim detaches and prints its ttrpc address. */
static gboolean
start_shim (ShimV2Task *task, const BerthTaskCreateOptions *options, GCancellable *cancellable, GError **error)
{
  g_autoptr (GBytes) input = NULL;
  if (options->options_type_url != NULL)
    {
      Google__Protobuf__Any any = shimv2_json_any (options->options_type_url, options->options);
      gsize len = protobuf_c_message_get_packed_size (&any.base);
      guint8 *data = g_malloc (len + 1);
      protobuf_c_message_pack (&any.base, data);
      input = g_bytes_new_take (data, len);
    }
  g_autoptr (GBytes) out = NULL;
  if (!shimv2_run_shim (task, "start", input, &out, NULL, cancellable, error))
    return FALSE;
  gsize len = 0;
  const char *data = g_bytes_get_data (out, &len);
  task->address = g_strstrip (g_strndup (data, len));
  if (*task->address == '\0')
    return berth_throw (error, BERTH_ERROR_UNKNOWN, "%s start printed no address", task->binary);
  return TRUE;
}

static Containerd__Types__Mount **
mounts_to_proto (GPtrArray *rootfs, Containerd__Types__Mount *storage)
{
  Containerd__Types__Mount **out = g_new0 (Containerd__Types__Mount *, rootfs ? rootfs->len + 1 : 1);
  for (guint i = 0; rootfs != NULL && i < rootfs->len; i++)
    {
      const BerthMount *mount = rootfs->pdata[i];
      containerd__types__mount__init (&storage[i]);
      storage[i].type = mount->type;
      storage[i].source = mount->source;
      storage[i].target = mount->target ? mount->target : "";
      storage[i].options = mount->options;
      storage[i].n_options = mount->options ? g_strv_length (mount->options) : 0;
      out[i] = &storage[i];
    }
  return out;
}

static gboolean
create_in_shim (ShimV2Task *task, const BerthTaskCreateOptions *options, GCancellable *cancellable, GError **error)
{
  guint n_mounts = options->rootfs ? options->rootfs->len : 0;
  g_autofree Containerd__Types__Mount *storage = g_new0 (Containerd__Types__Mount, n_mounts + 1);
  g_autofree Containerd__Types__Mount **mounts = mounts_to_proto (options->rootfs, storage);
  Google__Protobuf__Any runtime_options = shimv2_json_any (options->options_type_url, options->options);
  const BerthStdio *io = &options->stdio;
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  req.id = task->id;
  req.bundle = task->dir;
  req.rootfs = mounts;
  req.n_rootfs = n_mounts;
  req.terminal = io->terminal;
  req.stdin = io->stdin_path ? io->stdin_path : "";
  req.stdout = io->stdout_path ? io->stdout_path : "";
  req.stderr = io->stderr_path ? io->stderr_path : "";
  if (options->options_type_url != NULL)
    req.options = &runtime_options;
  g_autoptr (ProtobufCMessage) reply =
    shimv2_call (task, "Create", &req.base, &containerd__task__v2__create_task_response__descriptor, START_TIMEOUT_MS,
                 cancellable, error);
  if (reply == NULL)
    return FALSE;
  task->pid = ((Containerd__Task__V2__CreateTaskResponse *) reply)->pid;
  return TRUE;
}

static BerthTask *
runtime_create (BerthRuntime *iface, const BerthTaskCreateOptions *options, GCancellable *cancellable, GError **error)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (iface);
  const char *name = options->runtime_name ? options->runtime_name : "";
  g_autofree char *binary = resolve_binary (self, name, error);
  if (binary == NULL)
    return NULL;
  g_autofree char *key = g_strdup_printf ("%s/%s", options->namespace_, options->id);
  g_autofree char *dir = g_build_filename (self->state, options->namespace_, options->id, NULL);
  g_mutex_lock (&self->lock);
  gboolean exists = g_hash_table_contains (self->tasks, key) || g_file_test (dir, G_FILE_TEST_EXISTS);
  if (!exists)
    g_hash_table_insert (self->tasks, g_strdup (key), NULL); /* reserve the id */
  g_mutex_unlock (&self->lock);
  if (exists)
    return berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "task %s: already exists", options->id), NULL;

  g_autoptr (ShimV2Task) task = shimv2_task_new (self, options->namespace_, options->id, dir, binary);
  gboolean started = FALSE;
  gboolean ok = write_bundle (task, options->spec_json, error) && shimv2_open_log (task, error);
  ok = ok && (started = start_shim (task, options, cancellable, error));
  ok = ok && create_in_shim (task, options, cancellable, error);
  if (!ok)
    {
      /* Nothing may be left: the shim (told to go, then `SHIM delete` for what it
       * leaves, as containerd), the bundle, the reservation. */
      if (started)
        {
          shimv2_shutdown_shim (task, TRUE);
          g_autoptr (GError) delete_error = NULL;
          if (!shimv2_run_shim (task, "delete", NULL, NULL, NULL, NULL, &delete_error))
            g_debug ("task %s: %s", task->id, delete_error->message);
        }
      shimv2_task_cleanup (task);
      return NULL;
    }
  g_mutex_lock (&self->lock);
  g_hash_table_replace (self->tasks, g_strdup (key), g_object_ref (task));
  g_mutex_unlock (&self->lock);
  shimv2_exit_watch_start (task, NULL);
  g_debug ("task %s created by %s at %s, pid %u", key, binary, task->address, task->pid);
  return BERTH_TASK (g_steal_pointer (&task));
}

static BerthTask *
runtime_get (BerthRuntime *iface, const char *ns, const char *id, GError **error)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (iface);
  return berth_task_table_lookup (self->tasks, &self->lock, ns, id, error);
}

static GPtrArray *
runtime_list (BerthRuntime *iface, const char *ns, GError **error)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (iface);
  return berth_task_table_list (self->tasks, &self->lock, ns);
}

/* One bundle a previous berthd left: reconnect to its shim, or clean up after it. */
static void
restore_task (gpointer data, gpointer user_data)
{
  ShimV2Task *task = data;
  ShimV2Runtime *self = task->runtime;
  g_autoptr (GError) error = NULL;
  if (!shimv2_open_log (task, &error))
    g_warning ("task %s: %s", task->id, error->message);
  Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
  req.id = task->id;
  g_clear_error (&error);
  g_autoptr (ProtobufCMessage) reply =
    task->address ? shimv2_call (task, "Connect", &req.base, &containerd__task__v2__connect_response__descriptor,
                                 STATE_TIMEOUT_MS, NULL, &error)
                  : NULL;
  if (reply != NULL)
    {
      task->pid = ((Containerd__Task__V2__ConnectResponse *) reply)->task_pid;
      g_info ("reconnected to task %s/%s (pid %u) through %s", task->namespace_, task->id, task->pid, task->binary);
    }
  /* Its exit, or for a dead shim its reaping, is announced once the main loop runs. */
  shimv2_exit_watch_start (task, NULL);
  g_mutex_lock (&self->lock);
  g_hash_table_replace (self->tasks, g_strdup_printf ("%s/%s", task->namespace_, task->id), task);
  g_mutex_unlock (&self->lock);
}

/* Every "<state>/<ns>/<id>/" with a shim-binary-path is a task; their shims are asked in
 * parallel, so one that hangs costs one timeout, not one each. */
static gboolean
runtime_restore (BerthRuntime *iface, GCancellable *cancellable, GError **error)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (iface);
  GThreadPool *pool = g_thread_pool_new (restore_task, NULL, 8, FALSE, NULL);
  g_autoptr (GDir) namespaces = g_dir_open (self->state, 0, NULL);
  const char *ns;
  while (namespaces != NULL && (ns = g_dir_read_name (namespaces)) != NULL)
    {
      g_autofree char *nsdir = g_build_filename (self->state, ns, NULL);
      g_autoptr (GDir) ids = g_dir_open (nsdir, 0, NULL);
      const char *id;
      while (ids != NULL && (id = g_dir_read_name (ids)) != NULL)
        {
          g_autofree char *dir = g_build_filename (nsdir, id, NULL);
          g_autofree char *binary = read_bundle_file (dir, "shim-binary-path");
          if (binary == NULL)
            continue;
          ShimV2Task *task = shimv2_task_new (self, ns, id, dir, binary);
          task->address = read_bundle_file (dir, "address");
          g_thread_pool_push (pool, task, NULL);
        }
    }
  g_thread_pool_free (pool, FALSE, TRUE);
  return TRUE;
}

/* ---------------- events from shims ---------------- */

static GBytes *
handle_events (const char *service, const char *method, GBytes *payload, gpointer user_data, GError **error)
{
  ShimV2Runtime *self = user_data;
  if (!g_str_equal (service, EVENTS_SERVICE) || !g_str_equal (method, "Forward"))
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "%s/%s: not served here", service, method), NULL;
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (payload, &len);
  Containerd__Services__Events__Ttrpc__V1__ForwardRequest *req =
    containerd__services__events__ttrpc__v1__forward_request__unpack (NULL, len, data);
  if (req == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "malformed ForwardRequest"), NULL;
  Containerd__Services__Events__Ttrpc__V1__Envelope *envelope = req->envelope;
  if (envelope == NULL || envelope->event == NULL || envelope->topic == NULL || envelope->namespace_ == NULL)
    {
      containerd__services__events__ttrpc__v1__forward_request__free_unpacked (req, NULL);
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "an event needs a namespace, a topic and a payload"), NULL;
    }
  g_autoptr (GBytes) event = g_bytes_new (envelope->event->value.data, envelope->event->value.len);
  gint64 timestamp = envelope->timestamp ? shimv2_timestamp_to_us (envelope->timestamp) : g_get_real_time ();
  g_debug ("event %s %s from a shim", envelope->namespace_, envelope->topic);
  g_signal_emit (self, signals[SIGNAL_EVENT], 0, envelope->namespace_, envelope->topic, envelope->event->type_url, event,
                 timestamp);
  containerd__services__events__ttrpc__v1__forward_request__free_unpacked (req, NULL);
  return g_bytes_new (NULL, 0); /* google.protobuf.Empty */
}

/* ---------------- the plugin ---------------- */

static void
shimv2_runtime_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  if (prop_id == PROP_RUNTIME_NAMES)
    g_value_set_boxed (value, SHIMV2_RUNTIME (object)->names);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
shimv2_runtime_finalize (GObject *object)
{
  ShimV2Runtime *self = SHIMV2_RUNTIME (object);
  shimv2_ttrpc_server_free (self->events);
  g_hash_table_unref (self->tasks);
  g_hash_table_unref (self->binaries);
  g_strfreev (self->names);
  g_mutex_clear (&self->lock);
  g_free (self->state);
  g_free (self->address);
  g_free (self->ttrpc_address);
  g_free (self->publish_binary);
  G_OBJECT_CLASS (shimv2_runtime_parent_class)->finalize (object);
}

static void
shimv2_runtime_class_init (ShimV2RuntimeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->finalize = shimv2_runtime_finalize;
  object_class->get_property = shimv2_runtime_get_property;
  /* The names config routes here: the daemon sends them here even when another runtime
   * plugin would run them by default (io.containerd.runc.v2 → berth-shim). */
  g_object_class_install_property (object_class, PROP_RUNTIME_NAMES,
                                   g_param_spec_boxed ("runtime-names", NULL, NULL, G_TYPE_STRV,
                                                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  /* "event" (namespace, topic, type URL, payload, timestamp µs): a shim published an
   * event; the daemon puts it on its event bus. Emitted on the main context. */
  signals[SIGNAL_EVENT] = g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                        G_TYPE_NONE, 5, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_BYTES,
                                        G_TYPE_INT64);
}

static void shimv2_runtime_class_finalize (ShimV2RuntimeClass *klass) {}

static void
unref_task (gpointer task)
{
  if (task != NULL)
    g_object_unref (task);
}

static void
shimv2_runtime_init (ShimV2Runtime *self)
{
  g_mutex_init (&self->lock);
  self->tasks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unref_task);
  self->binaries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

static void
shimv2_runtime_iface_init (BerthRuntimeInterface *iface)
{
  iface->create = runtime_create;
  iface->get = runtime_get;
  iface->list = runtime_list;
  iface->restore = runtime_restore;
}

static void
register_types (GTypeModule *module)
{
  shimv2_runtime_register_type (module);
  shimv2_task_register (module);
}

static const BerthConfigKey config_keys[] = {
  { "runtimes", BERTH_CONFIG_STRING, "",
    "shims by runtime name, ';'-separated NAME=ABSOLUTE-PATH (e.g. io.containerd.runc.v2=/usr/bin/containerd-shim-runc-v2); "
    "a name listed here is run by this plugin, even one berth-shim runs by default; other names are looked up in PATH "
    "by containerd's rule (io.containerd.NAME.VERSION → containerd-shim-NAME-VERSION)" },
  { NULL },
};

/* "NAME=PATH;…" → self->binaries */
static gboolean
parse_runtimes (ShimV2Runtime *self, const char *text, GError **error)
{
  g_auto (GStrv) entries = g_strsplit (text ? text : "", ";", -1);
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  for (char **entry = entries; *entry != NULL; entry++)
    {
      g_strstrip (*entry);
      if (**entry == '\0')
        continue;
      char *eq = strchr (*entry, '=');
      if (eq == NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "[plugin.runtime.shimv2] runtimes: \"%s\" is not NAME=PATH",
                            *entry);
      *eq = '\0';
      const char *name = g_strstrip (*entry), *path = g_strstrip (eq + 1);
      if (!g_path_is_absolute (path))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                            "[plugin.runtime.shimv2] runtimes: the shim of %s must be an absolute path, not \"%s\"", name,
                            path);
      g_hash_table_replace (self->binaries, g_strdup (name), g_strdup (path));
    }
  GHashTableIter iter;
  gpointer key;
  g_hash_table_iter_init (&iter, self->binaries);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  g_ptr_array_add (names, NULL);
  self->names = (GStrv) g_ptr_array_free (g_steal_pointer (&names), FALSE);
  return TRUE;
}

static GObject *
init (BerthPluginContext *context, GError **error)
{
  g_autoptr (ShimV2Runtime) self = g_object_new (SHIMV2_TYPE_RUNTIME, NULL);
  self->state = g_strdup (berth_plugin_context_get_state (context));
  self->address = g_strdup (berth_plugin_context_get_daemon_address (context));
  /* containerd puts it beside its gRPC socket ("ADDRESS.ttrpc"); the plugin's state dir
   * is as good for shims, and is this daemon's alone (a socket-activated berthd may have
   * the default address while another one serves it). */
  self->ttrpc_address = g_build_filename (self->state, "events.sock", NULL);
  /* Shims of containerd 1.6 publish through TTRPC_ADDRESS and only pass this on; older
   * ones would run `PUBLISH-BINARY --address A publish --topic T --namespace N`, which
   * berthd does not offer. */
  self->publish_binary = g_file_read_link ("/proc/self/exe", NULL);
  if (self->publish_binary == NULL)
    self->publish_binary = g_strdup ("berthd");
  g_autofree char *runtimes = berth_plugin_context_get_string (context, "runtimes");
  if (!parse_runtimes (self, runtimes, error))
    return NULL;
  self->events = shimv2_ttrpc_server_new (self->ttrpc_address, handle_events, self, error);
  if (self->events == NULL)
    return NULL;
  return G_OBJECT (g_steal_pointer (&self));
}

BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_RUNTIME, "shimv2", "any containerd shim v2 (containerd-shim-NAME-VERSION) over ttrpc",
                     NULL, config_keys, register_types, init)
