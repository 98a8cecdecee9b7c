/* berth-seccomp.c — docker-format seccomp profiles to OCI `linux.seccomp`. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <gio/gio.h>
#include <seccomp.h>

#include <berth/berth-json-limits.h>
#include "berth-seccomp.h"

/* Profiles name architectures two ways: archMap and the OCI output use libseccomp's
 * names, while includes/excludes.arches use Go's GOARCH names (docker matches them
 * against runtime.GOARCH) — and hand-written profiles use either, or the kernel's. */
typedef struct {
  const char *scmp;
  const char *goarch;
  const char *other;
  guint32 token;
} ArchName;

static const ArchName arch_names[] = {
  { "SCMP_ARCH_X86", "386", "x86", SCMP_ARCH_X86 },
  { "SCMP_ARCH_X86_64", "amd64", "x86_64", SCMP_ARCH_X86_64 },
  { "SCMP_ARCH_X32", "x32", NULL, SCMP_ARCH_X32 },
  { "SCMP_ARCH_ARM", "arm", NULL, SCMP_ARCH_ARM },
  { "SCMP_ARCH_AARCH64", "arm64", "aarch64", SCMP_ARCH_AARCH64 },
  { "SCMP_ARCH_MIPS", "mips", NULL, SCMP_ARCH_MIPS },
  { "SCMP_ARCH_MIPS64", "mips64", NULL, SCMP_ARCH_MIPS64 },
  { "SCMP_ARCH_MIPS64N32", "mips64n32", NULL, SCMP_ARCH_MIPS64N32 },
  { "SCMP_ARCH_MIPSEL", "mipsle", "mipsel", SCMP_ARCH_MIPSEL },
  { "SCMP_ARCH_MIPSEL64", "mips64le", "mipsel64", SCMP_ARCH_MIPSEL64 },
  { "SCMP_ARCH_MIPSEL64N32", "mips64len32", "mipsel64n32", SCMP_ARCH_MIPSEL64N32 },
  { "SCMP_ARCH_PPC", "ppc", NULL, SCMP_ARCH_PPC },
  { "SCMP_ARCH_PPC64", "ppc64", NULL, SCMP_ARCH_PPC64 },
  { "SCMP_ARCH_PPC64LE", "ppc64le", NULL, SCMP_ARCH_PPC64LE },
  { "SCMP_ARCH_S390", "s390", NULL, SCMP_ARCH_S390 },
  { "SCMP_ARCH_S390X", "s390x", NULL, SCMP_ARCH_S390X },
  { "SCMP_ARCH_RISCV64", "riscv64", NULL, SCMP_ARCH_RISCV64 },
};

static const char *const actions[] = {
  "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", NULL,
};

static const char *const operators[] = {
  "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ", NULL,
};

static const ArchName *
arch_lookup (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (arch_names); i++)
    if (g_strcmp0 (name, arch_names[i].scmp) == 0 || g_strcmp0 (name, arch_names[i].goarch) == 0
        || g_strcmp0 (name, arch_names[i].other) == 0)
      return &arch_names[i];
  return NULL;
}

static const ArchName *
arch_native (void)
{
  guint32 token = seccomp_arch_native ();
  for (gsize i = 0; i < G_N_ELEMENTS (arch_names); i++)
    if (arch_names[i].token == token)
      return &arch_names[i];
  return NULL;
}

const char *
berth_seccomp_native_arch (void)
{
  const ArchName *arch = arch_native ();
  return arch != NULL ? arch->scmp : NULL;
}

static gboolean
arch_in (const ArchName *arch, GPtrArray *names)
{
  for (guint i = 0; i < names->len; i++)
    if (arch_lookup (names->pdata[i]) == arch)
      return TRUE;
  return FALSE;
}

static gboolean
strv_has (const char *const *strv, const char *s)
{
  return strv != NULL && g_strv_contains (strv, s);
}

/* Major and minor of "6.1.0-18-amd64" or "4.8"; FALSE if it does not start that way. */
static gboolean
parse_kernel_version (const char *text, guint *major, guint *minor)
{
  return sscanf (text, "%u.%u", major, minor) == 2;
}

