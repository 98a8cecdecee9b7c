/* ostree.c — the ostree snapshotter: every committed snapshot an OSTree commit in a
 * bare repo, so a file that several images hold (in any layer) is stored once.
 *
 * An active snapshot is an overlay upper dir like overlayfs's. Commit writes that upper
 * dir on top of the parent's commit tree (whiteouts and opaque dirs applied as
 * deletions), so each commit is the whole merged tree, with the parent's commit as its
 * parent: a child of a committed snapshot then needs exactly one lower dir, a cached
 * hardlink checkout of that commit, however many layers the image has. Once committed,
 * the upper dir is dropped: the repo holds the data.
 *
 * Crash safety: the commit's objects are made durable, then the ref "berth/<id>", then
 * the record turns committed; a crash anywhere leaves the snapshot active (a ref without
 * a committed record is rewritten by the next commit and dropped by remove or cleanup).
 *
 * Locks: commits hold repo_lock shared, prune holds it exclusively (an object a commit
 * in flight reuses is unreferenced until that commit's ref is written). An OstreeRepo
 * has one transaction at a time, so commits take turns on txn_lock for theirs. Checkouts are
 * made and evicted under the store's lock (populate, removed, cleanup) or checkout_lock.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>

#include <ostree.h>

#include <berth/berth-snapshotter-base.h>

#define REF_PREFIX "berth/"

#define OSTREE_TYPE_SNAPSHOTTER (ostree_snapshotter_get_type ())
G_DECLARE_FINAL_TYPE (OstreeSnapshotter, ostree_snapshotter, OSTREE, SNAPSHOTTER, GObject)

struct _OstreeSnapshotter {
  BerthSnapObject base;
  OstreeRepo *repo;
  char *checkouts; /* "<root>/checkouts/<id>": one per committed snapshot in use or cached */
  gboolean fsync;
  guint cache_size; /* checkouts kept that no snapshot uses */
  GRWLock repo_lock;
  GMutex txn_lock;
  GMutex checkout_lock;
};

G_DEFINE_DYNAMIC_TYPE_EXTENDED (OstreeSnapshotter, ostree_snapshotter, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_SNAPSHOTTER, berth_snap_store_iface_init))

static OstreeSnapshotter *
self_of (BerthSnapStore *store)
{
  return berth_snap_store_get_data (store);
}

static char *
ref_of (guint64 id)
{
  return g_strdup_printf (REF_PREFIX "%" G_GUINT64_FORMAT, id);
}

static char *
checkout_path (OstreeSnapshotter *self, guint64 id)
{
  g_autofree char *name = g_strdup_printf ("%" G_GUINT64_FORMAT, id);
  return g_build_filename (self->checkouts, name, NULL);
}

/* The commit of committed snapshot @id. */
static char *
commit_of (OstreeSnapshotter *self, guint64 id, GError **error)
{
  g_autofree char *ref = ref_of (id);
  char *checksum = NULL;
  if (!ostree_repo_resolve_rev (self->repo, ref, FALSE, &checksum, error))
    {
      g_prefix_error (error, "snapshot %" G_GUINT64_FORMAT ": ", id);
      return NULL;
    }
  return checksum;
}

/* On a syncing repo: everything written so far reaches the disk (one syncfs instead of
 * libostree's fsync per object). */
static gboolean
sync_repo (OstreeSnapshotter *self, GError **error)
{
  if (self->fsync && syncfs (ostree_repo_get_dfd (self->repo)) < 0)
    return berth_throw_errno (error, "syncing the ostree repo");
  return TRUE;
}

/* ---------------- checkouts ---------------- */

/* Paths of @dir's tree holding an object an earlier path holds too (files with data and
 * symlinks; empty files are copies anyway). */
static gboolean
collect_repeats (GFile *dir, GHashTable *seen, GHashTable *repeats, GCancellable *cancellable, GError **error)
{
  g_autoptr (GFileEnumerator) children = g_file_enumerate_children (dir, "standard::name,standard::type,standard::size",
                                                                     G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, cancellable, error);
  if (children == NULL)
    return FALSE;
  for (;;)
    {
      GFileInfo *info;
      GFile *child;
      if (!g_file_enumerator_iterate (children, &info, &child, cancellable, error))
        return FALSE;
      if (info == NULL)
        return TRUE;
      GFileType type = g_file_info_get_file_type (info);
      if (type == G_FILE_TYPE_DIRECTORY)
        {
          if (!collect_repeats (child, seen, repeats, cancellable, error))
            return FALSE;
          continue;
        }
      if (type == G_FILE_TYPE_REGULAR && g_file_info_get_size (info) == 0)
        continue;
      const char *checksum = ostree_repo_file_get_checksum (OSTREE_REPO_FILE (child));
      if (!g_hash_table_add (seen, g_strdup (checksum)))
        g_hash_table_add (repeats, g_file_get_path (child));
    }
}

