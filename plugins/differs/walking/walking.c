/* walking.c — the walking differ: applies layer tarballs onto snapshots.
 *
 * A layer is hostile until proven otherwise. Every path is resolved with
 * openat2(RESOLVE_IN_ROOT) from a descriptor of the target root, so "..", absolute paths,
 * symlinks pointing out and hardlinks to outside files all stay inside; names with ".."
 * components are refused outright. Decompression happens here (not in libarchive) so the
 * uncompressed stream is hashed in the same pass and the diff ID is verified without a
 * second read.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <malloc.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>
#include <zstd.h>
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include <berth/berth.h>

#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_MARKER ".wh..wh..opq"
#define MEDIA_TAR "application/vnd.oci.image.layer.v1.tar"
#define CHUNK (256 * 1024)

#define WALKING_TYPE_DIFFER (walking_differ_get_type ())
G_DECLARE_FINAL_TYPE (WalkingDiffer, walking_differ, WALKING, DIFFER, GObject)

struct _WalkingDiffer {
  GObject parent_instance;
  BerthContentStore *content; /* owned by the registry, outlives us */
  char *state;
  gint64 max_ratio;
};

static void walking_differ_iface_init (BerthDifferInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (WalkingDiffer, walking_differ, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_DIFFER, walking_differ_iface_init))

/* ---------------- decompressing reader ---------------- */

typedef enum { COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_ZSTD } Compression;

typedef struct {
  GInputStream *in;
  GCancellable *cancellable;
  Compression compression;
  z_stream z; /* compress side of compare, and inflate without isa-l */
#ifdef HAVE_ISAL
  struct inflate_state isal;
#endif
  ZSTD_DStream *zstd;
  guint8 *inbuf;
  gsize in_len, in_pos;
  gboolean in_eof;
  gboolean z_finished; /* a gzip member ended (zlib path) */
  guint8 *outbuf;
  BerthDigester *digester;
  guint64 compressed, uncompressed, max_uncompressed;
  GError *error;
} Reader;

static gboolean
reader_fill (Reader *r)
{
  if (r->in_pos < r->in_len || r->in_eof)
    return TRUE;
  gssize n = g_input_stream_read (r->in, r->inbuf, CHUNK, r->cancellable, &r->error);
  if (n < 0)
    return FALSE;
  r->in_len = n;
  r->in_pos = 0;
  r->in_eof = n == 0;
  r->compressed += n;
  return TRUE;
}

/* One step of gzip inflate from the input buffer into outbuf. Concatenated members are
 * legal and continue the stream. isa-l inflates about 3.5 times faster than zlib here. */
#ifdef HAVE_ISAL
static void
gzip_init (Reader *r)
{
  isal_inflate_init (&r->isal);
  r->isal.crc_flag = ISAL_GZIP;
}

static gboolean
gzip_finished (Reader *r)
{
  return r->isal.block_state == ISAL_BLOCK_FINISH;
}

static gboolean
gzip_step (Reader *r, gsize *produced)
{
  if (gzip_finished (r))
    {
      isal_inflate_reset (&r->isal);
      r->isal.crc_flag = ISAL_GZIP;
    }
  r->isal.next_in = r->inbuf + r->in_pos;
  r->isal.avail_in = r->in_len - r->in_pos;
  r->isal.next_out = r->outbuf;
  r->isal.avail_out = CHUNK;
  int rc = isal_inflate (&r->isal);
  r->in_pos = r->in_len - r->isal.avail_in;
  *produced = CHUNK - r->isal.avail_out;
  if (rc < 0)
    return berth_throw (&r->error, BERTH_ERROR_INVALID_ARGUMENT, "layer is not valid gzip (isa-l error %d)", rc);
  if (r->in_eof && r->in_pos == r->in_len && *produced == 0 && !gzip_finished (r))
    return berth_throw (&r->error, BERTH_ERROR_INVALID_ARGUMENT, "layer is truncated: gzip stream ends early");
  return TRUE;
}

static void
gzip_end (Reader *r)
{
}
#else
static void
gzip_init (Reader *r)
{
  if (inflateInit2 (&r->z, 16 + MAX_WBITS) != Z_OK)
    g_error ("zlib cannot start");
}