static gboolean
kernel_at_least (const char *min)
{
  static guint host_major, host_minor;
  static gsize once;
  if (g_once_init_enter (&once))
    {
      struct utsname uts;
      if (uname (&uts) != 0 || !parse_kernel_version (uts.release, &host_major, &host_minor))
        host_major = host_minor = 0;
      g_once_init_leave (&once, 1);
    }
  guint major, minor;
  parse_kernel_version (min, &major, &minor); /* validated when the profile was read */
  return host_major > major || (host_major == major && host_minor >= minor);
}

static gboolean G_GNUC_PRINTF (3, 4)
throw_invalid (GError **error, const char *source, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "seccomp profile %s: %s", source, message);
  return FALSE;
}

#define null_throw_invalid(...) (throw_invalid (__VA_ARGS__), NULL)

/* ---- reading a profile: everything is checked before anything is used ---- */

typedef struct {
  GPtrArray *names;
  const char *action;
  gboolean has_errno_ret;
  gint64 errno_ret;
  JsonArray *args; /* checked; NULL for none */
  GPtrArray *include_arches, *include_caps, *exclude_arches, *exclude_caps;
  const char *min_kernel;
} Rule;

static void
rule_clear (gpointer data)
{
  Rule *rule = data;
  g_clear_pointer (&rule->names, g_ptr_array_unref);
  g_clear_pointer (&rule->include_arches, g_ptr_array_unref);
  g_clear_pointer (&rule->include_caps, g_ptr_array_unref);
  g_clear_pointer (&rule->exclude_arches, g_ptr_array_unref);
  g_clear_pointer (&rule->exclude_caps, g_ptr_array_unref);
}

typedef struct {
  JsonNode *root; /* holds the strings the rules borrow */
  const char *default_action;
  gboolean has_default_errno_ret;
  gint64 default_errno_ret;
  JsonArray *arch_map;      /* docker's current format */
  GPtrArray *architectures; /* its older flat list */
  GArray *rules;
} Profile;

static void
profile_free (Profile *profile)
{
  g_clear_pointer (&profile->root, json_node_unref);
  g_clear_pointer (&profile->architectures, g_ptr_array_unref);
  g_clear_pointer (&profile->rules, g_array_unref);
  g_free (profile);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Profile, profile_free)

/* @member of @object as borrowed strings; absent or null is an empty array. */
static gboolean
get_strings (JsonObject *object, const char *member, const char *source, const char *where,
             GPtrArray **out, GError **error)
{
  g_autoptr (GPtrArray) strings = g_ptr_array_new ();
  JsonNode *node = json_object_get_member (object, member);
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!JSON_NODE_HOLDS_ARRAY (node))
        return throw_invalid (error, source, "%s: \"%s\" must be an array of strings", where, member);
      JsonArray *array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *element = json_array_get_element (array, i);
          if (json_node_get_value_type (element) != G_TYPE_STRING)
            return throw_invalid (error, source, "%s: \"%s\" must be an array of strings", where, member);
          g_ptr_array_add (strings, (gpointer) json_node_get_string (element));
        }
    }
  *out = g_steal_pointer (&strings);
  return TRUE;
}

/* An optional string member; NULL when absent or null. */
static gboolean
get_string (JsonObject *object, const char *member, const char *source, const char *where,
            const char **out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (json_node_get_value_type (node) != G_TYPE_STRING)
    return throw_invalid (error, source, "%s: \"%s\" must be a string", where, member);
  *out = json_node_get_string (node);
  return TRUE;
}

/* An optional non-negative integer member. */
static gboolean
get_uint (JsonObject *object, const char *member, const char *source, const char *where,
          gboolean *present, gint64 *out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  *present = FALSE;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (json_node_get_value_type (node) != G_TYPE_INT64 || json_node_get_int (node) < 0)
    return throw_invalid (error, source, "%s: \"%s\" must be a non-negative integer", where, member);
  *present = TRUE;
  *out = json_node_get_int (node);
  return TRUE;
}

static gboolean
get_object (JsonObject *object, const char *member, const char *source, const char *where,
            JsonObject **out, GError **error)
{
  JsonNode *node = json_object_get_member (object, member);
  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return throw_invalid (error, source, "%s: \"%s\" must be an object", where, member);
  *out = json_node_get_object (node);
  return TRUE;
}

