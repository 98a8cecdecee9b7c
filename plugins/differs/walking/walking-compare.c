/* walking-compare.c — making a layer: the changes between two snapshots (or an overlay
 * upper dir, already a diff) walked in order and written as a tar+gzip blob into the
 * content store, deletions as OCI whiteouts, opaque dirs as their marker.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "walking-private.h"
#include "walking-tar-writer.h"

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

static gboolean
sink_write (gpointer data, const void *buffer, gsize length, GError **error)
{
  LayerSink *sink = data;
  berth_digester_update (sink->uncompressed, buffer, length);
  sink->uncompressed_size += length;
  if (!sink_deflate (sink, buffer, length, Z_NO_FLUSH))
    {
      g_propagate_error (error, g_steal_pointer (&sink->error));
      return FALSE;
    }
  return TRUE;
}

/* Adds @path (relative to @root_fd) to the layer as @name, file data included. */
static gboolean
add_path (TarWriter *tar, int root_fd, const char *path, const char *name, GError **error)
{
  struct stat st;
  if (fstatat (root_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return berth_throw_errno (error, "stat %s", path);
  g_autoptr (GString) entry_name = g_string_new (name);
  if (S_ISDIR (st.st_mode))
    g_string_append_c (entry_name, '/');
  char target[PATH_MAX] = "";
  if (S_ISLNK (st.st_mode))
    {
      ssize_t n = readlinkat (root_fd, path, target, sizeof target - 1);
      if (n < 0)
        return berth_throw_errno (error, "readlink %s", path);
      target[n] = '\0';
    }
  if (!walking_tar_writer_header (tar, entry_name->str, &st, S_ISLNK (st.st_mode) ? target : NULL, error))
    return g_prefix_error (error, "writing layer entry %s: ", name), FALSE;
  if (S_ISREG (st.st_mode) && st.st_size > 0)
    {
      berth_autofd int fd = openat (root_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        return berth_throw_errno (error, "opening %s", path);
      g_autofree guint8 *buf = g_malloc (CHUNK);
      /* A file grown since the stat is cut at the size in its header (a shrunk one is
       * padded with zeros when the next entry starts), as libarchive did. */
      guint64 left = st.st_size;
      ssize_t n = 0;
      while (left > 0 && (n = read (fd, buf, MIN (CHUNK, left))) > 0)
        {
          if (!walking_tar_writer_data (tar, buf, n, error))
            return g_prefix_error (error, "writing %s into the layer: ", name), FALSE;
          left -= n;
        }
      if (n < 0)
        return berth_throw_errno (error, "reading %s", path);
    }
  return TRUE;
}

static gboolean
add_marker (TarWriter *tar, const char *name, GError **error)
{
  /* Owned by root, mtime 0: what libarchive wrote for a bare entry. */
  struct stat st = { .st_mode = S_IFREG | 0644 };
  return walking_tar_writer_header (tar, name, &st, NULL, error) ? TRUE
                                                                : (g_prefix_error (error, "writing %s: ", name), FALSE);
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
  TarWriter tar;
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
          if (!add_marker (&w->tar, wh, error))
            return FALSE;
          continue;
        }
      gboolean changed = !same_as_lower (w->lower_fd, path, &st);
      if (changed && !add_path (&w->tar, w->upper_fd, path, path, error))
        return FALSE;
      if (S_ISDIR (st.st_mode))
        {
          char opaque = 0;
          g_autofree char *through = g_strdup_printf ("/proc/self/fd/%d/%s", w->upper_fd, path);
          if (w->overlay && lgetxattr (through, walking_opaque_xattr (), &opaque, 1) == 1 && opaque == 'y')
            {
              g_autofree char *marker = g_build_filename (path, OPAQUE_MARKER, NULL);
              if (!add_marker (&w->tar, marker, error))
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
          if (!add_marker (&w->tar, wh, error))
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
  walking_tar_writer_init (&w->tar, sink_write, &sink);
  gboolean ok = walk_upper (w, "", error) && (w->overlay || w->lower_fd < 0 || walk_deleted (w, "", error));
  if (ok && !walking_tar_writer_close (&w->tar, error))
    ok = (g_prefix_error (error, "finishing the layer: "), FALSE);
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

BerthDescriptor *
walking_compare (BerthDiffer *differ, GPtrArray *lower, GPtrArray *upper, const char *media_type, const char *ref,
                 GHashTable *labels, GCancellable *cancellable, GError **error)
{
  WalkingDiffer *self = WALKING_DIFFER (differ);
  if (media_type != NULL && *media_type != '\0' && !g_str_equal (media_type, MEDIA_TAR_GZIP))
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "layers of type %s cannot be made yet (only %s)", media_type,
                        MEDIA_TAR_GZIP), NULL;
  gboolean overlay = FALSE;
  g_auto (GStrv) upper_lowers = NULL;
  const char *direct = walking_direct_target (upper, &overlay, &upper_lowers);
  g_autofree char *upper_dir = NULL, *lower_dir = NULL;
  Walk w = { .upper_fd = -1, .lower_fd = -1 };
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
