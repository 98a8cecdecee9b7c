/* walking-reader.c — the walking differ's decompressing reader: gzip (isa-l when built
 * with it, else zlib), zstd or plain, with a bound on how far a layer may expand. It
 * inflates and hashes on its own thread, a few chunks ahead of the tar parsing and file
 * writing that read it, so the two overlap on two cores.
 * Decompression happens here, not in libarchive, so that the uncompressed stream is
 * hashed in the same pass and a layer's diff ID is verified without a second read.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "walking-private.h"

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

typedef struct ReaderBuf {
  guint8 *data;
  gssize len;
} ReaderBuf;

/* Pushed to the producer's queue to wake it when the consumer stops early. */
static ReaderBuf stop_sentinel;

/* Produces the next uncompressed chunk into r->outbuf; 0 at the end, -1 on error. Runs on
 * the producer thread. */
static gssize
reader_decompress (Reader *r)
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
      return produced;
    }
}

static gpointer
reader_thread (gpointer data)
{
  Reader *r = data;
  for (;;)
    {
      ReaderBuf *b = g_async_queue_pop (r->empty);
      if (b == &stop_sentinel)
        break;
      if (g_atomic_int_get (&r->stop))
        {
          g_async_queue_push (r->empty, b); /* freed there by walking_reader_clear */
          break;
        }
      r->outbuf = b->data;
      b->len = reader_decompress (r);
      gboolean last = b->len <= 0;
      g_async_queue_push (r->filled, b);
      if (last)
        break;
    }
  return NULL;
}

gssize
walking_reader_next (Reader *r, const void **out)
{
  if (r->held != NULL)
    {
      g_async_queue_push (r->empty, r->held);
      r->held = NULL;
    }
  if (r->done)
    return r->final;
  ReaderBuf *b = g_async_queue_pop (r->filled);
  if (b->len <= 0)
    {
      r->done = TRUE;
      r->final = b->len;
      g_async_queue_push (r->empty, b);
      return r->final;
    }
  r->held = b;
  *out = b->data;
  return b->len;
}

la_ssize_t
walking_reader_read_cb (struct archive *a, void *data, const void **buffer)
{
  Reader *r = data;
  gssize n = walking_reader_next (r, buffer);
  if (n < 0)
    {
      archive_set_error (a, EIO, "%s", r->error ? r->error->message : "read failed");
      return -1;
    }
  return n;
}

void
walking_reader_clear (Reader *r)
{
  if (r->thread != NULL)
    {
      /* The producer waits only on the empty queue (a read of the content store ends on
       * its own, or on the cancellable): the sentinel wakes it, the flag stops it. */
      g_atomic_int_set (&r->stop, 1);
      g_async_queue_push (r->empty, &stop_sentinel);
      g_thread_join (g_steal_pointer (&r->thread));
    }
  if (r->held != NULL)
    g_async_queue_push (r->empty, g_steal_pointer (&r->held));
  for (GAsyncQueue *q = r->empty; q != NULL; q = q == r->empty ? r->filled : NULL)
    {
      ReaderBuf *b;
      while ((b = g_async_queue_try_pop (q)) != NULL)
        if (b != &stop_sentinel)
          {
            g_free (b->data);
            g_free (b);
          }
    }
  g_clear_pointer (&r->empty, g_async_queue_unref);
  g_clear_pointer (&r->filled, g_async_queue_unref);
  r->outbuf = NULL;
  if (r->compression == COMPRESSION_GZIP)
    gzip_end (r);
  if (r->zstd != NULL)
    ZSTD_freeDStream (r->zstd);
  g_free (r->inbuf);
  berth_digester_free (r->digester);
  g_clear_error (&r->error);
}

gboolean
walking_compression_for (const char *media_type, Compression *out, GError **error)
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

void
walking_reader_start (Reader *r, GInputStream *in, guint64 max_uncompressed, GCancellable *cancellable)
{
  r->in = in;
  r->cancellable = cancellable;
  r->inbuf = g_malloc (CHUNK);
  r->digester = berth_digester_new ();
  r->max_uncompressed = max_uncompressed;
  if (r->compression == COMPRESSION_GZIP)
    gzip_init (r);
  if (r->compression == COMPRESSION_ZSTD)
    r->zstd = ZSTD_createDStream ();
  r->empty = g_async_queue_new ();
  r->filled = g_async_queue_new ();
  for (int i = 0; i < RING; i++)
    {
      ReaderBuf *b = g_new0 (ReaderBuf, 1);
      b->data = g_malloc (CHUNK);
      g_async_queue_push (r->empty, b);
    }
  r->thread = g_thread_new ("layer-inflate", reader_thread, r);
}
