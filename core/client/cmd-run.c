/* cmd-run.c — berth run: resolves and unpacks the image, prepares the container's
 * snapshot, generates its OCI spec from the image and the flags, creates the container
 * and its task (attached to this terminal, or detached with its output to a log file),
 * starts it and, attached, waits for its exit status. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include <berth/berth-types.h>
#include "cli-container.h"
#include "wire/berth-grpc-wire.h"
#include "image/berth-spec.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb-c.h"

#define SPEC_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#define RUNC_OPTIONS_TYPE_URL "containerd.runc.v1.Options"
#define RUNTIME_NAME "io.containerd.runc.v2"
#define DEFAULT_LOG_DIR "/var/log/berth"

static gboolean
parse_size (const char *text, gint64 *bytes)
{
  char *end = NULL;
  double value = g_ascii_strtod (text, &end);
  if (end == text || value < 0)
    return FALSE;
  gint64 unit = 1;
  switch (g_ascii_tolower (*end))
    {
    case 0: break;
    case 'b': unit = 1; break;
    case 'k': unit = 1024; break;
    case 'm': unit = 1024 * 1024; break;
    case 'g': unit = 1024 * 1024 * 1024; break;
    default: return FALSE;
    }
  if (*end != 0 && end[1] != 0 && !(g_ascii_tolower (end[1]) == 'b' && end[2] == 0))
    return FALSE;
  *bytes = (gint64) (value * unit);
  return TRUE;
}

static char *
log_path_for (BerthCli *cli, const char *id, GError **error)
{
  const char *base = g_getenv ("BERTH_LOG_DIR");
  g_autofree char *dir = g_build_filename (base && *base ? base : DEFAULT_LOG_DIR, cli->ns, NULL);
  if (g_mkdir_with_parents (dir, 0750) < 0)
    {
      berth_throw_errno (error, "creating log directory %s (set BERTH_LOG_DIR to put logs elsewhere)", dir);
      return NULL;
    }
  g_autofree char *name = g_strdup_printf ("%s.log", id);
  return g_build_filename (dir, name, NULL);
}

/* The container's writable snapshot @key on @parent, in @snapshotter. */
static Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *
run_prepare_snapshot (BerthCli *cli, const char *snapshotter, const char *key, const char *parent, GError **error)
{
  Containerd__Services__Snapshots__V1__PrepareSnapshotRequest prepare = CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
  prepare.snapshotter = (char *) snapshotter;
  prepare.key = (char *) key;
  prepare.parent = (char *) parent;
  return cli_unary (cli, "/containerd.services.snapshots.v1.Snapshots/Prepare", &prepare.base,
                    &containerd__services__snapshots__v1__prepare_snapshot_response__descriptor, error);
}

/* The container record: @spec, the runc options naming @runtime (NULL: the daemon's),
 * its snapshot (named @id) and, when detached, @log_path as its log label. */