static OstreeRepoCheckoutFilterResult
skip_repeats (OstreeRepo *repo, const char *path, struct stat *st, gpointer repeats)
{
  return g_hash_table_contains (repeats, path) ? OSTREE_REPO_CHECKOUT_FILTER_SKIP : OSTREE_REPO_CHECKOUT_FILTER_ALLOW;
}

/* Checks @checksum out into @dest by hardlinks, except that identical files within the
 * tree get inodes of their own: a hardlink checkout would make them one inode, which a
 * container (and containerd's suite) can tell from separate files. The price: such
 * repeats take space in each checkout; across snapshots files stay shared. Hardlinks a
 * layer had are separate files here too (OSTree stores content, not link groups). */
static gboolean
checkout_tree (OstreeSnapshotter *self, const char *checksum, const char *dest, GError **error)
{
  g_autoptr (GFile) root = NULL;
  if (!ostree_repo_read_commit (self->repo, checksum, &root, NULL, NULL, error))
    return FALSE;
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) repeats = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (!collect_repeats (root, seen, repeats, NULL, error))
    return FALSE;
  /* Hardlinks to the repo's objects: no data is copied. A container never writes
   * through them: the checkout is only ever an overlay lower dir or a read-only bind. */
  OstreeRepoCheckoutAtOptions options = { 0 };
  options.mode = OSTREE_REPO_CHECKOUT_MODE_NONE;
  options.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_NONE;
  options.no_copy_fallback = TRUE;
  /* Every empty file is one object: linking them all would hit the link limit. */
  options.force_copy_zerosized = TRUE;
  if (g_hash_table_size (repeats) > 0)
    {
      options.filter = skip_repeats;
      options.filter_user_data = repeats;
    }
  if (!ostree_repo_checkout_at (self->repo, &options, AT_FDCWD, dest, checksum, NULL, error))
    return FALSE;
  GHashTableIter iter;
  const char *path;
  g_hash_table_iter_init (&iter, repeats);
  while (g_hash_table_iter_next (&iter, (gpointer *) &path, NULL))
    {
      /* One file by subpath: ostree writes it into the (existing) parent dir. */
      OstreeRepoCheckoutAtOptions copy = { 0 };
      copy.mode = OSTREE_REPO_CHECKOUT_MODE_NONE;
      copy.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_NONE;
      copy.force_copy = TRUE;
      copy.subpath = path;
      g_autofree char *parent = g_path_get_dirname (path);
      g_autofree char *parent_dest = g_build_filename (dest, parent, NULL);
      if (!ostree_repo_checkout_at (self->repo, &copy, AT_FDCWD, parent_dest, checksum, NULL, error))
        {
          g_prefix_error (error, "copying %s: ", path);
          return FALSE;
        }
    }
  return TRUE;
}

/* Makes (or refreshes the time of) the checkout of committed snapshot @id. */
static char *
ensure_checkout (OstreeSnapshotter *self, guint64 id, GError **error)
{
  g_autofree char *path = checkout_path (self, id);
  g_mutex_lock (&self->checkout_lock);
  gboolean ok = TRUE;
  if (utimensat (AT_FDCWD, path, NULL, 0) < 0)
    {
      g_autofree char *checksum = commit_of (self, id, error);
      g_autofree char *tmp = g_strdup_printf ("%s.tmp-%08x", path, g_random_int ());
      gint64 start = g_get_monotonic_time ();
      ok = checksum != NULL && checkout_tree (self, checksum, tmp, error);
      if (ok && rename (tmp, path) < 0)
        ok = berth_throw_errno (error, "renaming checkout %s", tmp);
      if (!ok)
        {
          berth_remove_tree_at (AT_FDCWD, tmp, NULL);
          g_prefix_error (error, "checking out snapshot %" G_GUINT64_FORMAT ": ", id);
        }
      else
        g_debug ("checked out %s into %s in %" G_GINT64_FORMAT " us", checksum, path, g_get_monotonic_time () - start);
    }
  g_mutex_unlock (&self->checkout_lock);
  return ok ? g_steal_pointer (&path) : NULL;
}

typedef struct {
  GHashTable *ids;   /* key → id */
  GPtrArray *parents; /* keys of the parents of active snapshots and views */
} InUse;

static gboolean
note_in_use (BerthSnapRecord *record, gpointer data)
{
  InUse *u = data;
  g_hash_table_insert (u->ids, g_strdup (record->key), g_memdup2 (&record->id, sizeof record->id));
  if (record->kind != BERTH_SNAPSHOT_KIND_COMMITTED && record->parent != NULL)
    g_ptr_array_add (u->parents, g_strdup (record->parent));
  return TRUE;
}

typedef struct {
  char *path;
  gint64 mtime;
} Cached;

static gint
newest_first (gconstpointer a, gconstpointer b)
{
  const Cached *x = *(Cached *const *) a, *y = *(Cached *const *) b;
  return x->mtime < y->mtime ? 1 : x->mtime > y->mtime ? -1 : 0;
}

