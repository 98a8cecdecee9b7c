/* berth-cni.c — CNI plugin invocation and network namespaces for pods. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include <berth/berth-fs.h>
#include "berth-cni.h"
#include "image/berth-image-store.h"

gboolean
berth_netns_create (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0)
    return berth_throw_errno (error, "creating network namespace file %s", path);
  close (fd);
  /* A child unshares, so no thread of the daemon ever changes namespace; it does
   * nothing but syscalls between fork and _exit. */
  pid_t pid = fork ();
  if (pid < 0)
    {
      int saved = errno;
      unlink (path);
      errno = saved;
      return berth_throw_errno (error, "fork");
    }
  if (pid == 0)
    {
      if (unshare (CLONE_NEWNET) < 0)
        _exit (10 + (errno & 0x7f));
      if (mount ("/proc/self/ns/net", path, "none", MS_BIND, NULL) < 0)
        _exit (100 + (errno & 0x7f));
      _exit (0);
    }
  int status = 0;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return TRUE;
  unlink (path);
  int code = WIFEXITED (status) ? WEXITSTATUS (status) : 0;
  if (code >= 100)
    return berth_throw (error, BERTH_ERROR_INTERNAL, "binding the new network namespace at %s: %s", path,
                        g_strerror (code - 100));
  return berth_throw (error, BERTH_ERROR_INTERNAL, "unsharing a network namespace: %s",
                      code >= 10 ? g_strerror (code - 10) : "the child died");
}

gboolean
berth_netns_remove (const char *path, GError **error)
{
  if (umount2 (path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return berth_throw_errno (error, "unmounting network namespace %s", path);
  if (unlink (path) < 0 && errno != ENOENT)
    return berth_throw_errno (error, "removing %s", path);
  return TRUE;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

char *
berth_cni_load_network (const char *conf_dir, char **name_out, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GDir) dir = g_dir_open (conf_dir, 0, &local_error);
  if (dir == NULL)
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "no CNI network configuration: %s", local_error->message), NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *entry;
  while ((entry = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (entry, ".conflist") || g_str_has_suffix (entry, ".conf") || g_str_has_suffix (entry, ".json"))
      g_ptr_array_add (names, g_strdup (entry));
  if (names->len == 0)
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "no CNI network configuration in %s (*.conflist, *.conf)", conf_dir),
           NULL;
  g_ptr_array_sort (names, compare_names);
  g_autofree char *path = g_build_filename (conf_dir, names->pdata[0], NULL);
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  g_autoptr (GBytes) bytes = g_bytes_new_take (g_steal_pointer (&text), len);
  g_autoptr (JsonNode) root = berth_json_parse_object (bytes, path, error);
  if (root == NULL)
    return NULL;
  JsonObject *obj = json_node_get_object (root);
  const char *name = berth_json_member_string (obj, "name");
  if (name == NULL || *name == '\0')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "CNI configuration %s has no name", path), NULL;
  JsonArray *plugins = berth_json_member_array (obj, "plugins");
  if (plugins == NULL)
    {
      /* A single network configuration: the list of just that one. */
      if (berth_json_member_string (obj, "type") == NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "CNI configuration %s has neither plugins nor a type",
                            path), NULL;
      JsonObject *list = json_object_new ();
      json_object_set_string_member (list, "cniVersion", berth_json_member_string (obj, "cniVersion") ?: "0.4.0");
      json_object_set_string_member (list, "name", name);
      JsonArray *array = json_array_new ();
      json_array_add_object_element (array, json_object_ref (obj));
      json_object_set_array_member (list, "plugins", array);
      g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), list);
      json_object_unref (list);
      if (name_out != NULL)
        *name_out = g_strdup (name);
      return berth_json_to_text (node, NULL);
    }
  for (guint i = 0; i < berth_json_array_length (plugins); i++)
    {
      JsonObject *plugin = berth_json_element_object (plugins, i);
      if (plugin == NULL || berth_json_member_string (plugin, "type") == NULL)
        return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "CNI configuration %s: plugin %u has no type", path, i),
               NULL;
    }
  if (name_out != NULL)
    *name_out = g_strdup (name);
  return berth_json_to_text (root, NULL);
}

/* A plugin's stdin: its own configuration plus the list's name and version, the
 * previous result, and the runtime config of the capabilities it declares. */
