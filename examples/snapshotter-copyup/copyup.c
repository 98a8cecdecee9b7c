/* copyup.c — a snapshotter built out of tree from the installed berth SDK alone
 * (berth-snapshotter-1): every snapshot is a whole tree, made from its parent's by
 * cloning each file's extents (FICLONE: instant and sharing blocks on btrfs, XFS with
 * reflink, bcachefs) and copying where the filesystem cannot clone. Containers get a
 * plain bind mount: no overlayfs, so it works where overlay does not (nested in another
 * overlay, some FUSE and network filesystems), and a reflinking filesystem makes the
 * copies nearly free. The base library keeps the records, the semantics and the usage;
 * this file is the two hooks.
 *
 *   make PKG_CONFIG_PATH=...  &&  cp copyup.so <plugin dir>
 */
#define _GNU_SOURCE /* copy_file_range */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <berth/berth-snapshotter-base.h>

#define COPYUP_TYPE_SNAPSHOTTER (copyup_snapshotter_get_type ())
G_DECLARE_FINAL_TYPE (CopyupSnapshotter, copyup_snapshotter, COPYUP, SNAPSHOTTER, GObject)

struct _CopyupSnapshotter {
  BerthSnapObject base;
};

G_DEFINE_DYNAMIC_TYPE_EXTENDED (CopyupSnapshotter, copyup_snapshotter, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_SNAPSHOTTER, berth_snap_store_iface_init))

typedef struct {
  GHashTable *inodes; /* "dev:ino" of a source file with several links → its first copy */
  gboolean clone_ok;  /* FALSE once the filesystem refused to clone: skip the attempt */
} CopyState;

static gboolean
throw_errno (GError **error, int errsv, const char *what, const char *path)
{
  return berth_throw (error, BERTH_ERROR_INTERNAL, "%s %s: %s", what, path, g_strerror (errsv));
}

static gboolean
copy_data (CopyState *state, int from, int to, const char *path, GError **error)
{
  if (state->clone_ok)
    {
      if (ioctl (to, FICLONE, from) == 0)
        return TRUE;
      /* Not a reflinking filesystem (or across filesystems): copy from now on. */
      if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EXDEV || errno == EINVAL)
        state->clone_ok = FALSE;
      else
        return throw_errno (error, errno, "cloning", path);
    }
  for (;;)
    {
      /* copy_file_range: in-kernel, and server-side on NFS. */
      ssize_t n = copy_file_range (from, NULL, to, NULL, 1 << 30, 0);
      if (n == 0)
        return TRUE;
      if (n > 0)
        continue;
      if (errno == EINTR)
        continue;
      if (errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOSYS)
        return throw_errno (error, errno, "copying", path);
      /* A filesystem without copy_file_range: plain reads and writes. */
      char buf[65536];
      ssize_t r;
      while ((r = read (from, buf, sizeof buf)) != 0)
        {
          if (r < 0 && errno == EINTR)
            continue;
          if (r < 0)
            return throw_errno (error, errno, "reading", path);
          for (ssize_t done = 0; done < r;)
            {
              ssize_t w = write (to, buf + done, r - done);
              if (w < 0 && errno != EINTR)
                return throw_errno (error, errno, "writing", path);
              done += w > 0 ? w : 0;
            }
        }
      return TRUE;
    }
}

/* Every extended attribute: security.capability, trusted.overlay.* of a layer, ACLs. */
static gboolean
copy_xattrs (const char *from, const char *to, GError **error)
{
  ssize_t len = llistxattr (from, NULL, 0);
  if (len < 0)
    return errno == ENOTSUP ? TRUE : throw_errno (error, errno, "listing xattrs of", from);
  g_autofree char *names = g_malloc (len + 1);
  len = llistxattr (from, names, len);
  if (len < 0)
    return throw_errno (error, errno, "listing xattrs of", from);
  for (char *name = names; name < names + len; name += strlen (name) + 1)
    {
      ssize_t vlen = lgetxattr (from, name, NULL, 0);
      if (vlen < 0)
        return throw_errno (error, errno, "reading xattrs of", from);
      g_autofree char *value = g_malloc (vlen + 1);
      vlen = lgetxattr (from, name, value, vlen);
      if (vlen < 0 || lsetxattr (to, name, value, vlen, 0) < 0)
        return throw_errno (error, errno, "copying xattrs to", to);
    }
  return TRUE;
}

/* Owner, xattrs, mode and times, in that order: chown clears set-id bits and a write
 * of an xattr would touch the times. */
static gboolean
copy_metadata (const char *from, const char *to, const struct stat *st, GError **error)
{
  if (lchown (to, st->st_uid, st->st_gid) < 0)
    return throw_errno (error, errno, "chown", to);
  if (!copy_xattrs (from, to, error))
    return FALSE;
  if (!S_ISLNK (st->st_mode) && chmod (to, st->st_mode & 07777) < 0)
    return throw_errno (error, errno, "chmod", to);
  struct timespec times[2] = { st->st_atim, st->st_mtim };
  if (utimensat (AT_FDCWD, to, times, AT_SYMLINK_NOFOLLOW) < 0)
    return throw_errno (error, errno, "setting the times of", to);
  return TRUE;
}