static void
cached_free (Cached *c)
{
  g_free (c->path);
  g_free (c);
}

/* Removes the checkouts no snapshot uses beyond the newest cache_size, and any left
 * half-made or of a snapshot that is gone. Under the store's lock. */
static gboolean
evict_checkouts (OstreeSnapshotter *self, GError **error)
{
  InUse u = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free), g_ptr_array_new_with_free_func (g_free) };
  gboolean ok = berth_snap_store_foreach (self->base.store, note_in_use, &u, error);
  g_autoptr (GHashTable) in_use = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) known = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init (&iter, u.ids);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_hash_table_add (known, g_strdup_printf ("%" G_GUINT64_FORMAT, *(guint64 *) value));
  for (guint i = 0; i < u.parents->len; i++)
    if ((value = g_hash_table_lookup (u.ids, u.parents->pdata[i])) != NULL)
      g_hash_table_add (in_use, g_strdup_printf ("%" G_GUINT64_FORMAT, *(guint64 *) value));
  g_hash_table_unref (u.ids);
  g_ptr_array_unref (u.parents);

  g_autoptr (GPtrArray) unused = g_ptr_array_new_with_free_func ((GDestroyNotify) cached_free);
  g_mutex_lock (&self->checkout_lock);
  g_autoptr (GDir) dir = ok ? g_dir_open (self->checkouts, 0, error) : NULL;
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (self->checkouts, name, NULL);
      struct stat st;
      if (!g_hash_table_contains (known, name))
        {
          g_debug ("cleanup: removing stale checkout %s", path);
          berth_remove_tree_at (AT_FDCWD, path, NULL);
        }
      else if (!g_hash_table_contains (in_use, name) && lstat (path, &st) == 0)
        {
          Cached *c = g_new (Cached, 1);
          *c = (Cached) { g_steal_pointer (&path), st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000 };
          g_ptr_array_add (unused, c);
        }
    }
  g_ptr_array_sort (unused, newest_first);
  for (guint i = self->cache_size; i < unused->len && ok; i++)
    {
      const Cached *c = unused->pdata[i];
      g_debug ("evicting checkout %s", c->path);
      ok = berth_remove_tree_at (AT_FDCWD, c->path, error);
    }
  g_mutex_unlock (&self->checkout_lock);
  return ok && (dir != NULL);
}

/* ---------------- the BerthSnapOps ---------------- */

static gboolean
ostree_populate (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error)
{
  if (parents->len == 0)
    return TRUE;
  g_autofree char *checkout = ensure_checkout (self_of (store), ((BerthSnapRecord *) parents->pdata[0])->id, error);
  return checkout != NULL;
}

static GPtrArray *
ostree_mounts (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GError **error)
{
  /* The nearest parent's commit is the whole merged tree: one lower dir. */
  g_autofree char *checkout = NULL;
  if (parents->len > 0 && (checkout = ensure_checkout (self_of (store), ((BerthSnapRecord *) parents->pdata[0])->id, error)) == NULL)
    return NULL;
  const char *lowers[] = { checkout, NULL };
  return berth_snap_store_layer_mounts (store, record, lowers);
}

