/* test-plugin.c — one source, many small plugins for the registry tests; the variant
 * is chosen by -DVARIANT_<name> at build time. Each behaves in one specific way. */
#include "config.h"

#include <signal.h>

#include <berth/berth.h>

#define TEST_TYPE "io.berth.test.v1"

static GType test_object_type;

G_GNUC_UNUSED static void
register_types (GTypeModule *module)
{
  static const GTypeInfo info = { sizeof (GObjectClass), NULL, NULL, NULL, NULL, NULL, sizeof (GObject), 0, NULL, NULL };
  test_object_type = g_type_module_register_type (module, G_TYPE_OBJECT, "BerthTestPlugin_" PLUGIN_NAME, &info, 0);
}

#if defined(VARIANT_CRASH)
/* Crashes as soon as it is loaded, before any descriptor is read. */
__attribute__ ((constructor)) static void
crash_on_load (void)
{
  raise (SIGSEGV);
}
#endif

G_GNUC_UNUSED static GObject *
init (BerthPluginContext *context, GError **error)
{
#if defined(VARIANT_INIT_ERROR)
  berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "test plugin refuses to start: no widget at %s",
               berth_plugin_context_get_root (context));
  return NULL;
#elif defined(VARIANT_NEEDS_DEP)
  /* Proves load order: the dependency's instance must already exist. */
  if (berth_plugin_context_get_instance (context, TEST_TYPE ".dep") == NULL)
    {
      berth_throw (error, BERTH_ERROR_INTERNAL, "dependency was not initialised first");
      return NULL;
    }
#elif defined(VARIANT_CONFIGURED)
  gint64 level = berth_plugin_context_get_int (context, "level");
  g_autofree char *mode = berth_plugin_context_get_string (context, "mode");
  if (level != 7 || g_strcmp0 (mode, "fast") != 0)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "want level=7 and mode=fast, got level=%" G_GINT64_FORMAT " mode=%s",
                   level, mode);
      return NULL;
    }
#endif
  return g_object_new (test_object_type, NULL);
}

#if defined(VARIANT_NEEDS_DEP)
static const char *const plugin_requires[] = { TEST_TYPE ".dep", NULL };
#define REQUIRES plugin_requires
#elif defined(VARIANT_CYCLE_X)
static const char *const plugin_requires[] = { TEST_TYPE ".cycle-y", NULL };
#define REQUIRES plugin_requires
#elif defined(VARIANT_CYCLE_Y)
static const char *const plugin_requires[] = { TEST_TYPE ".cycle-x", NULL };
#define REQUIRES plugin_requires
#elif defined(VARIANT_MISSING_DEP)
static const char *const plugin_requires[] = { "io.berth.nothing.v1", NULL };
#define REQUIRES plugin_requires
#else
#define REQUIRES NULL
#endif

#if defined(VARIANT_CONFIGURED)
static const BerthConfigKey plugin_config_keys[] = {
#define CONFIG_KEYS plugin_config_keys
  { "level", BERTH_CONFIG_INT, "1", "how much" },
  { "mode", BERTH_CONFIG_STRING, "slow", "how" },
  { NULL },
};
#else
#define CONFIG_KEYS NULL
#endif

#if defined(VARIANT_NO_DESCRIPTOR)
G_MODULE_EXPORT int berth_not_a_descriptor = 1;
#elif defined(VARIANT_BAD_ABI) || defined(VARIANT_NEWER_MINOR) || defined(VARIANT_OLDER_MINOR)
/* Descriptors as a plugin compiled against other berth headers writes them. */
#if defined(VARIANT_BAD_ABI)
#define CLAIMED_MAJOR (BERTH_MAJOR_VERSION + 41)
#define CLAIMED_MINOR 0
#elif defined(VARIANT_NEWER_MINOR)
#define CLAIMED_MAJOR BERTH_MAJOR_VERSION
#define CLAIMED_MINOR (BERTH_MINOR_VERSION + 1)
#else
#if BERTH_MINOR_VERSION == 0
#error "a .0 release has no older minor of its major to test against"
#endif
#define CLAIMED_MAJOR BERTH_MAJOR_VERSION
#define CLAIMED_MINOR (BERTH_MINOR_VERSION - 1)
#endif
G_MODULE_EXPORT const BerthPluginDescriptor berth_plugin_descriptor = {
  .major_version = CLAIMED_MAJOR,
  .minor_version = CLAIMED_MINOR,
  .type = TEST_TYPE,
  .name = PLUGIN_NAME,
  .description = "built against another ABI",
  .register_types = register_types,
  .init = init,
  .version = "1.2.3",
  .license = "MIT",
  .origin = "https://example.org/berth-test-plugin",
};
#else
BERTH_PLUGIN_DEFINE (TEST_TYPE, PLUGIN_NAME, "registry test plugin " PLUGIN_NAME, REQUIRES, CONFIG_KEYS,
                     register_types, init)
#endif
