/* berth-spec.c — OCI runtime specs from containerd's defaults, an image config and options. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <math.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gio/gio.h>
#include <berth/berth-error.h>
#include <berth/berth-types.h>

#include "berth-seccomp.h"
#include "berth-spec.h"

#define OCI_VERSION "1.0.2-dev"
#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CPU_PERIOD 100000
/* The kernel refuses CFS quotas under 1 ms. */
#define CPU_QUOTA_MIN 1000
#define MAX_ID G_MAXINT32 /* runc's limit for uids and gids, which containerd follows */
/* /etc/passwd and /etc/group are small; an image that makes them huge gets an error. */
#define MAX_ETC_FILE (16 * 1024 * 1024)

/* containerd's defaultUnixCaps(). */
static const char *const default_caps[] = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", NULL,
};

/* Every capability, indexed by number (linux/capability.h). */
static const char *const all_caps[] = {
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
  "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
  "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE", NULL,
};

static const char *const default_masked_paths[] = {
  "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi", NULL,
};

static const char *const default_readonly_paths[] = {
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static const char *const default_namespaces[] = { "pid", "ipc", "uts", "mount", "network", NULL };

/* containerd's WithDefaultUnixDevices: what a container may open, after denying all.
 * Minor -1 is any minor. */
static const struct {
  gint64 major, minor;
} default_devices[] = {
  { 1, 3 },   /* /dev/null */
  { 1, 8 },   /* /dev/random */
  { 1, 7 },   /* /dev/full */
  { 5, 0 },   /* /dev/tty */
  { 1, 5 },   /* /dev/zero */
  { 1, 9 },   /* /dev/urandom */
  { 5, 1 },   /* /dev/console */
  { 136, -1 }, /* /dev/pts/N */
  { 5, 2 },   /* /dev/ptmx */
};

static gboolean G_GNUC_PRINTF (3, 4)
throw_io (GError **error, GIOErrorEnum code, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, G_IO_ERROR, code, message);
  return FALSE;
}

/* For functions returning a pointer: `return null_throw_io (error, …);` (libglnx's idiom). */
#define null_throw_io(...) (throw_io (__VA_ARGS__), NULL)
#define null_throw_errno(...) (berth_throw_errno (__VA_ARGS__), NULL)

/* ---- the image's config ---- */

typedef struct {
  GPtrArray *entrypoint, *cmd, *env; /* borrowed strings */
  const char *working_dir, *user;
} ImageConfig;

static void
image_config_clear (ImageConfig *config)
{
  g_clear_pointer (&config->entrypoint, g_ptr_array_unref);
  g_clear_pointer (&config->cmd, g_ptr_array_unref);
  g_clear_pointer (&config->env, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ImageConfig, image_config_clear)

static gboolean
config_strings (JsonObject *config, const char *member, const char *image, GPtrArray **out, GError **error)
{
  g_autoptr (GPtrArray) strings = g_ptr_array_new ();
  JsonNode *node = config != NULL ? json_object_get_member (config, member) : NULL;
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_ARRAY (node))
        return throw_io (error, G_IO_ERROR_INVALID_DATA, "config of image %s: %s is not an array of strings", image,
                         member);
      JsonArray *array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *element = json_array_get_element (array, i);
          if (json_node_get_value_type (element) != G_TYPE_STRING)
            return throw_io (error, G_IO_ERROR_INVALID_DATA, "config of image %s: %s is not an array of strings",
                             image, member);
          g_ptr_array_add (strings, (gpointer) json_node_get_string (element));
        }
    }
  *out = g_steal_pointer (&strings);
  return TRUE;
}

static gboolean
config_string (JsonObject *config, const char *member, const char *image, const char **out, GError **error)
{
  JsonNode *node = config != NULL ? json_object_get_member (config, member) : NULL;
  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (json_node_get_value_type (node) != G_TYPE_STRING)
    return throw_io (error, G_IO_ERROR_INVALID_DATA, "config of image %s: %s is not a string", image, member);
  const char *value = json_node_get_string (node);
  *out = *value != '\0' ? value : NULL;
  return TRUE;
}