static gboolean
copy_tree (CopyState *state, const char *from, const char *to, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GDir) dir = g_dir_open (from, 0, &local_error);
  if (dir == NULL)
    return berth_throw (error, BERTH_ERROR_INTERNAL, "%s", local_error->message);
  const char *name;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *src = g_build_filename (from, name, NULL);
      g_autofree char *dst = g_build_filename (to, name, NULL);
      struct stat st;
      if (lstat (src, &st) < 0)
        return throw_errno (error, errno, "stat", src);
      if (!S_ISDIR (st.st_mode) && st.st_nlink > 1)
        {
          /* Hard links stay hard links (package managers and busybox rely on them). */
          g_autofree char *ino = g_strdup_printf ("%ju:%ju", (uintmax_t) st.st_dev, (uintmax_t) st.st_ino);
          const char *first = g_hash_table_lookup (state->inodes, ino);
          if (first != NULL)
            {
              if (link (first, dst) < 0)
                return throw_errno (error, errno, "linking", dst);
              continue;
            }
          g_hash_table_insert (state->inodes, g_steal_pointer (&ino), g_strdup (dst));
        }
      if (S_ISDIR (st.st_mode))
        {
          if (mkdir (dst, 0700) < 0)
            return throw_errno (error, errno, "mkdir", dst);
          if (!copy_tree (state, src, dst, error))
            return FALSE;
        }
      else if (S_ISREG (st.st_mode))
        {
          int in = open (src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
          if (in < 0)
            return throw_errno (error, errno, "opening", src);
          int out = open (dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
          if (out < 0)
            {
              int errsv = errno;
              close (in);
              return throw_errno (error, errsv, "creating", dst);
            }
          gboolean ok = copy_data (state, in, out, dst, error);
          close (in);
          if (close (out) < 0 && ok)
            return throw_errno (error, errno, "writing", dst);
          if (!ok)
            return FALSE;
        }
      else if (S_ISLNK (st.st_mode))
        {
          g_autofree char *target = g_file_read_link (src, &local_error);
          if (target == NULL)
            return berth_throw (error, BERTH_ERROR_INTERNAL, "%s", local_error->message);
          if (symlink (target, dst) < 0)
            return throw_errno (error, errno, "symlink", dst);
        }
      else if (mknod (dst, st.st_mode, st.st_rdev) < 0) /* devices, fifos, sockets, whiteouts */
        return throw_errno (error, errno, "mknod", dst);
      if (!copy_metadata (src, dst, &st, error))
        return FALSE;
    }
  return TRUE;
}

/* Hook 1: a new snapshot's tree is a copy of its parent's. */
static gboolean
copyup_populate (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error)
{
  if (parents->len == 0)
    return TRUE;
  g_autofree char *from = berth_snap_store_path (store, ((BerthSnapRecord *) parents->pdata[0])->id, "fs");
  g_autofree char *to = berth_snap_store_path (store, record->id, "fs");
  CopyState state = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free), TRUE };
  gboolean ok = copy_tree (&state, from, to, error);
  struct stat st;
  if (ok && lstat (from, &st) == 0)
    ok = copy_metadata (from, to, &st, error);
  g_hash_table_unref (state.inodes);
  return ok;
}

/* Hook 2: a bind of the snapshot's own tree; a view binds its parent's read-only
 * instead of copying it. */
static GPtrArray *
copyup_mounts (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error)
{
  const BerthSnapRecord *source = record->kind == BERTH_SNAPSHOT_KIND_VIEW && parents->len ? parents->pdata[0] : record;
  g_autofree char *fs = berth_snap_store_path (store, source->id, "fs");
  const char *options[] = { record->kind == BERTH_SNAPSHOT_KIND_ACTIVE ? "rw" : "ro", "rbind", NULL };
  GPtrArray *mounts = berth_mount_list_new ();
  g_ptr_array_add (mounts, berth_mount_new ("bind", fs, options));
  return mounts;
}

static const BerthSnapOps copyup_ops = { .populate = copyup_populate, .mounts = copyup_mounts };

static void
copyup_snapshotter_finalize (GObject *object)
{
  berth_snap_store_free (((BerthSnapObject *) object)->store);
  G_OBJECT_CLASS (copyup_snapshotter_parent_class)->finalize (object);
}

static void
copyup_snapshotter_class_init (CopyupSnapshotterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = copyup_snapshotter_finalize;
}

static void copyup_snapshotter_class_finalize (CopyupSnapshotterClass *klass) {}
static void copyup_snapshotter_init (CopyupSnapshotter *self) {}

static void
register_types (GTypeModule *module)
{
  copyup_snapshotter_register_type (module);
}

static GObject *
init (BerthPluginContext *context, GError **error)
{
  BerthSnapStore *store = berth_snap_store_open (berth_plugin_context_get_root (context), &copyup_ops, error);
  if (store == NULL)
    return NULL;
  CopyupSnapshotter *self = g_object_new (COPYUP_TYPE_SNAPSHOTTER, NULL);
  self->base.store = store;
  return G_OBJECT (self);
}

BERTH_PLUGIN_DEFINE_FULL (BERTH_PLUGIN_TYPE_SNAPSHOTTER, "copyup", "whole trees, cloned with FICLONE or copied",
                          "1.0", "LGPL-2.1-or-later", "https://example.org/berth-copyup", NULL, NULL, register_types,
                          init)
