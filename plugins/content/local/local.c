/* local.c — the local content store: blobs by digest on the filesystem.
 *
 *   <root>/blobs/sha256/<hex>                 committed, read-only blobs
 *   <root>/ingest/<sha256 of ref>/data        bytes of an ingest in progress
 *   <root>/ingest/<sha256 of ref>/{ref,startedat,total,expected}
 *
 * A blob appears under blobs/ only by rename(2) of a fully written, fsync'd and verified
 * data file, so a crash never leaves a half-written blob there. An ingest survives a
 * daemon restart; reopening it re-reads its data once to rebuild the running hash.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/berth.h>

#define BLOB_DIR "blobs/sha256"
#define INGEST_DIR "ingest"
/* A writer starts the disk writing what it has every so many bytes, so that the fsync at
 * commit waits for the tail only, not for the whole blob after the last byte arrived. */
#define WRITEBACK_STEP (8 << 20)

#define LOCAL_TYPE_STORE (local_store_get_type ())
G_DECLARE_FINAL_TYPE (LocalStore, local_store, LOCAL, STORE, GObject)
#define LOCAL_TYPE_WRITER (local_writer_get_type ())
G_DECLARE_FINAL_TYPE (LocalWriter, local_writer, LOCAL, WRITER, GObject)

struct _LocalStore {
  GObject parent_instance;
  char *root;
  int root_fd;
  GMutex lock;
  GHashTable *open_refs; /* refs with a live writer: one writer per ref */
  GCond released;        /* a ref left open_refs */
};

struct _LocalWriter {
  GObject parent_instance;
  LocalStore *store;
  char *ref;
  char *dir; /* relative to the store root */
  int fd;
  BerthDigester *digester;
  gint64 offset;
  gint64 writeback_from; /* writeback has been started for everything before this */
  gint64 total;
  char *expected;
  gint64 started_at;
  gint64 updated_at; /* the last write's time, as containerd's Status reports it */
};

static void local_store_iface_init (BerthContentStoreInterface *iface);
static void local_writer_iface_init (BerthContentWriterInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (LocalStore, local_store, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_CONTENT_STORE, local_store_iface_init))
G_DEFINE_DYNAMIC_TYPE_EXTENDED (LocalWriter, local_writer, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (BERTH_TYPE_CONTENT_WRITER, local_writer_iface_init))

/* ---------------- small file helpers ---------------- */

static char *
blob_path (const char *digest)
{
  return g_strconcat (BLOB_DIR "/", digest + strlen ("sha256:"), NULL);
}

static char *
ingest_dir_for (const char *ref)
{
  g_autofree char *hash = berth_digest_bytes (ref, strlen (ref));
  return g_strconcat (INGEST_DIR "/", hash + strlen ("sha256:"), NULL);
}

static gboolean
fsync_dir (int root_fd, const char *dir, GError **error)
{
  berth_autofd int fd = openat (root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync (fd) < 0)
    return berth_throw_errno (error, "syncing %s", dir);
  return TRUE;
}

