/* overlayfs.c — the overlayfs snapshotter: each layer a directory, stacked by the
 * kernel's overlay filesystem. Committing is free; a container's changes land in its
 * upper directory only. */
#include "config.h"

#include <berth/berth-snapshotter-base.h>

#define OVERLAY_TYPE_SNAPSHOTTER (overlay_snapshotter_get_type ())
G_DECLARE_FINAL_TYPE (OverlaySnapshotter, overlay_snapshotter, OVERLAY, SNAPSHOTTER, GObject)

struct _OverlaySnapshotter {
  BerthSnapObject base;
};

G_DEFINE_DYNAMIC_TYPE_EXTENDED (OverlaySnapshotter, overlay_snapshotter, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_SNAPSHOTTER, berth_snap_store_iface_init))

static gboolean
overlay_populate (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error)
{
  return TRUE; /* layers are stacked at mount time; nothing to copy */
}

static GPtrArray *
overlay_mounts (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error)
{
  g_autoptr (GPtrArray) lowers = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < parents->len; i++)
    g_ptr_array_add (lowers, berth_snap_store_path (store, ((BerthSnapRecord *) parents->pdata[i])->id, "fs"));
  g_ptr_array_add (lowers, NULL);
  return berth_snap_store_layer_mounts (store, record, (const char *const *) lowers->pdata);
}

static const BerthSnapOps overlay_ops = { overlay_populate, overlay_mounts };

static void
overlay_snapshotter_finalize (GObject *object)
{
  berth_snap_store_free (((BerthSnapObject *) object)->store);
  G_OBJECT_CLASS (overlay_snapshotter_parent_class)->finalize (object);
}

static void
overlay_snapshotter_class_init (OverlaySnapshotterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = overlay_snapshotter_finalize;
}

static void overlay_snapshotter_class_finalize (OverlaySnapshotterClass *klass) {}
static void overlay_snapshotter_init (OverlaySnapshotter *self) {}

static void
register_types (GTypeModule *module)
{
  overlay_snapshotter_register_type (module);
}

static GObject *
init (BerthPluginContext *context, GError **error)
{
  if (!g_file_test ("/sys/module/overlay", G_FILE_TEST_IS_DIR)
      && !g_file_test ("/proc/filesystems", G_FILE_TEST_EXISTS))
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "skip plugin: overlayfs is not available (modprobe overlay)");
      return NULL;
    }
  BerthSnapStore *store = berth_snap_store_open (berth_plugin_context_get_root (context), &overlay_ops, error);
  if (store == NULL)
    return NULL;
  OverlaySnapshotter *self = g_object_new (OVERLAY_TYPE_SNAPSHOTTER, NULL);
  self->base.store = store;
  return G_OBJECT (self);
}

BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_SNAPSHOTTER, "overlayfs", "layers stacked with the kernel's overlayfs", NULL,
                     NULL, register_types, init)
