/* shim-request.c — see shim-request.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "shim-request.h"

#define REQUEST_MAX 512

/* Exec ids as the runtime plugin accepts them: 1-127 of [A-Za-z0-9._-]. They become
 * file names under the state dir, so nothing else may pass. */
static int
valid_exec_id (const char *id)
{
  size_t n = strlen (id);
  if (n == 0 || n >= SHIM_EXEC_ID_MAX)
    return 0;
  return strspn (id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int
fail (const char **error_out, const char *message)
{
  *error_out = message;
  return -1;
}

int
shim_request_parse (const char *buf, size_t len, ShimRequest *req, const char **error_out)
{
  char line[REQUEST_MAX];
  if (len >= sizeof line)
    return fail (error_out, "request too long");
  memcpy (line, buf, len);
  line[len] = '\0';
  line[strcspn (line, "\n")] = '\0';
  memset (req, 0, sizeof *req);

  static const struct {
    const char *name;
    ShimVerb verb;
  } verbs[] = {
    { "start", SHIM_REQ_START }, { "kill", SHIM_REQ_KILL },     { "wait", SHIM_REQ_WAIT },
    { "state", SHIM_REQ_STATE }, { "delete", SHIM_REQ_DELETE }, { "add", SHIM_REQ_ADD },
    { "pause", SHIM_REQ_PAUSE }, { "resume", SHIM_REQ_RESUME }, { "pids", SHIM_REQ_PIDS },
    { "update", SHIM_REQ_UPDATE }, { "resize", SHIM_REQ_RESIZE },
  };
  /* verb [args…]: words separated by single spaces, nothing else. */
  char *args = strchr (line, ' ');
  if (args != NULL)
    *args++ = '\0';
  for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++)
    if (strcmp (line, verbs[v].name) == 0)
      req->verb = verbs[v].verb;
  if (req->verb == 0)
    return fail (error_out, "unknown request");

  char extra[2], id[SHIM_EXEC_ID_MAX + 1] = "";
  int n = 0;
  switch (req->verb)
    {
    case SHIM_REQ_KILL:
      /* kill SIGNAL [ALL [EXEC]] */
      n = args ? sscanf (args, "%d %d %128s %1s", &req->signal, &req->all, id, extra) : 0;
      if (n < 1 || n > 3)
        return fail (error_out, "malformed kill");
      if (req->signal < 0 || req->signal > 64)
        return fail (error_out, "kill: signal out of range");
      req->all = req->all != 0;
      break;
    case SHIM_REQ_RESIZE:
      /* resize WIDTH HEIGHT [EXEC] */
      n = args ? sscanf (args, "%u %u %128s %1s", &req->width, &req->height, id, extra) : 0;
      if (n < 2 || n > 3 || req->width > 0xffff || req->height > 0xffff)
        return fail (error_out, "malformed resize");
      break;
    case SHIM_REQ_START:
    case SHIM_REQ_WAIT:
    case SHIM_REQ_STATE:
    case SHIM_REQ_DELETE:
    case SHIM_REQ_ADD:
      n = args ? sscanf (args, "%128s %1s", id, extra) : 0;
      if (n < 0) /* EOF: nothing but blanks after the verb */
        n = 0;
      if (n > 1 || (n == 0 && args != NULL))
        return fail (error_out, "malformed request");
      if (req->verb == SHIM_REQ_ADD && n == 0)
        return fail (error_out, "add needs an exec id");
      break;
    default:
      if (args != NULL)
        return fail (error_out, "unexpected arguments");
      return 0;
    }
  if (*id != '\0')
    {
      if (!valid_exec_id (id))
        return fail (error_out, "invalid exec id");
      memcpy (req->exec_id, id, strlen (id) + 1);
    }
  return 0;
}
