/* walking.c — the walking differ: applies layer tarballs onto snapshots (Diff.Apply,
 * walking-apply.c, through walking-reader.c) and makes layers from their changes
 * (Diff.Diff, walking-compare.c). This file is the differ object and the plugin, and
 * what both directions share: where a snapshot's mounts can be written directly.
 */
#include "config.h"

#include <string.h>

#include "walking-private.h"

static void walking_differ_iface_init (BerthDifferInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (WalkingDiffer, walking_differ, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_DIFFER, walking_differ_iface_init))

/* Where to write: an overlay's upper dir or a bind's source directly; else a mount.
 * For an overlay, *lowers_out gets its lower dirs, topmost first. */
const char *
walking_direct_target (GPtrArray *mounts, gboolean *overlay, char ***lowers_out)
{
  if (mounts->len != 1)
    return NULL;
  BerthMount *m = mounts->pdata[0];
  if (g_str_equal (m->type, "bind") || g_str_equal (m->type, "rbind"))
    {
      for (char **o = m->options; o && *o; o++)
        if (g_str_equal (*o, "ro"))
          return NULL;
      *overlay = FALSE;
      return m->source;
    }
  if (g_str_equal (m->type, "overlay"))
    for (char **o = m->options; o && *o; o++)
      if (g_str_has_prefix (*o, "upperdir="))
        {
          *overlay = TRUE;
          for (char **l = m->options; *l; l++)
            if (g_str_has_prefix (*l, "lowerdir="))
              *lowers_out = g_strsplit (*l + strlen ("lowerdir="), ":", -1);
          return *o + strlen ("upperdir=");
        }
  return NULL;
}

static void
walking_differ_finalize (GObject *object)
{
  g_free (WALKING_DIFFER (object)->state);
  G_OBJECT_CLASS (walking_differ_parent_class)->finalize (object);
}

static void
walking_differ_class_init (WalkingDifferClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = walking_differ_finalize;
}

static void walking_differ_class_finalize (WalkingDifferClass *klass) {}
static void walking_differ_init (WalkingDiffer *self) {}

static void
walking_differ_iface_init (BerthDifferInterface *iface)
{
  iface->apply = walking_apply;
  iface->compare = walking_compare;
}

static void
register_types (GTypeModule *module)
{
  walking_differ_register_type (module);
}

static const BerthConfigKey config_keys[] = {
  { "max-expansion", BERTH_CONFIG_INT, "1000", "refuse layers that decompress to more than this many times their size" },
  { NULL },
};

static GObject *
init (BerthPluginContext *context, GError **error)
{
  GObject *content = berth_plugin_context_get_instance (context, BERTH_PLUGIN_TYPE_CONTENT);
  if (content == NULL)
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "no content store loaded");
      return NULL;
    }
  WalkingDiffer *self = g_object_new (WALKING_TYPE_DIFFER, NULL);
  self->content = BERTH_CONTENT_STORE (content);
  self->state = g_strdup (berth_plugin_context_get_state (context));
  self->max_ratio = MAX (berth_plugin_context_get_int (context, "max-expansion"), 1);
  return G_OBJECT (self);
}

static const char *const requires[] = { BERTH_PLUGIN_TYPE_CONTENT, NULL };

BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_DIFFER, "walking", "applies layer tarballs with OCI whiteouts, safely", requires,
                     config_keys, register_types, init)
