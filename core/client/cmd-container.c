/* cmd-container.c — berth ps|logs|stop|kill|rm: the commands on containers that exist
 * (run is cmd-run.c, exec cmd-exec.c): listing them with their tasks, printing a
 * detached container's log, stopping (SIGTERM, then SIGKILL after a timeout),
 * signalling and removing them with their snapshots and logs. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include <berth/berth-types.h>
#include "cli-container.h"
#include "image/berth-json.h"

/* ---------------- ps ---------------- */

static const char *
status_name (Containerd__V1__Types__Status status)
{
  switch (status)
    {
    case CONTAINERD__V1__TYPES__STATUS__CREATED: return "created";
    case CONTAINERD__V1__TYPES__STATUS__RUNNING: return "running";
    case CONTAINERD__V1__TYPES__STATUS__STOPPED: return "stopped";
    case CONTAINERD__V1__TYPES__STATUS__PAUSED: return "paused";
    case CONTAINERD__V1__TYPES__STATUS__PAUSING: return "pausing";
    default: return "unknown";
    }
}

static char *
spec_command (Containerd__Services__Containers__V1__Container *container)
{
  if (container->spec == NULL)
    return g_strdup ("");
  g_autoptr (JsonNode) root = berth_json_parse ((const char *) container->spec->value.data, container->spec->value.len,
                                                "the container's spec", NULL);
  JsonObject *process = root && JSON_NODE_HOLDS_OBJECT (root) && json_object_has_member (json_node_get_object (root), "process")
                          ? json_object_get_object_member (json_node_get_object (root), "process") : NULL;
  JsonArray *args = process && json_object_has_member (process, "args") ? json_object_get_array_member (process, "args") : NULL;
  g_autoptr (GString) text = g_string_new ("");
  for (guint i = 0; args && i < json_array_get_length (args); i++)
    g_string_append_printf (text, "%s%s", i ? " " : "", json_array_get_string_element (args, i));
  return g_string_free (g_steal_pointer (&text), FALSE);
}