static gboolean
is_whiteout (const struct stat *st)
{
  return S_ISCHR (st->st_mode) && st->st_rdev == makedev (0, 0);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* @path's xattrs without overlayfs's own (opaque, origin, impure…), which describe the
 * upper dir, not the image; sorted, so equal files get equal checksums. */
static GVariant *
image_xattrs (const char *path, GError **error)
{
  GVariantBuilder builder;
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(ayay)"));
  ssize_t len = llistxattr (path, NULL, 0);
  g_autofree char *names = len > 0 ? g_malloc (len) : NULL;
  if (len > 0)
    len = llistxattr (path, names, len);
  if (len < 0 && errno != ENOTSUP)
    {
      g_variant_builder_clear (&builder);
      return berth_throw_errno (error, "listing the xattrs of %s", path), NULL;
    }
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  for (ssize_t off = 0; off < len; off += strlen (names + off) + 1)
    if (!g_str_has_prefix (names + off, "trusted.overlay."))
      g_ptr_array_add (sorted, names + off);
  g_ptr_array_sort (sorted, compare_strings);
  for (guint i = 0; i < sorted->len; i++)
    {
      const char *name = sorted->pdata[i];
      ssize_t size = lgetxattr (path, name, NULL, 0);
      g_autofree guint8 *value = size >= 0 ? g_malloc (size + 1) : NULL;
      if (size < 0 || (size = lgetxattr (path, name, value, size)) < 0)
        {
          g_variant_builder_clear (&builder);
          return berth_throw_errno (error, "reading xattr %s of %s", name, path), NULL;
        }
      g_variant_builder_add (&builder, "(@ay@ay)", g_variant_new_bytestring (name),
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, value, size, 1));
    }
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static GFileInfo *
file_info_of (const struct stat *st, GFileType type)
{
  GFileInfo *info = g_file_info_new ();
  g_file_info_set_file_type (info, type);
  g_file_info_set_size (info, type == G_FILE_TYPE_REGULAR ? st->st_size : 0);
  g_file_info_set_attribute_uint32 (info, "unix::uid", st->st_uid);
  g_file_info_set_attribute_uint32 (info, "unix::gid", st->st_gid);
  g_file_info_set_attribute_uint32 (info, "unix::mode", st->st_mode);
  return info;
}

/* Writes one file or symlink of the upper dir; its content checksum. */
static char *
write_file (OstreeSnapshotter *self, const char *path, const struct stat *st, GCancellable *cancellable, GError **error)
{
  g_autoptr (GFileInfo) info = file_info_of (st, S_ISLNK (st->st_mode) ? G_FILE_TYPE_SYMBOLIC_LINK : G_FILE_TYPE_REGULAR);
  g_autoptr (GInputStream) input = NULL;
  if (S_ISLNK (st->st_mode))
    {
      char target[PATH_MAX + 1];
      ssize_t n = readlink (path, target, PATH_MAX);
      if (n < 0)
        return berth_throw_errno (error, "reading symlink %s", path), NULL;
      target[n] = '\0';
      g_file_info_set_symlink_target (info, target);
    }
  else
    {
      int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0)
        return berth_throw_errno (error, "opening %s", path), NULL;
      input = g_unix_input_stream_new (fd, TRUE);
    }
  g_autoptr (GVariant) xattrs = image_xattrs (path, error);
  g_autoptr (GInputStream) content = NULL;
  guint64 length = 0;
  g_autofree guchar *csum = NULL;
  if (xattrs == NULL || !ostree_raw_file_to_content_stream (input, info, xattrs, &content, &length, cancellable, error)
      || !ostree_repo_write_content (self->repo, NULL, content, length, &csum, cancellable, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  return ostree_checksum_from_bytes (csum);
}

static gboolean
write_dir_meta (OstreeSnapshotter *self, OstreeMutableTree *mtree, const char *path, const struct stat *st,
                GCancellable *cancellable, GError **error)
{
  g_autoptr (GFileInfo) info = file_info_of (st, G_FILE_TYPE_DIRECTORY);
  g_autoptr (GVariant) xattrs = image_xattrs (path, error);
  if (xattrs == NULL)
    return FALSE;
  g_autoptr (GVariant) meta = g_variant_ref_sink (ostree_create_directory_metadata (info, xattrs));
  g_autofree guchar *csum = NULL;
  if (!ostree_repo_write_metadata (self->repo, OSTREE_OBJECT_TYPE_DIR_META, NULL, meta, &csum, cancellable, error))
    return FALSE;
  g_autofree char *checksum = ostree_checksum_from_bytes (csum);
  ostree_mutable_tree_set_metadata_checksum (mtree, checksum);
  return TRUE;
}

/* A file of the upper dir to write: hashing and copying are most of a commit's time,
 * so files are written by a pool of threads (libostree's writes within a transaction
 * are thread-safe) and entered into their trees afterwards (mutable trees are not). */
typedef struct {
  OstreeMutableTree *mtree;
  char *name;
  char *path;
  struct stat st;
  char *checksum;
  GError *error;
} FileJob;

static void
file_job_free (FileJob *job)
{
  g_object_unref (job->mtree);
  g_free (job->name);
  g_free (job->path);
  g_free (job->checksum);
  g_clear_error (&job->error);
  g_free (job);
}

typedef struct {
  OstreeSnapshotter *self;
  GCancellable *cancellable;
} FileJobContext;

static void
file_job_run (gpointer data, gpointer user_data)
{
  FileJob *job = data;
  FileJobContext *ctx = user_data;
  job->checksum = write_file (ctx->self, job->path, &job->st, ctx->cancellable, &job->error);
}

/* Runs every job, in parallel when there are enough, then enters the files. */
static gboolean
write_files (OstreeSnapshotter *self, GPtrArray *jobs, GCancellable *cancellable, GError **error)
{
  FileJobContext ctx = { self, cancellable };
  guint threads = MIN (g_get_num_processors (), 4);
  GThreadPool *pool = jobs->len >= 16 && threads > 1 ? g_thread_pool_new (file_job_run, &ctx, threads, FALSE, NULL) : NULL;
  for (guint i = 0; i < jobs->len; i++)
    if (pool == NULL || !g_thread_pool_push (pool, jobs->pdata[i], NULL))
      file_job_run (jobs->pdata[i], &ctx);
  if (pool != NULL)
    g_thread_pool_free (pool, FALSE, TRUE);
  for (guint i = 0; i < jobs->len; i++)
    {
      FileJob *job = jobs->pdata[i];
      if (job->checksum == NULL)
        {
          g_propagate_error (error, g_steal_pointer (&job->error));
          return FALSE;
        }
      if (!ostree_mutable_tree_replace_file (job->mtree, job->name, job->checksum, error))
        return FALSE;
    }
  return TRUE;
}

/* Lays the upper dir @dfd over @mtree (the parent's tree, or an empty one): what it
 * whites out, makes opaque or replaces by another type goes, what it holds is added.
 * Overlay's whiteouts are char devices 0/0; any other special file is refused. */
static gboolean
merge_dir (OstreeSnapshotter *self, OstreeMutableTree *mtree, int dfd, const char *path, GPtrArray *jobs,
           GCancellable *cancellable, GError **error)
{
  struct stat dir_st;
  if (fstat (dfd, &dir_st) < 0)
    return berth_throw_errno (error, "stat %s", path);
  if (!write_dir_meta (self, mtree, path, &dir_st, cancellable, error))
    return FALSE;
  DIR *dir = berth_fdopendir (dfd, path, error);
  if (dir == NULL)
    return FALSE;
  gboolean ok = TRUE;
  const char *name = NULL;
  while (ok && (name = berth_dir_next (dir)) != NULL)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          ok = FALSE;
          break;
        }
      g_autofree char *child = g_build_filename (path, name, NULL);
      struct stat st;
      if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          ok = berth_throw_errno (error, "stat %s", child);
          break;
        }
      g_autofree char *file_checksum = NULL;
      g_autoptr (OstreeMutableTree) subdir = NULL;
      g_autoptr (GError) lookup_error = NULL;
      if (!ostree_mutable_tree_lookup (mtree, name, &file_checksum, &subdir, &lookup_error)
          && !g_error_matches (lookup_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&lookup_error), "%s: ", child);
          ok = FALSE;
          break;
        }
      if (is_whiteout (&st))
        {
          if (file_checksum != NULL || subdir != NULL)
            ok = ostree_mutable_tree_remove (mtree, name, TRUE, error);
        }
      else if (S_ISDIR (st.st_mode))
        {
          char opaque = 0;
          berth_autofd int sub = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            {
              ok = berth_throw_errno (error, "opening %s", child);
              break;
            }
          if (file_checksum != NULL
              || (subdir != NULL && fgetxattr (sub, "trusted.overlay.opaque", &opaque, 1) == 1 && opaque == 'y'))
            {
              g_clear_object (&subdir);
              ok = ostree_mutable_tree_remove (mtree, name, TRUE, error);
            }
          ok = ok && (subdir != NULL || ostree_mutable_tree_ensure_dir (mtree, name, &subdir, error))
               && merge_dir (self, subdir, sub, child, jobs, cancellable, error);
        }
      else if (S_ISREG (st.st_mode) || S_ISLNK (st.st_mode))
        {
          ok = subdir == NULL || ostree_mutable_tree_remove (mtree, name, TRUE, error);
          FileJob *job = g_new0 (FileJob, 1);
          *job = (FileJob) { g_object_ref (mtree), g_strdup (name), g_steal_pointer (&child), st };
          g_ptr_array_add (jobs, job);
        }
      else
        ok = berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                          "%s is a device, fifo or socket, which an ostree repo cannot hold (use another snapshotter)", child);
    }
  if (ok && errno != 0)
    ok = berth_throw_errno (error, "reading %s", path);
  closedir (dir);
  return ok;
}

