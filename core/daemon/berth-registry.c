/* berth-registry.c — scan, probe (out of process, cached), order, load, init. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <berth/berth.h>
#include "lib/berth-plugin-context-private.h"
#include "berth-plugin-module.h"
#include "berth-registry.h"

typedef enum { VISIT_NEW, VISIT_ACTIVE, VISIT_DONE } VisitState;

typedef struct {
  BerthPluginRecord pub;
  VisitState visit;
  gboolean pending;      /* probed fine, not yet decided */
  gboolean lazy;         /* left for its first use (see wanted_at_start) */
  BerthPluginModule *module; /* process-wide, see modules below */
} Record;

struct _BerthRegistry {
  GObject parent_instance;
  BerthConfig *config; /* the daemon's; outlives the registry */
  char *scanner;       /* NULL: the installed one; "": probe in process */
  GPtrArray *records;  /* Record*, decision order after load, then the ones left for first use */
  GPtrArray *loaded;   /* Record*, in the order they were loaded (shutdown runs it backwards) */
  GRecMutex lock;      /* loading on first use happens on any thread; init may look up others */
  gboolean shut_down;  /* no loading on first use any more */
  GHashTable *by_id;   /* id → Record* (the one that counts for that id) */
  GKeyFile *cache;
  char *cache_path;
  gboolean cache_dirty;
};

G_DEFINE_FINAL_TYPE (BerthRegistry, berth_registry, G_TYPE_OBJECT)

