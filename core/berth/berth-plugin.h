/* berth-plugin.h — what a plugin is.
 *
 * A plugin is one shared object in the plugin directory exporting exactly one
 * descriptor, made with BERTH_PLUGIN_DEFINE. The registry reads the descriptor, checks
 * the ABI version before calling anything, loads the module through a GTypeModule so
 * the plugin's types are registered with G_DEFINE_DYNAMIC_TYPE, and then calls init,
 * which returns the one object that implements the plugin's interface
 * (BerthContentStore, BerthSnapshotter, BerthDiffer or BerthRuntime).
 *
 * Methods of that object may block: the core always calls them from worker threads,
 * never from its main loop, and may call them concurrently.
 */
#pragma once

#include <gio/gio.h>
#include <gmodule.h>

G_BEGIN_DECLS

/* Bump on any change to BerthPluginDescriptor or an interface's vtable. */
#define BERTH_PLUGIN_ABI_VERSION 1

/* Plugin types, named as containerd names them so `ctr plugins ls` reads naturally. */
#define BERTH_PLUGIN_TYPE_CONTENT     "io.containerd.content.v1"
#define BERTH_PLUGIN_TYPE_SNAPSHOTTER "io.containerd.snapshotter.v1"
#define BERTH_PLUGIN_TYPE_DIFFER      "io.containerd.differ.v1"
#define BERTH_PLUGIN_TYPE_RUNTIME     "io.containerd.runtime.v2"

typedef enum {
  BERTH_CONFIG_STRING,
  BERTH_CONFIG_BOOLEAN,
  BERTH_CONFIG_INT,
  BERTH_CONFIG_SIZE, /* integer with optional K/M/G suffix */
} BerthConfigType;

/* One key of a plugin's config group `[plugin.<type-short>.<name>]`, e.g.
 * `[plugin.snapshotter.overlayfs]`. The registry rejects keys a plugin does not
 * declare and values of the wrong type, naming file and line. */
typedef struct {
  const char *name;
  BerthConfigType type;
  const char *default_value; /* as written in the config file; NULL: unset */
  const char *description;
} BerthConfigKey;

typedef struct _BerthPluginContext BerthPluginContext;

typedef struct {
  guint32 abi_version;            /* BERTH_PLUGIN_ABI_VERSION */
  const char *type;               /* BERTH_PLUGIN_TYPE_* */
  const char *name;               /* short id, e.g. "overlayfs" */
  const char *description;
  /* NULL-terminated; each entry a plugin type ("io.containerd.content.v1") or a full
   * id ("io.containerd.content.v1.content"). Loaded, and init'ed, before this one. */
  const char *const *requires;
  /* NULL-terminated by a { NULL } entry; may be NULL. */
  const BerthConfigKey *config_keys;
  /* Registers the plugin's GTypes with the module (G_DEFINE_DYNAMIC_TYPE's
   * *_register_type functions). Called once per process. */
  void (*register_types) (GTypeModule *module);
  /* Makes the plugin's instance. Errors are reported by introspection; the daemon
   * goes on serving the other plugins. */
  GObject *(*init) (BerthPluginContext *context, GError **error);
} BerthPluginDescriptor;

#define BERTH_PLUGIN_DESCRIPTOR_SYMBOL "berth_plugin_descriptor"

/* Use once per plugin, at file scope:
 *   BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_SNAPSHOTTER, "native", "full copies",
 *                        NULL, native_config_keys, native_register_types, native_init)
 */
#define BERTH_PLUGIN_DEFINE(type_, name_, description_, requires_, config_keys_, register_types_, init_) \
  G_MODULE_EXPORT const BerthPluginDescriptor berth_plugin_descriptor = {                   \
    BERTH_PLUGIN_ABI_VERSION, (type_), (name_), (description_), (requires_), (config_keys_), \
    (register_types_), (init_)                                                              \
  };

/* BerthPluginContext: what init gets from the daemon. Valid during init only; copy what
 * you keep. */
/* "<type>.<name>", e.g. "io.containerd.snapshotter.v1.overlayfs". */
const char *berth_plugin_context_get_id (BerthPluginContext *context);
/* A private, persistent directory: "<root>/<id>" (created). */
const char *berth_plugin_context_get_root (BerthPluginContext *context);
/* A private directory on tmpfs that dies with a reboot: "<state>/<id>" (created). */
const char *berth_plugin_context_get_state (BerthPluginContext *context);
/* The daemon's root and state. */
const char *berth_plugin_context_get_daemon_root (BerthPluginContext *context);
const char *berth_plugin_context_get_daemon_state (BerthPluginContext *context);
/* The daemon's gRPC socket path (containerd's -address for shims). */
const char *berth_plugin_context_get_daemon_address (BerthPluginContext *context);
/* Config values of the plugin's own group, already validated against config_keys;
 * unset keys give the declared default. */
char *berth_plugin_context_get_string (BerthPluginContext *context, const char *key);
gboolean berth_plugin_context_get_boolean (BerthPluginContext *context, const char *key);
gint64 berth_plugin_context_get_int (BerthPluginContext *context, const char *key);
/* The instance of a required plugin: @type_or_id as in requires. (transfer none) */
GObject *berth_plugin_context_get_instance (BerthPluginContext *context, const char *type_or_id);
/* The path of a helper program installed with berth ("berth-shim", …). */
char *berth_plugin_context_find_program (BerthPluginContext *context, const char *name);

G_END_DECLS