/* Writes the objects of @record's merged tree and its commit; the checksum. */
static char *
write_commit (OstreeSnapshotter *self, const BerthSnapRecord *record, const char *parent_commit, GCancellable *cancellable,
              GError **error)
{
  g_autofree char *fs = berth_snap_store_path (self->base.store, record->id, "fs");
  g_autoptr (OstreeMutableTree) mtree = parent_commit ? ostree_mutable_tree_new_from_commit (self->repo, parent_commit, error)
                                                      : ostree_mutable_tree_new ();
  if (mtree == NULL)
    return NULL;
  berth_autofd int fs_fd = open (fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fs_fd < 0)
    return berth_throw_errno (error, "opening %s", fs), NULL;
  g_autoptr (GPtrArray) jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) file_job_free);
  gboolean ok = merge_dir (self, mtree, fs_fd, fs, jobs, cancellable, error) && write_files (self, jobs, cancellable, error);
  g_autoptr (GFile) root = NULL;
  char *checksum = NULL;
  if (!ok || !ostree_repo_write_mtree (self->repo, mtree, &root, cancellable, error)
      || !ostree_repo_write_commit (self->repo, parent_commit, record->key, NULL, NULL, OSTREE_REPO_FILE (root), &checksum,
                                    cancellable, error))
    return NULL;
  return checksum;
}