static gboolean
image_config_read (JsonNode *node, const char *image, ImageConfig *config, GError **error)
{
  JsonObject *object = NULL;
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return throw_io (error, G_IO_ERROR_INVALID_DATA, "config of image %s is not a JSON object", image);
      JsonNode *inner = json_object_get_member (json_node_get_object (node), "config");
      if (inner != NULL && JSON_NODE_HOLDS_OBJECT (inner))
        object = json_node_get_object (inner);
      else if (inner != NULL && !JSON_NODE_HOLDS_NULL (inner))
        return throw_io (error, G_IO_ERROR_INVALID_DATA, "config of image %s: \"config\" is not an object", image);
    }
  return config_strings (object, "Entrypoint", image, &config->entrypoint, error)
         && config_strings (object, "Cmd", image, &config->cmd, error)
         && config_strings (object, "Env", image, &config->env, error)
         && config_string (object, "WorkingDir", image, &config->working_dir, error)
         && config_string (object, "User", image, &config->user, error);
}

/* ---- environment: containerd's replaceOrAppendEnvValues ---- */

/* Sets "K=V" (replacing K's value in place, so the image's order is kept) or, for a bare
 * "K", removes K. */
static void
env_apply (GPtrArray *env, const char *entry)
{
  const char *equals = strchr (entry, '=');
  gsize key_len = equals != NULL ? (gsize) (equals - entry) : strlen (entry);
  for (guint i = 0; i < env->len; i++)
    {
      const char *current = env->pdata[i];
      if (strncmp (current, entry, key_len) != 0 || (current[key_len] != '=' && current[key_len] != '\0'))
        continue;
      if (equals == NULL)
        g_ptr_array_remove_index (env, i);
      else
        {
          g_free (env->pdata[i]);
          env->pdata[i] = g_strdup (entry);
        }
      return;
    }
  if (equals != NULL)
    g_ptr_array_add (env, g_strdup (entry));
}

static gboolean
env_has (GPtrArray *env, const char *key)
{
  gsize key_len = strlen (key);
  for (guint i = 0; i < env->len; i++)
    if (strncmp (env->pdata[i], key, key_len) == 0 && ((const char *) env->pdata[i])[key_len] == '=')
      return TRUE;
  return FALSE;
}

static GPtrArray *
build_env (const BerthSpecOptions *opts, const ImageConfig *config, GError **error)
{
  g_autoptr (GPtrArray) env = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < config->env->len; i++)
    env_apply (env, config->env->pdata[i]);
  if (!env_has (env, "PATH"))
    g_ptr_array_add (env, g_strdup (DEFAULT_PATH_ENV));
  if (opts->terminal)
    env_apply (env, "TERM=xterm");
  for (guint i = 0; opts->env != NULL && opts->env[i] != NULL; i++)
    {
      if (opts->env[i][0] == '\0' || opts->env[i][0] == '=')
        return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT,
                              "invalid environment entry “%s”: expected KEY=VALUE", opts->env[i]);
      env_apply (env, opts->env[i]);
    }
  return g_steal_pointer (&env);
}

/* ---- users and groups from the image's /etc ---- */

/* Reads @relpath inside @rootfs with every symlink resolved as if @rootfs were "/": an
 * image's /etc/passwd may well be a symlink, and must never lead to the host's. A file
 * that is not there is no error: NULL with *@missing set. */
