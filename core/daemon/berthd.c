/* berthd — the berth daemon. */
#include "config.h"

#include <locale.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib-unix.h>

#include "services/containerd/berth-api.h"
#include "services/containerd/berth-api-ops.h"
#include "berth-daemon-private.h"
#include "berth-log.h"
#include "berth-sd.h"
#include "berth-modules.h"
#include "image/berth-http.h"

static char *opt_config;
static char *opt_root;
static char *opt_state;
static char *opt_address;
static char **opt_plugin_dirs;
static char *opt_libexec_dir;
static char *opt_log_level;
static gboolean opt_print_config;
static gboolean opt_list_plugins;
static gboolean opt_version;
static gboolean opt_rootless;

static const GOptionEntry entries[] = {
  { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config,
    "Config file (default " BERTH_SYSCONF_DIR "/berth/berthd.conf, rootless: ~/.config/berth/berthd.conf)", "FILE" },
  { "rootless", 0, 0, G_OPTION_ARG_NONE, &opt_rootless,
    "Run as an unprivileged user's daemon (inside berthd-rootless): per-user paths; implied when not root", NULL },
  { "root", 0, 0, G_OPTION_ARG_FILENAME, &opt_root, "Persistent data directory", "DIR" },
  { "state", 0, 0, G_OPTION_ARG_FILENAME, &opt_state, "Runtime state directory", "DIR" },
  { "address", 'a', 0, G_OPTION_ARG_FILENAME, &opt_address, "gRPC unix socket", "PATH" },
  { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_plugin_dirs, "Plugin directory (repeatable; replaces the configured list)", "DIR" },
  { "libexec-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_libexec_dir, "Where berth-shim and berth-plugin-scanner are", "DIR" },
  { "log-level", 'l', 0, G_OPTION_ARG_STRING, &opt_log_level, "error, warning, message, info or debug", "LEVEL" },
  { "print-config", 0, 0, G_OPTION_ARG_NONE, &opt_print_config, "Print the effective configuration and exit", NULL },
  { "list-plugins", 0, 0, G_OPTION_ARG_NONE, &opt_list_plugins, "Load the plugins, print their table and exit", NULL },
  { "version", 'v', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
  { NULL }
};

static void
override (char **field, char *value)
{
  if (value == NULL)
    return;
  g_free (*field);
  *field = g_strdup (value);
}

/* The config file with the command line's overrides: at startup and on SIGHUP. */
static BerthConfig *
load_config (GError **error)
{
  g_autoptr (BerthConfig) config = berth_config_load_full (opt_config, opt_rootless, error);
  if (config == NULL)
    return NULL;
  override (&config->root, opt_root);
  override (&config->state, opt_state);
  override (&config->address, opt_address);
  /* Rootless without XDG_RUNTIME_DIR: the socket goes with the state given instead. */
  if (config->address == NULL && config->state != NULL)
    config->address = g_build_filename (config->state, "berthd.sock", NULL);
  if (config->state == NULL)
    {
      berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                   "rootless: XDG_RUNTIME_DIR is not set; set it (e.g. to /run/user/%u) or give --state", getuid ());
      return NULL;
    }
  override (&config->libexec_dir, opt_libexec_dir);
  override (&config->log_level, opt_log_level);
  if (opt_plugin_dirs != NULL)
    {
      g_strfreev (config->plugin_dirs);
      config->plugin_dirs = g_strdupv (opt_plugin_dirs);
    }
  return g_steal_pointer (&config);
}

static void
print_plugins (BerthRegistry *registry)
{
  GPtrArray *plugins = berth_registry_get_plugins (registry);
  printf ("%-30s %-14s %-6s %s\n", "TYPE", "ID", "STATUS", "PATH / ERROR");
  for (guint i = 0; i < plugins->len; i++)
    {
      BerthPluginRecord *record = plugins->pdata[i];
      printf ("%-30s %-14s %-6s %s\n", record->type, record->name, berth_plugin_status_to_string (record->status),
              record->path);
      if (record->error != NULL)
        printf ("%-52s %s\n", "", record->error->message);
    }
}

static gboolean
on_watchdog (gpointer user_data)
{
  berth_sd_notify ("WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

/* STATUS= for `systemctl status`: what is loaded and what failed. */
static void
notify_status (BerthDaemon *daemon)
{
  GPtrArray *plugins = berth_registry_get_plugins (berth_daemon_get_registry (daemon));
  guint loaded = 0, failed = 0;
  for (guint i = 0; i < plugins->len; i++)
    {
      BerthPluginRecord *record = plugins->pdata[i];
      loaded += record->status == BERTH_PLUGIN_STATUS_LOADED;
      failed += record->status == BERTH_PLUGIN_STATUS_FAILED;
    }
  berth_sd_notifyf ("READY=1\nSTATUS=serving; %u plugins loaded, %u failed", loaded, failed);
}

/* ExecReload: systemd sees RELOADING=1 … READY=1 around it. A config that does not
 * load changes nothing. */
static gboolean
on_reload_signal (gpointer user_data)
{
  BerthDaemon *daemon = user_data;
  g_autoptr (GError) error = NULL;
  berth_sd_notifyf ("RELOADING=1\nMONOTONIC_USEC=%" G_GINT64_FORMAT, g_get_monotonic_time ());
  g_message ("reloading the configuration");
  BerthConfig *config = load_config (&error);
  if (config == NULL)
    g_warning ("reload: %s; keeping the running configuration", error->message);
  else
    berth_daemon_reload (daemon, config);
  notify_status (daemon);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_quit_signal (gpointer user_data)
{
  g_message ("shutting down");
  berth_sd_notify ("STOPPING=1");
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  /* Handlers run on up to 32 pool threads, and glibc gives each thread that allocates
   * an arena of its own that keeps what was freed in it. Under tests/stress.sh with 50
   * clients (2 cores) glibc's default of 16 arenas held 35-41 MB and kept growing;
   * one arena held 23-26 MB, flat. MALLOC_ARENA_MAX in the environment still wins. */
  if (g_getenv ("MALLOC_ARENA_MAX") == NULL)
    mallopt (M_ARENA_MAX, 1);
  setlocale (LC_ALL, "");
  g_autoptr (GError) error = NULL;
  /* The registry client's HTTP helper: berthd itself, run again (berth-http.h). */
  if (argc > 1 && g_str_equal (argv[1], "--http-request"))
    {
      __typeof__ (berth_http_fetch_main) *fetch_main = berth_module_symbol ("http-fetch", "berth_http_fetch_main", &error);
      if (fetch_main == NULL)
        {
          fprintf (stderr, "ERROR %s %d %s\n", g_quark_to_string (error->domain), error->code, error->message);
          return 1;
        }
      return fetch_main (argc, argv);
    }
  g_autoptr (GOptionContext) options = g_option_context_new ("- the berth container runtime daemon");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      fprintf (stderr, "berthd: %s (see berthd --help)\n", error->message);
      return 2;
    }
  if (opt_version)
    {
      printf ("berthd %s\n", PACKAGE_VERSION);
      return 0;
    }
  /* An unprivileged user's daemon is rootless whether or not it was asked: root's paths
   * are not its to write. So is one that rootlesskit started (berthd-rootless), whose
   * "root" is the user's uid mapped in a user namespace. */
  if (geteuid () != 0 || g_getenv ("ROOTLESSKIT_STATE_DIR") != NULL)
    opt_rootless = TRUE;

  g_autoptr (BerthConfig) config = load_config (&error);
  if (config == NULL)
    {
      fprintf (stderr, "berthd: %s\n", error->message);
      return 1;
    }
  if (!berth_log_setup (config->log_level))
    {
      fprintf (stderr, "berthd: --log-level %s: want error, warning, message, info or debug\n", config->log_level);
      return 2;
    }
  if (opt_print_config)
    {
      g_autofree char *text = berth_config_to_data (config);
      fputs (text, stdout);
      return 0;
    }

  g_autoptr (BerthDaemon) daemon = berth_daemon_new (g_steal_pointer (&config), &error);
  if (daemon == NULL)
    {
      fprintf (stderr, "berthd: %s\n", error->message);
      return 1;
    }
  if (opt_list_plugins)
    {
      print_plugins (berth_daemon_get_registry (daemon));
      return 0;
    }

  int listen_fd = -1;
  int n_fds = berth_sd_listen_fds ();
  if (n_fds > 1)
    g_warning ("socket activation passed %d sockets; serving on the first", n_fds);
  if (n_fds >= 1)
    listen_fd = BERTH_SD_LISTEN_FDS_START;

  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGTERM, on_quit_signal, loop);
  g_unix_signal_add (SIGINT, on_quit_signal, loop);
  g_unix_signal_add (SIGHUP, on_reload_signal, daemon);
  if (!berth_daemon_start (daemon, listen_fd, berth_api_register_all, berth_api_ops_task_exited, &error))
    {
      fprintf (stderr, "berthd: %s\n", error->message);
      return 1;
    }
  g_message ("berthd %s serving on %s", PACKAGE_VERSION,
             listen_fd >= 0 ? "an activated socket" : berth_daemon_get_config (daemon)->address);
  notify_status (daemon);
  guint64 watchdog_usec = berth_sd_watchdog_usec ();
  if (watchdog_usec > 0)
    g_timeout_add (MAX (watchdog_usec / 2000, 1), on_watchdog, NULL);
  g_main_loop_run (loop);
  berth_daemon_stop (daemon);
  return 0;
}