static gboolean
ostree_commit (BerthSnapStore *store, const BerthSnapRecord *record, GPtrArray *parents, GCancellable *cancellable,
               GError **error)
{
  OstreeSnapshotter *self = self_of (store);
  gint64 start = g_get_monotonic_time ();
  g_autofree char *parent_commit = parents->len ? commit_of (self, ((BerthSnapRecord *) parents->pdata[0])->id, error) : NULL;
  if (parents->len && parent_commit == NULL)
    return FALSE;
  g_autofree char *ref = ref_of (record->id);
  g_autofree char *checksum = NULL;
  g_rw_lock_reader_lock (&self->repo_lock);
  g_mutex_lock (&self->txn_lock);
  gboolean ok = ostree_repo_prepare_transaction (self->repo, NULL, cancellable, error);
  if (ok)
    {
      checksum = write_commit (self, record, parent_commit, cancellable, error);
      ok = checksum != NULL && ostree_repo_commit_transaction (self->repo, NULL, cancellable, error);
      if (!ok)
        ostree_repo_abort_transaction (self->repo, NULL, NULL);
    }
  g_mutex_unlock (&self->txn_lock);
  /* Objects durable before the ref names them, the ref durable before the record says
   * committed. */
  ok = ok && sync_repo (self, error) && ostree_repo_set_ref_immediate (self->repo, NULL, ref, checksum, cancellable, error)
       && sync_repo (self, error);
  g_rw_lock_reader_unlock (&self->repo_lock);
  if (!ok)
    {
      g_prefix_error (error, "committing snapshot %s to the ostree repo: ", record->key);
      return FALSE;
    }
  g_debug ("snapshot %s is commit %s (%" G_GINT64_FORMAT " us)", record->key, checksum, g_get_monotonic_time () - start);
  return TRUE;
}

static void
ostree_committed (BerthSnapStore *store, const BerthSnapRecord *record)
{
  /* The repo has it all now; cleanup retries this after a crash. */
  g_autofree char *dir = berth_snap_store_path (store, record->id, NULL);
  g_autoptr (GError) error = NULL;
  if (!berth_remove_tree_at (AT_FDCWD, dir, &error) || !evict_checkouts (self_of (store), &error))
    g_warning ("after committing %s: %s", record->key, error->message);
}

static gboolean
prune (OstreeSnapshotter *self, GCancellable *cancellable, GError **error)
{
  gint total = 0, pruned = 0;
  guint64 freed = 0;
  g_rw_lock_writer_lock (&self->repo_lock);
  /* Only what a ref's tree reaches stays: parents are refs of their own. */
  gboolean ok = ostree_repo_prune (self->repo, OSTREE_REPO_PRUNE_FLAGS_REFS_ONLY, 0, &total, &pruned, &freed,
                                   cancellable, error);
  g_rw_lock_writer_unlock (&self->repo_lock);
  if (ok)
    g_debug ("prune: %d of %d objects removed, %" G_GUINT64_FORMAT " bytes freed", pruned, total, freed);
  return ok;
}

static gboolean
drop_ref (OstreeSnapshotter *self, const char *ref, GCancellable *cancellable, GError **error)
{
  g_autofree char *checksum = NULL;
  if (!ostree_repo_resolve_rev (self->repo, ref, TRUE, &checksum, error))
    return FALSE;
  return checksum == NULL || ostree_repo_set_ref_immediate (self->repo, NULL, ref, NULL, cancellable, error);
}

static gboolean
ostree_removed (BerthSnapStore *store, const BerthSnapRecord *record, GCancellable *cancellable, GError **error)
{
  OstreeSnapshotter *self = self_of (store);
  g_autofree char *ref = ref_of (record->id);
  g_autofree char *checkout = checkout_path (self, record->id);
  /* An active snapshot may have a ref too: a commit that crashed or lost a race. */
  gboolean had_ref = FALSE;
  g_autofree char *checksum = NULL;
  if (!ostree_repo_resolve_rev (self->repo, ref, TRUE, &checksum, error))
    return FALSE;
  had_ref = checksum != NULL;
  return berth_remove_tree_at (AT_FDCWD, checkout, error) && drop_ref (self, ref, cancellable, error)
         && (!had_ref || prune (self, cancellable, error)) && evict_checkouts (self, error);
}

typedef struct {
  GHashTable *committed; /* ids, as strings */
  GHashTable *all;
} Known;

static gboolean
note_known (BerthSnapRecord *record, gpointer data)
{
  Known *k = data;
  g_autofree char *id = g_strdup_printf ("%" G_GUINT64_FORMAT, record->id);
  if (record->kind == BERTH_SNAPSHOT_KIND_COMMITTED)
    g_hash_table_add (k->committed, g_strdup (id));
  g_hash_table_add (k->all, g_steal_pointer (&id));
  return TRUE;
}

/* Refs of snapshots that are gone, upper dirs of committed snapshots (a crash between
 * the record and their removal), unreachable objects, stale and surplus checkouts. */
