/* cli-reference.h — image reference normalisation for the berth CLI. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Image names as docker spells them: "busybox" → "docker.io/library/busybox:latest".
 * Total: any string gives a name, and a normalised name normalises to itself. */
char *cli_normalize_image (const char *name);

G_END_DECLS