enum { SIGNAL_PLUGIN_DECIDED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* A dynamic type can be registered once per process, so modules are never freed and
 * are shared by every registry (tests make several). */
static GHashTable *modules;
G_LOCK_DEFINE_STATIC (modules);

static BerthPluginModule *
module_for_path (const char *link_path)
{
  /* The same file reached through another path or link is the same module. */
  g_autofree char *path = realpath (link_path, NULL);
  if (path == NULL)
    path = g_strdup (link_path);
  G_LOCK (modules);
  if (modules == NULL)
    modules = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  BerthPluginModule *module = g_hash_table_lookup (modules, path);
  if (module == NULL)
    {
      module = berth_plugin_module_new (path);
      g_hash_table_insert (modules, g_strdup (path), module);
    }
  G_UNLOCK (modules);
  return module;
}

const char *
berth_plugin_status_to_string (BerthPluginStatus status)
{
  switch (status)
    {
    case BERTH_PLUGIN_STATUS_LOADED: return "ok";
    case BERTH_PLUGIN_STATUS_SKIPPED: return "skip";
    case BERTH_PLUGIN_STATUS_FAILED: return "error";
    }
  return "unknown";
}

static void
record_free (Record *record)
{
  g_free (record->pub.id);
  g_free (record->pub.type);
  g_free (record->pub.name);
  g_free (record->pub.description);
  g_free (record->pub.path);
  g_strfreev (record->pub.requires);
  g_clear_error (&record->pub.error);
  g_clear_object (&record->pub.instance);
  g_free (record);
}

static void
berth_registry_finalize (GObject *object)
{
  BerthRegistry *self = BERTH_REGISTRY (object);
  berth_registry_shutdown (self);
  g_ptr_array_unref (self->loaded);
  g_ptr_array_unref (self->records);
  g_rec_mutex_clear (&self->lock);
  g_hash_table_unref (self->by_id);
  g_clear_pointer (&self->cache, g_key_file_unref);
  g_free (self->cache_path);
  g_free (self->scanner);
  G_OBJECT_CLASS (berth_registry_parent_class)->finalize (object);
}

static void
berth_registry_class_init (BerthRegistryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = berth_registry_finalize;
  /* Emitted once per plugin when its status is decided: (BerthPluginRecord *). */
  signals[SIGNAL_PLUGIN_DECIDED] = g_signal_new ("plugin-decided", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                                 NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
}

static void
berth_registry_init (BerthRegistry *self)
{
  self->records = g_ptr_array_new_with_free_func ((GDestroyNotify) record_free);
  self->by_id = g_hash_table_new (g_str_hash, g_str_equal);
  self->loaded = g_ptr_array_new ();
  g_rec_mutex_init (&self->lock);
}

BerthRegistry *
berth_registry_new (BerthConfig *config)
{
  BerthRegistry *self = g_object_new (BERTH_TYPE_REGISTRY, NULL);
  self->config = config;
  return self;
}

void
berth_registry_set_scanner (BerthRegistry *self, const char *path)
{
  g_free (self->scanner);
  self->scanner = g_strdup (path);
}

static void
record_fail (BerthRegistry *self, Record *record, GError *error)
{
  record->pub.status = BERTH_PLUGIN_STATUS_FAILED;
  g_clear_error (&record->pub.error);
  record->pub.error = error;
  record->pending = FALSE;
  g_warning ("plugin %s: %s", record->pub.id, error->message);
}

/* ---------------- scanning and probing ---------------- */

static gboolean
probe_in_process (const char *path, GKeyFile *verdict, GError **error)
{
  BerthPluginModule *module = module_for_path (path);
  if (!berth_plugin_module_open (module, error))
    return FALSE;
  const BerthPluginDescriptor *desc = berth_plugin_module_get_descriptor (module);
  g_key_file_set_string (verdict, "plugin", "type", desc->type);
  g_key_file_set_string (verdict, "plugin", "name", desc->name);
  g_key_file_set_string (verdict, "plugin", "description", desc->description ? desc->description : "");
  guint n = desc->requires ? g_strv_length ((char **) desc->requires) : 0;
  g_key_file_set_string_list (verdict, "plugin", "requires", desc->requires, n);
  return TRUE;
}

static gboolean
probe_with_scanner (const char *scanner, const char *path, GKeyFile *verdict, GError **error)
{
  const char *argv[] = { scanner, path, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int wait_status = 0;
  g_autoptr (GError) spawn_error = NULL;
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &wait_status, &spawn_error))
    return berth_throw (error, BERTH_ERROR_INTERNAL, "%s: cannot run the plugin scanner %s: %s", path, scanner,
                        spawn_error->message);
  if (WIFSIGNALED (wait_status))
    return berth_throw (error, BERTH_ERROR_INTERNAL, "%s: crashed while loading (signal %d, %s); not loaded", path,
                        WTERMSIG (wait_status), g_strsignal (WTERMSIG (wait_status)));
  if (!WIFEXITED (wait_status) || WEXITSTATUS (wait_status) != 0)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "%s", g_strstrip (err));
  g_autoptr (GKeyFile) parsed = g_key_file_new ();
  if (!g_key_file_load_from_data (parsed, out, -1, G_KEY_FILE_NONE, NULL))
    return berth_throw (error, BERTH_ERROR_INTERNAL, "%s: the plugin scanner printed nonsense", path);
  for (const char *key = "type"; key != NULL;
       key = g_str_equal (key, "type") ? "name" : g_str_equal (key, "name") ? "description" : NULL)
    {
      g_autofree char *value = g_key_file_get_string (parsed, "plugin", key, NULL);
      g_key_file_set_string (verdict, "plugin", key, value ? value : "");
    }
  gsize n = 0;
  g_auto (GStrv) requires = g_key_file_get_string_list (parsed, "plugin", "requires", &n, NULL);
  g_key_file_set_string_list (verdict, "plugin", "requires", (const char *const *) requires, n);
  return TRUE;
}

static void
copy_group (GKeyFile *from, const char *from_group, GKeyFile *to, const char *to_group)
{
  g_auto (GStrv) keys = g_key_file_get_keys (from, from_group, NULL, NULL);
  for (guint i = 0; keys && keys[i]; i++)
    {
      g_autofree char *value = g_key_file_get_value (from, from_group, keys[i], NULL);
      g_key_file_set_value (to, to_group, keys[i], value);
    }
}

/* The cache keys a verdict by path + size + mtime, so a rebuilt .so is probed again. */
static char *
cache_stamp (const struct stat *st)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT ".%09ld", (gint64) st->st_size,
                          (gint64) st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

