/* berth-config.c — berthd's configuration: defaults, file, validation with line numbers. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include "berth-config.h"
#include "berth-metrics.h"
#include "lib/berth-plugin-context-private.h"

#define DAEMON_GROUP "berthd"
#define METRICS_GROUP "metrics"
#define CRI_GROUP "cri"

typedef enum { KEY_STRING, KEY_LIST, KEY_SIZE, KEY_LOG_LEVEL, KEY_LISTEN_ADDRESS } KeyKind;

typedef struct {
  const char *group;
  const char *name;
  KeyKind kind;
  gsize offset; /* into BerthConfig */
  const char *description;
} ConfigKey;

#define FIELD(f) G_STRUCT_OFFSET (BerthConfig, f)
static const ConfigKey config_keys[] = {
  { DAEMON_GROUP, "root", KEY_STRING, FIELD (root), "persistent data: content, metadata, snapshots" },
  { DAEMON_GROUP, "state", KEY_STRING, FIELD (state), "runtime state: sockets, shims, bundles (tmpfs)" },
  { DAEMON_GROUP, "address", KEY_STRING, FIELD (address), "gRPC unix socket" },
  { DAEMON_GROUP, "address-group", KEY_STRING, FIELD (address_group), "group owning the socket (mode 0660)" },
  { DAEMON_GROUP, "libexec-dir", KEY_STRING, FIELD (libexec_dir), "where berth-shim and berth-plugin-scanner are" },
  { DAEMON_GROUP, "plugin-dirs", KEY_LIST, FIELD (plugin_dirs), "directories searched for plugins, in order" },
  { DAEMON_GROUP, "log-level", KEY_LOG_LEVEL, FIELD (log_level), "error, warning, message, info or debug" },
  { DAEMON_GROUP, "default-snapshotter", KEY_STRING, FIELD (default_snapshotter), "snapshotter used when a client names none" },
  { DAEMON_GROUP, "default-runtime", KEY_STRING, FIELD (default_runtime), "runtime used when a client names none" },
  { DAEMON_GROUP, "default-runtime-binary", KEY_STRING, FIELD (default_runtime_binary), "OCI runtime binary: runc or crun" },
  { DAEMON_GROUP, "disabled-plugins", KEY_LIST, FIELD (disabled_plugins), "plugin ids or names not to load" },
  { DAEMON_GROUP, "max-message-size", KEY_SIZE, FIELD (max_message_size), "largest gRPC message accepted or sent" },
  { DAEMON_GROUP, "gc-interval", KEY_SIZE, FIELD (gc_interval_seconds), "seconds between scheduled garbage collections (0: off)" },
  { METRICS_GROUP, "address", KEY_LISTEN_ADDRESS, FIELD (metrics_address),
    "IP:PORT serving Prometheus metrics at /v1/metrics and /metrics (empty: off)" },
  { DAEMON_GROUP, "registry-auth-file", KEY_STRING, FIELD (registry_auth_file),
    "registry credentials, docker config.json format ({\"auths\": {\"HOST\": {\"auth\": base64(USER:PASS)}}})" },
  { DAEMON_GROUP, "max-concurrent-downloads", KEY_SIZE, FIELD (max_concurrent_downloads), "layers one pull fetches at once" },
  { DAEMON_GROUP, "max-blob-size", KEY_SIZE, FIELD (max_blob_size),
    "largest blob a pull fetches: a descriptor declaring more is refused before the fetch (0: no limit)" },
  { DAEMON_GROUP, "push-chunk-size", KEY_SIZE, FIELD (push_chunk_size),
    "blobs larger than this are pushed in PATCH chunks of this size (0: always one PUT)" },
  { CRI_GROUP, "cni-conf-dir", KEY_STRING, FIELD (cri_cni_conf_dir), "CNI network configurations for pods (*.conflist, *.conf)" },
  { CRI_GROUP, "cni-bin-dir", KEY_STRING, FIELD (cri_cni_bin_dir), "CNI plugin binaries" },
  { CRI_GROUP, "stream-address", KEY_STRING, FIELD (cri_stream_address),
    "IP or IP:PORT of the Exec/Attach/PortForward streaming server (port 0: any free one)" },
};

#define REGISTRY_GROUP_PREFIX "registry."
static const char *const registry_keys[] = { "plain-http", "skip-verify", "ca-file", "endpoint", NULL };