static char *
read_rootfs_file (const char *rootfs, const char *relpath, gboolean *missing, GError **error)
{
  *missing = FALSE;
  berth_autofd int root_fd = open (rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0)
    return null_throw_errno (error, "opening root filesystem %s", rootfs);
  struct open_how how = {
    .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  berth_autofd int fd = syscall (SYS_openat2, root_fd, relpath, &how, sizeof how);
  if (fd < 0 && errno == ENOENT)
    {
      *missing = TRUE;
      return NULL;
    }
  if (fd < 0)
    return null_throw_errno (error, "opening /%s in %s", relpath, rootfs);

  g_autoptr (GString) text = g_string_new (NULL);
  char buf[8192];
  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return null_throw_errno (error, "reading /%s in %s", relpath, rootfs);
      if (n == 0)
        break;
      if (text->len + (gsize) n > MAX_ETC_FILE)
        return null_throw_io (error, G_IO_ERROR_INVALID_DATA, "/%s in %s is larger than %d bytes", relpath, rootfs,
                              MAX_ETC_FILE);
      g_string_append_len (text, buf, n);
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* One "name:password:id:…" line's fields, or NULL for comments and lines too short. */
static GStrv
etc_fields (const char *line, guint min_fields)
{
  if (line[0] == '\0' || line[0] == '#')
    return NULL;
  g_auto (GStrv) fields = g_strsplit (line, ":", -1);
  if (g_strv_length (fields) < min_fields)
    return NULL;
  return g_steal_pointer (&fields);
}

static gboolean
parse_id (const char *text, guint32 *out)
{
  guint64 value;
  if (!g_ascii_string_to_unsigned (text, 10, 0, MAX_ID, &value, NULL))
    return FALSE;
  *out = (guint32) value;
  return TRUE;
}

/* The /etc/passwd entry named @name or, with @name NULL, the first with uid @uid. */
static gboolean
passwd_find (const char *passwd, const char *name, guint32 uid, char **name_out, guint32 *uid_out,
             guint32 *gid_out)
{
  g_auto (GStrv) lines = g_strsplit (passwd, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) fields = etc_fields (lines[i], 4);
      guint32 entry_uid, entry_gid;
      if (fields == NULL || !parse_id (fields[2], &entry_uid) || !parse_id (fields[3], &entry_gid))
        continue;
      if (name != NULL ? strcmp (fields[0], name) != 0 : entry_uid != uid)
        continue;
      if (name_out != NULL)
        *name_out = g_strdup (fields[0]);
      *uid_out = entry_uid;
      *gid_out = entry_gid;
      return TRUE;
    }
  return FALSE;
}

static gboolean
group_find (const char *group, const char *name, guint32 *gid_out)
{
  g_auto (GStrv) lines = g_strsplit (group, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) fields = etc_fields (lines[i], 3);
      if (fields != NULL && strcmp (fields[0], name) == 0 && parse_id (fields[2], gid_out))
        return TRUE;
    }
  return FALSE;
}

/* containerd's WithAdditionalGIDs: the groups listing @username as a member, except a
 * group of the user's own name. */
static void
group_supplementary (const char *group, const char *username, GArray *gids)
{
  g_auto (GStrv) lines = g_strsplit (group, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) fields = etc_fields (lines[i], 4);
      guint32 gid;
      if (fields == NULL || strcmp (fields[0], username) == 0 || !parse_id (fields[2], &gid))
        continue;
      g_auto (GStrv) members = g_strsplit (g_strstrip (fields[3]), ",", -1);
      if (g_strv_contains ((const char *const *) members, username))
        g_array_append_val (gids, gid);
    }
}

typedef struct {
  const char *rootfs;
  const char *image;
  const char *user; /* the whole user string, for errors */
  char *passwd, *group;
  gboolean passwd_read, group_read;
} EtcFiles;