static void
probe (BerthRegistry *self, const char *path, const struct stat *st, Record *record)
{
  g_autofree char *stamp = cache_stamp (st);
  g_autofree char *cached_stamp = g_key_file_get_string (self->cache, path, "stamp", NULL);
  g_autoptr (GKeyFile) verdict = g_key_file_new ();
  g_autoptr (GError) error = NULL;

  if (cached_stamp != NULL && g_str_equal (cached_stamp, stamp))
    {
      g_autofree char *cached_error = g_key_file_get_string (self->cache, path, "error", NULL);
      if (cached_error != NULL)
        g_set_error_literal (&error, BERTH_ERROR, g_key_file_get_integer (self->cache, path, "code", NULL),
                             cached_error);
      else
        {
          copy_group (self->cache, path, verdict, "plugin");
        }
    }
  else
    {
      gboolean ok = (self->scanner != NULL && *self->scanner == '\0')
                        ? probe_in_process (path, verdict, &error)
                        : probe_with_scanner (self->scanner, path, verdict, &error);
      g_key_file_remove_group (self->cache, path, NULL);
      g_key_file_set_string (self->cache, path, "stamp", stamp);
      if (!ok)
        {
          g_key_file_set_string (self->cache, path, "error", error->message);
          g_key_file_set_integer (self->cache, path, "code", error->code);
        }
      else
        {
          copy_group (verdict, "plugin", self->cache, path);
        }
      self->cache_dirty = TRUE;
    }

  if (error != NULL)
    {
      g_autofree char *base = g_path_get_basename (path);
      record->pub.type = g_strdup ("unknown");
      record->pub.name = g_strdup (base);
      record->pub.id = g_strdup (base);
      record->pub.requires = g_new0 (char *, 1);
      record_fail (self, record, g_steal_pointer (&error));
      return;
    }
  record->pub.type = g_key_file_get_string (verdict, "plugin", "type", NULL);
  record->pub.name = g_key_file_get_string (verdict, "plugin", "name", NULL);
  record->pub.description = g_key_file_get_string (verdict, "plugin", "description", NULL);
  record->pub.requires = g_key_file_get_string_list (verdict, "plugin", "requires", NULL, NULL);
  if (record->pub.requires == NULL)
    record->pub.requires = g_new0 (char *, 1);
  record->pub.id = g_strdup_printf ("%s.%s", record->pub.type, record->pub.name);
  record->pending = TRUE;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
scan_dir (BerthRegistry *self, const char *dir)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &error);
  if (d == NULL)
    {
      g_message ("plugin directory %s: %s", dir, error->message);
      return;
    }
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".so"))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      struct stat st;
      if (stat (path, &st) < 0 || !S_ISREG (st.st_mode))
        continue;
      Record *record = g_new0 (Record, 1);
      record->pub.path = g_strdup (path);
      probe (self, path, &st, record);
      g_ptr_array_add (self->records, record);
      if (!record->pending)
        continue;
      Record *other = g_hash_table_lookup (self->by_id, record->pub.id);
      if (other != NULL)
        {
          record_fail (self, record,
                       g_error_new (BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS,
                                    "%s: duplicate plugin id %s, already provided by %s; not loaded", path,
                                    record->pub.id, other->pub.path));
          continue;
        }
      g_hash_table_insert (self->by_id, record->pub.id, record);
    }
}

/* ---------------- config of plugins ---------------- */

/* "io.containerd.snapshotter.v1" → "snapshotter"; other types are used whole. */
static char *
config_group_for (const char *type, const char *name)
{
  g_autofree char *kind = NULL;
  if (g_str_has_prefix (type, "io.containerd."))
    {
      kind = g_strdup (type + strlen ("io.containerd."));
      char *dot = strrchr (kind, '.');
      if (dot != NULL && dot[1] == 'v' && g_ascii_isdigit (dot[2]))
        *dot = '\0';
    }
  else
    kind = g_strdup (type);
  return g_strdup_printf ("plugin.%s.%s", kind, name);
}