/* Writes a small file atomically: temp, fsync, rename. */
static gboolean
write_small_file (int root_fd, const char *dir, const char *name, const char *text, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *tmp = g_strconcat (path, ".tmp", NULL);
  berth_autofd int fd = openat (root_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return berth_throw_errno (error, "creating %s", tmp);
  gsize len = strlen (text);
  if (write (fd, text, len) != (ssize_t) len || fsync (fd) < 0)
    return berth_throw_errno (error, "writing %s", tmp);
  if (renameat (root_fd, tmp, root_fd, path) < 0)
    return berth_throw_errno (error, "renaming %s", tmp);
  return TRUE;
}

static char *
read_small_file (int root_fd, const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  berth_autofd int fd = openat (root_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  char buf[4096];
  ssize_t n = read (fd, buf, sizeof buf - 1);
  if (n < 0)
    return NULL;
  return g_strndup (buf, n);
}

static gboolean
digest_check (const char *digest, GError **error)
{
  return berth_digest_validate (digest, error);
}

/* ---------------- the store ---------------- */

static BerthContentInfo *
info_from_stat (const char *digest, const struct stat *st)
{
  BerthContentInfo *info = g_new0 (BerthContentInfo, 1);
  info->digest = g_strdup (digest);
  info->size = st->st_size;
  info->created_at = (gint64) st->st_ctim.tv_sec * G_USEC_PER_SEC + st->st_ctim.tv_nsec / 1000;
  info->updated_at = (gint64) st->st_mtim.tv_sec * G_USEC_PER_SEC + st->st_mtim.tv_nsec / 1000;
  return info;
}

static BerthContentInfo *
store_info (BerthContentStore *iface, const char *digest, GCancellable *cancellable, GError **error)
{
  LocalStore *self = LOCAL_STORE (iface);
  if (!digest_check (digest, error))
    return NULL;
  g_autofree char *path = blob_path (digest);
  struct stat st;
  if (fstatat (self->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno == ENOENT)
        berth_throw (error, BERTH_ERROR_NOT_FOUND, "content %s: not found", digest);
      else
        berth_throw_errno (error, "stat %s", path);
      return NULL;
    }
  return info_from_stat (digest, &st);
}

static gboolean
store_walk (BerthContentStore *iface, BerthContentWalkFunc func, gpointer user_data, GCancellable *cancellable,
            GError **error)
{
  LocalStore *self = LOCAL_STORE (iface);
  g_autofree char *dir = g_build_filename (self->root, BLOB_DIR, NULL);
  g_autoptr (GDir) listing = g_dir_open (dir, 0, error);
  if (listing == NULL)
    return FALSE;
  const char *name;
  while ((name = g_dir_read_name (listing)) != NULL)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      g_autofree char *digest = g_strconcat ("sha256:", name, NULL);
      if (!berth_digest_validate (digest, NULL))
        continue;
      g_autofree char *path = g_build_filename (BLOB_DIR, name, NULL);
      struct stat st;
      if (fstatat (self->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG (st.st_mode))
        continue;
      g_autoptr (BerthContentInfo) info = info_from_stat (digest, &st);
      if (!func (info, user_data))
        break;
    }
  return TRUE;
}

static gboolean
store_delete (BerthContentStore *iface, const char *digest, GCancellable *cancellable, GError **error)
{
  LocalStore *self = LOCAL_STORE (iface);
  if (!digest_check (digest, error))
    return FALSE;
  g_autofree char *path = blob_path (digest);
  if (unlinkat (self->root_fd, path, 0) < 0)
    {
      if (errno == ENOENT)
        return berth_throw (error, BERTH_ERROR_NOT_FOUND, "content %s: not found", digest);
      return berth_throw_errno (error, "removing %s", path);
    }
  return TRUE;
}

static GInputStream *
store_open_reader (BerthContentStore *iface, const char *digest, gint64 *size_out, GCancellable *cancellable,
                   GError **error)
{
  LocalStore *self = LOCAL_STORE (iface);
  g_autoptr (BerthContentInfo) info = store_info (iface, digest, cancellable, error);
  if (info == NULL)
    return NULL;
  g_autofree char *path = g_build_filename (self->root, BLOB_DIR, digest + strlen ("sha256:"), NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  GFileInputStream *stream = g_file_read (file, cancellable, error);
  if (stream != NULL && size_out != NULL)
    *size_out = info->size;
  return (GInputStream *) stream;
}

static BerthContentStatus *
status_of_dir (LocalStore *self, const char *dir, GError **error)
{
  g_autofree char *ref = read_small_file (self->root_fd, dir, "ref");
  if (ref == NULL)
    {
      berth_throw (error, BERTH_ERROR_NOT_FOUND, "ingest %s: not found", dir);
      return NULL;
    }
  g_autofree char *data = g_build_filename (dir, "data", NULL);
  struct stat st;
  if (fstatat (self->root_fd, data, &st, 0) < 0)
    {
      berth_throw (error, BERTH_ERROR_NOT_FOUND, "ingest %s: no data", ref);
      return NULL;
    }
  g_autofree char *total = read_small_file (self->root_fd, dir, "total");
  g_autofree char *started = read_small_file (self->root_fd, dir, "startedat");
  g_autofree char *expected = read_small_file (self->root_fd, dir, "expected");
  BerthContentStatus *status = g_new0 (BerthContentStatus, 1);
  status->ref = g_steal_pointer (&ref);
  status->offset = st.st_size;
  status->total = total ? g_ascii_strtoll (total, NULL, 10) : 0;
  status->expected = expected && *expected ? g_steal_pointer (&expected) : NULL;
  status->started_at = started ? g_ascii_strtoll (started, NULL, 10) : 0;
  /* The data's mtime is the kernel's coarse clock; a closed writer left the exact time
   * of its last write (containerd's "updatedat"). */
  g_autofree char *updated = read_small_file (self->root_fd, dir, "updatedat");
  status->updated_at = MAX ((gint64) st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000,
                            updated ? g_ascii_strtoll (updated, NULL, 10) : 0);
  return status;
}

static BerthContentStatus *
store_status (BerthContentStore *iface, const char *ref, GCancellable *cancellable, GError **error)
{
  g_autofree char *dir = ingest_dir_for (ref);
  g_autoptr (GError) local_error = NULL;
  BerthContentStatus *status = status_of_dir (LOCAL_STORE (iface), dir, &local_error);
  if (status == NULL)
    berth_throw (error, BERTH_ERROR_NOT_FOUND, "ingest %s: not found", ref);
  return status;
}

static GPtrArray *
store_list_statuses (BerthContentStore *iface, GCancellable *cancellable, GError **error)
{
  LocalStore *self = LOCAL_STORE (iface);
  g_autofree char *dir = g_build_filename (self->root, INGEST_DIR, NULL);
  g_autoptr (GDir) listing = g_dir_open (dir, 0, error);
  if (listing == NULL)
    return NULL;
  GPtrArray *statuses = g_ptr_array_new_with_free_func ((GDestroyNotify) berth_content_status_free);
  const char *name;
  while ((name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *sub = g_build_filename (INGEST_DIR, name, NULL);
      BerthContentStatus *status = status_of_dir (self, sub, NULL);
      if (status != NULL)
        g_ptr_array_add (statuses, status);
    }
  return statuses;
}

static gboolean
store_abort (BerthContentStore *iface, const char *ref, GCancellable *cancellable, GError **error)
{
  LocalStore *self = LOCAL_STORE (iface);
  g_autofree char *dir = ingest_dir_for (ref);
  struct stat st;
  if (fstatat (self->root_fd, dir, &st, 0) < 0)
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "ingest %s: not found", ref);
  g_mutex_lock (&self->lock);
  gboolean busy = g_hash_table_contains (self->open_refs, ref);
  g_mutex_unlock (&self->lock);
  if (busy)
    return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "ref %s is locked by an open writer", ref);
  return berth_remove_tree_at (self->root_fd, dir, error);
}

/* Rebuilds the running hash of an ingest that survived a restart: one read of what is
 * already there, instead of persisting hash state on every write. */
static gboolean
rehash (LocalWriter *writer, gint64 upto, GError **error)
{
  berth_digester_free (writer->digester);
  writer->digester = berth_digester_new ();
  g_autofree guint8 *buf = g_malloc (1 << 20);
  gint64 done = 0;
  while (done < upto)
    {
      ssize_t n = pread (writer->fd, buf, MIN ((gint64) (1 << 20), upto - done), done);
      if (n <= 0)
        return n < 0 ? berth_throw_errno (error, "reading ingest %s", writer->ref)
                     : berth_throw (error, BERTH_ERROR_DATA_LOSS, "ingest %s shrank while reading", writer->ref);
      berth_digester_update (writer->digester, buf, n);
      done += n;
    }
  writer->offset = upto;
  return TRUE;
}

static BerthContentWriter *
store_open_writer (BerthContentStore *iface, const char *ref, gint64 total, const char *expected,
                   GCancellable *cancellable, GError **error)
{
  LocalStore *self = LOCAL_STORE (iface);
  if (ref == NULL || *ref == '\0')
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "an ingest needs a ref");
      return NULL;
    }
  if (expected != NULL && *expected != '\0' && !digest_check (expected, error))
    return NULL;
  /* A client that closed its write stream and opens the ref again at once may reach us
   * before the old stream's thread has let go of the writer: give that a moment. */
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC / 2;
  g_mutex_lock (&self->lock);
  gboolean busy;
  while ((busy = g_hash_table_contains (self->open_refs, ref))
         && g_cond_wait_until (&self->released, &self->lock, deadline))
    ;
  if (!busy)
    g_hash_table_add (self->open_refs, g_strdup (ref));
  g_mutex_unlock (&self->lock);
  if (busy)
    {
      berth_throw (error, BERTH_ERROR_UNAVAILABLE, "ref %s is locked by another writer", ref);
      return NULL;
    }
  g_autoptr (LocalWriter) writer = g_object_new (LOCAL_TYPE_WRITER, NULL);
  writer->store = g_object_ref (self);
  writer->ref = g_strdup (ref);
  writer->dir = ingest_dir_for (ref);
  writer->digester = berth_digester_new ();
  g_autofree char *data = g_build_filename (writer->dir, "data", NULL);

  if (mkdirat (self->root_fd, writer->dir, 0700) == 0)
    {
      gint64 started_at = g_get_real_time ();
      g_autofree char *now = g_strdup_printf ("%" G_GINT64_FORMAT, started_at);
      g_autofree char *total_text = g_strdup_printf ("%" G_GINT64_FORMAT, MAX (total, 0));
      if (!write_small_file (self->root_fd, writer->dir, "startedat", now, error)
          || !write_small_file (self->root_fd, writer->dir, "total", total_text, error)
          || !write_small_file (self->root_fd, writer->dir, "expected", expected ? expected : "", error))
        return NULL;
      writer->fd = openat (self->root_fd, data, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (writer->fd < 0)
        {
          berth_throw_errno (error, "creating %s", data);
          return NULL;
        }
      /* The ref file is written last: a dir without it is debris from a crash. */
      if (!write_small_file (self->root_fd, writer->dir, "ref", ref, error) || !fsync_dir (self->root_fd, writer->dir, error))
        return NULL;
      writer->total = MAX (total, 0);
      writer->expected = expected && *expected ? g_strdup (expected) : NULL;
      writer->started_at = writer->updated_at = started_at;
      return BERTH_CONTENT_WRITER (g_steal_pointer (&writer));
    }
  if (errno != EEXIST)
    {
      berth_throw_errno (error, "creating ingest %s", writer->dir);
      return NULL;
    }
  /* Resume. */
  g_autoptr (BerthContentStatus) status = status_of_dir (self, writer->dir, NULL);
  if (status == NULL)
    {
      /* Debris of a crash between mkdir and the ref file: start over. */
      if (!berth_remove_tree_at (self->root_fd, writer->dir, error))
        return NULL;
      g_mutex_lock (&self->lock);
      g_hash_table_remove (self->open_refs, ref);
      g_mutex_unlock (&self->lock);
      return store_open_writer (iface, ref, total, expected, cancellable, error);
    }
  writer->fd = openat (self->root_fd, data, O_RDWR | O_CLOEXEC);
  if (writer->fd < 0)
    {
      berth_throw_errno (error, "opening %s", data);
      return NULL;
    }
  writer->total = total > 0 ? total : status->total;
  writer->expected = g_strdup (expected && *expected ? expected : status->expected);
  writer->started_at = status->started_at;
  writer->updated_at = status->updated_at;
  if (!rehash (writer, status->offset, error))
    return NULL;
  g_debug ("resuming ingest %s at %" G_GINT64_FORMAT, ref, writer->offset);
  return BERTH_CONTENT_WRITER (g_steal_pointer (&writer));
}

static void
local_store_finalize (GObject *object)
{
  LocalStore *self = LOCAL_STORE (object);
  if (self->root_fd >= 0)
    close (self->root_fd);
  g_free (self->root);
  g_hash_table_unref (self->open_refs);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->released);
  G_OBJECT_CLASS (local_store_parent_class)->finalize (object);
}