static const char *const log_levels[] = { "error", "critical", "warning", "message", "info", "debug", NULL };

static void
registry_host_config_free (gpointer data)
{
  BerthRegistryHostConfig *host = data;
  g_free (host->ca_file);
  g_free (host->endpoint);
  g_free (host);
}

BerthConfig *
berth_config_new_default (void)
{
  BerthConfig *config = g_new0 (BerthConfig, 1);
  config->root = g_strdup ("/var/lib/berth");
  config->state = g_strdup ("/run/berth");
  config->address = g_strdup ("/run/berth/berthd.sock");
  config->libexec_dir = g_strdup (BERTH_LIBEXEC_DIR);
  config->plugin_dirs = g_strdupv ((char *[]) { (char *) BERTH_PLUGIN_DIR, NULL });
  config->log_level = g_strdup ("info");
  config->default_snapshotter = g_strdup (BERTH_DEFAULT_SNAPSHOTTER);
  config->default_runtime = g_strdup ("io.containerd.runc.v2");
  config->default_runtime_binary = g_strdup (BERTH_DEFAULT_RUNTIME_BINARY);
  config->disabled_plugins = g_new0 (char *, 1);
  config->max_message_size = 16 * 1024 * 1024;
  config->gc_interval_seconds = 300;
  config->registry_auth_file = g_strdup (BERTH_SYSCONF_DIR "/berth/auth.json");
  config->max_concurrent_downloads = 3;
  config->push_chunk_size = 32 * 1024 * 1024;
  config->registries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, registry_host_config_free);
  config->cri_cni_conf_dir = g_strdup ("/etc/cni/net.d");
  config->cri_stream_address = g_strdup ("127.0.0.1");
  config->cri_cni_bin_dir = g_strdup ("/usr/lib/cni");
  return config;
}

/* Per-user paths (XDG) for a daemon run by an unprivileged user, as rootless containerd's:
 * data under ~/.local/share, state and socket under $XDG_RUNTIME_DIR (a per-user tmpfs),
 * config under ~/.config. Without XDG_RUNTIME_DIR, state and address stay NULL: berthd
 * then wants --state and --address rather than guess a directory others may share. */
static void
set_rootless_defaults (BerthConfig *config)
{
  const char *runtime_dir = g_getenv ("XDG_RUNTIME_DIR");
  g_free (config->root);
  config->root = g_build_filename (g_get_user_data_dir (), "berth", NULL);
  g_clear_pointer (&config->state, g_free);
  g_clear_pointer (&config->address, g_free);
  if (runtime_dir != NULL && g_path_is_absolute (runtime_dir))
    {
      config->state = g_build_filename (runtime_dir, "berth", NULL);
      config->address = g_build_filename (config->state, "berthd.sock", NULL);
    }
  g_free (config->registry_auth_file);
  config->registry_auth_file = g_build_filename (g_get_user_config_dir (), "berth", "auth.json", NULL);
  g_free (config->cri_cni_conf_dir);
  config->cri_cni_conf_dir = g_build_filename (g_get_user_config_dir (), "cni", "net.d", NULL);
}

char *
berth_config_default_path (gboolean rootless)
{
  if (rootless)
    return g_build_filename (g_get_user_config_dir (), "berth", "berthd.conf", NULL);
  return g_build_filename (BERTH_SYSCONF_DIR, "berth", "berthd.conf", NULL);
}

void
berth_config_free (BerthConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->path);
  g_free (config->text);
  g_clear_pointer (&config->keyfile, g_key_file_unref);
  g_free (config->root);
  g_free (config->state);
  g_free (config->address);
  g_free (config->address_group);
  g_free (config->libexec_dir);
  g_strfreev (config->plugin_dirs);
  g_free (config->log_level);
  g_free (config->default_snapshotter);
  g_free (config->default_runtime);
  g_free (config->default_runtime_binary);
  g_strfreev (config->disabled_plugins);
  g_free (config->metrics_address);
  g_free (config->registry_auth_file);
  g_clear_pointer (&config->registries, g_hash_table_unref);
  g_free (config->cri_cni_conf_dir);
  g_free (config->cri_stream_address);
  g_free (config->cri_cni_bin_dir);
  g_free (config);
}

