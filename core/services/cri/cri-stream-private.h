/* cri-stream-private.h — what the three parts of the CRI streaming module share
 * (core-internal to core/services/cri/):
 *   cri-stream.c          the RPCs, the stored requests, the HTTP server, containers' stdin
 *   cri-stream-session.c  a session: pumps between the client and a process or socket,
 *                         terminal size, exec, attach, port forwarding, the WebSocket side
 *   cri-stream-spdy.c     the SPDY/3.1 side (framing in cri-spdy.c)
 * The protocol is described at the top of cri-stream.c. Hidden (G_GNUC_INTERNAL): the
 * module exports what it did before. */
#pragma once

#include <libsoup/soup.h>

#include "berth-cri.h"
#include "cri-spdy.h"

G_BEGIN_DECLS

#define TOKEN_LIFETIME_US (60 * G_USEC_PER_SEC)
#define ATTACH_POLL_US (100 * 1000)

enum {
  CHANNEL_STDIN = 0,
  CHANNEL_STDOUT = 1,
  CHANNEL_STDERR = 2,
  CHANNEL_STATUS = 3,
  CHANNEL_RESIZE = 4,
  CHANNEL_CLOSE = 255, /* v5: the next byte names a stream the client is done writing */
};

typedef enum { STREAM_EXEC, STREAM_ATTACH, STREAM_PORT_FORWARD, N_STREAM_KINDS } StreamKind;

typedef struct {
  StreamKind kind;
  BerthDaemon *daemon;
  char *id; /* container, or sandbox for port forwarding */
  GStrv cmd;
  gboolean in, out, err, tty;
  gboolean stdin_once; /* attach: the container's stdin ends with this client's */
  char *log_path; /* attach */
  gboolean raw_log; /* attach: a terminal's output, logged as it is (not in CRI format) */
  char *netns;    /* port forwarding: "" for the host's */
  GArray *ports;  /* guint16 */
  gint64 expires; /* monotonic */
} StreamRequest;

G_GNUC_INTERNAL void stream_request_free (StreamRequest *req);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StreamRequest, stream_request_free)

/* What berthd queues toward one side before it stops reading the other: a client that
 * stops reading (or a process that stops reading its stdin) costs this much, no more. */
#define OUT_BUDGET (1024 * 1024)
#define IN_BUDGET (1024 * 1024)
#define SPDY_STREAMS_TIMEOUT_S 30 /* for the client to open the streams its request named */
#define SPDY_LINGER_S 5           /* for the client to close after our last frame */
#define SPDY_MAX_FORWARDS 128     /* port forwarding: connections at once on one session */

typedef struct _Session Session;

/* One file descriptor between the client and a process or socket: what it reads goes
 * out on @channel (or SPDY stream @data_stream); what the client sends on it is
 * written, queued while the fd is full. */
typedef struct {
  Session *session;
  int fd;
  gboolean is_socket;
  guint8 channel;
  guint read_source;
  guint write_source;
  gboolean paused; /* not reading @fd while the client's queue is over budget */
  GByteArray *queue;
  gboolean connecting; /* port forwarding: what the client sends is queued meanwhile */
  gboolean close_when_flushed;
  gboolean shutdown_when_flushed; /* a socket the client is done writing to */
  /* SPDY port forwarding: one connection per client request */
  char *request_id;
  guint16 port;
  guint32 data_stream, error_stream;
  guint32 unacked; /* SPDY: bytes taken from the client since our last WINDOW_UPDATE */
  gboolean release_stdin; /* attach with stdin_once: its end ends the container's stdin */
  gboolean dialing;       /* SPDY port forwarding: a worker connects it */
  gboolean done;          /* SPDY port forwarding: over, to be dropped (when not dialing) */
} Pump;

/* A SPDY/3.1 connection, stolen from libsoup after its 101 answer. */
typedef struct {
  GIOStream *stream; /* held so libsoup does not close the socket */
  GSocket *socket;
  int fd;
  CriSpdyDecoder *decoder;
  CriSpdyEncoder *encoder;
  GByteArray *in, *out;
  GHashTable *open; /* stream ids we answered and have not finished */
  guint read_source, write_source, timeout_source;
  gboolean closing; /* our last frame is queued: shut down once it is out */
  gboolean gone;
} Spdy;

