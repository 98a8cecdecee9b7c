/* walking-apply.c — applying a layer: its tar entries, read through the decompressing
 * reader, written into a snapshot's directory with OCI whiteouts and opaque dirs (as
 * overlayfs wants them in an upper dir, or plainly), and the diff ID checked.
 *
 * A layer is hostile until proven otherwise. Every path is resolved with
 * openat2(RESOLVE_IN_ROOT) from a descriptor of the target root, so "..", absolute paths,
 * symlinks pointing out and hardlinks to outside files all stay inside; names with ".."
 * components are refused outright.
 *
 * Syscalls per entry are what an unpack of many small files costs: an entry is created
 * first (O_EXCL, mkdirat, symlinkat, ...) and only when that finds its place taken is the
 * old one looked at and replaced; a regular file gets its owner, mode, xattrs and times
 * through its open fd, with no path walk.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <malloc.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive_entry.h>

#include "walking-private.h"

#define MEDIA_TAR "application/vnd.oci.image.layer.v1.tar"

typedef struct {
  int root_fd;
  gboolean overlay; /* the root is an overlay upper dir: whiteouts as overlay wants them */
  GHashTable *added; /* paths this layer wrote, for opaque dirs in plain mode */
  GArray *lower_fds; /* overlay: the lower layers' dirs (int), topmost first */
  /* The parent dir of the last entry, open: a tar lists a directory's entries together,
   * so most entries skip the openat2 walk from the root. Dropped after any entry that
   * removed something (a path that named a directory may name something else since). */
  char *cached_dir;
  int cached_fd;
  gboolean cache_stale;
} Target;

