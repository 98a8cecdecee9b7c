/* cri-spdy.h — SPDY/3.1 framing for the CRI streaming server (cri-stream.c).
 *
 * Kubernetes clients up to 1.29 (kubelet's proxy, kubectl, crictl, critest) open exec,
 * attach and port-forward streams as an HTTP Upgrade to SPDY/3.1 and multiplex their
 * stdin, stdout, stderr, error, resize and data streams over it (moby/spdystream). This
 * module only encodes and decodes frames; the session logic lives in cri-stream.c.
 *
 * Name/value header blocks are compressed with one zlib stream per direction and
 * connection, primed with the SPDY/3 dictionary, so a decoder and an encoder each hold
 * state across frames: after a decoding error the connection must end.
 *
 * The decoder is fed hostile bytes: every length is checked against what is left of the
 * frame, a frame's payload is capped at CRI_SPDY_MAX_FRAME, a header block inflates to at
 * most CRI_SPDY_MAX_HEADER_BLOCK bytes and holds at most CRI_SPDY_MAX_HEADERS pairs.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CRI_SPDY_MAX_FRAME (1024 * 1024)    /* payload bytes of any frame we accept */
#define CRI_SPDY_MAX_DATA 0xffffff           /* what one DATA frame's length field holds */
#define CRI_SPDY_MAX_HEADER_BLOCK (64 * 1024) /* inflated name/value block */
#define CRI_SPDY_MAX_HEADERS 128
#define CRI_SPDY_INITIAL_WINDOW (64 * 1024)   /* SPDY/3's default stream window */

#define CRI_SPDY_FLAG_FIN 0x01

typedef enum {
  CRI_SPDY_DATA = 0,
  CRI_SPDY_SYN_STREAM = 1,
  CRI_SPDY_SYN_REPLY = 2,
  CRI_SPDY_RST_STREAM = 3,
  CRI_SPDY_SETTINGS = 4,
  CRI_SPDY_PING = 6,
  CRI_SPDY_GOAWAY = 7,
  CRI_SPDY_HEADERS = 8,
  CRI_SPDY_WINDOW_UPDATE = 9,
  CRI_SPDY_UNKNOWN = 0xffff, /* a control frame of another type: SPDY says ignore it */
} CriSpdyType;

/* RST_STREAM status codes */
enum {
  CRI_SPDY_PROTOCOL_ERROR = 1,
  CRI_SPDY_INVALID_STREAM = 2,
  CRI_SPDY_REFUSED_STREAM = 3,
  CRI_SPDY_CANCEL = 5,
  CRI_SPDY_INTERNAL_ERROR = 6,
  CRI_SPDY_FLOW_CONTROL_ERROR = 7,
};

#define CRI_SPDY_SETTINGS_INITIAL_WINDOW_SIZE 7

typedef struct {
  CriSpdyType type;
  guint8 flags;
  guint32 stream_id; /* GOAWAY: the last good stream; PING and SETTINGS: 0 */
  guint32 value;     /* RST_STREAM and GOAWAY: status; PING: id; WINDOW_UPDATE: delta;
                      * SYN_STREAM: the associated stream; SETTINGS: the initial window
                      * size it sets, or 0 */
  GPtrArray *headers; /* SYN_STREAM, SYN_REPLY, HEADERS: name, value, name, value… (names
                       * lower case; a value with NULs becomes one pair per part) */
  const guint8 *data; /* DATA: the payload, inside the buffer given to the decoder */
  gsize len;
} CriSpdyFrame;

GQuark cri_spdy_error_quark (void);
#define CRI_SPDY_ERROR (cri_spdy_error_quark ())

typedef struct _CriSpdyDecoder CriSpdyDecoder;
typedef struct _CriSpdyEncoder CriSpdyEncoder;

CriSpdyDecoder *cri_spdy_decoder_new (void);
void cri_spdy_decoder_free (CriSpdyDecoder *decoder);
/* Decodes the frame at the start of @buf: the bytes it took, 0 while @buf holds only
 * part of it, -1 on an error (the connection must end). @frame is to be cleared. */
gssize cri_spdy_decode (CriSpdyDecoder *decoder, const guint8 *buf, gsize len, CriSpdyFrame *frame, GError **error);
void cri_spdy_frame_clear (CriSpdyFrame *frame);
const char *cri_spdy_frame_get_header (const CriSpdyFrame *frame, const char *name);

CriSpdyEncoder *cri_spdy_encoder_new (void);
void cri_spdy_encoder_free (CriSpdyEncoder *encoder);
/* SYN_STREAM, SYN_REPLY or HEADERS with @headers (name, value, …, NULL). */
void cri_spdy_encode_headers (CriSpdyEncoder *encoder, GByteArray *out, CriSpdyType type, guint8 flags,
                              guint32 stream_id, const char *const *headers);
/* DATA: @len at most CRI_SPDY_MAX_DATA. */
void cri_spdy_encode_data (GByteArray *out, guint32 stream_id, guint8 flags, const void *data, gsize len);
/* RST_STREAM (id, status), GOAWAY (last good id, status), WINDOW_UPDATE (id, delta) or
 * PING (id, ignored). */
void cri_spdy_encode_control (GByteArray *out, CriSpdyType type, guint32 id, guint32 value);
/* SETTINGS with one entry. */
void cri_spdy_encode_settings (GByteArray *out, guint32 setting, guint32 value);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CriSpdyDecoder, cri_spdy_decoder_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CriSpdyEncoder, cri_spdy_encoder_free)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CriSpdyFrame, cri_spdy_frame_clear)

G_END_DECLS
