/* walking-tar-writer.h — the small pax tar writer making a layer (walking-compare.c) writes
 * through, instead of libarchive's writer: libarchive's pax writer drags in every other
 * writer (xar → libxml2, 7zip → lzma, …), which would undo linking its reader statically.
 * Streaming: a header, then the entry's data, then the next header; nothing is buffered
 * beyond one 512-byte block and one pax extended header.
 */
#pragma once

#include <sys/stat.h>

#include <glib.h>

G_BEGIN_DECLS

#define TAR_BLOCK 512

/* Where the tar bytes go; FALSE with @error set stops the writer. */
typedef gboolean (*TarSinkFunc) (gpointer data, const void *buf, gsize len, GError **error);

typedef struct {
  TarSinkFunc sink;
  gpointer sink_data;
  guint64 remaining; /* data bytes the current entry still owes */
  guint64 padding;   /* zero bytes after them, to the next block */
} TarWriter;

void walking_tar_writer_init (TarWriter *w, TarSinkFunc sink, gpointer sink_data);
/* Starts the entry @name (a directory's with its trailing '/') with @st's type, mode,
 * owner, mtime and, for a regular file, size; @link_target for a symlink. Finishes the
 * previous entry first (its missing data as zeros, so the archive stays well-formed). */
gboolean walking_tar_writer_header (TarWriter *w, const char *name, const struct stat *st, const char *link_target,
                                    GError **error);
/* The current entry's data; more than its header declared is an error. */
gboolean walking_tar_writer_data (TarWriter *w, const void *buf, gsize len, GError **error);
/* Finishes the last entry and writes the two zero end blocks. */
gboolean walking_tar_writer_close (TarWriter *w, GError **error);

G_END_DECLS