static gboolean
check_arches (GPtrArray *arches, const char *source, const char *where, GError **error)
{
  for (guint i = 0; i < arches->len; i++)
    if (arch_lookup (arches->pdata[i]) == NULL)
      return throw_invalid (error, source, "%s: unknown architecture \"%s\"", where,
                            (const char *) arches->pdata[i]);
  return TRUE;
}

static gboolean
read_args (JsonObject *object, const char *source, const char *where, JsonArray **out, GError **error)
{
  JsonNode *node = json_object_get_member (object, "args");
  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return throw_invalid (error, source, "%s: \"args\" must be an array", where);
  JsonArray *args = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (args); i++)
    {
      g_autofree char *arg_where = g_strdup_printf ("%s.args[%u]", where, i);
      JsonNode *arg_node = json_array_get_element (args, i);
      if (!JSON_NODE_HOLDS_OBJECT (arg_node))
        return throw_invalid (error, source, "%s: must be an object", arg_where);
      JsonObject *arg = json_node_get_object (arg_node);
      gboolean present;
      gint64 value;
      const char *op;
      if (!get_uint (arg, "index", source, arg_where, &present, &value, error))
        return FALSE;
      if (!present || value > 5)
        return throw_invalid (error, source, "%s: \"index\" must be a syscall argument number 0–5", arg_where);
      if (!get_uint (arg, "value", source, arg_where, &present, &value, error))
        return FALSE;
      if (!present)
        return throw_invalid (error, source, "%s: \"value\" is missing", arg_where);
      if (!get_uint (arg, "valueTwo", source, arg_where, &present, &value, error)
          || !get_string (arg, "op", source, arg_where, &op, error))
        return FALSE;
      if (op == NULL || !g_strv_contains (operators, op))
        return throw_invalid (error, source, "%s: \"op\" must be one of SCMP_CMP_{NE,LT,LE,EQ,GE,GT,MASKED_EQ}",
                              arg_where);
    }
  *out = args;
  return TRUE;
}

static gboolean
read_filter (JsonObject *rule_object, const char *member, const char *source, const char *where,
             GPtrArray **arches, GPtrArray **caps, const char **min_kernel, GError **error)
{
  g_autofree char *filter_where = g_strdup_printf ("%s.%s", where, member);
  JsonObject *filter;
  if (!get_object (rule_object, member, source, where, &filter, error))
    return FALSE;
  if (filter == NULL)
    {
      *arches = g_ptr_array_new ();
      *caps = g_ptr_array_new ();
      return TRUE;
    }
  if (!get_strings (filter, "arches", source, filter_where, arches, error)
      || !check_arches (*arches, source, filter_where, error)
      || !get_strings (filter, "caps", source, filter_where, caps, error))
    return FALSE;
  if (min_kernel != NULL)
    {
      guint major, minor;
      if (!get_string (filter, "minKernel", source, filter_where, min_kernel, error))
        return FALSE;
      if (*min_kernel != NULL && !parse_kernel_version (*min_kernel, &major, &minor))
        return throw_invalid (error, source, "%s: \"minKernel\" must look like \"4.8\"", filter_where);
    }
  return TRUE;
}

static gboolean
read_rule (JsonNode *node, const char *source, guint index, Rule *rule, GError **error)
{
  g_autofree char *where = g_strdup_printf ("syscalls[%u]", index);
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return throw_invalid (error, source, "%s: must be an object", where);
  JsonObject *object = json_node_get_object (node);

  if (!get_strings (object, "names", source, where, &rule->names, error))
    return FALSE;
  /* docker's oldest format: one "name" per rule */
  const char *name;
  if (!get_string (object, "name", source, where, &name, error))
    return FALSE;
  if (name != NULL)
    g_ptr_array_add (rule->names, (gpointer) name);
  if (rule->names->len == 0)
    return throw_invalid (error, source, "%s: no syscall \"names\"", where);

  if (!get_string (object, "action", source, where, &rule->action, error))
    return FALSE;
  if (rule->action == NULL || !g_strv_contains (actions, rule->action))
    return throw_invalid (error, source, "%s: \"action\" must be one of SCMP_ACT_{ALLOW,ERRNO,KILL,…}, not %s%s%s",
                          where, rule->action ? "\"" : "", rule->action ? rule->action : "missing",
                          rule->action ? "\"" : "");

  return get_uint (object, "errnoRet", source, where, &rule->has_errno_ret, &rule->errno_ret, error)
         && read_args (object, source, where, &rule->args, error)
         && read_filter (object, "includes", source, where, &rule->include_arches, &rule->include_caps,
                         &rule->min_kernel, error)
         && read_filter (object, "excludes", source, where, &rule->exclude_arches, &rule->exclude_caps,
                         NULL, error);
}