static char *
plugin_config (JsonObject *list, JsonObject *plugin, const char *prev_result, JsonNode *runtime_config)
{
  g_autoptr (JsonObject) conf = json_object_new ();
  g_autoptr (GList) members = json_object_get_members (plugin);
  for (GList *l = members; l != NULL; l = l->next)
    if (!g_str_equal (l->data, "capabilities") && !g_str_equal (l->data, "runtimeConfig"))
      json_object_set_member (conf, l->data, json_node_copy (json_object_get_member (plugin, l->data)));
  json_object_set_string_member (conf, "name", berth_json_member_string (list, "name"));
  json_object_set_string_member (conf, "cniVersion", berth_json_member_string (list, "cniVersion") ?: "0.4.0");
  if (prev_result != NULL)
    {
      JsonNode *prev = berth_json_parse (prev_result, strlen (prev_result), "CNI result", NULL);
      if (prev != NULL)
        json_object_set_member (conf, "prevResult", prev);
    }
  JsonObject *caps = berth_json_member_object (plugin, "capabilities");
  if (caps != NULL && runtime_config != NULL && JSON_NODE_HOLDS_OBJECT (runtime_config))
    {
      JsonObject *rc = json_object_new ();
      JsonObject *given = json_node_get_object (runtime_config);
      g_autoptr (GList) keys = json_object_get_members (given);
      for (GList *l = keys; l != NULL; l = l->next)
        {
          JsonNode *cap = json_object_get_member (caps, l->data);
          if (cap != NULL && JSON_NODE_HOLDS_VALUE (cap) && json_node_get_boolean (cap))
            json_object_set_member (rc, l->data, json_node_copy (json_object_get_member (given, l->data)));
        }
      json_object_set_object_member (conf, "runtimeConfig", rc);
    }
  g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), conf);
  return berth_json_to_text (node, NULL);
}

/* Runs one plugin; its stdout (the result for ADD) in *out (may be NULL). */
static gboolean
exec_plugin (const BerthCniCall *call, const char *command, const char *type, const char *config, char **out,
             GError **error)
{
  if (strchr (type, '/') != NULL || *type == '.')
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "CNI plugin type \"%s\" is not a plain name", type);
  g_autofree char *binary = g_build_filename (call->bin_dir, type, NULL);
  if (!g_file_test (binary, G_FILE_TEST_IS_EXECUTABLE))
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "CNI plugin %s not found (set [cri] cni-bin-dir)", binary);
  g_autoptr (GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                               | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "CNI_COMMAND", command, TRUE);
  g_subprocess_launcher_setenv (launcher, "CNI_CONTAINERID", call->container_id, TRUE);
  g_subprocess_launcher_setenv (launcher, "CNI_NETNS", call->netns, TRUE);
  g_subprocess_launcher_setenv (launcher, "CNI_IFNAME", call->ifname, TRUE);
  g_subprocess_launcher_setenv (launcher, "CNI_PATH", call->bin_dir, TRUE);
  g_subprocess_launcher_setenv (launcher, "CNI_ARGS", call->args ? call->args : "", TRUE);
  if (g_getenv ("PATH") == NULL)
    g_subprocess_launcher_setenv (launcher, "PATH", "/usr/sbin:/usr/bin:/sbin:/bin", TRUE);
  g_autoptr (GSubprocess) proc = g_subprocess_launcher_spawn (launcher, error, binary, NULL);
  if (proc == NULL)
    return FALSE;
  g_autofree char *stdout_text = NULL, *stderr_text = NULL;
  if (!g_subprocess_communicate_utf8 (proc, config, NULL, &stdout_text, &stderr_text, error))
    return FALSE;
  if (g_subprocess_get_if_exited (proc) && g_subprocess_get_exit_status (proc) == 0)
    {
      if (out != NULL)
        *out = g_steal_pointer (&stdout_text);
      return TRUE;
    }
  /* The spec's error object: {"code", "msg", "details"}. */
  const char *msg = NULL, *details = NULL;
  g_autoptr (JsonNode) reply = stdout_text != NULL ? berth_json_parse (stdout_text, strlen (stdout_text), "CNI error", NULL) : NULL;
  if (reply != NULL && JSON_NODE_HOLDS_OBJECT (reply))
    {
      JsonObject *obj = json_node_get_object (reply);
      msg = berth_json_member_string (obj, "msg");
      details = berth_json_member_string (obj, "details");
    }
  return berth_throw (error, BERTH_ERROR_UNAVAILABLE, "CNI plugin %s %s failed: %s%s%s", type, command,
                      msg ? msg : g_strstrip (stderr_text ? stderr_text : stdout_text ? stdout_text : ""),
                      details && *details ? ": " : "", details && *details ? details : "");
}

