/* cmd-exec.c — berth exec: runs a further process in a running container, from the
 * container's own process spec (user, env, capabilities) with the command, terminal,
 * working directory and environment the flags give; attached unless -d, exiting with
 * the process's status. */
#include "config.h"

#include <berth/berth-error.h>
#include "cli-container.h"
#include "image/berth-json.h"

#define PROCESS_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"

int
cli_cmd_exec (BerthCli *cli, int argc, char **argv)
{
  gboolean tty = FALSE, interactive = FALSE, detach = FALSE;
  g_autofree char *workdir = NULL, *exec_id = NULL;
  g_auto (GStrv) env = NULL;
  GOptionEntry entries[] = {
    { "tty", 't', 0, G_OPTION_ARG_NONE, &tty, "give the process a terminal", NULL },
    { "interactive", 'i', 0, G_OPTION_ARG_NONE, &interactive, "keep stdin open", NULL },
    { "detach", 'd', 0, G_OPTION_ARG_NONE, &detach, "do not wait for the process", NULL },
    { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &env, "set an environment variable", "K=V" },
    { "workdir", 'w', 0, G_OPTION_ARG_STRING, &workdir, "working directory", "DIR" },
    { "exec-id", 0, 0, G_OPTION_ARG_STRING, &exec_id, "id of the process (default: random)", "ID" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("CONTAINER COMMAND [ARG…] — run a command in a running container");
  g_option_context_set_strict_posix (context, TRUE);
  g_option_context_add_main_entries (context, entries, NULL);
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 3)
    return cli_usage (context, "exec needs a CONTAINER and a COMMAND");
  const char *id = argv[1];
  if (exec_id == NULL)
    exec_id = cli_random_id ();
  g_autoptr (GError) error = NULL;
  Containerd__Services__Containers__V1__Container *container = cli_container_get (cli, id, &error);
  if (container == NULL)
    return cli_fail (error, "exec");
  /* The process starts from the container's own: same user, env, capabilities. */
  g_autoptr (JsonNode) root = container->spec != NULL
                                ? berth_json_parse ((const char *) container->spec->value.data, container->spec->value.len,
                                                    "the container's spec", &error)
                                : NULL;
  protobuf_c_message_free_unpacked (&container->base, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root) || !json_object_has_member (json_node_get_object (root), "process"))
    return cli_fail (error, "exec: container %s has no usable spec", id);
  JsonObject *process = json_object_get_object_member (json_node_get_object (root), "process");
  JsonArray *args = json_array_new ();
  for (int i = 2; i < argc; i++)
    json_array_add_string_element (args, argv[i]);
  json_object_set_array_member (process, "args", args);
  json_object_set_boolean_member (process, "terminal", tty);
  if (workdir != NULL)
    json_object_set_string_member (process, "cwd", workdir);
  if (env != NULL)
    {
      JsonArray *process_env = json_object_has_member (process, "env") ? json_object_get_array_member (process, "env") : NULL;
      if (process_env == NULL)
        {
          process_env = json_array_new ();
          json_object_set_array_member (process, "env", process_env);
        }
      for (guint i = 0; env[i]; i++)
        json_array_add_string_element (process_env, env[i]);
    }
  g_autoptr (JsonNode) process_node = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (process_node, process);
  gsize len = 0;
  g_autofree char *process_text = cli_json_to_text (process_node, &len);

  CliAttach attach = { .cli = cli, .id = (char *) id, .exec_id = exec_id, .tty = tty, .interactive = interactive,
                    .out_fd = -1, .err_fd = -1 };
  int result = CLI_EXIT_ERROR;
  if (!detach && !cli_attach_prepare (&attach, &error))
    {
      result = cli_fail (error, "exec: setting up stdio");
      goto out;
    }
  if (!detach)
    cli_attach_block_signals (&attach);
  {
    g_autofree Google__Protobuf__Any *spec_any = cli_any_new (PROCESS_TYPE_URL, (guint8 *) process_text, len);
    Containerd__Services__Tasks__V1__ExecProcessRequest request = CONTAINERD__SERVICES__TASKS__V1__EXEC_PROCESS_REQUEST__INIT;
    request.container_id = (char *) id;
    request.exec_id = exec_id;
    request.stdin = attach.stdin_path ? attach.stdin_path : (char *) "";
    request.stdout = attach.stdout_path ? attach.stdout_path : (char *) "";
    request.stderr = attach.stderr_path ? attach.stderr_path : (char *) "";
    request.terminal = tty;
    request.spec = spec_any;
    if (!cli_unary_empty (cli, TASKS "Exec", &request.base, &error))
      {
        result = cli_fail (error, "exec %s", id);
        goto out;
      }
  }
  if (!detach)
    cli_attach_start (&attach);
  Containerd__Services__Tasks__V1__StartRequest start = CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
  start.container_id = (char *) id;
  start.exec_id = exec_id;
  ProtobufCMessage *started = cli_unary (cli, TASKS "Start", &start.base, &containerd__services__tasks__v1__start_response__descriptor, &error);
  if (started != NULL && tty && !detach && cli_client (cli, NULL) != NULL)
    cli_attach_resize (&attach, cli->client);
  guint32 status = 0;
  gboolean waited = started != NULL && (detach || cli_task_wait (cli, id, exec_id, &status, &error));
  if (started)
    protobuf_c_message_free_unpacked (started, NULL);
  if (!detach)
    cli_attach_finish (&attach);
  if (!waited)
    result = cli_fail (error, "exec %s", id);
  else
    result = status > 255 ? 255 : (int) status;
  if (!detach)
    {
      Containerd__Services__Tasks__V1__DeleteProcessRequest del = CONTAINERD__SERVICES__TASKS__V1__DELETE_PROCESS_REQUEST__INIT;
      del.container_id = (char *) id;
      del.exec_id = exec_id;
      ProtobufCMessage *deleted = cli_unary (cli, TASKS "DeleteProcess", &del.base,
                                             &containerd__services__tasks__v1__delete_response__descriptor, NULL);
      if (deleted)
        protobuf_c_message_free_unpacked (deleted, NULL);
    }
out:
  cli_attach_clear (&attach);
  return result;
}