/* Takes @root. */
static Profile *
profile_read (JsonNode *root, const char *source, GError **error)
{
  g_autoptr (Profile) profile = g_new0 (Profile, 1);
  profile->root = root;
  profile->rules = g_array_new (FALSE, TRUE, sizeof (Rule));
  g_array_set_clear_func (profile->rules, rule_clear);

  if (!JSON_NODE_HOLDS_OBJECT (root))
    return null_throw_invalid (error, source, "not a JSON object");
  JsonObject *object = json_node_get_object (root);

  if (!get_string (object, "defaultAction", source, "top level", &profile->default_action, error))
    return NULL;
  if (profile->default_action == NULL || !g_strv_contains (actions, profile->default_action))
    return null_throw_invalid (error, source, "\"defaultAction\" must be one of SCMP_ACT_{ALLOW,ERRNO,KILL,…}");
  if (!get_uint (object, "defaultErrnoRet", source, "top level", &profile->has_default_errno_ret,
                 &profile->default_errno_ret, error))
    return NULL;

  JsonNode *arch_map = json_object_get_member (object, "archMap");
  if (arch_map != NULL && !JSON_NODE_HOLDS_NULL (arch_map))
    {
      if (!JSON_NODE_HOLDS_ARRAY (arch_map))
        return null_throw_invalid (error, source, "\"archMap\" must be an array");
      profile->arch_map = json_node_get_array (arch_map);
      for (guint i = 0; i < json_array_get_length (profile->arch_map); i++)
        {
          g_autofree char *where = g_strdup_printf ("archMap[%u]", i);
          JsonNode *entry = json_array_get_element (profile->arch_map, i);
          const char *arch;
          g_autoptr (GPtrArray) subs = NULL;
          if (!JSON_NODE_HOLDS_OBJECT (entry))
            return null_throw_invalid (error, source, "%s: must be an object", where);
          if (!get_string (json_node_get_object (entry), "architecture", source, where, &arch, error)
              || !get_strings (json_node_get_object (entry), "subArchitectures", source, where, &subs, error))
            return NULL;
          if (arch == NULL || arch_lookup (arch) == NULL)
            return null_throw_invalid (error, source, "%s: unknown \"architecture\" %s", where,
                                       arch ? arch : "(missing)");
          if (!check_arches (subs, source, where, error))
            return NULL;
        }
    }
  if (!get_strings (object, "architectures", source, "top level", &profile->architectures, error)
      || !check_arches (profile->architectures, source, "architectures", error))
    return NULL;

  JsonNode *syscalls = json_object_get_member (object, "syscalls");
  if (syscalls != NULL && !JSON_NODE_HOLDS_NULL (syscalls))
    {
      if (!JSON_NODE_HOLDS_ARRAY (syscalls))
        return null_throw_invalid (error, source, "\"syscalls\" must be an array");
      JsonArray *array = json_node_get_array (syscalls);
      g_array_set_size (profile->rules, json_array_get_length (array));
      for (guint i = 0; i < json_array_get_length (array); i++)
        if (!read_rule (json_array_get_element (array, i), source, i, &g_array_index (profile->rules, Rule, i),
                        error))
          return NULL;
    }
  return g_steal_pointer (&profile);
}