static gboolean
ostree_cleanup (BerthSnapStore *store, GCancellable *cancellable, GError **error)
{
  OstreeSnapshotter *self = self_of (store);
  Known k = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL),
              g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL) };
  g_autoptr (GHashTable) refs = NULL;
  gboolean ok = berth_snap_store_foreach (store, note_known, &k, error)
                && ostree_repo_list_refs_ext (self->repo, NULL, &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, cancellable, error);
  GHashTableIter iter;
  gpointer name;
  if (ok)
    g_hash_table_iter_init (&iter, refs);
  while (ok && g_hash_table_iter_next (&iter, &name, NULL))
    if (g_str_has_prefix (name, REF_PREFIX) && !g_hash_table_contains (k.all, (char *) name + strlen (REF_PREFIX)))
      {
        g_debug ("cleanup: dropping ref %s of a removed snapshot", (char *) name);
        ok = drop_ref (self, name, cancellable, error);
      }
  if (ok)
    g_hash_table_iter_init (&iter, k.committed);
  while (ok && g_hash_table_iter_next (&iter, &name, NULL))
    {
      guint64 id = g_ascii_strtoull (name, NULL, 10);
      g_autofree char *dir = berth_snap_store_path (store, id, NULL);
      ok = berth_remove_tree_at (AT_FDCWD, dir, error);
    }
  g_hash_table_unref (k.committed);
  g_hash_table_unref (k.all);
  return ok && prune (self, cancellable, error) && evict_checkouts (self, error);
}

/* What @checksum reaches, as (checksum, type) GVariants. */
static GHashTable *
reachable_from (OstreeSnapshotter *self, const char *checksum, GHashTable *into, GCancellable *cancellable,
                GError **error)
{
  g_autoptr (GHashTable) set = into ? g_hash_table_ref (into) : ostree_repo_traverse_new_reachable ();
  if (!ostree_repo_traverse_commit_union (self->repo, checksum, 0, set, cancellable, error))
    return NULL;
  return g_steal_pointer (&set);
}

