/* berth-events.c — INTERIM: the real exchange lands from the gRPC work (issue 3). */
#include "config.h"

#include "berth-events.h"

struct _BerthEvents { int unused; };
BerthEvents *berth_events_new (void) { return g_new0 (BerthEvents, 1); }
void berth_events_free (BerthEvents *events) { g_free (events); }