/* Calls @func for each line with the group it is in; stops when @func returns TRUE. */
static guint
scan_lines (const char *text, gboolean (*func) (const char *group, const char *line, gpointer data), gpointer data)
{
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);
  g_autofree char *group = NULL;
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = g_strstrip (lines[i]);
      if (line[0] == '[')
        {
          const char *end = strchr (line, ']');
          g_free (group);
          group = end ? g_strndup (line + 1, end - line - 1) : g_strdup (line + 1);
        }
      if (func (group, line, data))
        return i + 1;
    }
  return 0;
}

typedef struct {
  const char *group;
  const char *key;
} FindData;

static gboolean
find_line_cb (const char *group, const char *line, gpointer data)
{
  FindData *fd = data;
  if (group == NULL || !g_str_equal (group, fd->group))
    return FALSE;
  if (fd->key == NULL)
    return line[0] == '[';
  gsize klen = strlen (fd->key);
  if (strncmp (line, fd->key, klen) != 0)
    return FALSE;
  const char *rest = line + klen;
  while (g_ascii_isspace (*rest)) /* as GKeyFile strips a key: \r too */
    rest++;
  return *rest == '=' || *rest == '[';
}

guint
berth_config_find_line (const BerthConfig *config, const char *group, const char *key)
{
  FindData fd = { group, key };
  return scan_lines (config->text, find_line_cb, &fd);
}

char *
berth_config_location (const BerthConfig *config, const char *group, const char *key)
{
  if (config->path == NULL)
    return g_strdup ("");
  guint line = berth_config_find_line (config, group, key);
  if (line == 0)
    line = berth_config_find_line (config, group, NULL);
  return line ? g_strdup_printf ("%s:%u: ", config->path, line) : g_strdup_printf ("%s: ", config->path);
}

/* GKeyFile's own syntax errors carry no line number; this pass finds the line first. */
typedef struct {
  guint line;
  const char *bad;
} SyntaxData;

static gboolean
syntax_cb (const char *group, const char *line, gpointer data)
{
  SyntaxData *sd = data;
  sd->line++;
  if (line[0] == '\0' || line[0] == '#')
    return FALSE;
  if (line[0] == '[')
    {
      if (line[strlen (line) - 1] != ']' || strlen (line) < 3)
        return (sd->bad = "malformed group header, want [name]") != NULL;
      return FALSE;
    }
  if (group == NULL)
    return (sd->bad = "key outside any group; start with [berthd]") != NULL;
  const char *eq = strchr (line, '=');
  if (eq == NULL || eq == line)
    return (sd->bad = "not a key=value pair, a [group] or a # comment") != NULL;
  return FALSE;
}

static gboolean
validate_value (BerthConfig *config, const ConfigKey *key, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *where = berth_config_location (config, key->group, key->name);
  gpointer field = G_STRUCT_MEMBER_P (config, key->offset);
  switch (key->kind)
    {
    case KEY_STRING:
    case KEY_LOG_LEVEL:
      {
        g_autofree char *value = g_key_file_get_string (config->keyfile, key->group, key->name, &local_error);
        if (value == NULL)
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s%s: %s", where, key->name, local_error->message);
        if (key->kind == KEY_LOG_LEVEL && !g_strv_contains (log_levels, value))
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                              "%slog-level \"%s\" is not one of error, warning, message, info, debug", where, value);
        if (key->kind == KEY_STRING && *value == '\0' && !g_str_equal (key->name, "address-group"))
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s%s must not be empty", where, key->name);
        g_free (*(char **) field);
        *(char **) field = g_steal_pointer (&value);
        break;
      }
    case KEY_LIST:
      {
        g_auto (GStrv) value = g_key_file_get_string_list (config->keyfile, key->group, key->name, NULL, &local_error);
        if (value == NULL && local_error != NULL && local_error->code != G_KEY_FILE_ERROR_INVALID_VALUE)
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s%s: %s", where, key->name, local_error->message);
        g_strfreev (*(char ***) field);
        *(char ***) field = value ? g_steal_pointer (&value) : g_new0 (char *, 1);
        break;
      }
    case KEY_SIZE:
      {
        g_autofree char *value = g_key_file_get_string (config->keyfile, key->group, key->name, NULL);
        gint64 parsed = 0;
        if (!_berth_parse_size (value, &parsed))
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                              "%s%s = \"%s\" is not a size (a number, optionally with K, M or G)", where, key->name,
                              value ? value : "");
        *(gint64 *) field = parsed;
        break;
      }
    case KEY_LISTEN_ADDRESS:
      {
        g_autofree char *value = g_key_file_get_string (config->keyfile, key->group, key->name, &local_error);
        if (value == NULL)
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s[%s] %s: %s", where, key->group, key->name,
                              local_error->message);
        g_strstrip (value);
        if (*value != '\0' && !berth_metrics_parse_address (value, NULL, &local_error))
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s[%s] %s = \"%s\": %s", where, key->group,
                              key->name, value, local_error->message);
        g_free (*(char **) field);
        *(char **) field = *value != '\0' ? g_steal_pointer (&value) : NULL;
        break;
      }
    }
  return TRUE;
}