static Profile *
profile_load (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr (GError) local_error = NULL;
  /* An unreadable file's GFileError keeps its own code so callers can tell "missing"
   * from "broken". */
  if (!g_file_get_contents (path, &text, &len, &local_error))
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_file_error (local_error->code), "reading seccomp profile: %s",
                   local_error->message);
      return NULL;
    }
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  if (!berth_json_check_limits (text, len, path, &local_error)
      || !json_parser_load_from_data (parser, text, len, &local_error))
    {
      /* json-glib says "<data>:LINE:COL: Parse error: …" of bytes: name the file instead. */
      const char *message = local_error->message;
      gboolean located = g_str_has_prefix (message, "<data>:");
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "invalid seccomp profile: %s%s%s", path,
                   located ? "" : ": ", located ? message + strlen ("<data>") : message);
      return NULL;
    }
  if (json_parser_get_root (parser) == NULL)
    return null_throw_invalid (error, path, "empty file");
  return profile_read (json_node_ref (json_parser_get_root (parser)), path, error);
}

/* ---- deciding the rules for one architecture and bounding set ---- */

static gboolean
rule_applies (const Rule *rule, const ArchName *arch, const char *const *caps)
{
  if (arch_in (arch, rule->exclude_arches))
    return FALSE;
  for (guint i = 0; i < rule->exclude_caps->len; i++)
    if (strv_has (caps, rule->exclude_caps->pdata[i]))
      return FALSE;
  if (rule->include_arches->len > 0 && !arch_in (arch, rule->include_arches))
    return FALSE;
  /* docker's rule: every listed capability is needed, not just one */
  for (guint i = 0; i < rule->include_caps->len; i++)
    if (!strv_has (caps, rule->include_caps->pdata[i]))
      return FALSE;
  if (rule->min_kernel != NULL && !kernel_at_least (rule->min_kernel))
    return FALSE;
  return TRUE;
}

static int
resolve_syscall (const ArchName *arch, const char *name)
{
  if (arch->token == seccomp_arch_native ())
    return seccomp_syscall_resolve_name (name);
  return seccomp_syscall_resolve_name_arch (arch->token, name);
}

static void
add_architectures (JsonBuilder *builder, const Profile *profile, const ArchName *arch)
{
  json_builder_set_member_name (builder, "architectures");
  json_builder_begin_array (builder);
  if (profile->arch_map != NULL)
    {
      for (guint i = 0; i < json_array_get_length (profile->arch_map); i++)
        {
          JsonObject *entry = json_array_get_object_element (profile->arch_map, i);
          if (arch_lookup (json_object_get_string_member (entry, "architecture")) != arch)
            continue;
          json_builder_add_string_value (builder, arch->scmp);
          JsonNode *subs_node = json_object_get_member (entry, "subArchitectures");
          JsonArray *subs = subs_node != NULL && JSON_NODE_HOLDS_ARRAY (subs_node) ? json_node_get_array (subs_node)
                                                                                    : NULL;
          for (guint j = 0; subs != NULL && j < json_array_get_length (subs); j++)
            json_builder_add_string_value (builder, arch_lookup (json_array_get_string_element (subs, j))->scmp);
          goto done;
        }
      /* not in the map: the host's own architecture still gets its filter */
      json_builder_add_string_value (builder, arch->scmp);
    }
  else
    {
      for (guint i = 0; i < profile->architectures->len; i++)
        json_builder_add_string_value (builder, arch_lookup (profile->architectures->pdata[i])->scmp);
    }
done:
  json_builder_end_array (builder);
}

