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
#include <berth/berth-version.h>

G_BEGIN_DECLS

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

/* Slots reserved at the end of plugin-allocated structs, so a minor release can give
 * them new fields: a plugin built earlier has zeros there, which means "absent". */
#define BERTH_PADDING 8

/**
 * BerthPluginDescriptor:
 * @major_version: BERTH_MAJOR_VERSION the plugin was compiled against
 * @minor_version: BERTH_MINOR_VERSION the plugin was compiled against
 * @type: BERTH_PLUGIN_TYPE_* or a type of one's own, "<reverse-dns>.<kind>.v<N>"
 * @name: short id, e.g. "overlayfs"; with @type it makes the id "<type>.<name>"
 * @description: one line for `ctr plugins ls`
 * @requires: NULL-terminated; each entry a plugin type ("io.containerd.content.v1") or
 *   a full id ("io.containerd.content.v1.content"), loaded and init'ed before this one
 * @config_keys: the keys of `[plugin.<type-short>.<name>]`, ended by a { NULL } entry;
 *   may be NULL
 * @register_types: registers the plugin's GTypes with the module (the
 *   *_register_type functions of G_DEFINE_DYNAMIC_TYPE); called once per process
 * @init: makes the plugin's one instance; an error is shown by `ctr plugins ls` and
 *   the daemon goes on serving the other plugins
 * @version: the plugin's own version ("1.4.2"); NULL: unknown
 * @license: an SPDX licence expression ("LGPL-2.1-or-later"); NULL: unknown
 * @origin: where the plugin comes from, a URL; NULL: unknown
 *
 * What a plugin is, exported as "berth_plugin_descriptor" by BERTH_PLUGIN_DEFINE_FULL().
 * berthd reads @major_version and @minor_version before anything else and refuses the
 * plugin, naming both versions, when the major differs or the minor is newer than its
 * own. The struct is plugin-allocated, hence frozen: later fields take a reserved slot.
 *
 * The versioned layout replaced 0.1's single abi_version integer.
 *
 * Since: 0.2
 */
typedef struct {
  guint32 major_version;
  guint32 minor_version;
  const char *type;
  const char *name;
  const char *description;
  const char *const *requires;
  const BerthConfigKey *config_keys;
  void (*register_types) (GTypeModule *module);
  GObject *(*init) (BerthPluginContext *context, GError **error);
  const char *version;
  const char *license;
  const char *origin;
  /*< private >*/
  gpointer _berth_reserved[BERTH_PADDING];
} BerthPluginDescriptor;

#define BERTH_PLUGIN_DESCRIPTOR_SYMBOL "berth_plugin_descriptor"

/**
 * BERTH_PLUGIN_DEFINE_FULL:
 * @type_: the plugin type
 * @name_: the plugin name
 * @description_: one line
 * @version_: the plugin's version
 * @license_: its SPDX licence
 * @origin_: its URL
 * @requires_: NULL-terminated array or NULL
 * @config_keys_: BerthConfigKey array or NULL
 * @register_types_: registers the plugin's types
 * @init_: makes the instance
 *
 * Defines the plugin's descriptor; use once per plugin, at file scope:
 * |[<!-- language="C" -->
 * BERTH_PLUGIN_DEFINE_FULL (BERTH_PLUGIN_TYPE_SNAPSHOTTER, "copyup", "layers as reflinked trees",
 *                           "1.0", "MIT", "https://example.org/copyup",
 *                           NULL, copyup_config_keys, copyup_register_types, copyup_init)
 * ]|
 *
 * Since: 0.2
 */
#define BERTH_PLUGIN_DEFINE_FULL(type_, name_, description_, version_, license_, origin_, requires_, config_keys_, \
                                 register_types_, init_)                                                         \
  G_MODULE_EXPORT const BerthPluginDescriptor berth_plugin_descriptor = {                                     \
    .major_version = BERTH_MAJOR_VERSION,                                                                     \
    .minor_version = BERTH_MINOR_VERSION,                                                                     \
    .type = (type_),                                                                                          \
    .name = (name_),                                                                                          \
    .description = (description_),                                                                           \
    .requires = (requires_),                                                                                  \
    .config_keys = (config_keys_),                                                                            \
    .register_types = (register_types_),                                                                      \
    .init = (init_),                                                                                          \
    .version = (version_),                                                                                    \
    .license = (license_),                                                                                    \
    .origin = (origin_),                                                                                      \
  };

/**
 * BERTH_PLUGIN_DEFINE:
 * @type_: the plugin type
 * @name_: the plugin name
 * @description_: one line
 * @requires_: NULL-terminated array or NULL
 * @config_keys_: BerthConfigKey array or NULL
 * @register_types_: registers the plugin's types
 * @init_: makes the instance
 *
 * BERTH_PLUGIN_DEFINE_FULL() without version, licence and origin (berth's own plugins,
 * which share berth's).
 */
#define BERTH_PLUGIN_DEFINE(type_, name_, description_, requires_, config_keys_, register_types_, init_) \
  BERTH_PLUGIN_DEFINE_FULL (type_, name_, description_, NULL, NULL, NULL, requires_, config_keys_,          \
                            register_types_, init_)

/* BerthPluginContext: what init gets from the daemon. Valid during init only; copy what
 * you keep. */
/* "<type>.<name>", e.g. "io.containerd.snapshotter.v1.overlayfs". */
const char *berth_plugin_context_get_id (BerthPluginContext *context);
/* A private, persistent directory: "<root>/<id>" (created). */
const char *berth_plugin_context_get_root (BerthPluginContext *context);
/* A private directory on tmpfs that dies with a reboot: "<state>/<id>" (created). */
const char *berth_plugin_context_get_state (BerthPluginContext *context);
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
