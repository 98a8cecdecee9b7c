/* berth-config.h — berthd's configuration (core-internal).
 *
 * /etc/berth/berthd.conf is a GKeyFile. Group [berthd] holds the daemon's own keys,
 * [metrics] the Prometheus endpoint's; each plugin reads group [plugin.<kind>.<name>]
 * (kind = "content", "snapshotter", "differ", "runtime"), validated against the keys the
 * plugin declares; each registry host berthd pulls from or pushes to may have a
 * [registry."HOST[:PORT]"] group. Every error names the file and line.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* How berthd talks to one registry host: group [registry."HOST[:PORT]"]. */
typedef struct {
  gboolean plain_http;  /* http:// instead of https:// */
  gboolean skip_verify; /* https without verifying the certificate */
  char *ca_file;        /* PEM CAs trusted for this host, on top of the system's */
  char *endpoint;       /* "http[s]://HOST[:PORT]" reached instead of the host itself (a mirror), or NULL */
} BerthRegistryHostConfig;

typedef struct {
  char *path;          /* file read, or NULL when running on defaults */
  char *text;          /* its text, for line numbers in later errors */
  GKeyFile *keyfile;

  char *root;
  char *state;
  char *address;
  char *address_group;
  char *libexec_dir;   /* berth-shim, berth-plugin-scanner */
  GStrv plugin_dirs;   /* searched in order; later dirs do not override earlier ids */
  char *log_level;     /* error, warning, message, info, debug */
  char *default_snapshotter;
  char *default_runtime;
  char *default_runtime_binary;
  GStrv disabled_plugins; /* ids or short names */
  gint64 max_message_size;
  gint64 gc_interval_seconds;
  char *metrics_address; /* [metrics] address, "IP:PORT"; NULL: no endpoint */
  char *registry_auth_file;         /* docker config.json format */
  gint64 max_concurrent_downloads;  /* layers fetched at once by one pull */
  gint64 max_blob_size;             /* a pull refuses descriptors larger than this; 0: no limit */
  gint64 push_chunk_size;           /* larger blobs are pushed in chunks of this size; 0: never */
  GHashTable *registries;           /* "host[:port]" → BerthRegistryHostConfig, from [registry."HOST"] */
  char *cri_cni_conf_dir;           /* [cri] cni-conf-dir */
  char *cri_cni_bin_dir;            /* [cri] cni-bin-dir */
  char *cri_stream_address;         /* [cri] stream-address: "IP" or "IP:PORT" */
  gboolean rootless;                /* berthd --rootless: per-user paths, no real root */
} BerthConfig;

/* Reads @path (NULL: BERTH_SYSCONF_DIR/berth/berthd.conf, which may be absent). */
BerthConfig *berth_config_load (const char *path, GError **error);
/* As berth_config_load; @rootless: defaults are the user's (XDG) paths, and a NULL @path
 * reads $XDG_CONFIG_HOME/berth/berthd.conf. Without XDG_RUNTIME_DIR state and address
 * are NULL until the caller sets them. */
BerthConfig *berth_config_load_full (const char *path, gboolean rootless, GError **error);
/* The config file read when none is named. */
char *berth_config_default_path (gboolean rootless);
BerthConfig *berth_config_new_default (void);
void berth_config_free (BerthConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthConfig, berth_config_free)

/* @host's registry settings, NULL when it has none. */
const BerthRegistryHostConfig *berth_config_get_registry (const BerthConfig *config, const char *host);

/* The line of @key in @group (or of the group header when @key is NULL), 0 if absent. */
guint berth_config_find_line (const BerthConfig *config, const char *group, const char *key);
/* "file:line: " for error messages; "" when there is no file. */
char *berth_config_location (const BerthConfig *config, const char *group, const char *key);
/* The effective config as a keyfile text, plugins' groups included. */
char *berth_config_to_data (const BerthConfig *config);
/* Whether the [plugin.…] groups of @a and @b differ; *group_out (may be NULL) names the
 * first that does. */
gboolean berth_config_plugin_groups_differ (const BerthConfig *a, const BerthConfig *b, char **group_out);

G_END_DECLS
