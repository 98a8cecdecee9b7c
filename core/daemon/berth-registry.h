/* berth-registry.h — the plugin registry (core-internal).
 *
 * Lifecycle: scan the plugin dirs → probe each new or changed .so in the out-of-process
 * scanner (cached by path + size + mtime) → order by requires (cycles and missing
 * dependencies reported) → load through a GTypeModule → init with the plugin's own
 * config group. Every problem is data on the plugin's record; the daemon serves the
 * plugins that work. Snapshotters and differs that nothing needs at start are loaded on
 * their first lookup (from any thread); until then their record says LOADED ("ok")
 * with no instance.
 */
#pragma once

#include <berth/berth.h>
#include "berth-config.h"

G_BEGIN_DECLS

typedef enum {
  BERTH_PLUGIN_STATUS_LOADED,  /* ok: loaded, or loads on first use (instance still NULL) */
  BERTH_PLUGIN_STATUS_SKIPPED, /* disabled by config */
  BERTH_PLUGIN_STATUS_FAILED,
} BerthPluginStatus;

typedef struct {
  char *id;          /* "<type>.<name>" */
  char *type;
  char *name;
  char *description;
  char *path;
  GStrv requires;
  BerthPluginStatus status;
  GError *error;     /* why it failed or was skipped */
  GObject *instance; /* when loaded */
} BerthPluginRecord;

const char *berth_plugin_status_to_string (BerthPluginStatus status);

#define BERTH_TYPE_REGISTRY (berth_registry_get_type ())
G_DECLARE_FINAL_TYPE (BerthRegistry, berth_registry, BERTH, REGISTRY, GObject)

BerthRegistry *berth_registry_new (BerthConfig *config);
/* Path of the out-of-process scanner ("" disables probing, for tests). */
void berth_registry_set_scanner (BerthRegistry *registry, const char *path);
/* Scans, probes, orders, loads and inits. Fails only on errors of the daemon itself
 * (unreadable config); per-plugin problems are on the records. */
gboolean berth_registry_load (BerthRegistry *registry, GError **error);
/* Records in load order (transfer none). */
GPtrArray *berth_registry_get_plugins (BerthRegistry *registry);
const BerthPluginRecord *berth_registry_lookup (BerthRegistry *registry, const char *type_or_id);
/* The instance of a loaded plugin (transfer none), NULL when none. */
GObject *berth_registry_get_instance (BerthRegistry *registry, const char *type_or_id);
/* Finalizes every plugin instance, in reverse load order. */
void berth_registry_shutdown (BerthRegistry *registry);

G_END_DECLS
