/* shim-request.h — berth-shim's request line protocol, parsed without side effects so
 * the shim and its fuzz target (tests/fuzz/fuzz-shim-request.c) share one decoder.
 * Plain C, no allocation. See berth-shim.c for the verbs and their answers. */
#pragma once

#include <stddef.h>

#define SHIM_EXEC_ID_MAX 128 /* including the NUL */

typedef enum {
  SHIM_REQ_START = 1,
  SHIM_REQ_KILL,
  SHIM_REQ_WAIT,
  SHIM_REQ_STATE,
  SHIM_REQ_DELETE,
  SHIM_REQ_ADD, /* always with an exec id */
  SHIM_REQ_PAUSE,
  SHIM_REQ_RESUME,
  SHIM_REQ_PIDS,
  SHIM_REQ_UPDATE,
  SHIM_REQ_RESIZE,
} ShimVerb;

typedef struct {
  ShimVerb verb;
  int signal, all;                 /* kill */
  unsigned width, height;          /* resize */
  char exec_id[SHIM_EXEC_ID_MAX];  /* "" addresses the container's init */
} ShimRequest;

/* Parses the @len bytes at @buf (one request: up to the first newline or NUL).
 * Returns 0, or -1 with *error_out set to a static message naming what is wrong
 * (the request is quoted by the caller). */
int shim_request_parse (const char *buf, size_t len, ShimRequest *req, const char **error_out);