static gboolean
validate_plugin_config (BerthRegistry *self, const char *group, const BerthConfigKey *keys, GError **error)
{
  GKeyFile *kf = self->config->keyfile;
  if (kf == NULL || !g_key_file_has_group (kf, group))
    return TRUE;
  g_auto (GStrv) present = g_key_file_get_keys (kf, group, NULL, NULL);
  for (guint i = 0; present && present[i]; i++)
    {
      const BerthConfigKey *declared = NULL;
      for (const BerthConfigKey *k = keys; k != NULL && k->name != NULL; k++)
        if (g_str_equal (k->name, present[i]))
          declared = k;
      g_autofree char *where = berth_config_location (self->config, group, present[i]);
      if (declared == NULL)
        {
          g_autoptr (GString) known = g_string_new (NULL);
          for (const BerthConfigKey *k = keys; k != NULL && k->name != NULL; k++)
            g_string_append_printf (known, "%s%s", known->len ? ", " : "", k->name);
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%sunknown key \"%s\" in [%s] (known: %s)", where,
                              present[i], group, known->len ? known->str : "none");
        }
      g_autofree char *value = g_key_file_get_string (kf, group, present[i], NULL);
      gint64 parsed;
      gboolean good = TRUE;
      const char *want = NULL;
      switch (declared->type)
        {
        case BERTH_CONFIG_STRING:
          break;
        case BERTH_CONFIG_BOOLEAN:
          good = value && (g_str_equal (value, "true") || g_str_equal (value, "false"));
          want = "true or false";
          break;
        case BERTH_CONFIG_INT:
          good = value && *value && strspn (value, "-0123456789") == strlen (value);
          want = "an integer";
          break;
        case BERTH_CONFIG_SIZE:
          good = _berth_parse_size (value, &parsed);
          want = "a size (a number, optionally with K, M or G)";
          break;
        }
      if (!good)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s%s = \"%s\" in [%s] is not %s", where,
                            present[i], value ? value : "", group, want);
    }
  return TRUE;
}

/* ---------------- ordering and loading ---------------- */

static gboolean
record_matches (Record *record, const char *type_or_id)
{
  return g_str_equal (record->pub.type, type_or_id) || g_str_equal (record->pub.id, type_or_id);
}

static GObject *
lookup_instance (gpointer registry, const char *type_or_id)
{
  return berth_registry_get_instance (registry, type_or_id);
}

static GType
interface_for_type (const char *type)
{
  if (g_str_equal (type, BERTH_PLUGIN_TYPE_CONTENT))
    return BERTH_TYPE_CONTENT_STORE;
  if (g_str_equal (type, BERTH_PLUGIN_TYPE_SNAPSHOTTER))
    return BERTH_TYPE_SNAPSHOTTER;
  if (g_str_equal (type, BERTH_PLUGIN_TYPE_DIFFER))
    return BERTH_TYPE_DIFFER;
  if (g_str_equal (type, BERTH_PLUGIN_TYPE_RUNTIME))
    return BERTH_TYPE_RUNTIME;
  return G_TYPE_INVALID;
}

static gboolean
make_private_dir (const char *parent, const char *id, char **out, GError **error)
{
  *out = g_build_filename (parent, id, NULL);
  if (g_mkdir_with_parents (*out, 0700) < 0)
    return berth_throw_errno (error, "creating plugin directory %s", *out);
  return TRUE;
}

/* Loads and inits one plugin whose dependencies are loaded. Config errors are the
 * daemon's (returned); everything else is the plugin's (on its record). */
