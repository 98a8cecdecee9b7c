/* cri-log.h — container output written in Kubernetes' CRI log format, one record per
 * line:  <RFC3339Nano time> stdout|stderr F|P <text>
 * "F" ends a line; "P" is a piece of a line longer than CRI_LOG_LINE_MAX, continued by the
 * next record. The log path is followed: when the file there is no longer the one being
 * written (kubelet rotated it and asked for ReopenContainerLog), it is reopened.
 * A FIFO there (berthd's, for Attach to a container without a log) gets whole records
 * while it has room for them, and none otherwise; into it a line's beginning is written
 * at once as "P" records, not held until its end.
 * Plain libc, static buffers: it runs in berth-shim. */
#pragma once

#include <stddef.h>

#define CRI_LOG_LINE_MAX 16384

typedef struct {
  int fd;              /* the read end of the container's pipe, -1 once closed */
  const char *stream;  /* "stdout" or "stderr" */
  size_t len;
  char buf[CRI_LOG_LINE_MAX];
} CriLogStream;

/* Opens (appending, creating) the log at @path; -1 with errno on failure. */
int cri_log_open (const char *path);
/* Makes a pipe for @stream: returns its write end (for the container), keeps the
 * non-blocking read end in @s; -1 with errno on failure. */
int cri_log_stream_init (CriLogStream *s, const char *stream);
/* Reads what is there and logs every complete line: 2 when it read something, 1 when
 * the pipe was empty; at end of stream logs the rest, closes the pipe and returns 0. */
int cri_log_pump (CriLogStream *s);
/* Pumps until the pipe is empty (for the last output before the shim exits). */
void cri_log_drain (CriLogStream *s);