static void
etc_files_clear (EtcFiles *etc)
{
  g_clear_pointer (&etc->passwd, g_free);
  g_clear_pointer (&etc->group, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (EtcFiles, etc_files_clear)

/* The image's /etc/@name, read once; NULL (no error) when the image has none. */
static gboolean
etc_files_get (EtcFiles *etc, const char *name, const char **out, GError **error)
{
  gboolean is_passwd = strcmp (name, "passwd") == 0;
  char **text = is_passwd ? &etc->passwd : &etc->group;
  gboolean *read = is_passwd ? &etc->passwd_read : &etc->group_read;
  if (!*read && etc->rootfs != NULL)
    {
      g_autofree char *relpath = g_strconcat ("etc/", name, NULL);
      gboolean missing;
      *text = read_rootfs_file (etc->rootfs, relpath, &missing, error);
      if (*text == NULL && !missing)
        return FALSE;
    }
  *read = TRUE;
  *out = *text;
  return TRUE;
}

/* For names (not numbers): the file must be there to look them up in. */
static gboolean
etc_files_require (EtcFiles *etc, const char *name, const char **out, GError **error)
{
  if (!etc_files_get (etc, name, out, error))
    return FALSE;
  if (*out != NULL)
    return TRUE;
  if (etc->rootfs == NULL)
    return throw_io (error, G_IO_ERROR_NOT_FOUND,
                     "user “%s” of image %s: a name needs the image's root filesystem to look it up in /etc/%s",
                     etc->user, etc->image, name);
  return throw_io (error, G_IO_ERROR_NOT_FOUND, "user “%s” not found: image %s has no /etc/%s", etc->user,
                   etc->image, name);
}

/* containerd's WithUser + WithAdditionalGIDs: "" (root), "name", "uid", and either
 * half of "user:group" as a name or a number. A bare uid takes its gid from
 * /etc/passwd if listed there, else 0. The primary gid leads additionalGids. */
static gboolean
resolve_user (const char *user, const char *rootfs, const char *image, guint32 *uid, guint32 *gid,
              GArray *additional_gids, GError **error)
{
  g_auto (EtcFiles) etc = { .rootfs = rootfs, .image = image, .user = user };
  g_autofree char *username = NULL;
  const char *passwd, *group;

  *uid = *gid = 0;
  if (*user == '\0')
    username = g_strdup ("root");
  else
    {
      g_auto (GStrv) parts = g_strsplit (user, ":", -1);
      guint n = g_strv_length (parts);
      if (n > 2 || parts[0][0] == '\0' || (n == 2 && parts[1][0] == '\0'))
        return throw_io (error, G_IO_ERROR_INVALID_ARGUMENT,
                         "invalid user “%s”: expected name, uid, name:group or uid:gid (ids up to %d)", user,
                         MAX_ID);
      guint32 passwd_gid = 0;
      if (parse_id (parts[0], uid))
        {
          if (!etc_files_get (&etc, "passwd", &passwd, error))
            return FALSE;
          if (passwd != NULL && !passwd_find (passwd, NULL, *uid, &username, uid, &passwd_gid))
            g_debug ("uid %u of image %s is not in its /etc/passwd: gid 0", *uid, image);
        }
      else if (!etc_files_require (&etc, "passwd", &passwd, error))
        return FALSE;
      else if (!passwd_find (passwd, parts[0], 0, NULL, uid, &passwd_gid))
        return throw_io (error, G_IO_ERROR_NOT_FOUND, "user “%s” not found in /etc/passwd of image %s", parts[0],
                         image);
      else
        username = g_strdup (parts[0]);

      if (n == 1)
        *gid = passwd_gid;
      else if (!parse_id (parts[1], gid))
        {
          if (!etc_files_require (&etc, "group", &group, error))
            return FALSE;
          if (!group_find (group, parts[1], gid))
            return throw_io (error, G_IO_ERROR_NOT_FOUND, "group “%s” not found in /etc/group of image %s",
                             parts[1], image);
        }
    }

  if (username != NULL)
    {
      if (!etc_files_get (&etc, "group", &group, error))
        return FALSE;
      if (group != NULL)
        group_supplementary (group, username, additional_gids);
    }
  for (guint i = 0; i < additional_gids->len; i++)
    if (g_array_index (additional_gids, guint32, i) == *gid)
      return TRUE;
  g_array_prepend_val (additional_gids, *gid);
  return TRUE;
}

/* ---- capabilities ---- */

/* "All capabilities" is containerd's WithAllCurrentCapabilities: those in our own bounding
 * set. The kernel may know more than we hold (inside another container, say), and a
 * runtime asked for one we cannot pass on fails with EPERM. */
static guint64
caps_current_bounding_set (void)
{
  g_autofree char *status = NULL;
  if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    {
      const char *line = strstr (status, "\nCapBnd:");
      if (line != NULL)
        {
          const char *value = line + strlen ("\nCapBnd:");
          char *end;
          guint64 mask = g_ascii_strtoull (value, &end, 16);
          if (end != value)
            return mask;
        }
    }
  g_debug ("no CapBnd in /proc/self/status: assuming every capability");
  return G_MAXUINT64;
}

static const char *
cap_lookup (const char *name)
{
  g_autofree char *upper = g_ascii_strup (name, -1);
  g_autofree char *full = g_str_has_prefix (upper, "CAP_") ? g_steal_pointer (&upper)
                                                            : g_strconcat ("CAP_", upper, NULL);
  for (guint i = 0; all_caps[i] != NULL; i++)
    if (strcmp (all_caps[i], full) == 0)
      return all_caps[i];
  return NULL;
}

static void
caps_add (GPtrArray *caps, const char *cap)
{
  if (!g_ptr_array_find (caps, cap, NULL))
    g_ptr_array_add (caps, (gpointer) cap);
}

static void
caps_add_all (GPtrArray *caps)
{
  guint64 bounding = caps_current_bounding_set ();
  for (guint i = 0; all_caps[i] != NULL; i++)
    if (bounding & (G_GUINT64_CONSTANT (1) << i))
      caps_add (caps, all_caps[i]);
}

/* Static strings; NULL-terminated so it doubles as a strv. */
static GPtrArray *
build_caps (const BerthSpecOptions *opts, GError **error)
{
  g_autoptr (GPtrArray) caps = g_ptr_array_new ();
  if (opts->privileged)
    caps_add_all (caps);
  else
    for (guint i = 0; default_caps[i] != NULL; i++)
      caps_add (caps, default_caps[i]);

  for (guint i = 0; opts->cap_add != NULL && opts->cap_add[i] != NULL; i++)
    {
      const char *cap = cap_lookup (opts->cap_add[i]);
      if (g_ascii_strcasecmp (opts->cap_add[i], "ALL") == 0)
        caps_add_all (caps);
      else if (cap == NULL)
        return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT, "unknown capability “%s”", opts->cap_add[i]);
      else
        caps_add (caps, cap);
    }
  for (guint i = 0; opts->cap_drop != NULL && opts->cap_drop[i] != NULL; i++)
    {
      const char *cap = cap_lookup (opts->cap_drop[i]);
      if (g_ascii_strcasecmp (opts->cap_drop[i], "ALL") == 0)
        g_ptr_array_set_size (caps, 0);
      else if (cap == NULL)
        return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT, "unknown capability “%s”", opts->cap_drop[i]);
      else
        g_ptr_array_remove (caps, (gpointer) cap);
    }
  g_ptr_array_add (caps, NULL);
  return g_steal_pointer (&caps);
}

