/* overlayfs.c — the overlayfs snapshotter: each layer a directory, stacked by the
 * kernel's overlay filesystem. Committing is free; a container's changes land in its
 * upper directory only. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>

#include <berth/berth-snapshotter-base.h>

#define OVERLAY_TYPE_SNAPSHOTTER (overlay_snapshotter_get_type ())
G_DECLARE_FINAL_TYPE (OverlaySnapshotter, overlay_snapshotter, OVERLAY, SNAPSHOTTER, GObject)

struct _OverlaySnapshotter {
  BerthSnapObject base;
};

G_DEFINE_DYNAMIC_TYPE_EXTENDED (OverlaySnapshotter, overlay_snapshotter, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_SNAPSHOTTER, berth_snap_store_iface_init))

/* Set at init: in a user namespace (rootless berthd) overlayfs keeps its whiteout and
 * opaque markers in user.overlay.* xattrs, as trusted.* ones are out of reach there. */
static gboolean use_userxattr;

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
  GPtrArray *mounts = berth_snap_store_layer_mounts (store, record, (const char *const *) lowers->pdata);
  for (guint i = 0; use_userxattr && i < mounts->len; i++)
    {
      BerthMount *m = mounts->pdata[i];
      if (!g_str_equal (m->type, "overlay"))
        continue;
      guint n = g_strv_length (m->options);
      m->options = g_renew (char *, m->options, n + 2);
      memmove (m->options + 1, m->options, (n + 1) * sizeof (char *));
      m->options[0] = g_strdup ("userxattr");
    }
  return mounts;
}

/* Whether the kernel mounts overlayfs with userxattr in this user namespace (5.11 and
 * later do): a real two-lower mount under @root, undone at once. */
static gboolean
probe_userxattr (const char *root, GError **error)
{
  g_autofree char *dir = g_build_filename (root, "userxattr-probe", NULL);
  const char *subdirs[] = { "l1", "l2", "upper", "work", "merged" };
  gboolean ok = berth_remove_tree_at (AT_FDCWD, dir, error);
  for (guint i = 0; ok && i < G_N_ELEMENTS (subdirs); i++)
    {
      g_autofree char *sub = g_build_filename (dir, subdirs[i], NULL);
      if (g_mkdir_with_parents (sub, 0700) < 0)
        ok = berth_throw_errno (error, "creating %s", sub);
    }
  if (ok)
    {
      g_autofree char *merged = g_build_filename (dir, "merged", NULL);
      g_autofree char *data = g_strdup_printf ("userxattr,lowerdir=%s/l1:%s/l2,upperdir=%s/upper,workdir=%s/work",
                                               dir, dir, dir, dir);
      if (mount ("overlay", merged, "overlay", 0, data) < 0)
        ok = berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                          "skip plugin: overlayfs with userxattr cannot be mounted in this user namespace (%s; "
                          "kernel 5.11 or later needed): use the native snapshotter",
                          g_strerror (errno));
      else
        umount2 (merged, MNT_DETACH);
    }
  g_autoptr (GError) cleanup_error = NULL;
  if (!berth_remove_tree_at (AT_FDCWD, dir, &cleanup_error))
    g_warning ("%s", cleanup_error->message);
  return ok;
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
  const char *root = berth_plugin_context_get_root (context);
  if (berth_in_user_namespace ())
    {
      if (g_mkdir_with_parents (root, 0700) < 0)
        return berth_throw_errno (error, "creating %s", root), NULL;
      if (!probe_userxattr (root, error))
        return NULL;
      use_userxattr = TRUE;
    }
  BerthSnapStore *store = berth_snap_store_open (root, &overlay_ops, error);
  if (store == NULL)
    return NULL;
  OverlaySnapshotter *self = g_object_new (OVERLAY_TYPE_SNAPSHOTTER, NULL);
  self->base.store = store;
  return G_OBJECT (self);
}

BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_SNAPSHOTTER, "overlayfs", "layers stacked with the kernel's overlayfs", NULL,
                     NULL, register_types, init)