static gboolean
load_one (BerthRegistry *self, Record *record, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  record->module = module_for_path (record->pub.path);
  if (!berth_plugin_module_open (record->module, &local_error))
    {
      record_fail (self, record, g_steal_pointer (&local_error));
      return TRUE;
    }
  const BerthPluginDescriptor *desc = berth_plugin_module_get_descriptor (record->module);
  if (!g_str_equal (desc->type, record->pub.type) || !g_str_equal (desc->name, record->pub.name))
    {
      record_fail (self, record,
                   g_error_new (BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION,
                                "%s changed since it was probed; restart berthd", record->pub.path));
      return TRUE;
    }
  g_autofree char *group = config_group_for (desc->type, desc->name);
  if (!validate_plugin_config (self, group, desc->config_keys, error))
    return FALSE;

  g_autofree char *root = NULL, *state = NULL;
  if (!make_private_dir (self->config->root, record->pub.id, &root, &local_error)
      || !make_private_dir (self->config->state, record->pub.id, &state, &local_error))
    {
      record_fail (self, record, g_steal_pointer (&local_error));
      return TRUE;
    }
  const char *program_dirs[] = { self->config->libexec_dir, NULL };
  BerthPluginContext context = {
    .id = record->pub.id,
    .root = root,
    .state = state,
    .daemon_address = self->config->address,
    .keyfile = self->config->keyfile,
    .group = group,
    .config_keys = desc->config_keys,
    .lookup_instance = lookup_instance,
    .registry = self,
    .program_dirs = program_dirs,
  };
  g_debug ("initialising plugin %s from %s", record->pub.id, record->pub.path);
  GObject *instance = desc->init (&context, &local_error);
  if (instance == NULL)
    {
      if (local_error == NULL)
        local_error = g_error_new (BERTH_ERROR, BERTH_ERROR_INTERNAL, "init failed without saying why");
      g_prefix_error (&local_error, "init: ");
      record_fail (self, record, g_steal_pointer (&local_error));
      return TRUE;
    }
  GType iface = interface_for_type (desc->type);
  if (iface != G_TYPE_INVALID && !g_type_is_a (G_OBJECT_TYPE (instance), iface))
    {
      record_fail (self, record,
                   g_error_new (BERTH_ERROR, BERTH_ERROR_INTERNAL, "init returned a %s, which does not implement %s",
                                G_OBJECT_TYPE_NAME (instance), g_type_name (iface)));
      g_object_unref (instance);
      return TRUE;
    }
  record->pub.instance = instance;
  record->pub.status = BERTH_PLUGIN_STATUS_LOADED;
  record->pending = FALSE;
  g_ptr_array_add (self->loaded, record);
  g_info ("plugin %s loaded", record->pub.id);
  return TRUE;
}

static gboolean visit (BerthRegistry *self, Record *record, GPtrArray *stack, GPtrArray *order, GError **error);

/* Fails every record on the stack from @from on with the cycle it forms. */
static void
fail_cycle (BerthRegistry *self, GPtrArray *stack, Record *from)
{
  guint start = 0;
  g_ptr_array_find (stack, from, &start);
  g_autoptr (GString) path = g_string_new (NULL);
  for (guint i = start; i < stack->len; i++)
    g_string_append_printf (path, "%s -> ", ((Record *) stack->pdata[i])->pub.id);
  g_string_append (path, from->pub.id);
  for (guint i = start; i < stack->len; i++)
    {
      Record *r = stack->pdata[i];
      if (r->pending)
        record_fail (self, r, g_error_new (BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION, "dependency cycle: %s",
                                           path->str));
    }
}

static gboolean
visit_requirement (BerthRegistry *self, Record *record, const char *req, GPtrArray *stack, GPtrArray *order,
                   GError **error)
{
  gboolean any = FALSE, any_loaded = FALSE;
  g_autofree char *why = NULL;
  for (guint i = 0; i < self->records->len; i++)
    {
      Record *dep = self->records->pdata[i];
      if (dep == record || !record_matches (dep, req) || g_hash_table_lookup (self->by_id, dep->pub.id) != dep)
        continue;
      if (dep->pub.status == BERTH_PLUGIN_STATUS_SKIPPED)
        continue;
      any = TRUE;
      if (dep->visit == VISIT_ACTIVE)
        {
          fail_cycle (self, stack, dep);
          return TRUE;
        }
      if (!visit (self, dep, stack, order, error))
        return FALSE;
      if (dep->pub.status == BERTH_PLUGIN_STATUS_LOADED)
        any_loaded = TRUE;
      else if (why == NULL && dep->pub.error != NULL)
        why = g_strdup_printf ("%s failed: %s", dep->pub.id, dep->pub.error->message);
    }
  if (!record->pending)
    return TRUE; /* failed meanwhile (a cycle through it) */
  if (!any)
    record_fail (self, record,
                 g_error_new (BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION,
                              "requires %s, which no loadable plugin provides", req));
  else if (!any_loaded)
    record_fail (self, record,
                 g_error_new (BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION, "requires %s, but %s", req,
                              why ? why : "it is not loaded"));
  return TRUE;
}