static void
local_store_class_init (LocalStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = local_store_finalize;
}

static void local_store_class_finalize (LocalStoreClass *klass) {}

static void
local_store_init (LocalStore *self)
{
  self->root_fd = -1;
  g_mutex_init (&self->lock);
  g_cond_init (&self->released);
  self->open_refs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static void
local_store_iface_init (BerthContentStoreInterface *iface)
{
  iface->info = store_info;
  iface->walk = store_walk;
  iface->delete = store_delete;
  iface->open_reader = store_open_reader;
  iface->open_writer = store_open_writer;
  iface->status = store_status;
  iface->list_statuses = store_list_statuses;
  iface->abort = store_abort;
}

/* ---------------- the writer ---------------- */

static BerthContentStatus *
writer_status (BerthContentWriter *iface, GError **error)
{
  LocalWriter *self = LOCAL_WRITER (iface);
  BerthContentStatus *status = g_new0 (BerthContentStatus, 1);
  status->ref = g_strdup (self->ref);
  status->offset = self->offset;
  status->total = self->total;
  status->expected = g_strdup (self->expected);
  status->started_at = self->started_at;
  status->updated_at = self->updated_at;
  return status;
}

static gboolean
writer_write (BerthContentWriter *iface, const guint8 *data, gsize len, GCancellable *cancellable, GError **error)
{
  LocalWriter *self = LOCAL_WRITER (iface);
  /* Past the expected total is fine, as in containerd: Commit checks size and digest. */
  gsize done = 0;
  while (done < len)
    {
      ssize_t n = pwrite (self->fd, data + done, len - done, self->offset + done);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return berth_throw_errno (error, "writing ingest %s", self->ref);
        }
      done += n;
    }
  berth_digester_update (self->digester, data, len);
  self->offset += len;
  self->updated_at = g_get_real_time ();
  if (self->offset - self->writeback_from >= WRITEBACK_STEP)
    {
      /* Only a hint: durability comes from the fsync at commit, so a failure is ignored. */
      (void) sync_file_range (self->fd, self->writeback_from, self->offset - self->writeback_from, SYNC_FILE_RANGE_WRITE);
      self->writeback_from = self->offset;
    }
  return TRUE;
}