static gboolean
validate_group (BerthConfig *config, const char *group, GError **error)
{
  if (!g_key_file_has_group (config->keyfile, group))
    return TRUE;
  g_auto (GStrv) keys = g_key_file_get_keys (config->keyfile, group, NULL, NULL);
  for (guint i = 0; keys[i] != NULL; i++)
    {
      const ConfigKey *found = NULL;
      for (guint k = 0; k < G_N_ELEMENTS (config_keys); k++)
        if (g_str_equal (config_keys[k].group, group) && g_str_equal (keys[i], config_keys[k].name))
          found = &config_keys[k];
      if (found == NULL)
        {
          g_autofree char *where = berth_config_location (config, group, keys[i]);
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%sunknown key \"%s\" in [%s]", where, keys[i], group);
        }
      if (!validate_value (config, found, error))
        return FALSE;
    }
  return TRUE;
}

/* [registry."HOST[:PORT]"] (the quotes are optional). */
static gboolean
validate_registry (BerthConfig *config, const char *group, GError **error)
{
  g_autofree char *where = berth_config_location (config, group, NULL);
  g_autofree char *host = g_strdup (group + strlen (REGISTRY_GROUP_PREFIX));
  gsize len = strlen (host);
  if (len >= 2 && host[0] == '"' && host[len - 1] == '"')
    {
      memmove (host, host + 1, len - 2);
      host[len - 2] = '\0';
    }
  if (*host == '\0' || strpbrk (host, "/\" \t@") != NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s[%s]: want [registry.\"HOST[:PORT]\"]", where, group);
  BerthRegistryHostConfig *registry = g_new0 (BerthRegistryHostConfig, 1);
  g_hash_table_replace (config->registries, g_strdup (host), registry);
  g_auto (GStrv) keys = g_key_file_get_keys (config->keyfile, group, NULL, NULL);
  for (guint i = 0; keys && keys[i] != NULL; i++)
    {
      g_autofree char *at = berth_config_location (config, group, keys[i]);
      g_autoptr (GError) local_error = NULL;
      if (!g_strv_contains (registry_keys, keys[i]))
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%sunknown key \"%s\" in [%s]; keys are plain-http, "
                            "skip-verify, ca-file and endpoint", at, keys[i], group);
      if (g_str_equal (keys[i], "ca-file"))
        {
          registry->ca_file = g_key_file_get_string (config->keyfile, group, keys[i], NULL);
          if (registry->ca_file == NULL || !g_file_test (registry->ca_file, G_FILE_TEST_IS_REGULAR))
            return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%sca-file %s is not a readable file", at,
                                registry->ca_file ? registry->ca_file : "");
          continue;
        }
      if (g_str_equal (keys[i], "endpoint"))
        {
          /* Only a scheme and an authority: the repository paths stay the reference's. */
          registry->endpoint = g_key_file_get_string (config->keyfile, group, keys[i], NULL);
          const char *rest = NULL;
          if (registry->endpoint != NULL)
            {
              while (g_str_has_suffix (registry->endpoint, "/"))
                registry->endpoint[strlen (registry->endpoint) - 1] = '\0';
              if (g_str_has_prefix (registry->endpoint, "http://"))
                rest = registry->endpoint + strlen ("http://");
              else if (g_str_has_prefix (registry->endpoint, "https://"))
                rest = registry->endpoint + strlen ("https://");
            }
          if (rest == NULL || *rest == '\0' || strpbrk (rest, "/?#@ \t") != NULL)
            return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%sendpoint: want http://HOST[:PORT] or "
                                "https://HOST[:PORT]", at);
          continue;
        }
      gboolean value = g_key_file_get_boolean (config->keyfile, group, keys[i], &local_error);
      if (local_error != NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s%s: want true or false", at, keys[i]);
      if (g_str_equal (keys[i], "plain-http"))
        registry->plain_http = value;
      else
        registry->skip_verify = value;
    }
  return TRUE;
}