static gboolean
run_create_container (BerthCli *cli, const char *id, const char *image_name, JsonNode *spec, const char *runtime,
                      const char *snap, const char *log_path, GError **error)
{
  gsize spec_len = 0;
  g_autofree char *spec_text = cli_json_to_text (spec, &spec_len);
  Containerd__Runc__V1__Options runc = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  runc.binary_name = runtime ? (char *) runtime : (char *) "";
  gsize runc_len = protobuf_c_message_get_packed_size (&runc.base);
  g_autofree guint8 *runc_data = g_malloc (runc_len + 1);
  protobuf_c_message_pack (&runc.base, runc_data);
  g_autofree Google__Protobuf__Any *runc_any = cli_any_new (RUNC_OPTIONS_TYPE_URL, runc_data, runc_len);
  g_autofree Google__Protobuf__Any *spec_any = cli_any_new (SPEC_TYPE_URL, (guint8 *) spec_text, spec_len);
  Containerd__Services__Containers__V1__Container__Runtime rt = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__RUNTIME__INIT;
  rt.name = (char *) RUNTIME_NAME;
  rt.options = runc_any;
  Containerd__Services__Containers__V1__Container__LabelsEntry log_label = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__LABELS_ENTRY__INIT;
  Containerd__Services__Containers__V1__Container__LabelsEntry *labels[] = { &log_label };
  Containerd__Services__Containers__V1__Container container = CONTAINERD__SERVICES__CONTAINERS__V1__CONTAINER__INIT;
  container.id = (char *) id;
  container.image = (char *) image_name;
  container.runtime = &rt;
  container.spec = spec_any;
  container.snapshotter = (char *) snap;
  container.snapshot_key = (char *) id;
  if (log_path != NULL)
    {
      log_label.key = (char *) LOG_PATH_LABEL;
      log_label.value = (char *) log_path;
      container.labels = labels;
      container.n_labels = 1;
    }
  Containerd__Services__Containers__V1__CreateContainerRequest create = CONTAINERD__SERVICES__CONTAINERS__V1__CREATE_CONTAINER_REQUEST__INIT;
  create.container = &container;
  ProtobufCMessage *created = cli_unary (cli, CONTAINERS "Create", &create.base,
                                         &containerd__services__containers__v1__create_container_response__descriptor, error);
  if (created == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (created, NULL);
  return TRUE;
}

/* The task on the prepared rootfs, with @attach's FIFOs as its stdio, or (@attach NULL:
 * detached) its output to @log_uri. */
static gboolean
run_create_task (BerthCli *cli, const char *id, Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *prepared,
                 CliAttach *attach, const char *log_uri, gboolean tty, GError **error)
{
  Containerd__Services__Tasks__V1__CreateTaskRequest create = CONTAINERD__SERVICES__TASKS__V1__CREATE_TASK_REQUEST__INIT;
  create.container_id = (char *) id;
  create.rootfs = prepared->mounts;
  create.n_rootfs = prepared->n_mounts;
  create.stdin = attach && attach->stdin_path ? attach->stdin_path : (char *) "";
  create.stdout = attach ? attach->stdout_path : (char *) log_uri;
  create.stderr = attach ? (attach->stderr_path ? attach->stderr_path : (char *) "") : (char *) log_uri;
  create.terminal = tty;
  ProtobufCMessage *task = cli_unary (cli, TASKS "Create", &create.base,
                                      &containerd__services__tasks__v1__create_task_response__descriptor, error);
  if (task == NULL)
    return FALSE;
  protobuf_c_message_free_unpacked (task, NULL);
  return TRUE;
}

int
cli_cmd_run (BerthCli *cli, int argc, char **argv)
{
  gboolean detach = FALSE, tty = FALSE, interactive = FALSE, rm = FALSE, read_only = FALSE, privileged = FALSE;
  g_autofree char *name = NULL, *workdir = NULL, *user = NULL, *memory = NULL, *runtime = NULL, *snapshotter = NULL;
  g_autofree char *hostname = NULL;
  double cpus = 0;
  gint64 pids_limit = 0;
  g_auto (GStrv) env = NULL, volumes = NULL, security_opts = NULL, cap_add = NULL, cap_drop = NULL;
  GOptionEntry entries[] = {
    { "detach", 'd', 0, G_OPTION_ARG_NONE, &detach, "run in the background, print the id; output goes to `berth logs`", NULL },
    { "tty", 't', 0, G_OPTION_ARG_NONE, &tty, "give the container a terminal", NULL },
    { "interactive", 'i', 0, G_OPTION_ARG_NONE, &interactive, "keep stdin open", NULL },
    { "rm", 0, 0, G_OPTION_ARG_NONE, &rm, "remove the container when it exits", NULL },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "container id (default: random)", "ID" },
    { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &env, "set an environment variable", "K=V" },
    { "volume", 'v', 0, G_OPTION_ARG_STRING_ARRAY, &volumes, "bind-mount a host path", "SRC:DST[:ro]" },
    { "workdir", 'w', 0, G_OPTION_ARG_STRING, &workdir, "working directory inside the container", "DIR" },
    { "user", 'u', 0, G_OPTION_ARG_STRING, &user, "user (name or uid[:gid]) to run as", "USER" },
    { "hostname", 'h', 0, G_OPTION_ARG_STRING, &hostname, "container host name", "NAME" },
    { "memory", 'm', 0, G_OPTION_ARG_STRING, &memory, "memory limit (e.g. 32m, 1g)", "SIZE" },
    { "cpus", 0, 0, G_OPTION_ARG_DOUBLE, &cpus, "CPU limit, in CPUs", "N" },
    { "pids-limit", 0, 0, G_OPTION_ARG_INT64, &pids_limit, "maximum number of processes", "N" },
    { "runtime", 0, 0, G_OPTION_ARG_STRING, &runtime, "OCI runtime binary: runc or crun (default: the daemon's)", "NAME" },
    { "snapshotter", 0, 0, G_OPTION_ARG_STRING, &snapshotter, "snapshotter (default: the daemon's)", "NAME" },
    { "read-only", 0, 0, G_OPTION_ARG_NONE, &read_only, "read-only root filesystem", NULL },
    { "privileged", 0, 0, G_OPTION_ARG_NONE, &privileged, "all capabilities and devices, no seccomp", NULL },
    { "security-opt", 0, 0, G_OPTION_ARG_STRING_ARRAY, &security_opts, "seccomp=unconfined or seccomp=PROFILE.json", "OPT" },
    { "cap-add", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cap_add, "add a capability", "CAP" },
    { "cap-drop", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cap_drop, "drop a capability", "CAP" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE [COMMAND [ARG…]] — run a command in a new container");
  g_option_context_set_help_enabled (context, FALSE); /* -h is --hostname, as in docker */
  g_option_context_set_strict_posix (context, TRUE);
  g_option_context_add_main_entries (context, entries, NULL);
  for (int i = 1; i < argc && argv[i][0] == '-'; i++)
    if (strcmp (argv[i], "--help") == 0)
      {
        g_autofree char *text = g_option_context_get_help (context, TRUE, NULL);
        g_print ("%s", text);
        return 0;
      }
  int rc;
  if (!cli_parse (context, &argc, &argv, &rc))
    return rc;
  if (argc < 2)
    return cli_usage (context, "run needs an IMAGE");
  const char *image_name = argv[1];
  BerthSpecOptions opts = { 0 };
  if (memory != NULL && !parse_size (memory, &opts.memory_limit))
    return cli_fail (NULL, "run: --memory %s is not a size like 32m or 1g", memory);
  if (runtime != NULL && strcmp (runtime, "runc") != 0 && strcmp (runtime, "crun") != 0 && !g_path_is_absolute (runtime))
    return cli_fail (NULL, "run: --runtime %s: use runc, crun or an absolute path to an OCI runtime", runtime);
  const char *seccomp = NULL;
  for (guint i = 0; security_opts && security_opts[i]; i++)
    {
      if (g_str_has_prefix (security_opts[i], "seccomp="))
        seccomp = security_opts[i] + 8;
      else
        return cli_fail (NULL, "run: unknown --security-opt %s (supported: seccomp=unconfined, seccomp=PROFILE)", security_opts[i]);
    }
  if (detach && rm)
    return cli_fail (NULL, "run: --rm and -d together are not supported; remove the container with `berth rm`");
  g_autofree char *id = name ? g_strdup (name) : cli_random_id ();
  const char *snap = snapshotter ? snapshotter : cli_default_snapshotter (cli);

  g_autoptr (GError) error = NULL;
  g_autoptr (CliImage) image = cli_image_resolve (cli, image_name, &error);
  if (image == NULL || !cli_image_unpack (cli, image, snap, &error))
    return cli_fail (error, "run");
  const char *top = image->chain_ids->len ? image->chain_ids->pdata[image->chain_ids->len - 1] : "";

  /* The container's writable snapshot first: a name clash shows up before anything else exists. */
  Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *prepared = run_prepare_snapshot (cli, snap, id, top, &error);
  if (prepared == NULL)
    {
      if (g_error_matches (error, BERTH_ERROR, BERTH_ERROR_ALREADY_EXISTS))
        return cli_fail (NULL, "run: a container or snapshot named %s already exists (remove it with `berth rm %s`)", id, id);
      return cli_fail (error, "run");
    }
  g_autoptr (GPtrArray) mounts = berth_proto_mounts_to_list (prepared->mounts, prepared->n_mounts);

  /* ------- spec ------- */
  opts.args = argc > 2 ? argv + 2 : NULL;
  opts.env = env;
  opts.mounts = volumes;
  opts.cap_add = cap_add;
  opts.cap_drop = cap_drop;
  opts.workdir = workdir;
  opts.user = user;
  opts.hostname = hostname;
  opts.cpus = cpus;
  opts.pids_limit = pids_limit;
  opts.read_only = read_only;
  opts.privileged = privileged;
  opts.terminal = tty;
  opts.seccomp_profile = seccomp;
  opts.namespace = cli->ns;
  opts.id = id;
  opts.image_name = image->name;
  g_autoptr (JsonNode) image_config = json_node_init_object (json_node_alloc (), image->config);
  g_autoptr (JsonNode) spec = berth_spec_generate_on_mounts (&opts, image_config, mounts, &error);
  gboolean created_container = FALSE;
  int result = CLI_EXIT_ERROR;
  CliAttach attach = { .cli = cli, .id = id, .tty = tty, .interactive = interactive, .out_fd = -1, .err_fd = -1 };
  g_autofree char *log_path = NULL;
  g_autofree char *log_uri = NULL;
  if (spec == NULL)
    {
      result = cli_fail (error, "run %s", image_name);
      goto cleanup;
    }

  /* ------- container ------- */
  if (detach && (log_path = log_path_for (cli, id, &error)) == NULL)
    {
      result = cli_fail (error, "run");
      goto cleanup;
    }
  if (!run_create_container (cli, id, image->name, spec, runtime, snap, log_path, &error))
    {
      result = cli_fail (error, "run: creating container %s", id);
      goto cleanup;
    }
  created_container = TRUE;

  /* ------- task ------- */
  log_uri = log_path ? g_strdup_printf ("file://%s", log_path) : NULL;
  if (!detach && !cli_attach_prepare (&attach, &error))
    {
      result = cli_fail (error, "run: setting up stdio");
      goto cleanup;
    }
  if (!detach)
    cli_attach_block_signals (&attach);
  if (!run_create_task (cli, id, prepared, detach ? NULL : &attach, log_uri, tty, &error))
    {
      result = cli_fail (error, "run: starting container %s", id);
      goto cleanup;
    }
  if (!detach)
    cli_attach_start (&attach);
  Containerd__Services__Tasks__V1__StartRequest start = CONTAINERD__SERVICES__TASKS__V1__START_REQUEST__INIT;
  start.container_id = id;
  ProtobufCMessage *started = cli_unary (cli, TASKS "Start", &start.base, &containerd__services__tasks__v1__start_response__descriptor, &error);
  if (started == NULL)
    {
      if (!detach)
        cli_attach_finish (&attach);
      result = cli_fail (error, "run: starting container %s", id);
      cli_task_delete (cli, id, NULL, NULL);
      goto cleanup;
    }
  protobuf_c_message_free_unpacked (started, NULL);
  /* The terminal exists once the process has started (an exec's only then). */
  if (tty && !detach && cli_client (cli, NULL) != NULL)
    cli_attach_resize (&attach, cli->client);
  if (detach)
    {
      g_print ("%s\n", id);
      protobuf_c_message_free_unpacked (&prepared->base, NULL);
      return 0;
    }

  guint32 status = 0;
  gboolean waited = cli_task_wait (cli, id, NULL, &status, &error);
  cli_attach_finish (&attach);
  if (!waited)
    {
      result = cli_fail (error, "run: waiting for %s", id);
      goto cleanup;
    }
  cli_task_delete (cli, id, NULL, NULL);
  result = status > 255 ? 255 : (int) status;
  if (!rm)
    {
      cli_attach_clear (&attach);
      protobuf_c_message_free_unpacked (&prepared->base, NULL);
      return result;
    }

cleanup:
  cli_attach_clear (&attach);
  {
    g_autoptr (GError) cleanup_error = NULL;
    if (!cli_container_remove (cli, created_container ? id : NULL, snap, id, &cleanup_error))
      g_printerr ("berth: run: cleaning up %s: %s\n", id, cleanup_error->message);
  }
  protobuf_c_message_free_unpacked (&prepared->base, NULL);
  return result;
}