static long
openat2_in_root (int root_fd, const char *path, int flags, mode_t mode)
{
  struct open_how how = { .flags = (guint64) flags | O_CLOEXEC, .mode = mode,
                          .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  return syscall (SYS_openat2, root_fd, path, &how, sizeof how);
}

/* "./a/b/" → "a/b"; NULL when a component is ".." (refused, never interpreted). */
static char *
clean_path (const char *name)
{
  g_auto (GStrv) parts = g_strsplit (name, "/", -1);
  g_autoptr (GPtrArray) kept = g_ptr_array_new ();
  for (guint i = 0; parts[i] != NULL; i++)
    {
      if (parts[i][0] == '\0' || g_str_equal (parts[i], "."))
        continue;
      if (g_str_equal (parts[i], ".."))
        return NULL;
      g_ptr_array_add (kept, parts[i]);
    }
  g_ptr_array_add (kept, NULL);
  return g_strjoinv ("/", (char **) kept->pdata);
}

/* The attributes of @dir in the topmost lower layer that has it as a directory; FALSE
 * when none has (or a higher one holds something else there: a whiteout, a file).
 * Resolved without symlinks: a link in a layer never leads out of it. */
static gboolean
lower_dir_stat (Target *t, const char *dir, struct stat *st)
{
  for (guint i = 0; t->lower_fds != NULL && i < t->lower_fds->len; i++)
    {
      struct open_how how = { .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS };
      berth_autofd int fd = syscall (SYS_openat2, g_array_index (t->lower_fds, int, i), dir, &how, sizeof how);
      if (fd < 0)
        continue;
      return fstat (fd, st) == 0 && S_ISDIR (st->st_mode);
    }
  return FALSE;
}

/* Opens (creating as needed) the directory @dir inside the root. */
static int
open_parent (Target *t, const char *dir, GError **error)
{
  if (*dir == '\0' || g_str_equal (dir, "."))
    return dup (t->root_fd);
  int fd = openat2_in_root (t->root_fd, dir, O_RDONLY | O_DIRECTORY, 0);
  if (fd >= 0)
    return fd;
  if (errno != ENOENT)
    {
      berth_throw_errno (error, "opening %s in the layer root", dir);
      return -1;
    }
  g_autofree char *up = g_path_get_dirname (dir);
  g_autofree char *base = g_path_get_basename (dir);
  berth_autofd int parent = open_parent (t, g_str_equal (up, ".") ? "" : up, error);
  if (parent < 0)
    return -1;
  /* A parent the layer does not list. In an overlay upper dir it would hide the lower
   * layers' directory with its own attributes, so it takes theirs (containerd does the
   * same): a private 0700 home or a 1777 /data must stay so. */
  struct stat lower = { .st_mode = S_IFDIR | 0755 };
  gboolean from_lower = t->overlay && lower_dir_stat (t, dir, &lower);
  if (mkdirat (parent, base, 0700) < 0)
    {
      if (errno != EEXIST)
        {
          berth_throw_errno (error, "creating %s", dir);
          return -1;
        }
    }
  else if ((from_lower && fchownat (parent, base, lower.st_uid, lower.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
           || fchmodat (parent, base, lower.st_mode & 07777, 0) < 0)
    {
      berth_throw_errno (error, "setting the owner and mode of %s", dir);
      return -1;
    }
  fd = openat2_in_root (t->root_fd, dir, O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0)
    berth_throw_errno (error, "opening %s in the layer root", dir);
  return fd;
}

static void
target_drop_cache (Target *t)
{
  if (t->cached_fd >= 0)
    close (t->cached_fd);
  t->cached_fd = -1;
  g_clear_pointer (&t->cached_dir, g_free);
  t->cache_stale = FALSE;
}

/* The open parent dir @dir, borrowed from the cache (valid until the entry is done). */
static int
target_parent_fd (Target *t, const char *dir, GError **error)
{
  if (t->cached_fd >= 0 && g_str_equal (t->cached_dir, dir))
    return t->cached_fd;
  target_drop_cache (t);
  int fd = open_parent (t, dir, error);
  if (fd >= 0)
    {
      t->cached_fd = fd;
      t->cached_dir = g_strdup (dir);
    }
  return fd;
}

static gboolean
remove_at (int dirfd, const char *name, GError **error)
{
  if (unlinkat (dirfd, name, 0) == 0 || errno == ENOENT)
    return TRUE;
  if (errno != EISDIR)
    return berth_throw_errno (error, "removing %s", name);
  /* A directory: empty it, then remove it; no symlink is ever followed. */
  berth_autofd int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return berth_throw_errno (error, "opening %s", name);
  g_autofree char *self = g_strdup_printf ("/proc/self/fd/%d", fd);
  g_autoptr (GDir) d = g_dir_open (self, 0, error);
  if (d == NULL)
    return FALSE;
  const char *entry;
  while ((entry = g_dir_read_name (d)) != NULL)
    if (!remove_at (fd, entry, error))
      return FALSE;
  if (unlinkat (dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return berth_throw_errno (error, "removing %s", name);
  return TRUE;
}

/* Plain mode: an opaque dir keeps only what this layer put in it. */
static gboolean
make_opaque_plain (Target *t, int dirfd, const char *dir, GError **error)
{
  g_autofree char *self = g_strdup_printf ("/proc/self/fd/%d", dirfd);
  g_autoptr (GDir) d = g_dir_open (self, 0, error);
  if (d == NULL)
    return FALSE;
  g_autoptr (GPtrArray) doomed = g_ptr_array_new_with_free_func (g_free);
  const char *entry;
  while ((entry = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = *dir ? g_build_filename (dir, entry, NULL) : g_strdup (entry);
      if (!g_hash_table_contains (t->added, path))
        g_ptr_array_add (doomed, g_strdup (entry));
    }
  for (guint i = 0; i < doomed->len; i++)
    if (!remove_at (dirfd, doomed->pdata[i], error))
      return FALSE;
  return TRUE;
}

static gboolean
set_xattrs (int fd, const char *base, struct archive_entry *entry, GError **error)
{
  archive_entry_xattr_reset (entry);
  const char *xname;
  const void *xvalue;
  size_t xsize;
  while (archive_entry_xattr_next (entry, &xname, &xvalue, &xsize) == ARCHIVE_OK)
    if (fsetxattr (fd, xname, xvalue, xsize, 0) < 0 && errno != ENOTSUP)
      return berth_throw_errno (error, "setting xattr %s on %s", xname, base);
  return TRUE;
}

/* Owner before mode: chown clears the setuid and setgid bits. */
static gboolean
apply_metadata (int dirfd, const char *base, struct archive_entry *entry, gboolean is_symlink, GError **error)
{
  if (fchownat (dirfd, base, archive_entry_uid (entry), archive_entry_gid (entry), AT_SYMLINK_NOFOLLOW) < 0)
    return berth_throw_errno (error, "chown %s", base);
  if (is_symlink)
    return TRUE;
  if (fchmodat (dirfd, base, archive_entry_mode (entry) & 07777, 0) < 0)
    return berth_throw_errno (error, "chmod %s", base);
  /* xattrs, through an O_PATH-free fd so a symlink is never followed. */
  if (archive_entry_xattr_count (entry) > 0)
    {
      berth_autofd int fd = openat (dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (fd >= 0 && !set_xattrs (fd, base, entry, error))
        return FALSE;
    }
  struct timespec times[2] = { { archive_entry_atime (entry), archive_entry_atime_nsec (entry) },
                               { archive_entry_mtime (entry), archive_entry_mtime_nsec (entry) } };
  if (utimensat (dirfd, base, times, AT_SYMLINK_NOFOLLOW) < 0)
    return berth_throw_errno (error, "setting times of %s", base);
  return TRUE;
}

/* The same through a regular file's open fd: four syscalls that need no path walk. */
static gboolean
apply_metadata_fd (int fd, const char *base, struct archive_entry *entry, GError **error)
{
  if (fchown (fd, archive_entry_uid (entry), archive_entry_gid (entry)) < 0)
    return berth_throw_errno (error, "chown %s", base);
  if (fchmod (fd, archive_entry_mode (entry) & 07777) < 0)
    return berth_throw_errno (error, "chmod %s", base);
  if (archive_entry_xattr_count (entry) > 0 && !set_xattrs (fd, base, entry, error))
    return FALSE;
  struct timespec times[2] = { { archive_entry_atime (entry), archive_entry_atime_nsec (entry) },
                               { archive_entry_mtime (entry), archive_entry_mtime_nsec (entry) } };
  if (futimens (fd, times) < 0)
    return berth_throw_errno (error, "setting times of %s", base);
  return TRUE;
}

/* Something already sits where an entry goes (its creation failed with EEXIST): it is
 * replaced, except a directory that stays a directory (*kept). */
static gboolean
make_room (Target *t, int dirfd, const char *base, gboolean want_dir, gboolean *kept, GError **error)
{
  struct stat existing;
  *kept = FALSE;
  if (fstatat (dirfd, base, &existing, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? TRUE : berth_throw_errno (error, "examining %s", base);
  if (want_dir && S_ISDIR (existing.st_mode))
    {
      *kept = TRUE;
      return TRUE;
    }
  t->cache_stale = TRUE;
  return remove_at (dirfd, base, error);
}

/* What an entry becomes. */
typedef struct {
  mode_t type;        /* S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO; 0: a hard link */
  mode_t mode;        /* a device's or FIFO's permission bits */
  dev_t rdev;
  const char *target; /* a symlink's target; the /proc/self/fd path a hard link is made from */
} Node;

/* Regular files come back open for writing (their fd), the rest as 0; -1 and errno. */
static int
create_node (int dirfd, const char *base, const Node *node)
{
  switch (node->type)
    {
    case S_IFREG:
      return openat (dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    case S_IFDIR:
      return mkdirat (dirfd, base, 0700);
    case S_IFLNK:
      return symlinkat (node->target, dirfd, base);
    case 0:
      return linkat (AT_FDCWD, node->target, dirfd, base, AT_SYMLINK_FOLLOW);
    default:
      return mknodat (dirfd, base, node->type | node->mode, node->rdev);
    }
}

static const char *
node_kind (const Node *node)
{
  switch (node->type)
    {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "directory";
    case S_IFLNK:
      return "symlink";
    case 0:
      return "hard link";
    default:
      return "device";
    }
}

/* Creates @node, and when something is in the way (EEXIST) makes room and tries once
 * more: the common case, a fresh snapshot, costs no stat per entry. Returns what
 * create_node does, or -1 with @error set; *kept: an existing directory stays. */
static int
create_replacing (Target *t, int dirfd, const char *base, const Node *node, const char *path, gboolean *kept,
                  GError **error)
{
  *kept = FALSE;
  int rc = create_node (dirfd, base, node);
  if (rc < 0 && errno == EEXIST)
    {
      if (!make_room (t, dirfd, base, node->type == S_IFDIR, kept, error))
        return -1;
      if (*kept)
        return 0;
      rc = create_node (dirfd, base, node);
    }
  if (rc < 0)
    berth_throw_errno (error, "creating %s %s", node_kind (node), path);
  return rc;
}

/* Created first, 0600 until its mode is set; what was there is replaced only on EEXIST,
 * which spares the common case (a fresh snapshot) a stat per entry. */
static gboolean
write_file (Target *t, struct archive *a, struct archive_entry *entry, int dirfd, const char *base,
            const char *path, GError **error)
{
  const Node node = { .type = S_IFREG };
  gboolean kept;
  berth_autofd int fd = create_replacing (t, dirfd, base, &node, path, &kept, error);
  if (fd < 0)
    return FALSE;
  const void *buf;
  size_t len;
  la_int64_t offset;
  la_int64_t end = 0;
  int rc;
  while ((rc = archive_read_data_block (a, &buf, &len, &offset)) == ARCHIVE_OK)
    {
      end = MAX (end, offset + (la_int64_t) len);
      size_t done = 0;
      while (done < len)
        {
          ssize_t n = pwrite (fd, (const char *) buf + done, len - done, offset + done);
          if (n < 0)
            return berth_throw_errno (error, "writing %s", path);
          done += n;
        }
    }
  if (rc != ARCHIVE_EOF)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "layer entry %s: %s", path, archive_error_string (a));
  /* A sparse file may end in a hole that no block wrote. */
  if (end != archive_entry_size (entry) && ftruncate (fd, archive_entry_size (entry)) < 0)
    return berth_throw_errno (error, "sizing %s", path);
  return apply_metadata_fd (fd, base, entry, error);
}

static gboolean
apply_entry_at (Target *t, struct archive *a, struct archive_entry *entry, GError **error)
{
  const char *raw = archive_entry_pathname (entry);
  g_autofree char *path = clean_path (raw ? raw : "");
  if (path == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "hostile layer: entry \"%s\" climbs out with \"..\"", raw);
  if (*path == '\0')
    return TRUE; /* the root itself */
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  if (g_str_equal (dir, "."))
    {
      g_free (dir);
      dir = g_strdup ("");
    }
  int dirfd = target_parent_fd (t, dir, error);
  if (dirfd < 0)
    return FALSE;

  if (g_str_has_prefix (base, WHITEOUT_PREFIX))
    {
      t->cache_stale = TRUE;
      if (g_str_equal (base, OPAQUE_MARKER))
        {
          if (t->overlay)
            {
              if (fsetxattr (dirfd, walking_opaque_xattr (), "y", 1, 0) < 0)
                return berth_throw_errno (error, "marking %s opaque", *dir ? dir : "/");
              return TRUE;
            }
          return make_opaque_plain (t, dirfd, dir, error);
        }
      const char *victim = base + strlen (WHITEOUT_PREFIX);
      if (*victim == '\0' || g_str_equal (victim, ".") || g_str_equal (victim, ".."))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "hostile layer: bad whiteout \"%s\"", raw);
      if (!remove_at (dirfd, victim, error))
        return FALSE;
      if (t->overlay && mknodat (dirfd, victim, S_IFCHR | 0000, makedev (0, 0)) < 0)
        return berth_throw_errno (error, "whiteout for %s", victim);
      return TRUE;
    }

  g_hash_table_add (t->added, g_strdup (path));
  const char *hardlink = archive_entry_hardlink (entry);
  mode_t type = archive_entry_filetype (entry);
  gboolean kept;

  if (hardlink != NULL)
    {
      g_autofree char *target = clean_path (hardlink);
      if (target == NULL || *target == '\0')
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "hostile layer: hardlink %s → \"%s\"", raw, hardlink);
      berth_autofd int src = openat2_in_root (t->root_fd, target, O_PATH | O_NOFOLLOW, 0);
      if (src < 0)
        return berth_throw_errno (error, "hardlink %s: target %s in the layer root", path, target);
      struct stat st;
      if (fstat (src, &st) < 0 || S_ISDIR (st.st_mode))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "hostile layer: hardlink %s to a directory", path);
      g_autofree char *proc = g_strdup_printf ("/proc/self/fd/%d", src);
      const Node link = { .type = 0, .target = proc };
      return create_replacing (t, dirfd, base, &link, path, &kept, error) >= 0;
    }

  switch (type)
    {
    case AE_IFDIR:
      if (create_replacing (t, dirfd, base, &(const Node) { .type = S_IFDIR }, path, &kept, error) < 0)
        return FALSE;
      return apply_metadata (dirfd, base, entry, FALSE, error);
    case AE_IFREG:
      if (archive_entry_size (entry) < 0)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "hostile layer: %s has a negative size", path);
      return write_file (t, a, entry, dirfd, base, path, error);
    case AE_IFLNK:
      if (create_replacing (t, dirfd, base, &(const Node) { .type = S_IFLNK, .target = archive_entry_symlink (entry) },
                            path, &kept, error) < 0)
        return FALSE;
      return apply_metadata (dirfd, base, entry, TRUE, error);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
      if (create_replacing (t, dirfd, base,
                            &(const Node) { .type = type, .mode = archive_entry_mode (entry) & 07777,
                                            .rdev = archive_entry_rdev (entry) },
                            path, &kept, error) < 0)
        return FALSE;
      return apply_metadata (dirfd, base, entry, FALSE, error);
    default:
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "layer entry %s has an unsupported type %o", path, type);
    }
}

static gboolean
apply_entry (Target *t, struct archive *a, struct archive_entry *entry, GError **error)
{
  gboolean ok = apply_entry_at (t, a, entry, error);
  if (t->cache_stale)
    target_drop_cache (t);
  return ok;
}

/* Streams @layer into the directory @root_fd. Returns the applied descriptor. */
static BerthDescriptor *
apply_stream (WalkingDiffer *self, const BerthDescriptor *layer, int root_fd, gboolean overlay, GArray *lower_fds,
              GCancellable *cancellable, GError **error)
{
  Reader r = { 0 };
  if (!walking_compression_for (layer->media_type, &r.compression, error))
    return NULL;
  gint64 size = 0;
  g_autoptr (GInputStream) in = berth_content_store_open_reader (self->content, layer->digest, &size, cancellable, error);
  if (in == NULL)
    return NULL;
  walking_reader_start (&r, in, MAX ((guint64) size, (guint64) 1 << 20) * self->max_ratio, cancellable);

  Target t = { root_fd, overlay, g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL), lower_fds,
               .cached_fd = -1 };
  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  gboolean ok = archive_read_open (a, &r, NULL, walking_reader_read_cb, NULL) == ARCHIVE_OK;
  if (!ok)
    berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "layer %s: %s", layer->digest, archive_error_string (a));
  struct archive_entry *entry;
  while (ok)
    {
      int rc = archive_read_next_header (a, &entry);
      if (rc == ARCHIVE_EOF)
        break;
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
        {
          /* The reader's error is ours to read only once it handed over its last buffer;
           * libarchive may fail on its own while the producer still runs. */
          if (r.done && r.error != NULL)
            g_propagate_error (error, g_steal_pointer (&r.error));
          else
            berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "layer %s is not a valid tar: %s", layer->digest,
                         archive_error_string (a));
          ok = FALSE;
          break;
        }
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        ok = FALSE;
      else
        ok = apply_entry (&t, a, entry, error);
    }
  archive_read_free (a);
  target_drop_cache (&t);
  g_hash_table_unref (t.added);
  /* Whatever follows the tar's end markers is still part of the diff ID. */
  const void *rest;
  gssize n;
  while (ok && (n = walking_reader_next (&r, &rest)) > 0)
    ;
  if (ok && r.error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&r.error));
      ok = FALSE;
    }
  BerthDescriptor *applied = NULL;
  if (ok)
    {
      g_autofree char *diff_id = berth_digester_get_digest (r.digester);
      applied = berth_descriptor_new (MEDIA_TAR, diff_id, r.uncompressed);
      g_debug ("applied %s: %" G_GUINT64_FORMAT " bytes, diff ID %s", layer->digest, r.uncompressed, diff_id);
    }
  walking_reader_clear (&r);
  return applied;
}