const BerthRegistryHostConfig *
berth_config_get_registry (const BerthConfig *config, const char *host)
{
  return config->registries != NULL ? g_hash_table_lookup (config->registries, host) : NULL;
}

/* GKeyFile drops a lone backslash at the end of a value (the line root=/srv\ reads as /srv),
 * telling only through an error that g_key_file_get_string returns beside the value and
 * that list and plugin readers never see: refuse it for every key of every group. */
static gboolean
check_trailing_backslash (BerthConfig *config, const char *group, GError **error)
{
  g_auto (GStrv) keys = g_key_file_get_keys (config->keyfile, group, NULL, NULL);
  for (guint k = 0; keys != NULL && keys[k] != NULL; k++)
    {
      g_autofree char *raw = g_key_file_get_value (config->keyfile, group, keys[k], NULL);
      gsize len = raw ? strlen (raw) : 0, run = 0;
      while (run < len && raw[len - 1 - run] == '\\')
        run++;
      if (run % 2 == 1)
        {
          g_autofree char *where = berth_config_location (config, group, keys[k]);
          return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                              "%s%s: the value ends in a lone backslash (write \\\\ for a backslash)", where,
                              keys[k]);
        }
    }
  return TRUE;
}

static gboolean
validate (BerthConfig *config, GError **error)
{
  SyntaxData sd = { 0, NULL };
  scan_lines (config->text, syntax_cb, &sd);
  if (sd.bad != NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s:%u: %s", config->path, sd.line, sd.bad);

  g_autoptr (GError) local_error = NULL;
  config->keyfile = g_key_file_new ();
  if (!g_key_file_load_from_data (config->keyfile, config->text, -1, G_KEY_FILE_KEEP_COMMENTS, &local_error))
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s: %s", config->path, local_error->message);

  g_auto (GStrv) groups = g_key_file_get_groups (config->keyfile, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    if (!check_trailing_backslash (config, groups[i], error))
      return FALSE;
  for (guint i = 0; groups[i] != NULL; i++)
    {
      if (g_str_equal (groups[i], DAEMON_GROUP) || g_str_equal (groups[i], METRICS_GROUP)
          || g_str_equal (groups[i], CRI_GROUP) || g_str_has_prefix (groups[i], "plugin."))
        continue;
      if (g_str_has_prefix (groups[i], REGISTRY_GROUP_PREFIX))
        {
          if (!validate_registry (config, groups[i], error))
            return FALSE;
          continue;
        }
      g_autofree char *where = berth_config_location (config, groups[i], NULL);
      return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                          "%sunknown group [%s]; groups are [berthd], [metrics], [cri], [registry.\"HOST\"] and "
                          "[plugin.<kind>.<name>]",
                          where, groups[i]);
    }
  return validate_group (config, DAEMON_GROUP, error) && validate_group (config, METRICS_GROUP, error)
         && validate_group (config, CRI_GROUP, error);
}

BerthConfig *
berth_config_load (const char *path, GError **error)
{
  return berth_config_load_full (path, FALSE, error);
}

BerthConfig *
berth_config_load_full (const char *path, gboolean rootless, GError **error)
{
  g_autoptr (BerthConfig) config = berth_config_new_default ();
  if (rootless)
    set_rootless_defaults (config);
  config->rootless = rootless;
  gboolean must_exist = path != NULL;
  g_autofree char *default_path = berth_config_default_path (rootless);
  if (path == NULL)
    path = default_path;

  g_autoptr (GError) local_error = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &config->text, &len, &local_error))
    {
      if (!must_exist && g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return g_steal_pointer (&config);
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "cannot read config: %s", local_error->message);
      return NULL;
    }
  config->path = g_strdup (path);
  /* GKeyFile would read only up to a NUL and silently drop the rest of the file. */
  const char *nul = memchr (config->text, '\0', len);
  if (nul != NULL)
    {
      guint line = 1;
      for (const char *p = config->text; p < nul; p++)
        line += *p == '\n';
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "%s:%u: a NUL byte in the config file", path, line);
      return NULL;
    }
  /* A last line without its newline is read like every other line (GKeyFile would keep
   * the \r of a CRLF file in its value). */
  if (len > 0 && config->text[len - 1] != '\n')
    {
      char *text = g_strconcat (config->text, "\n", NULL);
      g_free (config->text);
      config->text = text;
    }
  if (!validate (config, error))
    return NULL;
  return g_steal_pointer (&config);
}

