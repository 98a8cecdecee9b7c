/* native.c — the native snapshotter: every snapshot a full copy of its parent, for
 * filesystems without overlay support. Slow to prepare, plain to mount. */
#include "config.h"

#include <berth/berth-snapshotter-base.h>

#define NATIVE_TYPE_SNAPSHOTTER (native_snapshotter_get_type ())
G_DECLARE_FINAL_TYPE (NativeSnapshotter, native_snapshotter, NATIVE, SNAPSHOTTER, GObject)

struct _NativeSnapshotter {
  BerthSnapObject base;
};

G_DEFINE_DYNAMIC_TYPE_EXTENDED (NativeSnapshotter, native_snapshotter, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_SNAPSHOTTER, berth_snap_store_iface_init))

/* Copies the parent's whole tree: owners, modes, times, xattrs, hardlinks, devices. */
static gboolean
native_populate (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error)
{
  if (parents->len == 0)
    return TRUE;
  g_autofree char *from = berth_snap_store_path (store, ((BerthSnapRecord *) parents->pdata[0])->id, "fs/.");
  g_autofree char *to = berth_snap_store_path (store, record->id, "fs");
  const char *argv[] = { "cp", "-a", "--reflink=auto", from, to, NULL };
  g_autofree char *err = NULL;
  int status = 0;
  g_autoptr (GError) spawn_error = NULL;
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                     &err, &status, &spawn_error)
      || !g_spawn_check_wait_status (status, &spawn_error))
    return berth_throw (error, BERTH_ERROR_INTERNAL, "copying %s to %s: %s %s", from, to, spawn_error->message,
                        err ? g_strstrip (err) : "");
  return TRUE;
}

static GPtrArray *
native_mounts (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error)
{
  GPtrArray *mounts = berth_mount_list_new ();
  /* A view shares its parent's tree read-only instead of a copy of it. */
  const BerthSnapRecord *source = record->kind == BERTH_SNAPSHOT_KIND_VIEW && parents->len ? parents->pdata[0] : record;
  g_autofree char *fs = berth_snap_store_path (store, source->id, "fs");
  const char *options[] = { record->kind == BERTH_SNAPSHOT_KIND_ACTIVE ? "rw" : "ro", "rbind", NULL };
  g_ptr_array_add (mounts, berth_mount_new ("bind", fs, options));
  return mounts;
}

static const BerthSnapOps native_ops = { native_populate, native_mounts };

static void
native_snapshotter_finalize (GObject *object)
{
  berth_snap_store_free (((BerthSnapObject *) object)->store);
  G_OBJECT_CLASS (native_snapshotter_parent_class)->finalize (object);
}

static void
native_snapshotter_class_init (NativeSnapshotterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = native_snapshotter_finalize;
}

static void native_snapshotter_class_finalize (NativeSnapshotterClass *klass) {}
static void native_snapshotter_init (NativeSnapshotter *self) {}

static void
register_types (GTypeModule *module)
{
  native_snapshotter_register_type (module);
}

static GObject *
init (BerthPluginContext *context, GError **error)
{
  BerthSnapStore *store = berth_snap_store_open (berth_plugin_context_get_root (context), &native_ops, error);
  if (store == NULL)
    return NULL;
  NativeSnapshotter *self = g_object_new (NATIVE_TYPE_SNAPSHOTTER, NULL);
  self->base.store = store;
  return G_OBJECT (self);
}

BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_SNAPSHOTTER, "native", "full copies, for filesystems without overlay", NULL,
                     NULL, register_types, init)
