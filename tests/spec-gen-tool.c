/* spec-gen-tool.c — prints the OCI runtime spec libberth-spec generates for the given
 * options, so shell tests can run it under real runc and crun:
 *
 *   spec-gen-tool [--image-config FILE] [--rootfs DIR] [OPTION…] [-- COMMAND ARG…]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <gio/gio.h>

#include "image/berth-spec.h"

int
main (int argc, char **argv)
{
  g_autofree char *image_config_path = NULL, *rootfs = NULL, *workdir = NULL, *user = NULL, *hostname = NULL;
  g_autofree char *seccomp = NULL, *cgroups_path = NULL, *namespace = NULL, *id = NULL, *image_name = NULL;
  g_auto (GStrv) env = NULL, mounts = NULL, cap_add = NULL, cap_drop = NULL, args = NULL;
  gint64 memory = 0, pids = 0;
  double cpus = 0;
  gboolean read_only = FALSE, privileged = FALSE, terminal = FALSE;
  const GOptionEntry entries[] = {
    { "image-config", 0, 0, G_OPTION_ARG_FILENAME, &image_config_path, "OCI image config JSON", "FILE" },
    { "rootfs", 0, 0, G_OPTION_ARG_FILENAME, &rootfs, "root filesystem for user lookups", "DIR" },
    { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &env, "set (K=V) or unset (K) a variable", "K=V" },
    { "mount", 'v', 0, G_OPTION_ARG_STRING_ARRAY, &mounts, "bind mount", "SRC:DST[:ro]" },
    { "cap-add", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cap_add, "add a capability", "CAP" },
    { "cap-drop", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cap_drop, "drop a capability", "CAP" },
    { "workdir", 'w', 0, G_OPTION_ARG_STRING, &workdir, "working directory", "DIR" },
    { "user", 'u', 0, G_OPTION_ARG_STRING, &user, "user", "USER[:GROUP]" },
    { "hostname", 0, 0, G_OPTION_ARG_STRING, &hostname, "hostname", "NAME" },
    { "memory", 0, 0, G_OPTION_ARG_INT64, &memory, "memory limit", "BYTES" },
    { "cpus", 0, 0, G_OPTION_ARG_DOUBLE, &cpus, "CPU limit", "N" },
    { "pids-limit", 0, 0, G_OPTION_ARG_INT64, &pids, "pids limit", "N" },
    { "read-only", 0, 0, G_OPTION_ARG_NONE, &read_only, "read-only root filesystem", NULL },
    { "privileged", 0, 0, G_OPTION_ARG_NONE, &privileged, "privileged container", NULL },
    { "tty", 't', 0, G_OPTION_ARG_NONE, &terminal, "terminal", NULL },
    { "seccomp-profile", 0, 0, G_OPTION_ARG_FILENAME, &seccomp, "profile path or \"unconfined\"", "FILE" },
    { "cgroups-path", 0, 0, G_OPTION_ARG_STRING, &cgroups_path, "cgroups path", "PATH" },
    { "namespace", 'n', 0, G_OPTION_ARG_STRING, &namespace, "containerd namespace", "NS" },
    { "id", 0, 0, G_OPTION_ARG_STRING, &id, "container id", "ID" },
    { "image-name", 0, 0, G_OPTION_ARG_STRING, &image_name, "image name for messages", "REF" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, "[COMMAND [ARG…]]" },
    { NULL },
  };
  /* stdout is the spec: debug messages go to stderr */
  g_log_writer_default_set_use_stderr (TRUE);
  g_autoptr (GOptionContext) context = g_option_context_new ("— print a generated OCI runtime spec");
  g_autoptr (GError) error = NULL;
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("spec-gen-tool: %s\n", error->message);
      return 2;
    }

  g_autoptr (JsonNode) image_config = NULL;
  if (image_config_path != NULL)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();
      if (!json_parser_load_from_file (parser, image_config_path, &error))
        {
          g_printerr ("spec-gen-tool: %s\n", error->message);
          return 1;
        }
      if (json_parser_get_root (parser) != NULL)
        image_config = json_node_ref (json_parser_get_root (parser));
    }

  BerthSpecOptions opts = {
    .args = args, .env = env, .mounts = mounts, .cap_add = cap_add, .cap_drop = cap_drop,
    .workdir = workdir, .user = user, .hostname = hostname,
    .memory_limit = memory, .cpus = cpus, .pids_limit = pids,
    .read_only = read_only, .privileged = privileged, .terminal = terminal,
    .seccomp_profile = seccomp, .cgroups_path = cgroups_path, .namespace = namespace, .id = id,
    .image_name = image_name,
  };
  g_autoptr (JsonNode) spec = berth_spec_generate (&opts, image_config, rootfs, &error);
  if (spec == NULL)
    {
      g_printerr ("spec-gen-tool: %s\n", error->message);
      return 1;
    }
  g_autofree char *text = json_to_string (spec, TRUE);
  printf ("%s\n", text);
  return 0;
}
