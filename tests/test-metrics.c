/* test-metrics.c — the exposition page against a daemon core (no runtime, so no
 * containers): escaping of label values, histogram buckets, gRPC codes, GC counters,
 * the [metrics] address, and promtool's verdict on a page with awkward labels. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include "daemon/berth-config.h"
#include "daemon/berth-metrics.h"
#include "test-daemon-util.h"

static gboolean
has_line (const char *page, const char *line)
{
  g_autofree char *needle = g_strconcat ("\n", line, "\n", NULL);
  return strstr (page, needle) != NULL;
}

#define assert_line(page, line)                                                \
  G_STMT_START                                                                 \
  {                                                                            \
    if (!has_line ((page), (line)))                                            \
      g_error ("no line «%s» in the page:\n%s", (line), (page));               \
  }                                                                            \
  G_STMT_END

static void
test_page (void)
{
  g_autofree char *tmp = NULL;
  BerthDaemon *daemon = test_daemon_new (&tmp);

  /* Method paths come from clients only for known methods, but the format must hold
   * for any text. */
  const char *odd = "/odd.Service/\"quoted\" back\\slash\nnewline";
  berth_metrics_observe_grpc (odd, 0, 1000);      /* 1 ms */
  berth_metrics_observe_grpc (odd, 0, 7000);      /* 7 ms */
  berth_metrics_observe_grpc (odd, 5, 20000000);  /* 20 s, NotFound */
  berth_metrics_observe_grpc (NULL, 12, 10);      /* no such method */
  berth_metrics_observe_grpc ("/x.Y/Z", 99, 5000); /* a code past the table; exactly a bound */
  BerthGcStats gc = { .leases_expired = 1, .blobs_removed = 3 };
  berth_metrics_observe_gc (2500, &gc);
  berth_metrics_observe_gc (1, &gc);

  g_autofree char *page = berth_metrics_render (daemon, NULL);
  berth_daemon_free (daemon);
  test_remove_tree (tmp);
  g_test_message ("%s", page);
  g_assert_true (g_str_has_prefix (page, "# HELP berth_build_info "));
  assert_line (page, "berth_build_info{version=\"" PACKAGE_VERSION "\"} 1");

#define ODD "/odd.Service/\\\"quoted\\\" back\\\\slash\\nnewline"
  assert_line (page, "berth_grpc_requests_total{method=\"" ODD "\",code=\"OK\"} 2");
  assert_line (page, "berth_grpc_requests_total{method=\"" ODD "\",code=\"NotFound\"} 1");
  assert_line (page, "berth_grpc_requests_total{method=\"unknown\",code=\"Unimplemented\"} 1");
  assert_line (page, "berth_grpc_requests_total{method=\"/x.Y/Z\",code=\"Unknown\"} 1");
  assert_line (page, "# TYPE berth_grpc_request_duration_seconds histogram");
  assert_line (page, "berth_grpc_request_duration_seconds_bucket{method=\"" ODD "\",le=\"0.005\"} 1");
  assert_line (page, "berth_grpc_request_duration_seconds_bucket{method=\"" ODD "\",le=\"0.01\"} 2");
  assert_line (page, "berth_grpc_request_duration_seconds_bucket{method=\"" ODD "\",le=\"10\"} 2");
  assert_line (page, "berth_grpc_request_duration_seconds_bucket{method=\"" ODD "\",le=\"+Inf\"} 3");
  assert_line (page, "berth_grpc_request_duration_seconds_sum{method=\"" ODD "\"} 20.008000");
  assert_line (page, "berth_grpc_request_duration_seconds_count{method=\"" ODD "\"} 3");
  assert_line (page, "berth_grpc_request_duration_seconds_bucket{method=\"/x.Y/Z\",le=\"0.005\"} 1");

  assert_line (page, "berth_gc_runs_total 2");
  assert_line (page, "berth_gc_duration_seconds_bucket{le=\"0.005\"} 2");
  assert_line (page, "berth_gc_duration_seconds_sum 0.002501");
  assert_line (page, "berth_gc_removed_total{kind=\"lease\"} 2");
  assert_line (page, "berth_gc_removed_total{kind=\"blob\"} 6");
  assert_line (page, "berth_gc_removed_total{kind=\"snapshot\"} 0");

  assert_line (page, "berth_plugin_status{type=\"io.containerd.snapshotter.v1\",id=\"native\",status=\"ok\"} 1");
  assert_line (page, "berth_plugin_status{type=\"io.containerd.snapshotter.v1\",id=\"native\",status=\"error\"} 0");
  assert_line (page, "berth_content_blobs 0");
  assert_line (page, "berth_snapshots{snapshotter=\"native\"} 0");
  assert_line (page, "# TYPE berth_container_memory_usage_bytes gauge");
  g_assert_null (strstr (page, "\nberth_container_memory_usage_bytes{"));

  /* promtool parses what it gets the way Prometheus does. */
  g_autofree char *promtool = g_find_program_in_path ("promtool");
  if (promtool == NULL)
    {
      g_test_message ("promtool not installed; tests/metrics.sh insists on it");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) check = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                                      | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                                                    &error, promtool, "check", "metrics", NULL);
  g_assert_no_error (error);
  g_autofree char *verdict = NULL;
  g_subprocess_communicate_utf8 (check, page, NULL, &verdict, NULL, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (check))
    g_error ("promtool check metrics: %s", verdict);
}

