/* cri-stream-entry.c — berthd's side of the CRI streaming module (core/daemon/berth-modules.h):
 * the streaming RPCs and containers' stdin open it on first use. */
#include "config.h"

#include <unistd.h>

#include "berth-cri.h"
#include "daemon/berth-modules.h"

/* ---------------- CRI streaming (libsoup) ---------------- */

/* cri-stream.c keeps these names inside its module (linked -Bsymbolic, so its own calls
 * stay there); these are the daemon's side of them. */
#define CRI_STREAM_CALL(func)                                                                                          \
  ProtobufCMessage *func (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error)      \
  {                                                                                                                    \
    __typeof__ (func) *real = berth_module_symbol ("cri-streaming", #func, error);                                    \
    return real ? real (call, request, daemon, error) : NULL;                                                          \
  }
CRI_STREAM_CALL (cri_exec)
CRI_STREAM_CALL (cri_attach)
CRI_STREAM_CALL (cri_port_forward)

char *
berth_cri_stdin_open (BerthDaemon *daemon, const char *id, GError **error)
{
  __typeof__ (berth_cri_stdin_open) *real = berth_module_symbol ("cri-streaming", "berth_cri_stdin_open", error);
  return real ? real (daemon, id, error) : NULL;
}

/* No FIFO is held open when the module is not (nothing opened one in this process), so
 * removing a container does not load it; a FIFO an earlier berthd made still goes. */
void
berth_cri_stdin_close (BerthDaemon *daemon, const char *id, gboolean remove)
{
  __typeof__ (berth_cri_stdin_close) *real = berth_module_symbol_if_open ("cri-streaming", "berth_cri_stdin_close");
  if (real != NULL)
    real (daemon, id, remove);
  else if (remove)
    {
      g_autofree char *path = berth_cri_path (daemon, "stdin", id);
      unlink (path);
    }
}
