/* test-content-local.c — the local content store plugin, loaded from the build tree
 * through the real registry, against a temp root: ingest, commit, verification,
 * resume, abort, walk, delete, and a writer killed in the middle of a write. */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/berth-config.h"
#include "daemon/berth-registry.h"

#define CONTENT_ID BERTH_PLUGIN_TYPE_CONTENT ".content"
#define ZERO_DIGEST "sha256:0000000000000000000000000000000000000000000000000000000000000000"

typedef struct {
  char *tmp;
  char *store_root; /* the plugin's root: <root>/<plugin id> */
  BerthConfig *config;
  BerthRegistry *registry;
  BerthContentStore *store;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const char *top = g_getenv ("BERTH_TOP_BUILDDIR");
  g_autofree char *plugin_dir = g_build_filename (top ? top : ".", "plugins", "content", "local", ".libs", NULL);
  g_autoptr (GError) error = NULL;

  f->tmp = g_dir_make_tmp ("berth-content-XXXXXX", &error);
  g_assert_no_error (error);
  f->config = berth_config_new_default ();
  g_free (f->config->root);
  f->config->root = g_build_filename (f->tmp, "root", NULL);
  g_free (f->config->state);
  f->config->state = g_build_filename (f->tmp, "state", NULL);
  g_strfreev (f->config->plugin_dirs);
  f->config->plugin_dirs = g_strdupv ((char *[]) { plugin_dir, NULL });
  f->store_root = g_build_filename (f->config->root, CONTENT_ID, NULL);

  f->registry = berth_registry_new (f->config);
  berth_registry_set_scanner (f->registry, "");
  g_assert_true (berth_registry_load (f->registry, &error));
  g_assert_no_error (error);
  const BerthPluginRecord *record = berth_registry_lookup (f->registry, CONTENT_ID);
  g_assert_nonnull (record);
  if (record->error != NULL)
    g_error ("loading %s: %s", record->path, record->error->message);
  g_assert_cmpint (record->status, ==, BERTH_PLUGIN_STATUS_LOADED);
  f->store = BERTH_CONTENT_STORE (berth_registry_get_instance (f->registry, CONTENT_ID));
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  berth_registry_shutdown (f->registry);
  g_clear_object (&f->registry);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->tmp);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->tmp);
  g_free (f->store_root);
  berth_config_free (f->config);
}

/* Deterministic bytes, so a child process and its parent agree on the content. */
static guint8 *
pattern (gsize offset, gsize len)
{
  guint8 *buf = g_malloc (len ? len : 1);
  for (gsize i = 0; i < len; i++)
    buf[i] = (guint8) (((offset + i) * 2654435761u) >> 13);
  return buf;
}

static char *
pattern_digest (gsize len)
{
  g_autofree guint8 *buf = pattern (0, len);
  return berth_digest_bytes (buf, len);
}

