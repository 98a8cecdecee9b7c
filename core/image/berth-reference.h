/* berth-reference.h — image references ("docker.io/library/busybox:1.36@sha256:…"),
 * parsed and normalised as docker does: "busybox" is "docker.io/library/busybox:latest";
 * a first component with a dot, a colon (port) or named localhost is a registry host;
 * "@sha256:…" pins a digest. The one parser of the tree: berthd (pull, push, CRI's image
 * names) and the berth CLI use it. Needs only libberth-1. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  char *domain; /* "docker.io", "127.0.0.1:5000" */
  char *path;   /* "library/busybox" */
  char *tag;    /* NULL when only a digest is given */
  char *digest; /* NULL unless pinned */
} BerthReference;

/* INVALID_ARGUMENT saying what is wrong with @text. */
BerthReference *berth_reference_parse (const char *text, GError **error);
/* "domain/path[:tag][@digest]". */
char *berth_reference_to_string (const BerthReference *ref);
/* @text parsed and printed again: its normalised name, or INVALID_ARGUMENT. */
char *berth_reference_normalize (const char *text, GError **error);
void berth_reference_free (BerthReference *ref);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthReference, berth_reference_free)

G_END_DECLS