static gboolean
visit (BerthRegistry *self, Record *record, GPtrArray *stack, GPtrArray *order, GError **error)
{
  if (record->visit != VISIT_NEW)
    return TRUE;
  record->visit = VISIT_ACTIVE;
  g_ptr_array_add (stack, record);
  for (guint i = 0; record->pending && record->pub.requires[i] != NULL; i++)
    if (!visit_requirement (self, record, record->pub.requires[i], stack, order, error))
      return FALSE;
  if (record->pending && !load_one (self, record, error))
    return FALSE;
  g_ptr_array_remove_index (stack, stack->len - 1);
  record->visit = VISIT_DONE;
  g_ptr_array_add (order, record);
  g_signal_emit (self, signals[SIGNAL_PLUGIN_DECIDED], 0, &record->pub);
  return TRUE;
}

static gboolean
is_disabled (BerthRegistry *self, Record *record)
{
  for (char **d = self->config->disabled_plugins; d && *d; d++)
    if (g_str_equal (*d, record->pub.id) || g_str_equal (*d, record->pub.name))
      return TRUE;
  return FALSE;
}

static void
save_cache (BerthRegistry *self)
{
  g_autoptr (GError) error = NULL;
  if (!self->cache_dirty)
    return;
  if (!g_key_file_save_to_file (self->cache, self->cache_path, &error))
    g_warning ("plugin probe cache: %s", error->message);
  self->cache_dirty = FALSE;
}

static gboolean
dir_holds_something (const char *parent, const char *id)
{
  g_autofree char *path = g_build_filename (parent, id, NULL);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  return dir != NULL && g_dir_read_name (dir) != NULL;
}

/* Snapshotters, differs and runtimes are loaded when something first names them: an
 * idle daemon then maps none of what they link (libostree, libarchive, …). One is loaded
 * at start when its config group is present (so a bad key fails startup, as before) or
 * when its own directories hold something (snapshots to recover, count and collect;
 * tasks to reconnect to). */
static gboolean
wanted_at_start (BerthRegistry *self, Record *record)
{
  if (!g_str_equal (record->pub.type, BERTH_PLUGIN_TYPE_SNAPSHOTTER)
      && !g_str_equal (record->pub.type, BERTH_PLUGIN_TYPE_DIFFER)
      && !g_str_equal (record->pub.type, BERTH_PLUGIN_TYPE_RUNTIME))
    return TRUE;
  if (g_getenv ("BERTH_LOAD_ALL_PLUGINS") != NULL)
    return TRUE;
  g_autofree char *group = config_group_for (record->pub.type, record->pub.name);
  if (self->config->keyfile != NULL && g_key_file_has_group (self->config->keyfile, group))
    return TRUE;
  return dir_holds_something (self->config->root, record->pub.id)
         || dir_holds_something (self->config->state, record->pub.id);
}