static void
test_address (void)
{
  static const char *const good[] = { "127.0.0.1:1338", "0.0.0.0:80", "[::1]:9100", NULL };
  static const char *const bad[] = { "nonsense", "127.0.0.1", "localhost:1338", "1.2.3.4:0", "1.2.3.4:70000",
                                     ":1338", "", NULL };
  for (guint i = 0; good[i] != NULL; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocketAddress) address = NULL;
      g_assert_true (berth_metrics_parse_address (good[i], &address, &error));
      g_assert_no_error (error);
      g_assert_true (G_IS_INET_SOCKET_ADDRESS (address));
    }
  for (guint i = 0; bad[i] != NULL; i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_false (berth_metrics_parse_address (bad[i], NULL, &error));
      g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
    }
}

static BerthConfig *
load_text (const char *tmp, const char *text, GError **error)
{
  g_autofree char *path = g_build_filename (tmp, "berthd.conf", NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return berth_config_load (path, error);
}

static void
test_config (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("berth-metrics-XXXXXX", &error);
  g_assert_no_error (error);

  g_autoptr (BerthConfig) off = berth_config_new_default ();
  g_assert_null (off->metrics_address);
  g_autoptr (BerthConfig) empty = load_text (tmp, "[metrics]\naddress=\n", &error);
  g_assert_no_error (error);
  g_assert_null (empty->metrics_address);
  g_autoptr (BerthConfig) on = load_text (tmp, "[berthd]\ngc-interval=0\n[metrics]\naddress = 127.0.0.1:1338\n", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (on->metrics_address, ==, "127.0.0.1:1338");
  g_autofree char *printed = berth_config_to_data (on);
  g_assert_nonnull (strstr (printed, "[metrics]\n# IP:PORT"));
  g_assert_nonnull (strstr (printed, "address=127.0.0.1:1338\n"));

  g_autoptr (BerthConfig) bad = load_text (tmp, "[berthd]\n\n[metrics]\naddress=nonsense\n", &error);
  g_assert_null (bad);
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "berthd.conf:4: [metrics] address = \"nonsense\": want an IP address"));
  g_clear_error (&error);
  g_autoptr (BerthConfig) unknown = load_text (tmp, "[metrics]\nport=1\n", &error);
  g_assert_null (unknown);
  g_assert_nonnull (strstr (error->message, "berthd.conf:2: unknown key \"port\" in [metrics]"));
  g_clear_error (&error);

  /* What a reload compares. */
  g_autoptr (BerthConfig) p1 = load_text (tmp, "[plugin.snapshotter.native]\nx=1\n", &error);
  g_autoptr (BerthConfig) p2 = load_text (tmp, "[plugin.snapshotter.native]\n# a comment\nx = 1\n", &error);
  g_autoptr (BerthConfig) p3 = load_text (tmp, "[plugin.snapshotter.native]\nx=2\n", &error);
  g_assert_no_error (error);
  g_assert_false (berth_config_plugin_groups_differ (p1, p2, NULL));
  g_autofree char *group = NULL;
  g_assert_true (berth_config_plugin_groups_differ (p1, p3, &group));
  g_assert_cmpstr (group, ==, "plugin.snapshotter.native");
  g_assert_true (berth_config_plugin_groups_differ (p1, off, NULL));
  test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics/page", test_page);
  g_test_add_func ("/metrics/address", test_address);
  g_test_add_func ("/metrics/config", test_config);
  return g_test_run ();
}
