/* walking-private.h — what the walking differ's files share: the differ object
 * (walking.c), the decompressing reader (walking-reader.c) that applying a layer
 * (walking-apply.c) reads through, the OCI whiteout names that applying and making a
 * layer (walking-compare.c) both speak. Private to the plugin.
 */
#pragma once

#include <zlib.h>
#include <zstd.h>
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif
#include <archive.h>

#include <berth/berth.h>

G_BEGIN_DECLS

#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_MARKER ".wh..wh..opq"
#define CHUNK (256 * 1024)
#define RING 4

#define WALKING_TYPE_DIFFER (walking_differ_get_type ())
G_DECLARE_FINAL_TYPE (WalkingDiffer, walking_differ, WALKING, DIFFER, GObject)

struct _WalkingDiffer {
  GObject parent_instance;
  BerthContentStore *content; /* owned by the registry, outlives us */
  char *state;
  gint64 max_ratio;
};

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
  /* Decompression and hashing run on a producer thread ("layer-inflate") while the
   * applying thread parses the tar and writes files: RING buffers of CHUNK circulate
   * through @empty (to the producer) and @filled (to the consumer). Everything above is
   * the producer's until it hands over its final buffer (length 0 or -1); the queues'
   * locks order that hand-over, and the consumer reads error, uncompressed and digester
   * only after it. */
  GThread *thread;
  GAsyncQueue *empty, *filled;
  gint stop; /* atomic: the consumer is done, the producer quits at its next buffer */
  struct ReaderBuf *held; /* the buffer libarchive is reading, returned on the next call */
  gboolean done; /* the final buffer came */
  gssize final; /* its length: 0 at the end, -1 on error */
} Reader;

/* The layer's compression by its media type; UNIMPLEMENTED for a type not handled. */
gboolean walking_compression_for (const char *media_type, Compression *out, GError **error);
/* Starts @r (its compression set) on @in; more than @max_uncompressed bytes out of it
 * are refused as a decompression bomb. */
void walking_reader_start (Reader *r, GInputStream *in, guint64 max_uncompressed, GCancellable *cancellable);
/* The next uncompressed chunk (valid until the next call); 0 at the end, -1 on error (in
 * r->error, which like r->uncompressed and r->digester may be read once it returned 0
 * or -1). */
gssize walking_reader_next (Reader *r, const void **out);
/* libarchive's read callback over walking_reader_next. */
la_ssize_t walking_reader_read_cb (struct archive *a, void *data, const void **buffer);
/* Stops and joins the producer thread (whether or not the stream was read to its end)
 * and frees @r. */
void walking_reader_clear (Reader *r);

/* overlayfs's opaque-dir marker. In a user namespace (a rootless berthd) trusted.* is out
 * of reach and the overlayfs snapshotter mounts with "userxattr", which reads user.*. */
static inline const char *
walking_opaque_xattr (void)
{
  return berth_in_user_namespace () ? "user.overlay.opaque" : "trusted.overlay.opaque";
}

/* Where to write: an overlay's upper dir or a bind's source directly; else NULL (mount
 * them). For an overlay, *lowers_out gets its lower dirs, topmost first. */
const char *walking_direct_target (GPtrArray *mounts, gboolean *overlay, char ***lowers_out);

BerthDescriptor *walking_apply (BerthDiffer *differ, const BerthDescriptor *layer, GPtrArray *mounts,
                                GHashTable *payloads, GCancellable *cancellable, GError **error);
BerthDescriptor *walking_compare (BerthDiffer *differ, GPtrArray *lower, GPtrArray *upper, const char *media_type,
                                  const char *ref, GHashTable *labels, GCancellable *cancellable, GError **error);

G_END_DECLS
