/* berth-content-store.h — BerthContentStore: blobs addressed by digest.
 *
 * containerd's content.Store. Blobs are immutable once committed. Writes go through an
 * ingest named by a client-chosen ref, which survives a daemon restart and can be resumed
 * at the offset Status reports. Labels and per-namespace visibility live in the core's
 * metadata, not here: a content store only stores bytes.
 */
#pragma once

#include <gio/gio.h>
#include <berth/berth-types.h>

G_BEGIN_DECLS

typedef struct {
  char *digest;
  gint64 size;
  gint64 created_at; /* µs since the epoch */
  gint64 updated_at;
} BerthContentInfo;

typedef struct {
  char *ref;
  gint64 offset;     /* bytes written so far */
  gint64 total;      /* expected total, 0 when unknown */
  char *expected;    /* expected digest, NULL when unknown */
  gint64 started_at; /* µs since the epoch */
  gint64 updated_at;
} BerthContentStatus;

void berth_content_info_free (BerthContentInfo *info);
void berth_content_status_free (BerthContentStatus *status);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthContentInfo, berth_content_info_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthContentStatus, berth_content_status_free)

/* ---- BerthContentWriter: one open ingest ---- */
#define BERTH_TYPE_CONTENT_WRITER (berth_content_writer_get_type ())
G_DECLARE_INTERFACE (BerthContentWriter, berth_content_writer, BERTH, CONTENT_WRITER, GObject)

struct _BerthContentWriterInterface {
  GTypeInterface g_iface;
  BerthContentStatus *(*status) (BerthContentWriter *self, GError **error);
  /* Appends at the current offset, hashing as it goes (never a second pass). */
  gboolean (*write) (BerthContentWriter *self, const guint8 *data, gsize len,
                     GCancellable *cancellable, GError **error);
  /* Rewinds to @offset ≤ current offset (0 restarts). */
  gboolean (*truncate) (BerthContentWriter *self, gint64 offset, GError **error);
  /* Verifies @size (0: skip) and @expected (NULL: skip) against what was written,
   * fsyncs and renames into place atomically. FAILED_PRECONDITION names expected vs
   * actual on a mismatch, and nothing is stored; ALREADY_EXISTS when the blob exists
   * (the ingest is then removed). Returns the digest committed. */
  char *(*commit) (BerthContentWriter *self, gint64 size, const char *expected,
                   GCancellable *cancellable, GError **error);
  /* The digest of the bytes so far. */
  char *(*digest) (BerthContentWriter *self);
};

BerthContentStatus *berth_content_writer_status (BerthContentWriter *self, GError **error);
gboolean berth_content_writer_write (BerthContentWriter *self, const guint8 *data, gsize len,
                                     GCancellable *cancellable, GError **error);
gboolean berth_content_writer_truncate (BerthContentWriter *self, gint64 offset, GError **error);
char *berth_content_writer_commit (BerthContentWriter *self, gint64 size, const char *expected,
                                   GCancellable *cancellable, GError **error);
char *berth_content_writer_digest (BerthContentWriter *self);

/* ---- BerthContentStore ---- */
#define BERTH_TYPE_CONTENT_STORE (berth_content_store_get_type ())
G_DECLARE_INTERFACE (BerthContentStore, berth_content_store, BERTH, CONTENT_STORE, GObject)

/* Return FALSE to stop the walk. */
typedef gboolean (*BerthContentWalkFunc) (const BerthContentInfo *info, gpointer user_data);

struct _BerthContentStoreInterface {
  GTypeInterface g_iface;
  /* NOT_FOUND when absent. */
  BerthContentInfo *(*info) (BerthContentStore *self, const char *digest,
                             GCancellable *cancellable, GError **error);
  gboolean (*walk) (BerthContentStore *self, BerthContentWalkFunc func, gpointer user_data,
                    GCancellable *cancellable, GError **error);
  /* NOT_FOUND when absent. */
  gboolean (*delete) (BerthContentStore *self, const char *digest,
                      GCancellable *cancellable, GError **error);
  /* A seekable stream over the blob (pread-style: seek, then read). */
  GInputStream *(*open_reader) (BerthContentStore *self, const char *digest, gint64 *size_out,
                                GCancellable *cancellable, GError **error);
  /* Opens the ingest @ref, creating it or resuming it at its current offset.
   * @total (0: unknown) and @expected (NULL: unknown) are recorded with a new ingest.
   * A write beyond @total is accepted, as in containerd: commit checks size and digest. */
  BerthContentWriter *(*open_writer) (BerthContentStore *self, const char *ref, gint64 total,
                                      const char *expected, GCancellable *cancellable, GError **error);
  /* NOT_FOUND for an unknown ref. */
  BerthContentStatus *(*status) (BerthContentStore *self, const char *ref, GCancellable *cancellable, GError **error);
  /* GPtrArray of BerthContentStatus, every ingest in progress. */
  GPtrArray *(*list_statuses) (BerthContentStore *self, GCancellable *cancellable, GError **error);
  /* Removes the ingest @ref and its data. NOT_FOUND for an unknown ref. */
  gboolean (*abort) (BerthContentStore *self, const char *ref, GCancellable *cancellable, GError **error);
};

BerthContentInfo *berth_content_store_info (BerthContentStore *self, const char *digest,
                                            GCancellable *cancellable, GError **error);
gboolean berth_content_store_walk (BerthContentStore *self, BerthContentWalkFunc func, gpointer user_data,
                                   GCancellable *cancellable, GError **error);
gboolean berth_content_store_delete (BerthContentStore *self, const char *digest,
                                     GCancellable *cancellable, GError **error);
GInputStream *berth_content_store_open_reader (BerthContentStore *self, const char *digest, gint64 *size_out,
                                               GCancellable *cancellable, GError **error);
BerthContentWriter *berth_content_store_open_writer (BerthContentStore *self, const char *ref, gint64 total,
                                                     const char *expected, GCancellable *cancellable,
                                                     GError **error);
BerthContentStatus *berth_content_store_status (BerthContentStore *self, const char *ref, GCancellable *cancellable, GError **error);
GPtrArray *berth_content_store_list_statuses (BerthContentStore *self, GCancellable *cancellable, GError **error);
gboolean berth_content_store_abort (BerthContentStore *self, const char *ref, GCancellable *cancellable, GError **error);

/* open_reader + a full read into a GBytes (for small blobs: manifests, configs). TOO
 * LARGE → RESOURCE_EXHAUSTED. */
GBytes *berth_content_store_read_all (BerthContentStore *self, const char *digest, gsize max_size,
                                      GCancellable *cancellable, GError **error);

G_END_DECLS
