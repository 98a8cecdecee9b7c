/* berth-daemon.c — being written; see its header. */
#include "config.h"