enum { SPDY_STDIN, SPDY_STDOUT, SPDY_STDERR, SPDY_ERROR, SPDY_RESIZE, N_SPDY_STREAMS };

struct _Session {
  StreamRequest *req;
  SoupWebsocketConnection *ws; /* one of these two */
  Spdy *spdy;
  int ws_fd;           /* the WebSocket's socket, -1 if unknown */
  guint ws_writable;   /* watching it while it takes nothing */
  gboolean v5;
  int version;                     /* SPDY exec and attach: N of vN.channel.k8s.io */
  guint32 ids[N_SPDY_STREAMS];     /* SPDY exec and attach: the client's streams */
  gboolean started;
  gint out_full; /* atomic: the client's queue is over budget (read by attach's worker) */
  int attach_fd;  /* attach: the log or output FIFO, at its end before stdin flows */
  char *exec_id;  /* exec: the process, for resizing its terminal */
  GString *resize_text; /* SPDY: what came on the resize stream, up to a newline */
  guint16 want_size[2], done_size[2]; /* terminal width, height: asked for, applied */
  gboolean resizing;
  GCancellable *cancellable;
  char *dir; /* exec: its FIFOs */
  int stdin_keep; /* exec: a reader of the stdin FIFO, so input written (and the end of
                   * it) before the process opened it is not lost with the pipe */
  GPtrArray *pumps; /* Pump: exec: stdin, stdout, stderr; port forwarding: one per port
                     * (WebSocket) or per connection (SPDY) */
};

/* ---------------- cri-stream.c ---------------- */

G_GNUC_INTERNAL StreamRequest *request_lookup (const char *path, gboolean take);

/* ---------------- cri-stream-session.c ---------------- */

G_GNUC_INTERNAL Pump *pump_at (Session *s, guint i);
G_GNUC_INTERNAL Pump *pump_new (Session *s, guint8 channel, gboolean is_socket);
G_GNUC_INTERNAL void pump_close (Pump *p);
G_GNUC_INTERNAL Session *session_new (StreamRequest *req);
G_GNUC_INTERNAL Session *session_ref (Session *s);
G_GNUC_INTERNAL void session_unref (Session *s);
G_GNUC_INTERNAL gboolean session_open (Session *s);
G_GNUC_INTERNAL void session_close (Session *s);
G_GNUC_INTERNAL void session_end (Session *s);
G_GNUC_INTERNAL void pump_start_reading (Pump *p);
G_GNUC_INTERNAL void session_resume (Session *s);
G_GNUC_INTERNAL void pump_write (Pump *p, const guint8 *data, gsize len);
G_GNUC_INTERNAL void pump_flushed (Pump *p);
G_GNUC_INTERNAL gboolean pump_writable (int fd, GIOCondition condition, gpointer data);
G_GNUC_INTERNAL void pump_end_input (Pump *p);
G_GNUC_INTERNAL void session_resize (Session *s, const char *text, gsize len);
typedef struct {
  const char *netns;
  guint16 port;
  int fd;
  int err;
} Dial;
/* In a thread of its own: joins the pod's network namespace and connects @data (a Dial). */
G_GNUC_INTERNAL gpointer dial_thread (gpointer data);
G_GNUC_INTERNAL void session_begin (Session *s, SoupServerMessage *msg);
G_GNUC_INTERNAL void on_websocket (SoupServer *server, SoupServerMessage *msg, const char *path, SoupWebsocketConnection *ws, gpointer user_data);

/* ---------------- cri-stream-spdy.c ---------------- */

G_GNUC_INTERNAL void spdy_free (Spdy *c);
G_GNUC_INTERNAL void spdy_send_data (Session *s, guint32 stream, gboolean fin, const void *data, gsize len);
G_GNUC_INTERNAL void spdy_close (Session *s);
G_GNUC_INTERNAL void spdy_update_reading (Session *s);
G_GNUC_INTERNAL void spdy_forward_finish (Pump *p, const char *message);
G_GNUC_INTERNAL void on_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data);

G_END_DECLS