static void
add_rule (JsonBuilder *builder, const Rule *rule, const ArchName *arch, guint index)
{
  g_autoptr (GPtrArray) known = g_ptr_array_new ();
  for (guint i = 0; i < rule->names->len; i++)
    {
      const char *name = rule->names->pdata[i];
      if (resolve_syscall (arch, name) == __NR_SCMP_ERROR)
        g_debug ("seccomp: dropping syscall %s (rule %u): unknown to this libseccomp on %s", name, index, arch->scmp);
      else
        g_ptr_array_add (known, (gpointer) name);
    }
  if (known->len == 0)
    {
      g_debug ("seccomp: dropping rule %u: none of its syscalls is known on %s", index, arch->scmp);
      return;
    }

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "names");
  json_builder_begin_array (builder);
  for (guint i = 0; i < known->len; i++)
    json_builder_add_string_value (builder, known->pdata[i]);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "action");
  json_builder_add_string_value (builder, rule->action);
  if (rule->has_errno_ret)
    {
      json_builder_set_member_name (builder, "errnoRet");
      json_builder_add_int_value (builder, rule->errno_ret);
    }
  if (rule->args != NULL && json_array_get_length (rule->args) > 0)
    {
      json_builder_set_member_name (builder, "args");
      json_builder_begin_array (builder);
      for (guint i = 0; i < json_array_get_length (rule->args); i++)
        {
          JsonObject *arg = json_array_get_object_element (rule->args, i);
          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "index");
          json_builder_add_int_value (builder, json_object_get_int_member (arg, "index"));
          json_builder_set_member_name (builder, "value");
          json_builder_add_int_value (builder, json_object_get_int_member (arg, "value"));
          json_builder_set_member_name (builder, "valueTwo");
          json_builder_add_int_value (builder, json_object_get_int_member_with_default (arg, "valueTwo", 0));
          json_builder_set_member_name (builder, "op");
          json_builder_add_string_value (builder, json_object_get_string_member (arg, "op"));
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
    }
  json_builder_end_object (builder);
}

static JsonNode *
profile_to_oci (const Profile *profile, const char *source, const char *arch_name, const char *const *caps,
                GError **error)
{
  const ArchName *arch = arch_name != NULL ? arch_lookup (arch_name) : arch_native ();
  if (arch == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "seccomp: unknown architecture %s",
                   arch_name ? arch_name : "(this host's)");
      return NULL;
    }

  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "defaultAction");
  json_builder_add_string_value (builder, profile->default_action);
  if (profile->has_default_errno_ret)
    {
      json_builder_set_member_name (builder, "defaultErrnoRet");
      json_builder_add_int_value (builder, profile->default_errno_ret);
    }
  add_architectures (builder, profile, arch);
  json_builder_set_member_name (builder, "syscalls");
  json_builder_begin_array (builder);
  guint used = 0;
  for (guint i = 0; i < profile->rules->len; i++)
    {
      const Rule *rule = &g_array_index (profile->rules, Rule, i);
      if (!rule_applies (rule, arch, caps))
        continue;
      add_rule (builder, rule, arch, i);
      used++;
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  g_debug ("seccomp: %u of %u rules of %s apply on %s", used, profile->rules->len, source, arch->scmp);
  return json_builder_get_root (builder);
}

JsonNode *
berth_seccomp_profile_to_oci (JsonNode *profile_node, const char *source, const char *arch,
                              const char *const *capabilities, GError **error)
{
  g_return_val_if_fail (profile_node != NULL, NULL);
  if (source == NULL)
    source = "(inline)";
  g_autoptr (Profile) profile = profile_read (json_node_ref (profile_node), source, error);
  if (profile == NULL)
    return NULL;
  return profile_to_oci (profile, source, arch, capabilities, error);
}

JsonNode *
berth_seccomp_load (const char *path, const char *arch, const char *const *capabilities, GError **error)
{
  g_autoptr (Profile) profile = profile_load (path, error);
  if (profile == NULL)
    return NULL;
  return profile_to_oci (profile, path, arch, capabilities, error);
}

gboolean
berth_seccomp_check_file (const char *path, GPtrArray **unknown_names_out, GError **error)
{
  g_autoptr (Profile) profile = profile_load (path, error);
  if (profile == NULL)
    return FALSE;
  if (unknown_names_out == NULL)
    return TRUE;

  g_autoptr (GPtrArray) unknown = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < profile->rules->len; i++)
    {
      const Rule *rule = &g_array_index (profile->rules, Rule, i);
      for (guint j = 0; j < rule->names->len; j++)
        {
          const char *name = rule->names->pdata[j];
          if (seccomp_syscall_resolve_name (name) == __NR_SCMP_ERROR
              && !g_ptr_array_find_with_equal_func (unknown, name, g_str_equal, NULL))
            g_ptr_array_add (unknown, g_strdup (name));
        }
    }
  *unknown_names_out = g_steal_pointer (&unknown);
  return TRUE;
}