static JsonNode *
parse_network (const BerthCniCall *call, GError **error)
{
  g_autoptr (GBytes) bytes = g_bytes_new (call->network, strlen (call->network));
  return berth_json_parse_object (bytes, "CNI network configuration", error);
}

static const char *
lo_network = "{\"cniVersion\": \"0.4.0\", \"name\": \"cni-loopback\", \"plugins\": [{\"type\": \"loopback\"}]}";

/* Runs @command for every plugin of call->network (in reverse for DEL). */
static gboolean
run_list (const BerthCniCall *call, const char *command, const char *prev_result, char **result_out, GError **error)
{
  g_autoptr (JsonNode) root = parse_network (call, error);
  if (root == NULL)
    return FALSE;
  JsonObject *list = json_node_get_object (root);
  JsonArray *plugins = berth_json_member_array (list, "plugins");
  guint n = berth_json_array_length (plugins);
  gboolean del = g_str_equal (command, "DEL");
  g_autofree char *result = g_strdup (prev_result);
  gboolean ok = TRUE;
  g_autoptr (GError) first_error = NULL;
  for (guint k = 0; k < n; k++)
    {
      JsonObject *plugin = berth_json_element_object (plugins, del ? n - 1 - k : k);
      g_autofree char *conf = plugin_config (list, plugin, result, call->runtime_config);
      g_autofree char *out = NULL;
      g_autoptr (GError) local_error = NULL;
      if (!exec_plugin (call, command, berth_json_member_string (plugin, "type"), conf,
                        g_str_equal (command, "ADD") ? &out : NULL, &local_error))
        {
          /* DEL carries on with the other plugins: teardown releases what it can. */
          if (first_error == NULL)
            first_error = g_steal_pointer (&local_error);
          ok = FALSE;
          if (!del)
            break;
          continue;
        }
      if (out != NULL && *out != '\0')
        {
          g_free (result);
          result = g_steal_pointer (&out);
        }
    }
  if (!ok)
    {
      g_propagate_error (error, g_steal_pointer (&first_error));
      return FALSE;
    }
  if (result_out != NULL)
    *result_out = g_steal_pointer (&result);
  return TRUE;
}

static gboolean
loopback (const BerthCniCall *call, const char *command, GError **error)
{
  g_autofree char *binary = g_build_filename (call->bin_dir, "loopback", NULL);
  if (!g_file_test (binary, G_FILE_TEST_IS_EXECUTABLE))
    return TRUE; /* lo stays down; the pod network itself does not need it */
  BerthCniCall lo = *call;
  lo.network = lo_network;
  lo.ifname = "lo";
  lo.runtime_config = NULL;
  return run_list (&lo, command, NULL, NULL, error);
}

char *
berth_cni_add (const BerthCniCall *call, GError **error)
{
  char *result = NULL;
  if (!loopback (call, "ADD", error))
    return NULL;
  if (!run_list (call, "ADD", NULL, &result, error))
    {
      berth_cni_del (call, NULL, NULL);
      return NULL;
    }
  return result;
}

gboolean
berth_cni_del (const BerthCniCall *call, const char *prev_result, GError **error)
{
  gboolean ok = run_list (call, "DEL", prev_result, NULL, error);
  return loopback (call, "DEL", ok ? error : NULL) && ok;
}

gboolean
berth_cni_check (const BerthCniCall *call, const char *prev_result, GError **error)
{
  return run_list (call, "CHECK", prev_result, NULL, error);
}

GPtrArray *
berth_cni_result_ips (const char *result)
{
  GPtrArray *ips = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (JsonNode) root = result != NULL ? berth_json_parse (result, strlen (result), "CNI result", NULL) : NULL;
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return ips;
  JsonArray *array = berth_json_member_array (json_node_get_object (root), "ips");
  for (guint i = 0; i < berth_json_array_length (array); i++)
    {
      const char *address = berth_json_member_string (berth_json_element_object (array, i), "address");
      if (address != NULL)
        g_ptr_array_add (ips, g_strndup (address, strcspn (address, "/")));
    }
  return ips;
}