gboolean
berth_registry_load (BerthRegistry *self, GError **error)
{
  g_return_val_if_fail (self->records->len == 0, FALSE);
  if (g_mkdir_with_parents (self->config->root, 0700) < 0)
    return berth_throw_errno (error, "creating root %s", self->config->root);
  if (self->scanner == NULL)
    self->scanner = g_build_filename (self->config->libexec_dir, "berth-plugin-scanner", NULL);
  if (*self->scanner != '\0' && !g_file_test (self->scanner, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_warning ("plugin scanner %s not found; probing plugins inside berthd", self->scanner);
      g_free (self->scanner);
      self->scanner = g_strdup ("");
    }
  self->cache_path = g_build_filename (self->config->root, "plugin-cache.ini", NULL);
  self->cache = g_key_file_new ();
  g_key_file_load_from_file (self->cache, self->cache_path, G_KEY_FILE_NONE, NULL);

  for (char **dir = self->config->plugin_dirs; dir && *dir; dir++)
    scan_dir (self, *dir);
  save_cache (self);

  for (guint i = 0; i < self->records->len; i++)
    {
      Record *record = self->records->pdata[i];
      if (record->pending && is_disabled (self, record))
        {
          record->pub.status = BERTH_PLUGIN_STATUS_SKIPPED;
          record->pub.error = g_error_new (BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION, "skip plugin: disabled by config");
          record->pending = FALSE;
        }
    }

  for (guint i = 0; i < self->records->len; i++)
    {
      Record *record = self->records->pdata[i];
      record->lazy = record->pending && !wanted_at_start (self, record);
    }

  g_autoptr (GPtrArray) order = g_ptr_array_new ();
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_rec_mutex_lock (&self->lock);
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < self->records->len; i++)
    if (!((Record *) self->records->pdata[i])->lazy)
      ok = visit (self, self->records->pdata[i], stack, order, error);
  g_rec_mutex_unlock (&self->lock);
  if (!ok)
    return FALSE;

  /* Records in decision order: dependencies before the plugins that need them; the
   * ones left for their first use last. The array does not change after this. */
  for (guint i = 0; i < self->records->len; i++)
    if (((Record *) self->records->pdata[i])->visit == VISIT_NEW)
      g_ptr_array_add (order, self->records->pdata[i]);
  g_ptr_array_set_free_func (self->records, NULL);
  g_ptr_array_set_size (self->records, 0);
  for (guint i = 0; i < order->len; i++)
    g_ptr_array_add (self->records, order->pdata[i]);
  g_ptr_array_set_free_func (self->records, (GDestroyNotify) record_free);
  return TRUE;
}

/* Loads @record (and what it requires) on its first use; called with the lock held. */
static void
load_on_first_use (BerthRegistry *self, Record *record)
{
  if (!record->pending || record->visit != VISIT_NEW || self->shut_down)
    return;
  g_autoptr (GPtrArray) order = g_ptr_array_new ();
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_debug ("plugin %s: first use", record->pub.id);
  if (!visit (self, record, stack, order, &error))
    record_fail (self, record, g_steal_pointer (&error));
}

GPtrArray *
berth_registry_get_plugins (BerthRegistry *self)
{
  return self->records;
}

const BerthPluginRecord *
berth_registry_lookup (BerthRegistry *self, const char *type_or_id)
{
  g_rec_mutex_lock (&self->lock);
  Record *found = g_hash_table_lookup (self->by_id, type_or_id);
  if (found != NULL)
    load_on_first_use (self, found);
  else
    {
      /* By type: the first one that loads, else the first one, so callers can report why. */
      Record *first = NULL;
      for (guint i = 0; found == NULL && i < self->records->len; i++)
        {
          Record *record = self->records->pdata[i];
          if (!g_str_equal (record->pub.type, type_or_id))
            continue;
          load_on_first_use (self, record);
          if (record->pub.status == BERTH_PLUGIN_STATUS_LOADED)
            found = record;
          else if (first == NULL)
            first = record;
        }
      if (found == NULL)
        found = first;
    }
  g_rec_mutex_unlock (&self->lock);
  return found ? &found->pub : NULL;
}

GObject *
berth_registry_get_instance (BerthRegistry *self, const char *type_or_id)
{
  const BerthPluginRecord *record = berth_registry_lookup (self, type_or_id);
  return record ? record->instance : NULL;
}

void
berth_registry_shutdown (BerthRegistry *self)
{
  g_rec_mutex_lock (&self->lock);
  for (guint i = self->loaded->len; i > 0; i--)
    {
      Record *record = self->loaded->pdata[i - 1];
      if (record->pub.instance != NULL)
        g_debug ("finalizing plugin %s", record->pub.id);
      g_clear_object (&record->pub.instance);
    }
  g_ptr_array_set_size (self->loaded, 0);
  self->shut_down = TRUE;
  g_rec_mutex_unlock (&self->lock);
}