int
cli_cmd_ps (BerthCli *cli, int argc, char **argv)
{
  gboolean all = FALSE, json = FALSE, quiet = FALSE;
  GOptionEntry entries[] = {
    { "all", 'a', 0, G_OPTION_ARG_NONE, &all, "also containers that are not running", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON", NULL },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "print ids only", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("— list containers");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  g_autoptr (GError) error = NULL;
  Containerd__Services__Containers__V1__ListContainersRequest list = CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_REQUEST__INIT;
  Containerd__Services__Containers__V1__ListContainersResponse *containers = cli_unary (
    cli, CONTAINERS "List", &list.base, &containerd__services__containers__v1__list_containers_response__descriptor, &error);
  if (containers == NULL)
    return cli_fail (error, "ps");
  Containerd__Services__Tasks__V1__ListTasksRequest list_tasks = CONTAINERD__SERVICES__TASKS__V1__LIST_TASKS_REQUEST__INIT;
  Containerd__Services__Tasks__V1__ListTasksResponse *tasks = cli_unary (
    cli, TASKS "List", &list_tasks.base, &containerd__services__tasks__v1__list_tasks_response__descriptor, &error);
  if (tasks == NULL)
    {
      protobuf_c_message_free_unpacked (&containers->base, NULL);
      return cli_fail (error, "ps");
    }
  g_autoptr (GHashTable) by_id = g_hash_table_new (g_str_hash, g_str_equal);
  for (size_t i = 0; i < tasks->n_tasks; i++)
    g_hash_table_insert (by_id, tasks->tasks[i]->id, tasks->tasks[i]);
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_array (builder);
  if (!json && !quiet)
    g_print ("%-20s %-40s %-24s %-9s %s\n", "CONTAINER ID", "IMAGE", "COMMAND", "STATUS", "PID");
  for (size_t i = 0; i < containers->n_containers; i++)
    {
      Containerd__Services__Containers__V1__Container *c = containers->containers[i];
      Containerd__V1__Types__Process *task = g_hash_table_lookup (by_id, c->id);
      const char *status = task ? status_name (task->status) : "stopped";
      gboolean running = task && (task->status == CONTAINERD__V1__TYPES__STATUS__RUNNING || task->status == CONTAINERD__V1__TYPES__STATUS__PAUSED);
      if (!all && !running)
        continue;
      g_autofree char *command = spec_command (c);
      if (quiet)
        g_print ("%s\n", c->id);
      else if (json)
        {
          json_builder_begin_object (builder);
          cli_json_string (builder, "id", c->id);
          cli_json_string (builder, "image", c->image);
          cli_json_string (builder, "command", command);
          cli_json_string (builder, "status", status);
          cli_json_int (builder, "pid", task ? task->pid : 0);
          cli_json_string (builder, "runtime", c->runtime ? c->runtime->name : "");
          json_builder_end_object (builder);
        }
      else
        {
          g_autofree char *pid = task && task->pid ? g_strdup_printf ("%u", task->pid) : g_strdup ("-");
          g_print ("%-20s %-40s %-24.24s %-9s %s\n", c->id, c->image, command, status, pid);
        }
    }
  cli_json_finish (builder, json);
  protobuf_c_message_free_unpacked (&tasks->base, NULL);
  protobuf_c_message_free_unpacked (&containers->base, NULL);
  return 0;
}

/* ---------------- logs ---------------- */

int
cli_cmd_logs (BerthCli *cli, int argc, char **argv)
{
  gboolean follow = FALSE;
  GOptionEntry entries[] = {
    { "follow", 'f', 0, G_OPTION_ARG_NONE, &follow, "keep printing while the container runs", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER — print the output of a container started with run -d");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc != 2)
    return cli_usage (context, "logs takes one CONTAINER");
  const char *id = argv[1];
  g_autoptr (GError) error = NULL;
  Containerd__Services__Containers__V1__Container *container = cli_container_get (cli, id, &error);
  if (container == NULL)
    return cli_fail (error, "logs");
  g_autofree char *path = g_strdup (cli_container_label (container, LOG_PATH_LABEL));
  protobuf_c_message_free_unpacked (&container->base, NULL);
  if (path == NULL)
    return cli_fail (NULL, "logs: container %s was not started with -d, so its output went to the terminal that ran it", id);
  berth_autofd int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT)
        return 0; /* nothing written yet */
      return cli_fail (NULL, "logs: cannot open %s: %s", path, g_strerror (errno));
    }
  char buf[64 * 1024];
  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return cli_fail (NULL, "logs: reading %s: %s", path, g_strerror (errno));
      if (n > 0)
        {
          if (write (STDOUT_FILENO, buf, n) != n)
            return CLI_EXIT_ERROR;
          continue;
        }
      if (!follow)
        break;
      g_autoptr (GError) task_error = NULL;
      Containerd__V1__Types__Process *task = cli_task_get (cli, NULL, id, NULL, &task_error);
      gboolean running = task && task->status != CONTAINERD__V1__TYPES__STATUS__STOPPED;
      if (task)
        protobuf_c_message_free_unpacked (&task->base, NULL);
      if (!running)
        {
          /* One last read: what was written just before the exit. */
          while ((n = read (fd, buf, sizeof buf)) > 0)
            if (write (STDOUT_FILENO, buf, n) != n)
              return CLI_EXIT_ERROR;
          break;
        }
      g_usleep (200000);
    }
  return 0;
}

/* ---------------- stop / kill / rm ---------------- */

static int
parse_signal (const char *text)
{
  static const struct { const char *name; int signo; } names[] = {
    { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
    { "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "WINCH", SIGWINCH },
  };
  char *end = NULL;
  long value = strtol (text, &end, 10);
  if (end != text && *end == 0 && value > 0 && value < 65)
    return (int) value;
  const char *name = g_str_has_prefix (text, "SIG") ? text + 3 : text;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (names[i].name, name) == 0)
      return names[i].signo;
  return -1;
}

/* Polls until the task has stopped or @timeout_ms passed. */
static gboolean
wait_stopped (BerthCli *cli, const char *id, gint64 timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;
  do
    {
      Containerd__V1__Types__Process *task = cli_task_get (cli, NULL, id, NULL, NULL);
      gboolean stopped = task == NULL || task->status == CONTAINERD__V1__TYPES__STATUS__STOPPED;
      if (task)
        protobuf_c_message_free_unpacked (&task->base, NULL);
      if (stopped)
        return TRUE;
      g_usleep (50000);
    }
  while (g_get_monotonic_time () < deadline);
  return FALSE;
}

static gboolean
stop_one (BerthCli *cli, const char *id, gint64 timeout_s, GError **error)
{
  Containerd__V1__Types__Process *task = cli_task_get (cli, NULL, id, NULL, error);
  if (task == NULL)
    {
      if (error && *error)
        return FALSE;
      Containerd__Services__Containers__V1__Container *container = cli_container_get (cli, id, error);
      if (container == NULL)
        return FALSE;
      protobuf_c_message_free_unpacked (&container->base, NULL);
      return TRUE; /* no task: already stopped */
    }
  gboolean running = task->status != CONTAINERD__V1__TYPES__STATUS__STOPPED;
  protobuf_c_message_free_unpacked (&task->base, NULL);
  BerthGrpcClient *client = cli_client (cli, error);
  if (client == NULL)
    return FALSE;
  if (running)
    {
      if (!cli_task_kill (client, id, NULL, SIGTERM, FALSE, error))
        return FALSE;
      if (!wait_stopped (cli, id, timeout_s * 1000))
        {
          if (!cli_task_kill (client, id, NULL, SIGKILL, TRUE, error))
            return FALSE;
          if (!wait_stopped (cli, id, 10000))
            return berth_throw (error, BERTH_ERROR_DEADLINE_EXCEEDED, "%s did not stop after SIGKILL", id);
        }
    }
  GError *local = NULL;
  if (!cli_task_delete (cli, id, NULL, &local) && !g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  g_clear_error (&local);
  return TRUE;
}

int
cli_cmd_stop (BerthCli *cli, int argc, char **argv)
{
  gint timeout = 10;
  GOptionEntry entries[] = {
    { "time", 't', 0, G_OPTION_ARG_INT, &timeout, "seconds to wait after SIGTERM before SIGKILL (default 10)", "SECONDS" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER… — stop containers");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 2)
    return cli_usage (context, "stop needs at least one CONTAINER");
  int result = 0;
  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GError) error = NULL;
      if (!stop_one (cli, argv[i], MAX (timeout, 0), &error))
        result = cli_fail (error, "stop %s", argv[i]);
      else
        g_print ("%s\n", argv[i]);
    }
  return result;
}

int
cli_cmd_kill (BerthCli *cli, int argc, char **argv)
{
  g_autofree char *signal_name = NULL;
  GOptionEntry entries[] = {
    { "signal", 's', 0, G_OPTION_ARG_STRING, &signal_name, "signal to send (default KILL)", "SIGNAL" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER… — send a signal to containers");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 2)
    return cli_usage (context, "kill needs at least one CONTAINER");
  int signo = parse_signal (signal_name ? signal_name : "KILL");
  if (signo < 0)
    return cli_fail (NULL, "kill: unknown signal %s", signal_name);
  g_autoptr (GError) error = NULL;
  BerthGrpcClient *client = cli_client (cli, &error);
  if (client == NULL)
    return cli_fail (error, "kill");
  int result = 0;
  for (int i = 1; i < argc; i++)
    {
      g_clear_error (&error);
      if (!cli_task_kill (client, argv[i], NULL, signo, FALSE, &error))
        result = cli_fail (error, "kill %s", argv[i]);
      else
        g_print ("%s\n", argv[i]);
    }
  return result;
}

int
cli_cmd_rm (BerthCli *cli, int argc, char **argv)
{
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "kill running containers first", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER… — remove containers with their snapshots and logs");
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 2)
    return cli_usage (context, "rm needs at least one CONTAINER");
  int result = 0;
  for (int i = 1; i < argc; i++)
    {
      const char *id = argv[i];
      g_autoptr (GError) error = NULL;
      Containerd__Services__Containers__V1__Container *container = cli_container_get (cli, id, &error);
      if (container == NULL)
        {
          result = cli_fail (error, "rm");
          continue;
        }
      g_autofree char *snapshotter = g_strdup (container->snapshotter);
      g_autofree char *key = g_strdup (container->snapshot_key);
      g_autofree char *log_path = g_strdup (cli_container_label (container, LOG_PATH_LABEL));
      protobuf_c_message_free_unpacked (&container->base, NULL);
      Containerd__V1__Types__Process *task = cli_task_get (cli, NULL, id, NULL, &error);
      if (task != NULL)
        {
          gboolean stopped = task->status == CONTAINERD__V1__TYPES__STATUS__STOPPED;
          protobuf_c_message_free_unpacked (&task->base, NULL);
          if (!stopped && !force)
            {
              result = cli_fail (NULL, "rm: container %s is running: stop it first (`berth stop %s`) or use rm -f", id, id);
              continue;
            }
          if (!stop_one (cli, id, 0, &error))
            {
              result = cli_fail (error, "rm %s", id);
              continue;
            }
        }
      g_clear_error (&error);
      if (!cli_container_remove (cli, id, snapshotter, key, &error))
        {
          result = cli_fail (error, "rm %s", id);
          continue;
        }
      if (log_path != NULL)
        unlink (log_path);
      g_print ("%s\n", id);
    }
  return result;
}