BerthDescriptor *
walking_apply (BerthDiffer *differ, const BerthDescriptor *layer, GPtrArray *mounts, GHashTable *payloads,
               GCancellable *cancellable, GError **error)
{
  WalkingDiffer *self = WALKING_DIFFER (differ);
  if (layer == NULL || !berth_digest_validate (layer->digest, error))
    return layer ? NULL : (berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no layer given"), NULL);
  gboolean overlay = FALSE;
  g_auto (GStrv) lowers = NULL;
  const char *dir = walking_direct_target (mounts, &overlay, &lowers);
  g_autofree char *mountpoint = NULL;
  if (dir == NULL)
    {
      g_autofree char *tmpl = g_build_filename (self->state, "apply-XXXXXX", NULL);
      mountpoint = g_mkdtemp (g_steal_pointer (&tmpl));
      if (mountpoint == NULL)
        return berth_throw_errno (error, "creating a mount point under %s", self->state), NULL;
      if (!berth_mount_list_mount (mounts, mountpoint, error))
        {
          rmdir (mountpoint);
          return NULL;
        }
      dir = mountpoint;
    }
  berth_autofd int root_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  BerthDescriptor *applied = NULL;
  if (root_fd < 0)
    berth_throw_errno (error, "opening %s", dir);
  else
    {
      g_autoptr (GArray) lower_fds = g_array_new (FALSE, FALSE, sizeof (int));
      for (guint i = 0; lowers != NULL && lowers[i] != NULL; i++)
        {
          int fd = open (lowers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
          if (fd >= 0)
            g_array_append_val (lower_fds, fd);
        }
      applied = apply_stream (self, layer, root_fd, overlay, lower_fds, cancellable, error);
      for (guint i = 0; i < lower_fds->len; i++)
        close (g_array_index (lower_fds, int, i));
    }
  if (mountpoint != NULL)
    {
      berth_mount_unmount (mountpoint, NULL);
      rmdir (mountpoint);
    }
  /* An unpack leaves the daemon's heap full of freed holes (paths of every entry,
   * libarchive's and the gRPC stream's buffers) that glibc only gives back from the top:
   * after a 31000-file image berthd kept 2.6 MB of free pages, and every container started
   * later grew the heap further. malloc_trim returns the free pages inside it too; one
   * pass over a heap of a few MB costs far less than the apply. */
  malloc_trim (0);
  return applied;
}
