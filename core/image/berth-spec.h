/* berth-spec.h — OCI runtime specs generated client-side, the way containerd's client
 * (oci.WithDefaultSpec + WithImageConfig and friends) builds them: containerd's defaults,
 * the image's config, then the user's options. Linked by the `berth` CLI and CRI.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Everything here is optional: a zeroed struct gives containerd's default spec for the
 * image. Nothing is taken over; strings are only read during berth_spec_generate(). */
typedef struct {
  GStrv args;              /* replaces the image's Cmd; its Entrypoint stays in front (docker's rule) */
  GStrv env;               /* "K=V" sets or replaces K, a bare "K" removes it */
  GStrv mounts;            /* "SRC:DST[:ro|:rw]" bind mounts of absolute host paths */
  GStrv cap_add;           /* "CAP_NET_ADMIN" or "NET_ADMIN", "ALL" */
  GStrv cap_drop;          /* applied after cap_add; "ALL" drops every capability */
  const char *workdir;     /* absolute; default the image's WorkingDir, else "/" */
  const char *user;        /* "name", "uid", "name:group", "uid:gid"…; default the image's User */
  const char *hostname;
  gint64 memory_limit;     /* bytes; 0 for no limit */
  double cpus;             /* CPUs' worth of CFS quota per 100 ms period; 0 for no limit */
  gint64 pids_limit;       /* 0 for no limit */
  gboolean read_only;      /* read-only root filesystem */
  gboolean privileged;     /* every capability, all devices, no masked paths, no seccomp */
  gboolean terminal;
  const char *seccomp_profile; /* docker-format profile path, "unconfined", NULL for the default */
  const char *cgroups_path;    /* default "/<namespace>/<id>" when both are given */
  const char *namespace;
  const char *id;
  const char *image_name;      /* only to name the image in errors */
} BerthSpecOptions;

/* The complete OCI runtime spec (config.json) for a container of the image whose OCI
 * config is @image_config ({"config": {"Entrypoint", "Cmd", "Env", "WorkingDir",
 * "User"}}, may be NULL). @rootfs is the image's mounted root filesystem, read only for
 * its /etc/passwd and /etc/group (symlinks resolved inside it); without it only numeric
 * users can be used. Errors are G_IO_ERROR: INVALID_ARGUMENT for bad options,
 * INVALID_DATA for a malformed image config or seccomp profile, NOT_FOUND for a user,
 * group or mount source that does not exist. */
JsonNode *berth_spec_generate (const BerthSpecOptions *opts, JsonNode *image_config, const char *rootfs,
                               GError **error);

/* berth_spec_generate for an image whose root filesystem is @rootfs_mounts (a BerthMount
 * list, e.g. a prepared snapshot's): mounted on a temporary directory for a moment only
 * when the user (@opts' or the image's) is a name to look up in its /etc/passwd. */
JsonNode *berth_spec_generate_on_mounts (const BerthSpecOptions *opts, JsonNode *image_config, GPtrArray *rootfs_mounts,
                                         GError **error);

/* Where the default seccomp profile is read from: $BERTH_DATADIR/seccomp/default.json
 * if that variable is set (tests), else the installed one under the package data dir. */
char *berth_spec_default_seccomp_profile (void);

G_END_DECLS