/* ---- mounts ---- */

static JsonNode *
mount_new (const char *destination, const char *type, const char *source, const char *option, ...)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  va_list args;
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "destination");
  json_builder_add_string_value (builder, destination);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, type);
  json_builder_set_member_name (builder, "source");
  json_builder_add_string_value (builder, source);
  json_builder_set_member_name (builder, "options");
  json_builder_begin_array (builder);
  va_start (args, option);
  for (; option != NULL; option = va_arg (args, const char *))
    json_builder_add_string_value (builder, option);
  va_end (args);
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

/* A mount at a destination already in the list replaces it (docker's rule: the user's
 * mount wins over a default one at the same place). */
static void
mounts_put (GPtrArray *mounts, JsonNode *mount)
{
  const char *destination = json_object_get_string_member (json_node_get_object (mount), "destination");
  for (guint i = 0; i < mounts->len; i++)
    {
      JsonObject *existing = json_node_get_object (mounts->pdata[i]);
      if (strcmp (json_object_get_string_member (existing, "destination"), destination) == 0)
        {
          json_node_unref (mounts->pdata[i]);
          mounts->pdata[i] = mount;
          return;
        }
    }
  g_ptr_array_add (mounts, mount);
}

static gboolean
path_is_clean_absolute (const char *path)
{
  if (path[0] != '/')
    return FALSE;
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  return !g_strv_contains ((const char *const *) parts, "..");
}