/* The objects only this snapshot's commit reaches: what removing it frees. */
static gboolean
ostree_usage (BerthSnapStore *store, const BerthSnapRecord *record, BerthSnapshotUsage *usage, GCancellable *cancellable,
              GError **error)
{
  OstreeSnapshotter *self = self_of (store);
  g_autofree char *mine = commit_of (self, record->id, error);
  g_autofree char *own_ref = ref_of (record->id);
  g_autoptr (GHashTable) refs = NULL;
  g_rw_lock_reader_lock (&self->repo_lock);
  g_autoptr (GHashTable) reachable = mine ? reachable_from (self, mine, NULL, cancellable, error) : NULL;
  g_autoptr (GHashTable) others = ostree_repo_traverse_new_reachable ();
  gboolean ok = reachable != NULL
                && ostree_repo_list_refs_ext (self->repo, NULL, &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, cancellable, error);
  GHashTableIter iter;
  gpointer name, value;
  if (ok)
    g_hash_table_iter_init (&iter, refs);
  while (ok && g_hash_table_iter_next (&iter, &name, &value))
    if (g_str_has_prefix (name, REF_PREFIX) && !g_str_equal (name, own_ref))
      ok = reachable_from (self, value, others, cancellable, error) != NULL;
  gint64 size = 0, inodes = 0, apparent = 0;
  int repo_fd = ostree_repo_get_dfd (self->repo);
  if (ok)
    g_hash_table_iter_init (&iter, reachable);
  while (ok && g_hash_table_iter_next (&iter, &name, NULL))
    {
      const char *checksum;
      OstreeObjectType type;
      ostree_object_name_deserialize (name, &checksum, &type);
      /* A bare repo's loose object: objects/<2 hex>/<62 hex>.<type> */
      g_autofree char *path = g_strdup_printf ("objects/%.2s/%s.%s", checksum, checksum + 2, ostree_object_type_to_string (type));
      struct stat st;
      if (fstatat (repo_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      apparent += st.st_size;
      if (g_hash_table_contains (others, name))
        continue;
      size += (gint64) st.st_blocks * 512;
      inodes++;
    }
  g_rw_lock_reader_unlock (&self->repo_lock);
  if (!ok)
    return FALSE;
  g_debug ("usage of %s: %" G_GINT64_FORMAT " bytes in %" G_GINT64_FORMAT " objects of its own, %" G_GINT64_FORMAT
           " bytes apparent", record->key, size, inodes, apparent);
  usage->size = size;
  usage->inodes = inodes;
  return TRUE;
}

static const BerthSnapOps ostree_ops = {
  .populate = ostree_populate,
  .mounts = ostree_mounts,
  .commit = ostree_commit,
  .committed = ostree_committed,
  .removed = ostree_removed,
  .usage = ostree_usage,
  .cleanup = ostree_cleanup,
};

/* ---------------- the plugin ---------------- */

static void
ostree_snapshotter_finalize (GObject *object)
{
  OstreeSnapshotter *self = OSTREE_SNAPSHOTTER (object);
  berth_snap_store_free (self->base.store);
  g_clear_object (&self->repo);
  g_free (self->checkouts);
  g_rw_lock_clear (&self->repo_lock);
  g_mutex_clear (&self->checkout_lock);
  g_mutex_clear (&self->txn_lock);
  G_OBJECT_CLASS (ostree_snapshotter_parent_class)->finalize (object);
}

static void
ostree_snapshotter_class_init (OstreeSnapshotterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = ostree_snapshotter_finalize;
}

static void ostree_snapshotter_class_finalize (OstreeSnapshotterClass *klass) {}

static void
ostree_snapshotter_init (OstreeSnapshotter *self)
{
  g_rw_lock_init (&self->repo_lock);
  g_mutex_init (&self->checkout_lock);
  g_mutex_init (&self->txn_lock);
}

static void
register_types (GTypeModule *module)
{
  ostree_snapshotter_register_type (module);
}

static OstreeRepo *
open_repo (const char *path, GError **error)
{
  g_autofree char *config = g_build_filename (path, "config", NULL);
  if (g_file_test (config, G_FILE_TEST_EXISTS))
    return ostree_repo_open_at (AT_FDCWD, path, NULL, error);
  if (g_mkdir_with_parents (path, 0700) < 0)
    return berth_throw_errno (error, "creating %s", path), NULL;
  /* bare: objects are plain files with the image's owners, modes and xattrs, so a
   * checkout can hardlink them. */
  return ostree_repo_create_at (AT_FDCWD, path, OSTREE_REPO_MODE_BARE, NULL, NULL, error);
}

static GObject *
init (BerthPluginContext *context, GError **error)
{
  const char *root = berth_plugin_context_get_root (context);
  g_autofree char *repo_path = berth_plugin_context_get_string (context, "repo");
  if (repo_path == NULL || *repo_path == '\0')
    {
      g_free (repo_path);
      repo_path = g_build_filename (root, "repo", NULL);
    }
  gint64 cache_size = berth_plugin_context_get_int (context, "checkout-cache-size");
  if (cache_size < 0 || cache_size > G_MAXINT)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "checkout-cache-size %" G_GINT64_FORMAT " is out of range", cache_size);
      return NULL;
    }
  g_autoptr (OstreeRepo) repo = open_repo (repo_path, error);
  if (repo == NULL)
    {
      g_prefix_error (error, "ostree repo %s: ", repo_path);
      return NULL;
    }
  g_autofree char *checkouts = g_build_filename (root, "checkouts", NULL);
  /* Checkouts are a cache, renamed into place without a sync: after a reboot (the state
   * dir is on tmpfs) none is mounted and none is trusted. */
  g_autofree char *booted = g_build_filename (berth_plugin_context_get_state (context), "checkouts-valid", NULL);
  if (!g_file_test (booted, G_FILE_TEST_EXISTS)
      && (!berth_remove_tree_at (AT_FDCWD, checkouts, error) || !g_file_set_contents (booted, "", 0, error)))
    return NULL;
  struct stat repo_st, checkouts_st;
  if (g_mkdir_with_parents (checkouts, 0700) < 0 || stat (checkouts, &checkouts_st) < 0
      || fstat (ostree_repo_get_dfd (repo), &repo_st) < 0)
    {
      berth_throw_errno (error, "creating %s", checkouts);
      return NULL;
    }
  if (repo_st.st_dev != checkouts_st.st_dev)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                   "ostree repo %s is not on the filesystem of %s: checkouts are hardlinks to its objects", repo_path, root);
      return NULL;
    }
  BerthSnapStore *store = berth_snap_store_open (root, &ostree_ops, error);
  if (store == NULL)
    return NULL;
  OstreeSnapshotter *self = g_object_new (OSTREE_TYPE_SNAPSHOTTER, NULL);
  self->base.store = store;
  berth_snap_store_set_data (store, self);
  self->repo = g_steal_pointer (&repo);
  self->checkouts = g_steal_pointer (&checkouts);
  self->fsync = berth_plugin_context_get_boolean (context, "fsync");
  self->cache_size = cache_size;
  /* Durability comes from sync_repo's syncfs at the points that need it. */
  ostree_repo_set_disable_fsync (self->repo, TRUE);
  /* What a crash left (see ostree_cleanup); nothing else runs yet. */
  g_autoptr (GError) cleanup_error = NULL;
  if (!ostree_cleanup (store, NULL, &cleanup_error))
    g_warning ("cleaning up after the last run: %s", cleanup_error->message);
  return G_OBJECT (self);
}

static const BerthConfigKey config_keys[] = {
  { "repo", BERTH_CONFIG_STRING, "", "the bare ostree repo (default <plugin root>/repo); on the plugin root's filesystem" },
  { "fsync", BERTH_CONFIG_BOOLEAN, "true",
    "make each commit durable before it is recorded (one syncfs per commit); false trades crash safety for speed" },
  { "checkout-cache-size", BERTH_CONFIG_INT, "8",
    "hardlink checkouts of committed snapshots kept while no snapshot uses them" },
  { NULL },
};

BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_SNAPSHOTTER, "ostree", "file-level deduplication in a bare ostree repo", NULL,
                     config_keys, register_types, init)
