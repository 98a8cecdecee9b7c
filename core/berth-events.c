/* berth-events.c — being written; see its header. */
#include "config.h"