static GPtrArray *
build_mounts (const BerthSpecOptions *opts, GError **error)
{
  g_autoptr (GPtrArray) mounts = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  /* privileged containers may write to /sys and their cgroups (containerd's WithWriteableSysfs/Cgroupfs) */
  const char *sys_mode = opts->privileged ? "rw" : "ro";

  /* containerd's defaultMounts(), then the cgroup mount its CRI plugin and docker add */
  g_ptr_array_add (mounts, mount_new ("/proc", "proc", "proc", "nosuid", "noexec", "nodev", NULL));
  g_ptr_array_add (mounts, mount_new ("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k",
                                      NULL));
  g_ptr_array_add (mounts, mount_new ("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance",
                                      "ptmxmode=0666", "mode=0620", "gid=5", NULL));
  g_ptr_array_add (mounts, mount_new ("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777",
                                      "size=65536k", NULL));
  g_ptr_array_add (mounts, mount_new ("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev", NULL));
  g_ptr_array_add (mounts, mount_new ("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", sys_mode, NULL));
  g_ptr_array_add (mounts, mount_new ("/run", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k",
                                      NULL));
  g_ptr_array_add (mounts, mount_new ("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime",
                                      sys_mode, NULL));

  /* name resolution as on the host (containerd's WithHostHostsFile / WithHostResolvconf) */
  static const char *const host_files[] = { "/etc/hosts", "/etc/resolv.conf" };
  for (gsize i = 0; i < G_N_ELEMENTS (host_files); i++)
    {
      if (g_file_test (host_files[i], G_FILE_TEST_EXISTS))
        g_ptr_array_add (mounts, mount_new (host_files[i], "bind", host_files[i], "rbind", "ro", NULL));
      else
        g_debug ("the host has no %s to bind into the container", host_files[i]);
    }

  for (guint i = 0; opts->mounts != NULL && opts->mounts[i] != NULL; i++)
    {
      const char *spec = opts->mounts[i];
      g_auto (GStrv) parts = g_strsplit (spec, ":", -1);
      guint n = g_strv_length (parts);
      if (n < 2 || n > 3 || (n == 3 && strcmp (parts[2], "ro") != 0 && strcmp (parts[2], "rw") != 0))
        return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT, "invalid mount “%s”: expected SRC:DST[:ro|:rw]",
                              spec);
      if (!path_is_clean_absolute (parts[0]) || !path_is_clean_absolute (parts[1]))
        return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT,
                              "invalid mount “%s”: source and destination must be absolute paths without “..”",
                              spec);
      /* runc would fail at start with a less direct message */
      if (!g_file_test (parts[0], G_FILE_TEST_EXISTS))
        return null_throw_io (error, G_IO_ERROR_NOT_FOUND, "mount “%s”: source %s does not exist", spec, parts[0]);
      gboolean read_only = n == 3 && strcmp (parts[2], "ro") == 0;
      mounts_put (mounts, mount_new (parts[1], "bind", parts[0], "rbind", read_only ? "ro" : "rw", NULL));
    }
  return g_steal_pointer (&mounts);
}

/* ---- assembling the spec ---- */

static void
add_strings (JsonBuilder *builder, const char *member, const char *const *strings, guint n)
{
  json_builder_set_member_name (builder, member);
  json_builder_begin_array (builder);
  for (guint i = 0; i < n && strings[i] != NULL; i++)
    json_builder_add_string_value (builder, strings[i]);
  json_builder_end_array (builder);
}

static void
add_int (JsonBuilder *builder, const char *member, gint64 value)
{
  json_builder_set_member_name (builder, member);
  json_builder_add_int_value (builder, value);
}

static void
add_string (JsonBuilder *builder, const char *member, const char *value)
{
  json_builder_set_member_name (builder, member);
  json_builder_add_string_value (builder, value);
}

static void
add_bool (JsonBuilder *builder, const char *member, gboolean value)
{
  json_builder_set_member_name (builder, member);
  json_builder_add_boolean_value (builder, value);
}

static void
add_resources (JsonBuilder *builder, const BerthSpecOptions *opts, gint64 cpu_quota)
{
  json_builder_set_member_name (builder, "resources");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "devices");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  add_bool (builder, "allow", opts->privileged);
  add_string (builder, "access", "rwm");
  json_builder_end_object (builder);
  for (gsize i = 0; !opts->privileged && i < G_N_ELEMENTS (default_devices); i++)
    {
      json_builder_begin_object (builder);
      add_bool (builder, "allow", TRUE);
      add_string (builder, "type", "c");
      add_int (builder, "major", default_devices[i].major);
      if (default_devices[i].minor >= 0)
        add_int (builder, "minor", default_devices[i].minor);
      add_string (builder, "access", "rwm");
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  if (opts->memory_limit > 0)
    {
      json_builder_set_member_name (builder, "memory");
      json_builder_begin_object (builder);
      add_int (builder, "limit", opts->memory_limit);
      json_builder_end_object (builder);
    }
  if (cpu_quota > 0)
    {
      json_builder_set_member_name (builder, "cpu");
      json_builder_begin_object (builder);
      add_int (builder, "quota", cpu_quota);
      add_int (builder, "period", CPU_PERIOD);
      json_builder_end_object (builder);
    }
  if (opts->pids_limit > 0)
    {
      json_builder_set_member_name (builder, "pids");
      json_builder_begin_object (builder);
      add_int (builder, "limit", opts->pids_limit);
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);
}

char *
berth_spec_default_seccomp_profile (void)
{
  const char *datadir = g_getenv ("BERTH_DATADIR");
  return g_build_filename (datadir != NULL && *datadir != '\0' ? datadir : BERTH_DATA_DIR, "seccomp", "default.json",
                           NULL);
}

