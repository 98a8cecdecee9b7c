/* fuzz-shim-request.c — berth-shim's request line decoder (core/shim/shim-request.c),
 * fed what a connection's single read returns (at most 511 bytes). Oracles: a parsed
 * request has a known verb, an exec id only of [A-Za-z0-9._-], a signal in 0-64, a
 * window size that fits a struct winsize; "add" always names an exec. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "shim/shim-request.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char line[512];
  size_t len = size < sizeof line - 1 ? size : sizeof line - 1;
  memcpy (line, data, len);
  line[len] = '\0';
  ShimRequest req;
  const char *error = NULL;
  if (shim_request_parse (line, len, &req, &error) < 0)
    {
      if (error == NULL || *error == '\0')
        abort ();
      return 0;
    }
  if (req.verb < SHIM_REQ_START || req.verb > SHIM_REQ_RESIZE)
    abort ();
  size_t id_len = strnlen (req.exec_id, sizeof req.exec_id);
  if (id_len == sizeof req.exec_id)
    abort ();
  if (strspn (req.exec_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != id_len)
    abort ();
  if (req.verb == SHIM_REQ_ADD && id_len == 0)
    abort ();
  if (req.signal < 0 || req.signal > 64 || req.width > 0xffff || req.height > 0xffff)
    abort ();
  return 0;
}
