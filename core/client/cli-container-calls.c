/* cli-container-calls.c — the Containers, Tasks and Snapshots calls the container
 * commands (run, exec, ps, logs, stop, kill, rm) share: a container or task looked up,
 * a task signalled, waited for or deleted, a container removed with its snapshot, and
 * the small pieces a request is built from (random ids, Any values, JSON text). */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include "cli-container.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"

Containerd__Services__Containers__V1__Container *
cli_container_get (BerthCli *cli, const char *id, GError **error)
{
  Containerd__Services__Containers__V1__GetContainerRequest request = CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
  request.id = (char *) id;
  GError *local = NULL;
  Containerd__Services__Containers__V1__GetContainerResponse *response = cli_unary (
    cli, CONTAINERS "Get", &request.base, &containerd__services__containers__v1__get_container_response__descriptor, &local);
  if (response == NULL)
    {
      if (g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        {
          berth_throw (error, BERTH_ERROR_NOT_FOUND, "no container %s in namespace %s (see `berth ps -a`)", id, cli->ns);
          g_error_free (local);
        }
      else
        g_propagate_error (error, local);
      return NULL;
    }
  Containerd__Services__Containers__V1__Container *container = response->container;
  response->container = NULL;
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return container;
}

/* The task's process, NULL with no error when the container has no task. */
Containerd__V1__Types__Process *
cli_task_get (BerthCli *cli, BerthGrpcClient *client, const char *id, const char *exec_id, GError **error)
{
  Containerd__Services__Tasks__V1__GetRequest request = CONTAINERD__SERVICES__TASKS__V1__GET_REQUEST__INIT;
  request.container_id = (char *) id;
  request.exec_id = (char *) (exec_id ? exec_id : "");
  GError *local = NULL;
  Containerd__Services__Tasks__V1__GetResponse *response =
    client ? berth_grpc_client_unary (client, TASKS "Get", &request.base, &containerd__services__tasks__v1__get_response__descriptor, &local)
           : cli_unary (cli, TASKS "Get", &request.base, &containerd__services__tasks__v1__get_response__descriptor, &local);
  if (response == NULL)
    {
      if (!g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        g_propagate_error (error, local);
      else
        g_error_free (local);
      return NULL;
    }
  Containerd__V1__Types__Process *process = response->process;
  response->process = NULL;
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return process;
}

gboolean
cli_task_kill (BerthGrpcClient *client, const char *id, const char *exec_id, int signo, gboolean all, GError **error)
{
  Containerd__Services__Tasks__V1__KillRequest request = CONTAINERD__SERVICES__TASKS__V1__KILL_REQUEST__INIT;
  request.container_id = (char *) id;
  request.exec_id = (char *) (exec_id ? exec_id : "");
  request.signal = signo;
  request.all = all;
  ProtobufCMessage *response = berth_grpc_client_unary (client, TASKS "Kill", &request.base, &google__protobuf__empty__descriptor, error);
  if (response == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (response, NULL);
  return TRUE;
}

gboolean
cli_task_delete (BerthCli *cli, const char *id, guint32 *exit_status, GError **error)
{
  Containerd__Services__Tasks__V1__DeleteTaskRequest request = CONTAINERD__SERVICES__TASKS__V1__DELETE_TASK_REQUEST__INIT;
  request.container_id = (char *) id;
  Containerd__Services__Tasks__V1__DeleteResponse *response =
    cli_unary (cli, TASKS "Delete", &request.base, &containerd__services__tasks__v1__delete_response__descriptor, error);
  if (response == NULL)
    return FALSE;
  if (exit_status)
    *exit_status = response->exit_status;
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return TRUE;
}

gboolean
cli_unary_empty (BerthCli *cli, const char *path, const ProtobufCMessage *request, GError **error)
{
  ProtobufCMessage *response = cli_unary (cli, path, request, &google__protobuf__empty__descriptor, error);
  if (response == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (response, NULL);
  return TRUE;
}

/* Removes the container record (@id NULL: there is none) and its snapshot; what is
 * already gone is fine. */
gboolean
cli_container_remove (BerthCli *cli, const char *id, const char *snapshotter, const char *snapshot_key, GError **error)
{
  GError *local = NULL;
  Containerd__Services__Containers__V1__DeleteContainerRequest request = CONTAINERD__SERVICES__CONTAINERS__V1__DELETE_CONTAINER_REQUEST__INIT;
  request.id = (char *) id;
  if (id != NULL && !cli_unary_empty (cli, CONTAINERS "Delete", &request.base, &local)
      && !g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  g_clear_error (&local);
  if (snapshot_key != NULL && *snapshot_key)
    {
      Containerd__Services__Snapshots__V1__RemoveSnapshotRequest remove = CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
      remove.snapshotter = (char *) snapshotter;
      remove.key = (char *) snapshot_key;
      if (!cli_unary_empty (cli, "/containerd.services.snapshots.v1.Snapshots/Remove", &remove.base, &local)
          && !g_error_matches (local, BERTH_ERROR, BERTH_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, local);
          return FALSE;
        }
      g_clear_error (&local);
    }
  return TRUE;
}

const char *
cli_container_label (Containerd__Services__Containers__V1__Container *container, const char *key)
{
  for (size_t i = 0; i < container->n_labels; i++)
    if (strcmp (container->labels[i]->key, key) == 0)
      return container->labels[i]->value;
  return NULL;
}

/* Blocks until the process exits; its status. */
gboolean
cli_task_wait (BerthCli *cli, const char *id, const char *exec_id, guint32 *status, GError **error)
{
  Containerd__Services__Tasks__V1__WaitRequest request = CONTAINERD__SERVICES__TASKS__V1__WAIT_REQUEST__INIT;
  request.container_id = (char *) id;
  request.exec_id = (char *) (exec_id ? exec_id : "");
  Containerd__Services__Tasks__V1__WaitResponse *response =
    cli_unary (cli, TASKS "Wait", &request.base, &containerd__services__tasks__v1__wait_response__descriptor, error);
  if (response == NULL)
    return FALSE;
  *status = response->exit_status;
  protobuf_c_message_free_unpacked (&response->base, NULL);
  return TRUE;
}

char *
cli_random_id (void)
{
  return g_strdup_printf ("%08x%08x", g_random_int (), g_random_int ());
}

Google__Protobuf__Any *
cli_any_new (const char *type_url, guint8 *data, gsize len)
{
  Google__Protobuf__Any *any = g_new0 (Google__Protobuf__Any, 1);
  google__protobuf__any__init (any);
  any->type_url = (char *) type_url;
  any->value.data = data;
  any->value.len = len;
  return any;
}

char *
cli_json_to_text (JsonNode *node, gsize *len)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_root (generator, node);
  return json_generator_to_data (generator, len);
}