static gboolean
writer_truncate (BerthContentWriter *iface, gint64 offset, GError **error)
{
  LocalWriter *self = LOCAL_WRITER (iface);
  if (offset < 0 || offset > self->offset)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "ingest %s: cannot truncate to %" G_GINT64_FORMAT
                        " (have %" G_GINT64_FORMAT " bytes)", self->ref, offset, self->offset);
  if (ftruncate (self->fd, offset) < 0)
    return berth_throw_errno (error, "truncating ingest %s", self->ref);
  self->writeback_from = MIN (self->writeback_from, offset);
  return rehash (self, offset, error);
}

static char *
writer_digest (BerthContentWriter *iface)
{
  return berth_digester_get_digest (LOCAL_WRITER (iface)->digester);
}

static void
release_ref (LocalWriter *self)
{
  g_mutex_lock (&self->store->lock);
  g_hash_table_remove (self->store->open_refs, self->ref);
  g_cond_broadcast (&self->store->released);
  g_mutex_unlock (&self->store->lock);
}

static char *
writer_commit (BerthContentWriter *iface, gint64 size, const char *expected, GCancellable *cancellable, GError **error)
{
  LocalWriter *self = LOCAL_WRITER (iface);
  LocalStore *store = self->store;
  g_autofree char *actual = berth_digester_get_digest (self->digester);
  if (size > 0 && size != self->offset)
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "unexpected commit size %" G_GINT64_FORMAT ", expected %"
                   G_GINT64_FORMAT, self->offset, size);
      return NULL;
    }
  const char *want = expected && *expected ? expected : self->expected;
  if (want != NULL && !g_str_equal (want, actual))
    {
      berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "unexpected commit digest %s, expected %s", actual, want);
      return NULL;
    }
  if (fsync (self->fd) < 0)
    {
      berth_throw_errno (error, "syncing ingest %s", self->ref);
      return NULL;
    }
  g_autofree char *target = blob_path (actual);
  g_autofree char *data = g_build_filename (self->dir, "data", NULL);
  if (faccessat (store->root_fd, target, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    {
      berth_remove_tree_at (store->root_fd, self->dir, NULL);
      berth_throw (error, BERTH_ERROR_ALREADY_EXISTS, "content %s: already exists", actual);
      return NULL;
    }
  if (fchmod (self->fd, 0444) < 0)
    {
      berth_throw_errno (error, "making %s read-only", data);
      return NULL;
    }
  if (renameat (store->root_fd, data, store->root_fd, target) < 0)
    {
      berth_throw_errno (error, "committing %s to %s", self->ref, target);
      return NULL;
    }
  if (!fsync_dir (store->root_fd, BLOB_DIR, error))
    return NULL;
  berth_remove_tree_at (store->root_fd, self->dir, NULL);
  g_debug ("committed %s as %s (%" G_GINT64_FORMAT " bytes)", self->ref, actual, self->offset);
  return g_steal_pointer (&actual);
}

static void
local_writer_finalize (GObject *object)
{
  LocalWriter *self = LOCAL_WRITER (object);
  if (self->store != NULL)
    {
      /* Closed before a commit: keep the last write's time for a writer resuming it. */
      g_autofree char *data = g_build_filename (self->dir, "data", NULL);
      if (self->fd >= 0 && faccessat (self->store->root_fd, data, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        {
          g_autofree char *updated = g_strdup_printf ("%" G_GINT64_FORMAT, self->updated_at);
          g_autoptr (GError) error = NULL;
          if (!write_small_file (self->store->root_fd, self->dir, "updatedat", updated, &error))
            g_debug ("ingest %s: %s", self->ref, error->message);
        }
      release_ref (self);
      g_object_unref (self->store);
    }
  if (self->fd >= 0)
    close (self->fd);
  berth_digester_free (self->digester);
  g_free (self->ref);
  g_free (self->dir);
  g_free (self->expected);
  G_OBJECT_CLASS (local_writer_parent_class)->finalize (object);
}

static void
local_writer_class_init (LocalWriterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = local_writer_finalize;
}

static void local_writer_class_finalize (LocalWriterClass *klass) {}

static void
local_writer_init (LocalWriter *self)
{
  self->fd = -1;
}

static void
local_writer_iface_init (BerthContentWriterInterface *iface)
{
  iface->status = writer_status;
  iface->write = writer_write;
  iface->truncate = writer_truncate;
  iface->commit = writer_commit;
  iface->digest = writer_digest;
}

/* ---------------- plugin ---------------- */

static void
register_types (GTypeModule *module)
{
  local_store_register_type (module);
  local_writer_register_type (module);
}

static GObject *
init (BerthPluginContext *context, GError **error)
{
  g_autoptr (LocalStore) self = g_object_new (LOCAL_TYPE_STORE, NULL);
  self->root = g_strdup (berth_plugin_context_get_root (context));
  self->root_fd = open (self->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (self->root_fd < 0)
    {
      berth_throw_errno (error, "opening %s", self->root);
      return NULL;
    }
  g_autofree char *blobs = g_build_filename (self->root, BLOB_DIR, NULL);
  g_autofree char *ingest = g_build_filename (self->root, INGEST_DIR, NULL);
  if (g_mkdir_with_parents (blobs, 0700) < 0 || g_mkdir_with_parents (ingest, 0700) < 0)
    {
      berth_throw_errno (error, "creating the store under %s", self->root);
      return NULL;
    }
  return G_OBJECT (g_steal_pointer (&self));
}

BERTH_PLUGIN_DEFINE (BERTH_PLUGIN_TYPE_CONTENT, "content", "content store: blobs by digest on the local filesystem",
                     NULL, NULL, register_types, init)