JsonNode *
berth_spec_generate (const BerthSpecOptions *opts, JsonNode *image_config, const char *rootfs, GError **error)
{
  g_return_val_if_fail (opts != NULL, NULL);
  const char *image = opts->image_name != NULL ? opts->image_name : "(unnamed)";

  /* Numbers first: nothing is read from disk for a spec that is refused anyway. */
  if (opts->memory_limit < 0 || opts->pids_limit < 0)
    return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT, "negative %s limit",
                          opts->memory_limit < 0 ? "memory" : "pids");
  gint64 cpu_quota = 0;
  if (opts->cpus != 0)
    {
      if (!isfinite (opts->cpus) || opts->cpus < 0 || opts->cpus > 1e6)
        return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT, "invalid number of CPUs %g", opts->cpus);
      cpu_quota = (gint64) (opts->cpus * CPU_PERIOD + 0.5);
      if (cpu_quota < CPU_QUOTA_MIN)
        return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT, "%g CPUs is below the kernel's minimum of %g",
                              opts->cpus, (double) CPU_QUOTA_MIN / CPU_PERIOD);
    }

  g_auto (ImageConfig) config = { 0 };
  if (!image_config_read (image_config, image, &config, error))
    return NULL;

  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_ptr_array_extend (args, config.entrypoint, NULL, NULL);
  if (opts->args != NULL && opts->args[0] != NULL)
    for (guint i = 0; opts->args[i] != NULL; i++)
      g_ptr_array_add (args, opts->args[i]);
  else
    g_ptr_array_extend (args, config.cmd, NULL, NULL);
  if (args->len == 0)
    return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT, "no command given, and image %s has no Entrypoint or Cmd",
                          image);

  const char *cwd = opts->workdir != NULL ? opts->workdir : config.working_dir != NULL ? config.working_dir : "/";
  if (cwd[0] != '/')
    return null_throw_io (error, G_IO_ERROR_INVALID_ARGUMENT, "working directory “%s” is not an absolute path",
                          cwd);

  g_autoptr (GPtrArray) env = build_env (opts, &config, error);
  if (env == NULL)
    return NULL;

  const char *user = opts->user != NULL ? opts->user : config.user != NULL ? config.user : "";
  guint32 uid, gid;
  g_autoptr (GArray) additional_gids = g_array_new (FALSE, FALSE, sizeof (guint32));
  if (!resolve_user (user, rootfs, image, &uid, &gid, additional_gids, error))
    return NULL;

  g_autoptr (GPtrArray) caps = build_caps (opts, error);
  if (caps == NULL)
    return NULL;

  g_autoptr (GPtrArray) mounts = build_mounts (opts, error);
  if (mounts == NULL)
    return NULL;

  g_autofree char *cgroups_path = NULL;
  if (opts->cgroups_path != NULL)
    cgroups_path = g_strdup (opts->cgroups_path);
  else if (opts->namespace != NULL && opts->id != NULL)
    cgroups_path = g_build_path ("/", "/", opts->namespace, opts->id, NULL);

  g_autoptr (JsonNode) seccomp = NULL;
  if (!opts->privileged && g_strcmp0 (opts->seccomp_profile, "unconfined") != 0)
    {
      g_autofree char *path = opts->seccomp_profile != NULL ? g_strdup (opts->seccomp_profile)
                                                            : berth_spec_default_seccomp_profile ();
      /* rules gated on capabilities follow the bounding set, as in docker and containerd */
      seccomp = berth_seccomp_load (path, NULL, (const char *const *) caps->pdata, error);
      if (seccomp == NULL)
        return NULL;
    }

  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  add_string (builder, "ociVersion", OCI_VERSION);

  json_builder_set_member_name (builder, "process");
  json_builder_begin_object (builder);
  add_bool (builder, "terminal", opts->terminal);
  json_builder_set_member_name (builder, "user");
  json_builder_begin_object (builder);
  add_int (builder, "uid", uid);
  add_int (builder, "gid", gid);
  json_builder_set_member_name (builder, "additionalGids");
  json_builder_begin_array (builder);
  for (guint i = 0; i < additional_gids->len; i++)
    json_builder_add_int_value (builder, g_array_index (additional_gids, guint32, i));
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  add_strings (builder, "args", (const char *const *) args->pdata, args->len);
  add_strings (builder, "env", (const char *const *) env->pdata, env->len);
  add_string (builder, "cwd", cwd);
  json_builder_set_member_name (builder, "capabilities");
  json_builder_begin_object (builder);
  static const char *const cap_sets[] = { "bounding", "effective", "permitted" };
  for (gsize i = 0; i < G_N_ELEMENTS (cap_sets); i++)
    add_strings (builder, cap_sets[i], (const char *const *) caps->pdata, caps->len);
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "rlimits");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  add_string (builder, "type", "RLIMIT_NOFILE");
  add_int (builder, "hard", 1024);
  add_int (builder, "soft", 1024);
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  add_bool (builder, "noNewPrivileges", TRUE);
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "root");
  json_builder_begin_object (builder);
  add_string (builder, "path", "rootfs");
  add_bool (builder, "readonly", opts->read_only);
  json_builder_end_object (builder);

  if (opts->hostname != NULL)
    add_string (builder, "hostname", opts->hostname);

  json_builder_set_member_name (builder, "mounts");
  json_builder_begin_array (builder);
  for (guint i = 0; i < mounts->len; i++)
    json_builder_add_value (builder, json_node_ref (mounts->pdata[i]));
  json_builder_end_array (builder);

  json_builder_set_member_name (builder, "linux");
  json_builder_begin_object (builder);
  add_resources (builder, opts, cpu_quota);
  if (cgroups_path != NULL)
    add_string (builder, "cgroupsPath", cgroups_path);
  json_builder_set_member_name (builder, "namespaces");
  json_builder_begin_array (builder);
  for (guint i = 0; default_namespaces[i] != NULL; i++)
    {
      json_builder_begin_object (builder);
      add_string (builder, "type", default_namespaces[i]);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  if (!opts->privileged)
    {
      add_strings (builder, "maskedPaths", default_masked_paths, G_MAXUINT);
      add_strings (builder, "readonlyPaths", default_readonly_paths, G_MAXUINT);
    }
  if (seccomp != NULL)
    {
      json_builder_set_member_name (builder, "seccomp");
      json_builder_add_value (builder, g_steal_pointer (&seccomp));
    }
  json_builder_end_object (builder);

  json_builder_end_object (builder);
  g_debug ("spec for %s: %u args, uid %u gid %u, %u capabilities, %u mounts%s", image, args->len, uid, gid,
           caps->len - 1, mounts->len, opts->privileged ? ", privileged" : "");
  return json_builder_get_root (builder);
}