static gboolean
gzip_finished (Reader *r)
{
  return r->z_finished;
}

static gboolean
gzip_step (Reader *r, gsize *produced)
{
  if (r->z_finished)
    {
      inflateReset (&r->z);
      r->z_finished = FALSE;
    }
  r->z.next_in = r->inbuf + r->in_pos;
  r->z.avail_in = r->in_len - r->in_pos;
  r->z.next_out = r->outbuf;
  r->z.avail_out = CHUNK;
  int rc = inflate (&r->z, Z_NO_FLUSH);
  r->in_pos = r->in_len - r->z.avail_in;
  *produced = CHUNK - r->z.avail_out;
  if (rc == Z_STREAM_END)
    r->z_finished = TRUE;
  else if (rc == Z_BUF_ERROR && r->in_eof && *produced == 0)
    return berth_throw (&r->error, BERTH_ERROR_INVALID_ARGUMENT, "layer is truncated: gzip stream ends early");
  else if (rc != Z_OK && rc != Z_BUF_ERROR)
    return berth_throw (&r->error, BERTH_ERROR_INVALID_ARGUMENT, "layer is not valid gzip: %s",
                        r->z.msg ? r->z.msg : "inflate failed");
  return TRUE;
}

static void
gzip_end (Reader *r)
{
  inflateEnd (&r->z);
}
#endif

/* Produces the next uncompressed chunk; 0 at the end, -1 on error. */
static gssize
reader_next (Reader *r, const void **out)
{
  for (;;)
    {
      if (!reader_fill (r))
        return -1;
      gsize produced = 0;
      if (r->compression == COMPRESSION_NONE)
        {
          produced = r->in_len - r->in_pos;
          memcpy (r->outbuf, r->inbuf + r->in_pos, produced);
          r->in_pos = r->in_len;
        }
      else if (r->compression == COMPRESSION_GZIP)
        {
          if (r->in_eof && r->in_pos == r->in_len && gzip_finished (r))
            return 0;
          if (!gzip_step (r, &produced))
            return -1;
        }
      else
        {
          ZSTD_inBuffer zin = { r->inbuf, r->in_len, r->in_pos };
          ZSTD_outBuffer zout = { r->outbuf, CHUNK, 0 };
          size_t rc = ZSTD_decompressStream (r->zstd, &zout, &zin);
          if (ZSTD_isError (rc))
            {
              berth_throw (&r->error, BERTH_ERROR_INVALID_ARGUMENT, "layer is not valid zstd: %s", ZSTD_getErrorName (rc));
              return -1;
            }
          r->in_pos = zin.pos;
          produced = zout.pos;
          if (produced == 0 && r->in_eof)
            return 0;
        }
      if (produced == 0)
        {
          if (r->in_eof && r->in_pos == r->in_len)
            return 0;
          continue;
        }
      r->uncompressed += produced;
      if (r->uncompressed > r->max_uncompressed)
        {
          berth_throw (&r->error, BERTH_ERROR_INVALID_ARGUMENT,
                       "layer expands past %" G_GUINT64_FORMAT " bytes: refused as a decompression bomb",
                       r->max_uncompressed);
          return -1;
        }
      berth_digester_update (r->digester, r->outbuf, produced);
      *out = r->outbuf;
      return produced;
    }
}

static la_ssize_t
archive_read_cb (struct archive *a, void *data, const void **buffer)
{
  Reader *r = data;
  gssize n = reader_next (r, buffer);
  if (n < 0)
    {
      archive_set_error (a, EIO, "%s", r->error ? r->error->message : "read failed");
      return -1;
    }
  return n;
}

static void
reader_clear (Reader *r)
{
  if (r->compression == COMPRESSION_GZIP)
    gzip_end (r);
  if (r->zstd != NULL)
    ZSTD_freeDStream (r->zstd);
  g_free (r->inbuf);
  g_free (r->outbuf);
  berth_digester_free (r->digester);
  g_clear_error (&r->error);
}