char *
berth_config_to_data (const BerthConfig *config)
{
  g_autoptr (GKeyFile) out = g_key_file_new ();
  for (guint k = 0; k < G_N_ELEMENTS (config_keys); k++)
    {
      const ConfigKey *key = &config_keys[k];
      gpointer field = G_STRUCT_MEMBER_P ((gpointer) config, key->offset);
      switch (key->kind)
        {
        case KEY_STRING:
        case KEY_LOG_LEVEL:
        case KEY_LISTEN_ADDRESS:
          g_key_file_set_string (out, key->group, key->name, *(char **) field ? *(char **) field : "");
          break;
        case KEY_LIST:
          g_key_file_set_string_list (out, key->group, key->name, (const char *const *) *(char ***) field,
                                      g_strv_length (*(char ***) field));
          break;
        case KEY_SIZE:
          g_key_file_set_int64 (out, key->group, key->name, *(gint64 *) field);
          break;
        }
      {
        g_autofree char *comment = g_strconcat (" ", key->description, NULL);
        g_key_file_set_comment (out, key->group, key->name, comment, NULL);
      }
    }
  /* Plugin groups as written; the registry adds declared defaults when it knows them. */
  if (config->keyfile != NULL)
    {
      g_auto (GStrv) groups = g_key_file_get_groups (config->keyfile, NULL);
      for (guint i = 0; groups[i] != NULL; i++)
        {
          if (!g_str_has_prefix (groups[i], "plugin.") && !g_str_has_prefix (groups[i], REGISTRY_GROUP_PREFIX))
            continue;
          g_auto (GStrv) keys = g_key_file_get_keys (config->keyfile, groups[i], NULL, NULL);
          for (guint k = 0; keys && keys[k]; k++)
            {
              g_autofree char *value = g_key_file_get_value (config->keyfile, groups[i], keys[k], NULL);
              g_key_file_set_value (out, groups[i], keys[k], value);
            }
        }
    }
  return g_key_file_to_data (out, NULL, NULL);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

/* "key=value\n…" for every plugin group, keys sorted, so that two configs
 * compare by meaning, not by layout. */
static GHashTable *
plugin_groups (const BerthConfig *config)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (config->keyfile == NULL)
    return table;
  g_auto (GStrv) groups = g_key_file_get_groups (config->keyfile, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      if (!g_str_has_prefix (groups[i], "plugin."))
        continue;
      g_auto (GStrv) keys = g_key_file_get_keys (config->keyfile, groups[i], NULL, NULL);
      g_autoptr (GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
      for (guint k = 0; keys && keys[k]; k++)
        {
          g_autofree char *value = g_key_file_get_value (config->keyfile, groups[i], keys[k], NULL);
          g_ptr_array_add (lines, g_strdup_printf ("%s=%s", keys[k], value ? value : ""));
        }
      g_ptr_array_sort (lines, compare_strings);
      g_ptr_array_add (lines, NULL);
      g_hash_table_insert (table, g_strdup (groups[i]), g_strjoinv ("\n", (char **) lines->pdata));
    }
  return table;
}

static const char *
first_difference (GHashTable *a, GHashTable *b)
{
  GHashTableIter iter;
  gpointer group, text;
  g_hash_table_iter_init (&iter, a);
  while (g_hash_table_iter_next (&iter, &group, &text))
    if (g_strcmp0 (text, g_hash_table_lookup (b, group)) != 0)
      return group;
  return NULL;
}

gboolean
berth_config_plugin_groups_differ (const BerthConfig *a, const BerthConfig *b, char **group_out)
{
  g_autoptr (GHashTable) in_a = plugin_groups (a);
  g_autoptr (GHashTable) in_b = plugin_groups (b);
  const char *group = first_difference (in_a, in_b);
  if (group == NULL)
    group = first_difference (in_b, in_a);
  if (group_out != NULL)
    *group_out = g_strdup (group);
  return group != NULL;
}