/* Does resolving @user need the image's /etc/passwd or /etc/group? Only "UID:GID"
 * does not: a bare uid takes its group and supplementary groups from the image too. */
static gboolean
user_needs_lookup (const char *user)
{
  if (user == NULL || *user == 0)
    return FALSE;
  const char *colon = strchr (user, ':');
  if (colon == NULL)
    return TRUE;
  for (const char *p = user; *p; p++)
    if (!g_ascii_isdigit (*p) && p != colon)
      return TRUE;
  return FALSE;
}

JsonNode *
berth_spec_generate_on_mounts (const BerthSpecOptions *opts, JsonNode *image_config, GPtrArray *rootfs_mounts,
                               GError **error)
{
  const char *user = opts->user;
  if (user == NULL && image_config != NULL && JSON_NODE_HOLDS_OBJECT (image_config))
    {
      JsonObject *root = json_node_get_object (image_config);
      JsonNode *config = json_object_get_member (root, "config");
      JsonNode *node = config && JSON_NODE_HOLDS_OBJECT (config)
                         ? json_object_get_member (json_node_get_object (config), "User") : NULL;
      if (node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
        user = json_node_get_string (node);
    }
  if (!user_needs_lookup (user) || rootfs_mounts == NULL)
    return berth_spec_generate (opts, image_config, NULL, error);
  /* Names are looked up in the image's own files: mount its root for a moment. */
  g_autofree char *dir = g_dir_make_tmp ("berth-rootfs-XXXXXX", error);
  if (dir == NULL)
    return NULL;
  if (!berth_mount_list_mount (rootfs_mounts, dir, error))
    {
      rmdir (dir);
      return NULL;
    }
  JsonNode *spec = berth_spec_generate (opts, image_config, dir, error);
  berth_mount_unmount (dir, NULL);
  rmdir (dir);
  return spec;
}
