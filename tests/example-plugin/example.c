/* example.c — a complete third-party berth plugin, built out of tree:
 *
 *   cc -shared -fPIC -o example.so example.c $(pkg-config --cflags --libs berth-plugin-1)
 *
 * Drop example.so into berthd's plugin directory. It registers its type with
 * G_DEFINE_DYNAMIC_TYPE (types live in the plugin's GTypeModule) and reads one key of
 * its config group, [plugin.io.example.greeter.v1.hello]. */
#include <berth/berth.h>

#define EXAMPLE_TYPE_GREETER (example_greeter_get_type ())
G_DECLARE_FINAL_TYPE (ExampleGreeter, example_greeter, EXAMPLE, GREETER, GObject)

struct _ExampleGreeter {
  GObject parent_instance;
  char *greeting;
};

G_DEFINE_DYNAMIC_TYPE (ExampleGreeter, example_greeter, G_TYPE_OBJECT)

static void
example_greeter_finalize (GObject *object)
{
  g_free (EXAMPLE_GREETER (object)->greeting);
  G_OBJECT_CLASS (example_greeter_parent_class)->finalize (object);
}

static void
example_greeter_class_init (ExampleGreeterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = example_greeter_finalize;
}

static void example_greeter_class_finalize (ExampleGreeterClass *klass) {}
static void example_greeter_init (ExampleGreeter *self) {}

static void
register_types (GTypeModule *module)
{
  example_greeter_register_type (module);
}

static GObject *
init (BerthPluginContext *context, GError **error)
{
  ExampleGreeter *self = g_object_new (EXAMPLE_TYPE_GREETER, NULL);
  self->greeting = berth_plugin_context_get_string (context, "greeting");
  g_message ("example plugin %s says: %s", berth_plugin_context_get_id (context), self->greeting);
  return G_OBJECT (self);
}

static const BerthConfigKey config_keys[] = {
  { "greeting", BERTH_CONFIG_STRING, "hello", "what to say when loaded" },
  { NULL },
};

BERTH_PLUGIN_DEFINE ("io.example.greeter.v1", "hello", "an out-of-tree example plugin", NULL, config_keys,
                     register_types, init)