static guint
count_dir (Fixture *f, const char *sub)
{
  g_autofree char *path = g_build_filename (f->store_root, sub, NULL);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  g_assert_nonnull (dir);
  guint n = 0;
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

static BerthContentWriter *
open_writer (Fixture *f, const char *ref, gint64 total, const char *expected)
{
  g_autoptr (GError) error = NULL;
  BerthContentWriter *writer = berth_content_store_open_writer (f->store, ref, total, expected, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (writer);
  return writer;
}

static void
write_pattern (BerthContentWriter *writer, gsize offset, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *buf = pattern (offset, len);
  g_assert_true (berth_content_writer_write (writer, buf, len, NULL, &error));
  g_assert_no_error (error);
}

static GBytes *
read_blob (Fixture *f, const char *digest)
{
  g_autoptr (GError) error = NULL;
  GBytes *bytes = berth_content_store_read_all (f->store, digest, 64 << 20, NULL, &error);
  g_assert_no_error (error);
  return bytes;
}

static void
test_write_commit (Fixture *f, gconstpointer data)
{
  const gsize len = 3 * 1024 * 1024 + 17;
  g_autofree char *want = pattern_digest (len);
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthContentWriter) writer = open_writer (f, "ref-1", len, want);

  g_autoptr (BerthContentStatus) fresh = berth_content_writer_status (writer, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fresh->offset, ==, 0);
  g_assert_cmpint (fresh->total, ==, len);
  g_assert_cmpstr (fresh->expected, ==, want);
  g_assert_cmpint (fresh->started_at, >, 0);

  for (gsize done = 0; done < len; done += MIN (len - done, 1000003))
    write_pattern (writer, done, MIN (len - done, 1000003));
  g_autoptr (BerthContentStatus) status = berth_content_store_status (f->store, "ref-1", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (status->offset, ==, len);
  g_assert_cmpstr (status->ref, ==, "ref-1");
  g_autofree char *running = berth_content_writer_digest (writer);
  g_assert_cmpstr (running, ==, want);

  g_autofree char *committed = berth_content_writer_commit (writer, len, want, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (committed, ==, want);

  g_autoptr (BerthContentInfo) info = berth_content_store_info (f->store, want, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (info->size, ==, len);
  g_autoptr (GBytes) bytes = read_blob (f, want);
  g_autofree guint8 *expect = pattern (0, len);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), expect, len);

  /* Committed blobs are read-only and the ingest is gone. */
  g_autofree char *path = g_build_filename (f->store_root, "blobs", "sha256", want + strlen ("sha256:"), NULL);
  struct stat st;
  g_assert_no_errno (stat (path, &st));
  g_assert_cmpint (st.st_mode & 0222, ==, 0);
  g_assert_cmpuint (count_dir (f, "ingest"), ==, 0);
  g_autoptr (GPtrArray) statuses = berth_content_store_list_statuses (f->store, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (statuses->len, ==, 0);

  /* A ranged read through the reader (pread-style: seek, then read). */
  gint64 size = 0;
  g_autoptr (GInputStream) in = berth_content_store_open_reader (f->store, want, &size, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (size, ==, len);
  g_assert_true (g_seekable_seek (G_SEEKABLE (in), 2000000, G_SEEK_SET, NULL, &error));
  guint8 chunk[100];
  gsize got = 0;
  g_assert_true (g_input_stream_read_all (in, chunk, sizeof chunk, &got, NULL, &error));
  g_assert_cmpuint (got, ==, sizeof chunk);
  g_autofree guint8 *expect_chunk = pattern (2000000, sizeof chunk);
  g_assert_cmpmem (chunk, sizeof chunk, expect_chunk, sizeof chunk);

  /* The same bytes again: ALREADY_EXISTS, and the second ingest is cleaned up. */
  g_autoptr (BerthContentWriter) again = open_writer (f, "ref-2", 0, NULL);
  write_pattern (again, 0, len);
  g_autofree char *none = berth_content_writer_commit (again, len, NULL, NULL, &error);
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS);
  g_assert_null (none);
  g_assert_cmpuint (count_dir (f, "ingest"), ==, 0);
  g_assert_cmpuint (count_dir (f, "blobs/sha256"), ==, 1);
}

static void
test_mismatch (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *actual = pattern_digest (5000);
  g_autoptr (BerthContentWriter) writer = open_writer (f, "bad", 0, NULL);
  write_pattern (writer, 0, 5000);

  g_autofree char *committed = berth_content_writer_commit (writer, 5000, ZERO_DIGEST, NULL, &error);
  g_assert_null (committed);
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION);
  g_autofree char *message = g_strdup_printf ("unexpected commit digest %s, expected %s", actual, ZERO_DIGEST);
  g_assert_cmpstr (error->message, ==, message);
  g_clear_error (&error);

  g_assert_null (berth_content_writer_commit (writer, 4999, NULL, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION);
  g_assert_nonnull (strstr (error->message, "size"));
  g_clear_error (&error);

  /* Nothing reached blobs/, and the ingest is still there to retry or abort. */
  g_assert_cmpuint (count_dir (f, "blobs/sha256"), ==, 0);
  g_autoptr (BerthContentStatus) status = berth_content_store_status (f->store, "bad", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (status->offset, ==, 5000);
  g_autofree char *retried = berth_content_writer_commit (writer, 5000, actual, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (retried, ==, actual);

  /* An expected digest given when the ingest started is checked too. */
  g_autoptr (BerthContentWriter) announced = open_writer (f, "announced", 0, ZERO_DIGEST);
  write_pattern (announced, 0, 10);
  g_assert_null (berth_content_writer_commit (announced, 0, NULL, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION);
  g_clear_error (&error);

  /* A malformed expected digest is refused up front. */
  g_assert_null (berth_content_store_open_writer (f->store, "malformed", 0, "sha256:xyz", NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
}

static void
test_past_total (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthContentWriter) writer = open_writer (f, "short", 100, NULL);
  write_pattern (writer, 0, 60);
  /* Past the announced total is accepted, as in containerd: commit judges. */
  g_autofree guint8 *buf = pattern (60, 41);
  g_assert_true (berth_content_writer_write (writer, buf, 41, NULL, &error));
  g_assert_no_error (error);
  g_autoptr (BerthContentStatus) status = berth_content_writer_status (writer, &error);
  g_assert_cmpint (status->offset, ==, 101);
  g_assert_cmpint (status->total, ==, 100);
  g_assert_cmpint (status->updated_at, >=, status->started_at);
  /* Committing at a size other than what was written fails. */
  g_assert_null (berth_content_writer_commit (writer, 100, NULL, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION);
  g_assert_cmpuint (count_dir (f, "blobs/sha256"), ==, 0);
}

static void
test_resume (Fixture *f, gconstpointer data)
{
  const gsize len = 2 * 1024 * 1024;
  g_autofree char *want = pattern_digest (len);
  g_autoptr (GError) error = NULL;
  BerthContentWriter *first = open_writer (f, "resume", len, want);
  write_pattern (first, 0, len / 3);

  /* One writer per ref. */
  g_assert_null (berth_content_store_open_writer (f->store, "resume", 0, NULL, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_object_unref (first);

  g_autoptr (BerthContentWriter) second = open_writer (f, "resume", 0, NULL);
  g_autoptr (BerthContentStatus) status = berth_content_writer_status (second, &error);
  g_assert_no_error (error);
  g_assert_cmpint (status->offset, ==, len / 3);
  g_assert_cmpint (status->total, ==, len);      /* remembered from the first open */
  g_assert_cmpstr (status->expected, ==, want);
  write_pattern (second, len / 3, len - len / 3);
  g_autofree char *committed = berth_content_writer_commit (second, len, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (committed, ==, want);

  /* Truncating rewinds the ingest and its running hash. */
  g_autoptr (BerthContentWriter) third = open_writer (f, "rewind", 0, NULL);
  write_pattern (third, 0, 1000);
  g_autofree guint8 *junk = g_malloc0 (500);
  g_assert_true (berth_content_writer_write (third, junk, 500, NULL, &error));
  g_assert_true (berth_content_writer_truncate (third, 1000, &error));
  g_assert_no_error (error);
  write_pattern (third, 1000, 234);
  g_autofree char *small = pattern_digest (1234);
  g_autofree char *got = berth_content_writer_commit (third, 1234, small, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (got, ==, small);
}

static void
test_abort (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  BerthContentWriter *writer = open_writer (f, "doomed", 0, NULL);
  write_pattern (writer, 0, 4096);
  g_assert_false (berth_content_store_abort (f->store, "doomed", NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_object_unref (writer);

  g_assert_true (berth_content_store_abort (f->store, "doomed", NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_dir (f, "ingest"), ==, 0);
  g_assert_null (berth_content_store_status (f->store, "doomed", NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (berth_content_store_abort (f->store, "doomed", NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* After an abort the ref starts from nothing. */
  g_autoptr (BerthContentWriter) fresh = open_writer (f, "doomed", 0, NULL);
  g_autoptr (BerthContentStatus) status = berth_content_writer_status (fresh, &error);
  g_assert_cmpint (status->offset, ==, 0);
}

typedef struct {
  GHashTable *seen;
} WalkData;

static gboolean
walk_collect (const BerthContentInfo *info, gpointer user_data)
{
  WalkData *data = user_data;
  g_hash_table_insert (data->seen, g_strdup (info->digest), GINT_TO_POINTER ((int) info->size));
  return TRUE;
}

static char *
commit_pattern (Fixture *f, const char *ref, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthContentWriter) writer = open_writer (f, ref, len, NULL);
  write_pattern (writer, 0, len);
  char *digest = berth_content_writer_commit (writer, len, NULL, NULL, &error);
  g_assert_no_error (error);
  return digest;
}

static void
test_walk_delete (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *a = commit_pattern (f, "a", 10);
  g_autofree char *b = commit_pattern (f, "b", 20);
  g_autofree char *c = commit_pattern (f, "c", 30);
  /* An ingest in progress is not a blob. */
  g_autoptr (BerthContentWriter) pending = open_writer (f, "pending", 0, NULL);
  write_pattern (pending, 0, 40);

  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  WalkData walk = { seen };
  g_assert_true (berth_content_store_walk (f->store, walk_collect, &walk, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (seen), ==, 3);
  g_assert_cmpint (GPOINTER_TO_INT (g_hash_table_lookup (seen, b)), ==, 20);

  g_assert_true (berth_content_store_delete (f->store, b, NULL, &error));
  g_assert_no_error (error);
  g_hash_table_remove_all (seen);
  g_assert_true (berth_content_store_walk (f->store, walk_collect, &walk, NULL, &error));
  g_assert_cmpuint (g_hash_table_size (seen), ==, 2);
  g_assert_true (g_hash_table_contains (seen, a) && g_hash_table_contains (seen, c));

  g_assert_false (berth_content_store_delete (f->store, b, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (berth_content_store_info (f->store, b, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (berth_content_store_open_reader (f->store, b, NULL, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* A malformed digest never becomes a path. */
  g_assert_false (berth_content_store_delete (f->store, "sha256:../../etc", NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
}

/* A writer process killed in the middle of an ingest (as berthd under SIGKILL): no
 * half-written blob under blobs/, and the ingest resumes where the data ends. */
static void
test_killed_writer (Fixture *f, gconstpointer data)
{
  const gsize total = 8 * 1024 * 1024, chunk = 64 * 1024;
  g_autofree char *want = pattern_digest (total);
  g_autoptr (GError) error = NULL;

  pid_t pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      BerthContentWriter *writer = berth_content_store_open_writer (f->store, "killed", total, want, NULL, NULL);
      if (writer == NULL)
        _exit (2);
      for (gsize done = 0; done < total / 2; done += chunk)
        {
          g_autofree guint8 *buf = pattern (done, chunk);
          if (!berth_content_writer_write (writer, buf, chunk, NULL, NULL))
            _exit (3);
        }
      /* Half way: wait to be killed, with the writer open and nothing committed. */
      for (;;)
        pause ();
    }

  for (int i = 0; i < 500; i++)
    {
      g_autoptr (BerthContentStatus) status = berth_content_store_status (f->store, "killed", NULL, NULL);
      if (status != NULL && status->offset == (gint64) total / 2)
        break;
      g_usleep (10000);
    }
  g_assert_no_errno (kill (pid, SIGKILL));
  int wstatus = 0;
  g_assert_cmpint (waitpid (pid, &wstatus, 0), ==, pid);
  g_assert_true (WIFSIGNALED (wstatus));

  g_assert_cmpuint (count_dir (f, "blobs/sha256"), ==, 0);
  g_autoptr (GPtrArray) statuses = berth_content_store_list_statuses (f->store, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (statuses->len, ==, 1);
  BerthContentStatus *status = statuses->pdata[0];
  g_assert_cmpstr (status->ref, ==, "killed");
  g_assert_cmpint (status->offset, ==, total / 2);
  g_assert_cmpint (status->total, ==, total);

  g_autoptr (BerthContentWriter) writer = open_writer (f, "killed", 0, NULL);
  for (gsize done = status->offset; done < total; done += chunk)
    write_pattern (writer, done, chunk);
  g_autofree char *committed = berth_content_writer_commit (writer, total, want, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (committed, ==, want);
  g_autoptr (GBytes) bytes = read_blob (f, want);
  g_autofree char *reread = berth_digest_bytes (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_assert_cmpstr (reread, ==, want);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/content-local/write-commit", test_write_commit);
  ADD ("/content-local/mismatch", test_mismatch);
  ADD ("/content-local/past-total", test_past_total);
  ADD ("/content-local/resume", test_resume);
  ADD ("/content-local/abort", test_abort);
  ADD ("/content-local/walk-delete", test_walk_delete);
  ADD ("/content-local/killed-writer", test_killed_writer);
  return g_test_run ();
}
