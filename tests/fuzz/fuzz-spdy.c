/* fuzz-spdy.c — the SPDY/3.1 frame decoder of the CRI streaming server
 * (core/services/cri/cri-spdy.c), fed what a client sends after the upgrade: frames one after the
 * other through one decoder, as a connection would. Oracles: a frame never claims more
 * bytes than given nor a payload outside them; header names are lower case, non-empty,
 * within the limits; a decoded header frame, encoded again and decoded by a fresh pair,
 * gives back the same headers (the shared zlib streams stay in step). */
#include "config.h"

#include <string.h>

#include "services/cri/cri-spdy.h"
#include "fuzz.h"

static void
check_round_trip (const CriSpdyFrame *frame)
{
  g_autoptr (CriSpdyEncoder) encoder = cri_spdy_encoder_new ();
  g_autoptr (CriSpdyDecoder) decoder = cri_spdy_decoder_new ();
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autoptr (GPtrArray) list = g_ptr_array_new ();
  for (guint i = 0; i < frame->headers->len; i++)
    g_ptr_array_add (list, frame->headers->pdata[i]);
  g_ptr_array_add (list, NULL);
  /* Twice: the second block is compressed against the first one's history. */
  for (int round = 0; round < 2; round++)
    {
      gsize start = out->len;
      cri_spdy_encode_headers (encoder, out, frame->type, frame->flags, frame->stream_id,
                               (const char *const *) list->pdata);
      g_autoptr (GError) error = NULL;
      g_auto (CriSpdyFrame) again = { 0 };
      gssize n = cri_spdy_decode (decoder, out->data + start, out->len - start, &again, &error);
      if (n < 0 && g_error_matches (error, CRI_SPDY_ERROR, 0) && strstr (error->message, "a frame of") != NULL)
        return; /* encoded larger than the decoder takes: a limit, not a bug */
      if (n != (gssize) (out->len - start))
        FUZZ_FAIL ("re-encoded frame not decoded whole: %zd of %zu: %s", n, (gsize) (out->len - start),
                   error ? error->message : "");
      if (again.type != frame->type || again.stream_id != frame->stream_id || again.headers->len != frame->headers->len)
        FUZZ_FAIL ("re-encoded frame differs");
      for (guint i = 0; i < frame->headers->len; i++)
        if (strcmp (again.headers->pdata[i], frame->headers->pdata[i]) != 0)
          FUZZ_FAIL ("re-encoded header %u differs", i);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (CriSpdyDecoder) decoder = cri_spdy_decoder_new ();
  gsize off = 0;
  while (off < size)
    {
      g_auto (CriSpdyFrame) frame = { 0 };
      g_autoptr (GError) error = NULL;
      gssize n = cri_spdy_decode (decoder, data + off, size - off, &frame, &error);
      if (n < 0)
        {
          if (error == NULL || error->message[0] == '\0')
            FUZZ_FAIL ("error without a message");
          return 0;
        }
      if (error != NULL)
        FUZZ_FAIL ("error set on success");
      if (n == 0)
        return 0;
      if ((gsize) n > size - off || n < 8)
        FUZZ_FAIL ("frame claims %zd bytes of %zu", n, size - off);
      if (frame.type == CRI_SPDY_DATA
          && (frame.data < data + off || frame.data + frame.len > data + off + n || frame.stream_id == 0))
        FUZZ_FAIL ("DATA payload outside its frame");
      if (frame.headers != NULL)
        {
          if (frame.headers->len % 2 != 0 || frame.headers->len / 2 > CRI_SPDY_MAX_HEADERS)
            FUZZ_FAIL ("%u header strings", frame.headers->len);
          for (guint i = 0; i < frame.headers->len; i += 2)
            {
              const char *name = frame.headers->pdata[i];
              g_autofree char *lower = g_ascii_strdown (name, -1);
              if (*name == '\0' || strcmp (lower, name) != 0)
                FUZZ_FAIL ("header name %s", name);
            }
          check_round_trip (&frame);
        }
      off += n;
    }
  return 0;
}