static gboolean
compression_for (const char *media_type, Compression *out, GError **error)
{
  if (g_str_has_suffix (media_type, "+gzip") || g_str_has_suffix (media_type, ".tar.gzip")
      || g_str_equal (media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip"))
    *out = COMPRESSION_GZIP;
  else if (g_str_has_suffix (media_type, "+zstd") || g_str_has_suffix (media_type, ".tar.zstd"))
    *out = COMPRESSION_ZSTD;
  else if (g_str_has_suffix (media_type, ".tar") || g_str_equal (media_type, "application/vnd.docker.image.rootfs.diff.tar"))
    *out = COMPRESSION_NONE;
  else
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "layer media type %s is not supported", media_type);
  return TRUE;
}

/* ---------------- applying entries inside a root ---------------- */

/* overlayfs's opaque-dir marker. In a user namespace (a rootless berthd) trusted.* is out
 * of reach and the overlayfs snapshotter mounts with "userxattr", which reads user.*. */
static const char *
opaque_xattr (void)
{
  return berth_in_user_namespace () ? "user.overlay.opaque" : "trusted.overlay.opaque";
}

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
apply_metadata (int dirfd, const char *base, struct archive_entry *entry, gboolean is_symlink, GError **error)
{
  if (fchownat (dirfd, base, archive_entry_uid (entry), archive_entry_gid (entry), AT_SYMLINK_NOFOLLOW) < 0)
    return berth_throw_errno (error, "chown %s", base);
  if (is_symlink)
    return TRUE;
  if (fchmodat (dirfd, base, archive_entry_mode (entry) & 07777, 0) < 0)
    return berth_throw_errno (error, "chmod %s", base);
  /* xattrs, through an O_PATH-free fd so a symlink is never followed. */
  archive_entry_xattr_reset (entry);
  const char *xname;
  const void *xvalue;
  size_t xsize;
  if (archive_entry_xattr_count (entry) > 0)
    {
      berth_autofd int fd = openat (dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      while (fd >= 0 && archive_entry_xattr_next (entry, &xname, &xvalue, &xsize) == ARCHIVE_OK)
        if (fsetxattr (fd, xname, xvalue, xsize, 0) < 0 && errno != ENOTSUP)
          return berth_throw_errno (error, "setting xattr %s on %s", xname, base);
    }
  struct timespec times[2] = { { archive_entry_atime (entry), archive_entry_atime_nsec (entry) },
                               { archive_entry_mtime (entry), archive_entry_mtime_nsec (entry) } };
  if (utimensat (dirfd, base, times, AT_SYMLINK_NOFOLLOW) < 0)
    return berth_throw_errno (error, "setting times of %s", base);
  return TRUE;
}

static gboolean
write_file (struct archive *a, struct archive_entry *entry, int dirfd, const char *base, const char *path,
            GError **error)
{
  berth_autofd int fd = openat (dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return berth_throw_errno (error, "creating %s", path);
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
  return TRUE;
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
              if (fsetxattr (dirfd, opaque_xattr (), "y", 1, 0) < 0)
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
  struct stat existing;
  gboolean exists = fstatat (dirfd, base, &existing, AT_SYMLINK_NOFOLLOW) == 0;
  /* Replace whatever is there, except a directory that stays a directory. */
  if (exists && !(type == AE_IFDIR && S_ISDIR (existing.st_mode)))
    {
      t->cache_stale = TRUE;
      if (!remove_at (dirfd, base, error))
        return FALSE;
    }

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
      if (linkat (AT_FDCWD, proc, dirfd, base, AT_SYMLINK_FOLLOW) < 0)
        return berth_throw_errno (error, "hardlink %s → %s", path, target);
      return TRUE;
    }

  switch (type)
    {
    case AE_IFDIR:
      if (!exists || !S_ISDIR (existing.st_mode))
        if (mkdirat (dirfd, base, 0700) < 0)
          return berth_throw_errno (error, "creating directory %s", path);
      return apply_metadata (dirfd, base, entry, FALSE, error);
    case AE_IFREG:
      if (archive_entry_size (entry) < 0)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "hostile layer: %s has a negative size", path);
      if (!write_file (a, entry, dirfd, base, path, error))
        return FALSE;
      return apply_metadata (dirfd, base, entry, FALSE, error);
    case AE_IFLNK:
      if (symlinkat (archive_entry_symlink (entry), dirfd, base) < 0)
        return berth_throw_errno (error, "creating symlink %s", path);
      return apply_metadata (dirfd, base, entry, TRUE, error);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
      if (mknodat (dirfd, base, type | (archive_entry_mode (entry) & 07777), archive_entry_rdev (entry)) < 0)
        return berth_throw_errno (error, "creating device %s", path);
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
  if (!compression_for (layer->media_type, &r.compression, error))
    return NULL;
  gint64 size = 0;
  g_autoptr (GInputStream) in = berth_content_store_open_reader (self->content, layer->digest, &size, cancellable, error);
  if (in == NULL)
    return NULL;
  r.in = in;
  r.cancellable = cancellable;
  r.inbuf = g_malloc (CHUNK);
  r.outbuf = g_malloc (CHUNK);
  r.digester = berth_digester_new ();
  r.max_uncompressed = MAX ((guint64) size, (guint64) 1 << 20) * self->max_ratio;
  if (r.compression == COMPRESSION_GZIP)
    gzip_init (&r);
  if (r.compression == COMPRESSION_ZSTD)
    r.zstd = ZSTD_createDStream ();

  Target t = { root_fd, overlay, g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL), lower_fds,
               .cached_fd = -1 };
  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  gboolean ok = archive_read_open (a, &r, NULL, archive_read_cb, NULL) == ARCHIVE_OK;
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
          if (r.error != NULL)
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
  while (ok && (n = reader_next (&r, &rest)) > 0)
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
  reader_clear (&r);
  return applied;
}

/* Where to write: an overlay's upper dir or a bind's source directly; else a mount.
 * For an overlay, *lowers_out gets its lower dirs, topmost first. */
static const char *
direct_target (GPtrArray *mounts, gboolean *overlay, char ***lowers_out)
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

static BerthDescriptor *
walking_apply (BerthDiffer *differ, const BerthDescriptor *layer, GPtrArray *mounts, GHashTable *payloads,
               GCancellable *cancellable, GError **error)
{
  WalkingDiffer *self = WALKING_DIFFER (differ);
  if (layer == NULL || !berth_digest_validate (layer->digest, error))
    return layer ? NULL : (berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "no layer given"), NULL);
  gboolean overlay = FALSE;
  g_auto (GStrv) lowers = NULL;
  const char *dir = direct_target (mounts, &overlay, &lowers);
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

/* ---------------- compare: changes → a tar+gzip layer ---------------- */

#define MEDIA_TAR_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"

typedef struct {
  BerthContentWriter *writer;
  GCancellable *cancellable;
  z_stream z;
  BerthDigester *uncompressed;
  guint64 uncompressed_size;
  guint8 *buf;
  GError *error;
} LayerSink;

static gboolean
sink_deflate (LayerSink *sink, const void *data, gsize len, int flush)
{
  sink->z.next_in = (Bytef *) data;
  sink->z.avail_in = len;
  do
    {
      sink->z.next_out = sink->buf;
      sink->z.avail_out = CHUNK;
      deflate (&sink->z, flush);
      gsize produced = CHUNK - sink->z.avail_out;
      if (produced > 0 && !berth_content_writer_write (sink->writer, sink->buf, produced, sink->cancellable, &sink->error))
        return FALSE;
    }
  while (sink->z.avail_out == 0);
  return TRUE;
}

static la_ssize_t
sink_write (struct archive *a, void *data, const void *buffer, size_t length)
{
  LayerSink *sink = data;
  berth_digester_update (sink->uncompressed, buffer, length);
  sink->uncompressed_size += length;
  if (!sink_deflate (sink, buffer, length, Z_NO_FLUSH))
    {
      archive_set_error (a, EIO, "%s", sink->error->message);
      return -1;
    }
  return length;
}

/* Adds @path (relative to @root_fd) to the layer as @name, file data included. */
static gboolean
add_path (struct archive *a, int root_fd, const char *path, const char *name, GError **error)
{
  struct stat st;
  if (fstatat (root_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return berth_throw_errno (error, "stat %s", path);
  g_autoptr (GString) entry_name = g_string_new (name);
  struct archive_entry *entry = archive_entry_new ();
  archive_entry_copy_stat (entry, &st);
  if (S_ISDIR (st.st_mode))
    g_string_append_c (entry_name, '/');
  archive_entry_set_pathname (entry, entry_name->str);
  if (S_ISLNK (st.st_mode))
    {
      char target[PATH_MAX];
      ssize_t n = readlinkat (root_fd, path, target, sizeof target - 1);
      if (n < 0)
        {
          archive_entry_free (entry);
          return berth_throw_errno (error, "readlink %s", path);
        }
      target[n] = '\0';
      archive_entry_set_symlink (entry, target);
    }
  if (!S_ISREG (st.st_mode))
    archive_entry_set_size (entry, 0);
  gboolean ok = archive_write_header (a, entry) == ARCHIVE_OK;
  archive_entry_free (entry);
  if (!ok)
    return berth_throw (error, BERTH_ERROR_INTERNAL, "writing layer entry %s: %s", name, archive_error_string (a));
  if (S_ISREG (st.st_mode) && st.st_size > 0)
    {
      berth_autofd int fd = openat (root_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        return berth_throw_errno (error, "opening %s", path);
      g_autofree guint8 *buf = g_malloc (CHUNK);
      ssize_t n;
      while ((n = read (fd, buf, CHUNK)) > 0)
        if (archive_write_data (a, buf, n) != n)
          return berth_throw (error, BERTH_ERROR_INTERNAL, "writing %s into the layer: %s", name, archive_error_string (a));
      if (n < 0)
        return berth_throw_errno (error, "reading %s", path);
    }
  return TRUE;
}

static gboolean
add_marker (struct archive *a, const char *name, GError **error)
{
  struct archive_entry *entry = archive_entry_new ();
  archive_entry_set_pathname (entry, name);
  archive_entry_set_filetype (entry, AE_IFREG);
  archive_entry_set_perm (entry, 0644);
  archive_entry_set_size (entry, 0);
  gboolean ok = archive_write_header (a, entry) == ARCHIVE_OK;
  archive_entry_free (entry);
  return ok ? TRUE : berth_throw (error, BERTH_ERROR_INTERNAL, "writing %s: %s", name, archive_error_string (a));
}

static gboolean
same_as_lower (int lower_fd, const char *path, const struct stat *up)
{
  struct stat low;
  if (lower_fd < 0 || fstatat (lower_fd, path, &low, AT_SYMLINK_NOFOLLOW) < 0)
    return FALSE;
  if ((low.st_mode & S_IFMT) != (up->st_mode & S_IFMT) || low.st_mode != up->st_mode || low.st_uid != up->st_uid
      || low.st_gid != up->st_gid)
    return FALSE;
  if (S_ISDIR (up->st_mode))
    return TRUE;
  return low.st_size == up->st_size && low.st_mtim.tv_sec == up->st_mtim.tv_sec
         && low.st_mtim.tv_nsec == up->st_mtim.tv_nsec && low.st_rdev == up->st_rdev;
}

typedef struct {
  struct archive *a;
  int upper_fd;
  int lower_fd;     /* -1: the upper is an overlay upper dir, already a diff */
  gboolean overlay;
} Walk;

/* Emits upper's changes under @dir ("" for the root), parents before children. */
static gboolean
walk_upper (Walk *w, const char *dir, GError **error)
{
  berth_autofd int fd = *dir ? openat (w->upper_fd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                             : dup (w->upper_fd);
  if (fd < 0)
    return berth_throw_errno (error, "opening %s", dir);
  g_autofree char *self = g_strdup_printf ("/proc/self/fd/%d", fd);
  g_autoptr (GDir) d = g_dir_open (self, 0, error);
  if (d == NULL)
    return FALSE;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  for (guint i = 0; i < names->len; i++)
    {
      const char *base = names->pdata[i];
      g_autofree char *path = *dir ? g_build_filename (dir, base, NULL) : g_strdup (base);
      struct stat st;
      if (fstatat (w->upper_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return berth_throw_errno (error, "stat %s", path);
      if (w->overlay && S_ISCHR (st.st_mode) && st.st_rdev == makedev (0, 0))
        {
          g_autofree char *wh = *dir ? g_strdup_printf ("%s/" WHITEOUT_PREFIX "%s", dir, base)
                                     : g_strconcat (WHITEOUT_PREFIX, base, NULL);
          if (!add_marker (w->a, wh, error))
            return FALSE;
          continue;
        }
      gboolean changed = !same_as_lower (w->lower_fd, path, &st);
      if (changed && !add_path (w->a, w->upper_fd, path, path, error))
        return FALSE;
      if (S_ISDIR (st.st_mode))
        {
          char opaque = 0;
          g_autofree char *through = g_strdup_printf ("/proc/self/fd/%d/%s", w->upper_fd, path);
          if (w->overlay && lgetxattr (through, opaque_xattr (), &opaque, 1) == 1 && opaque == 'y')
            {
              g_autofree char *marker = g_build_filename (path, OPAQUE_MARKER, NULL);
              if (!add_marker (w->a, marker, error))
                return FALSE;
            }
          if (!walk_upper (w, path, error))
            return FALSE;
        }
    }
  return TRUE;
}

/* Plain mode: what lower has and upper lost becomes a whiteout. */
static gboolean
walk_deleted (Walk *w, const char *dir, GError **error)
{
  berth_autofd int fd = *dir ? openat (w->lower_fd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                             : dup (w->lower_fd);
  if (fd < 0)
    return TRUE;
  g_autofree char *self = g_strdup_printf ("/proc/self/fd/%d", fd);
  g_autoptr (GDir) d = g_dir_open (self, 0, NULL);
  const char *name;
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = *dir ? g_build_filename (dir, name, NULL) : g_strdup (name);
      struct stat up, low;
      if (fstatat (w->upper_fd, path, &up, AT_SYMLINK_NOFOLLOW) < 0)
        {
          g_autofree char *wh = *dir ? g_strdup_printf ("%s/" WHITEOUT_PREFIX "%s", dir, name)
                                     : g_strconcat (WHITEOUT_PREFIX, name, NULL);
          if (!add_marker (w->a, wh, error))
            return FALSE;
        }
      else if (fstatat (w->lower_fd, path, &low, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (low.st_mode) && S_ISDIR (up.st_mode)
               && !walk_deleted (w, path, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
mount_temp (WalkingDiffer *self, GPtrArray *mounts, char **dir_out, GError **error)
{
  g_autofree char *tmpl = g_build_filename (self->state, "diff-XXXXXX", NULL);
  *dir_out = g_mkdtemp (g_steal_pointer (&tmpl));
  if (*dir_out == NULL)
    return berth_throw_errno (error, "creating a mount point under %s", self->state);
  if (!berth_mount_list_mount (mounts, *dir_out, error))
    {
      rmdir (*dir_out);
      g_clear_pointer (dir_out, g_free);
      return FALSE;
    }
  return TRUE;
}

static void
unmount_temp (char *dir)
{
  if (dir == NULL)
    return;
  berth_mount_unmount (dir, NULL);
  rmdir (dir);
  g_free (dir);
}

/* Streams the changes @w describes into a new tar+gzip blob. */
static BerthDescriptor *
write_layer (WalkingDiffer *self, Walk *w, const char *ref, GHashTable *labels, GCancellable *cancellable,
             GError **error)
{
  g_autofree char *ingest = ref && *ref ? g_strdup (ref)
                                        : g_strdup_printf ("diff-%" G_GINT64_FORMAT "-%08x", g_get_real_time (), g_random_int ());
  g_autoptr (BerthContentWriter) writer = berth_content_store_open_writer (self->content, ingest, 0, NULL, cancellable, error);
  if (writer == NULL)
    return NULL;
  LayerSink sink = { writer, cancellable };
  sink.uncompressed = berth_digester_new ();
  sink.buf = g_malloc (CHUNK);
  deflateInit2 (&sink.z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  w->a = archive_write_new ();
  archive_write_set_format_pax_restricted (w->a);
  archive_write_set_bytes_in_last_block (w->a, 1);
  gboolean ok = archive_write_open (w->a, &sink, NULL, sink_write, NULL) == ARCHIVE_OK
                && walk_upper (w, "", error) && (w->overlay || w->lower_fd < 0 || walk_deleted (w, "", error));
  if (ok && archive_write_close (w->a) != ARCHIVE_OK)
    ok = berth_throw (error, BERTH_ERROR_INTERNAL, "finishing the layer: %s", archive_error_string (w->a));
  archive_write_free (w->a);
  ok = ok && sink_deflate (&sink, NULL, 0, Z_FINISH);
  if (!ok && sink.error != NULL && error != NULL && *error == NULL)
    g_propagate_error (error, g_steal_pointer (&sink.error));
  g_autofree char *diff_id = berth_digester_get_digest (sink.uncompressed);
  g_autofree char *digest = NULL;
  if (ok)
    {
      g_autoptr (GError) commit_error = NULL;
      digest = berth_content_writer_commit (writer, 0, NULL, cancellable, &commit_error);
      /* The same change made twice is the same blob. */
      if (digest == NULL && g_error_matches (commit_error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
        digest = berth_content_writer_digest (writer);
      else if (digest == NULL)
        ok = (g_propagate_error (error, g_steal_pointer (&commit_error)), FALSE);
    }
  BerthDescriptor *result = NULL;
  if (ok)
    {
      g_autoptr (BerthContentInfo) info = berth_content_store_info (self->content, digest, cancellable, NULL);
      result = berth_descriptor_new (MEDIA_TAR_GZIP, digest, info ? info->size : 0);
      result->annotations = berth_labels_copy (labels);
      g_hash_table_insert (result->annotations, g_strdup ("containerd.io/uncompressed"), g_strdup (diff_id));
    }
  else
    berth_content_store_abort (self->content, ingest, NULL, NULL);
  deflateEnd (&sink.z);
  berth_digester_free (sink.uncompressed);
  g_free (sink.buf);
  g_clear_error (&sink.error);
  return result;
}

static BerthDescriptor *
walking_compare (BerthDiffer *differ, GPtrArray *lower, GPtrArray *upper, const char *media_type, const char *ref,
                 GHashTable *labels, GCancellable *cancellable, GError **error)
{
  WalkingDiffer *self = WALKING_DIFFER (differ);
  if (media_type != NULL && *media_type != '\0' && !g_str_equal (media_type, MEDIA_TAR_GZIP))
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "layers of type %s cannot be made yet (only %s)", media_type,
                        MEDIA_TAR_GZIP), NULL;
  gboolean overlay = FALSE;
  g_auto (GStrv) upper_lowers = NULL;
  const char *direct = direct_target (upper, &overlay, &upper_lowers);
  g_autofree char *upper_dir = NULL, *lower_dir = NULL;
  Walk w = { NULL, -1, -1, FALSE };
  BerthDescriptor *result = NULL;
  if (direct != NULL && overlay)
    w.upper_fd = open (direct, O_RDONLY | O_DIRECTORY | O_CLOEXEC), w.overlay = TRUE;
  else
    {
      if (!mount_temp (self, upper, &upper_dir, error))
        return NULL;
      if (lower != NULL && lower->len > 0 && !mount_temp (self, lower, &lower_dir, error))
        goto out;
      w.upper_fd = open (upper_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      w.lower_fd = lower_dir ? open (lower_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    }
  if (w.upper_fd < 0)
    {
      berth_throw_errno (error, "opening the upper tree");
      goto out;
    }
  result = write_layer (self, &w, ref, labels, cancellable, error);
out:
  if (w.upper_fd >= 0)
    close (w.upper_fd);
  if (w.lower_fd >= 0)
    close (w.lower_fd);
  unmount_temp (g_steal_pointer (&upper_dir));
  unmount_temp (g_steal_pointer (&lower_dir));
  return result;
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
