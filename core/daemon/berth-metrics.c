/* berth-metrics.c — recorded counters, the exposition page and its HTTP server. What
 * is exposed is listed in berth-metrics.h. */
#include "config.h"

#include <string.h>


#include <berth/berth.h>
#include "berth-cgroup.h"
#include "berth-daemon.h"
#include "berth-metrics.h"
#include "berth-modules.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* The HTTP listener shares berthd's fd table with the API: a client (any local user,
 * for a loopback address) may hold only so many connections, and idle ones go. */
#define MAX_CONNECTIONS 32
#define IDLE_TIMEOUT_SECONDS 30
#define SWEEP_SECONDS 5

/* ---------------- recording ---------------- */

static const char *const code_names[] = {
  "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
  "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
  "Internal", "Unavailable", "DataLoss", "Unauthenticated",
};
#define N_CODES G_N_ELEMENTS (code_names)
#define CODE_UNKNOWN 2

/* Prometheus's default buckets. Bounds in µs and their labels as text, so that neither
 * observing nor printing needs floating point (or the locale's decimal separator). */
static const gint64 bucket_bounds_usec[] = { 5000, 10000, 25000, 50000, 100000, 250000,
                                             500000, 1000000, 2500000, 5000000, 10000000 };
static const char *const bucket_labels[] = { "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                             "0.5", "1", "2.5", "5", "10" };
#define N_BUCKETS G_N_ELEMENTS (bucket_bounds_usec)
G_STATIC_ASSERT (G_N_ELEMENTS (bucket_labels) == N_BUCKETS);

typedef struct {
  guint64 buckets[N_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf's own */
  guint64 count;
  guint64 sum_usec;
} Histogram;

typedef struct {
  guint64 codes[N_CODES];
  Histogram duration;
} GrpcMethodStats;

static const char *const gc_kinds[] = { "lease", "content_record", "blob", "snapshot", "ingest" };
#define N_GC_KINDS G_N_ELEMENTS (gc_kinds)

typedef struct {
  guint64 runs;
  Histogram duration;
  guint64 removed[N_GC_KINDS];
} GcRecord;

/* Process-wide rather than per daemon: the hooks sit in code that has no daemon at hand
 * (the gRPC server's call bookkeeping), and a process runs one daemon. */
static GMutex record_lock;
static GHashTable *grpc_methods; /* method path → GrpcMethodStats */
static GcRecord gc_record;

static void
histogram_observe (Histogram *h, gint64 usec)
{
  guint i = 0;
  usec = MAX (usec, 0);
  while (i < N_BUCKETS && usec > bucket_bounds_usec[i])
    i++;
  h->buckets[i]++;
  h->count++;
  h->sum_usec += usec;
}

void
berth_metrics_observe_grpc (const char *method, guint code, gint64 duration_usec)
{
  if (method == NULL)
    method = "unknown";
  if (code >= N_CODES)
    code = CODE_UNKNOWN;
  g_mutex_lock (&record_lock);
  if (grpc_methods == NULL)
    grpc_methods = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  GrpcMethodStats *stats = g_hash_table_lookup (grpc_methods, method);
  if (stats == NULL)
    {
      stats = g_new0 (GrpcMethodStats, 1);
      g_hash_table_insert (grpc_methods, g_strdup (method), stats);
    }
  stats->codes[code]++;
  histogram_observe (&stats->duration, duration_usec);
  g_mutex_unlock (&record_lock);
}

void
berth_metrics_observe_gc (gint64 duration_usec, const BerthGcStats *stats)
{
  const guint removed[N_GC_KINDS] = { stats->leases_expired, stats->content_records_removed, stats->blobs_removed,
                                      stats->snapshots_removed, stats->ingests_removed };
  g_mutex_lock (&record_lock);
  gc_record.runs++;
  histogram_observe (&gc_record.duration, duration_usec);
  for (guint i = 0; i < N_GC_KINDS; i++)
    gc_record.removed[i] += removed[i];
  g_mutex_unlock (&record_lock);
}

/* ---------------- the exposition format ---------------- */

/* Label values escape \, " and newline; HELP text escapes \ and newline. */
static void
append_escaped (GString *out, const char *text, gboolean label_value)
{
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '\\')
        g_string_append (out, "\\\\");
      else if (*p == '\n')
        g_string_append (out, "\\n");
      else if (*p == '"' && label_value)
        g_string_append (out, "\\\"");
      else
        g_string_append_c (out, *p);
    }
}

static void
family (GString *out, const char *name, const char *type, const char *help)
{
  g_string_append_printf (out, "# HELP %s ", name);
  append_escaped (out, help, FALSE);
  g_string_append_printf (out, "\n# TYPE %s %s\n", name, type);
}

/* @labels: name, value, name, value, …, NULL (or NULL for none). */
static void
sample (GString *out, const char *name, const char *const *labels, const char *value)
{
  g_string_append (out, name);
  if (labels != NULL && labels[0] != NULL)
    {
      g_string_append_c (out, '{');
      for (guint i = 0; labels[i] != NULL; i += 2)
        {
          g_string_append_printf (out, "%s%s=\"", i > 0 ? "," : "", labels[i]);
          append_escaped (out, labels[i + 1], TRUE);
          g_string_append_c (out, '"');
        }
      g_string_append_c (out, '}');
    }
  g_string_append_printf (out, " %s\n", value);
}

static void
sample_u64 (GString *out, const char *name, const char *const *labels, guint64 value)
{
  char text[24];
  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, value);
  sample (out, name, labels, text);
}

/* @value / @scale seconds printed exactly, e.g. (1500, 1000000) → "0.001500". */
static void
sample_seconds (GString *out, const char *name, const char *const *labels, guint64 value, guint64 scale)
{
  char text[48];
  int digits = scale == G_USEC_PER_SEC ? 6 : 9;
  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT ".%0*" G_GUINT64_FORMAT, value / scale, digits, value % scale);
  sample (out, name, labels, text);
}

#define MAX_LABELS 8

static void
histogram_samples (GString *out, const char *name, const char *const *labels, const Histogram *h)
{
  const char *with_le[2 * MAX_LABELS + 3] = { NULL };
  guint n = 0;
  while (labels != NULL && labels[n] != NULL && n < 2 * MAX_LABELS)
    {
      with_le[n] = labels[n];
      n++;
    }
  g_autofree char *bucket = g_strconcat (name, "_bucket", NULL);
  g_autofree char *sum = g_strconcat (name, "_sum", NULL);
  g_autofree char *count = g_strconcat (name, "_count", NULL);
  guint64 cumulative = 0;
  with_le[n] = "le";
  for (guint i = 0; i <= N_BUCKETS; i++)
    {
      cumulative += h->buckets[i];
      with_le[n + 1] = i < N_BUCKETS ? bucket_labels[i] : "+Inf";
      sample_u64 (out, bucket, with_le, cumulative);
    }
  sample_seconds (out, sum, labels, h->sum_usec, G_USEC_PER_SEC);
  sample_u64 (out, count, labels, h->count);
}

/* ---------------- the page ---------------- */

typedef struct {
  char *method;
  GrpcMethodStats stats;
} GrpcSnapshot;

static gint
compare_grpc (gconstpointer a, gconstpointer b)
{
  return strcmp (((const GrpcSnapshot *) a)->method, ((const GrpcSnapshot *) b)->method);
}

static void
grpc_snapshot_clear (gpointer data)
{
  g_free (((GrpcSnapshot *) data)->method);
}

static void
render_grpc (GString *out)
{
  g_autoptr (GArray) methods = g_array_new (FALSE, TRUE, sizeof (GrpcSnapshot));
  g_array_set_clear_func (methods, grpc_snapshot_clear);
  /* Copied out so the lock is held for a memcpy per method, not for the formatting. */
  g_mutex_lock (&record_lock);
  if (grpc_methods != NULL)
    {
      GHashTableIter iter;
      gpointer key, value;
      g_hash_table_iter_init (&iter, grpc_methods);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          GrpcSnapshot snap = { g_strdup (key), *(GrpcMethodStats *) value };
          g_array_append_val (methods, snap);
        }
    }
  g_mutex_unlock (&record_lock);
  g_array_sort (methods, compare_grpc);

  family (out, "berth_grpc_requests_total", "counter", "gRPC calls finished, by method and status code.");
  for (guint i = 0; i < methods->len; i++)
    {
      const GrpcSnapshot *snap = &g_array_index (methods, GrpcSnapshot, i);
      for (guint code = 0; code < N_CODES; code++)
        if (snap->stats.codes[code] > 0)
          sample_u64 (out, "berth_grpc_requests_total",
                      (const char *[]) { "method", snap->method, "code", code_names[code], NULL },
                      snap->stats.codes[code]);
    }
  family (out, "berth_grpc_request_duration_seconds", "histogram",
          "Time from a call's request headers to its status, by method.");
  for (guint i = 0; i < methods->len; i++)
    {
      const GrpcSnapshot *snap = &g_array_index (methods, GrpcSnapshot, i);
      histogram_samples (out, "berth_grpc_request_duration_seconds", (const char *[]) { "method", snap->method, NULL },
                         &snap->stats.duration);
    }
}

static void
render_gc (GString *out)
{
  g_mutex_lock (&record_lock);
  GcRecord gc = gc_record;
  g_mutex_unlock (&record_lock);
  family (out, "berth_gc_runs_total", "counter", "Garbage collections run, scheduled or asked for.");
  sample_u64 (out, "berth_gc_runs_total", NULL, gc.runs);
  family (out, "berth_gc_duration_seconds", "histogram", "Time each garbage collection took.");
  histogram_samples (out, "berth_gc_duration_seconds", NULL, &gc.duration);
  family (out, "berth_gc_removed_total", "counter",
          "What garbage collection removed: expired leases, content records, blobs, snapshots, stale ingests.");
  for (guint i = 0; i < N_GC_KINDS; i++)
    sample_u64 (out, "berth_gc_removed_total", (const char *[]) { "kind", gc_kinds[i], NULL }, gc.removed[i]);
}

static void
render_plugins (GString *out, BerthDaemon *daemon)
{
  static const BerthPluginStatus statuses[] = { BERTH_PLUGIN_STATUS_LOADED, BERTH_PLUGIN_STATUS_SKIPPED,
                                                BERTH_PLUGIN_STATUS_FAILED };
  /* The records do not change once the registry has loaded. */
  GPtrArray *plugins = berth_registry_get_plugins (berth_daemon_get_registry (daemon));
  family (out, "berth_plugin_status", "gauge",
          "Plugins by load status (ok, skip, error): 1 for the status a plugin has, 0 for the others.");
  for (guint i = 0; i < plugins->len; i++)
    {
      const BerthPluginRecord *record = plugins->pdata[i];
      for (guint s = 0; s < G_N_ELEMENTS (statuses); s++)
        sample_u64 (out, "berth_plugin_status",
                    (const char *[]) { "type", record->type, "id", record->name, "status",
                                       berth_plugin_status_to_string (statuses[s]), NULL },
                    record->status == statuses[s]);
    }
}

typedef struct {
  guint64 blobs;
  guint64 bytes;
} ContentTotals;

static gboolean
count_blob (const BerthContentInfo *info, gpointer user_data)
{
  ContentTotals *totals = user_data;
  totals->blobs++;
  totals->bytes += MAX (info->size, 0);
  return TRUE;
}

static void
render_content (GString *out, BerthDaemon *daemon, GCancellable *cancellable)
{
  BerthContentStore *store = berth_daemon_get_content_store (daemon, NULL);
  ContentTotals totals = { 0 };
  g_autoptr (GError) error = NULL;
  if (store == NULL)
    return;
  if (!berth_content_store_walk (store, count_blob, &totals, cancellable, &error))
    {
      g_debug ("content store figures left out: %s", error->message);
      return;
    }
  family (out, "berth_content_blobs", "gauge", "Blobs in the content store, all namespaces.");
  sample_u64 (out, "berth_content_blobs", NULL, totals.blobs);
  family (out, "berth_content_bytes", "gauge", "Bytes of the blobs in the content store.");
  sample_u64 (out, "berth_content_bytes", NULL, totals.bytes);
}

static gboolean
count_snapshot (const BerthSnapshotInfo *info, gpointer user_data)
{
  (*(guint64 *) user_data)++;
  return TRUE;
}

static void
render_snapshots (GString *out, BerthDaemon *daemon, GCancellable *cancellable)
{
  GPtrArray *plugins = berth_registry_get_plugins (berth_daemon_get_registry (daemon));
  family (out, "berth_snapshots", "gauge", "Snapshots each snapshotter holds, all namespaces and kinds.");
  for (guint i = 0; i < plugins->len; i++)
    {
      const BerthPluginRecord *record = plugins->pdata[i];
      guint64 n = 0;
      g_autoptr (GError) error = NULL;
      /* A snapshotter not loaded yet holds nothing: it is loaded at start when its
       * directory has snapshots. */
      if (record->instance == NULL && record->status == BERTH_PLUGIN_STATUS_LOADED &&
          g_strcmp0 (record->type, "io.containerd.snapshotter.v1") == 0)
        {
          sample_u64 (out, "berth_snapshots", (const char *[]) { "snapshotter", record->name, NULL }, 0);
          continue;
        }
      if (record->instance == NULL || !BERTH_IS_SNAPSHOTTER (record->instance))
        continue;
      if (berth_snapshotter_walk (BERTH_SNAPSHOTTER (record->instance), count_snapshot, &n, cancellable, &error))
        sample_u64 (out, "berth_snapshots", (const char *[]) { "snapshotter", record->name, NULL }, n);
      else
        g_debug ("snapshotter %s left out: %s", record->name, error->message);
    }
}

typedef struct {
  char *namespace_;
  char *id;
  BerthCgroupStats stats;
} ContainerFigures;

static void
container_figures_clear (gpointer data)
{
  ContainerFigures *figures = data;
  g_free (figures->namespace_);
  g_free (figures->id);
}

static gint
compare_containers (gconstpointer a, gconstpointer b)
{
  const ContainerFigures *x = a, *y = b;
  int c = strcmp (x->namespace_, y->namespace_);
  return c != 0 ? c : strcmp (x->id, y->id);
}

static void
render_containers (GString *out, BerthDaemon *daemon)
{
  g_autoptr (GArray) containers = g_array_new (FALSE, TRUE, sizeof (ContainerFigures));
  g_array_set_clear_func (containers, container_figures_clear);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) tasks = berth_daemon_list_tasks (daemon, NULL, &error);
  if (tasks == NULL)
    g_debug ("container figures left out: %s", error->message);
  for (guint i = 0; tasks != NULL && i < tasks->len; i++)
    {
      BerthTask *task = tasks->pdata[i];
      ContainerFigures figures = { 0 };
      g_autoptr (GError) local_error = NULL;
      /* A stopped task's pid may be someone else's by now. */
      BerthTaskStatus status = berth_task_get_status (task, NULL, NULL);
      if (status == BERTH_TASK_STATUS_STOPPED || status == BERTH_TASK_STATUS_UNKNOWN)
        continue;
      if (!berth_cgroup_stats (berth_task_get_pid (task), &figures.stats, &local_error))
        {
          g_debug ("container %s/%s left out: %s", berth_task_get_namespace (task), berth_task_get_id (task),
                   local_error->message);
          continue;
        }
      figures.namespace_ = g_strdup (berth_task_get_namespace (task));
      figures.id = g_strdup (berth_task_get_id (task));
      g_array_append_val (containers, figures);
    }
  g_array_sort (containers, compare_containers);

#define LABELS(c) ((const char *[]) { "namespace", (c)->namespace_, "container_id", (c)->id, NULL })
#define EACH(c) \
  for (const ContainerFigures *c = (const ContainerFigures *) containers->data; \
       c < (const ContainerFigures *) containers->data + containers->len; c++)

  family (out, "berth_container_cpu_usage_seconds_total", "counter", "CPU time the container's cgroup used.");
  EACH (c)
    if (c->stats.has_cpu)
      sample_seconds (out, "berth_container_cpu_usage_seconds_total", LABELS (c), c->stats.cpu_usage_ns,
                      G_GUINT64_CONSTANT (1000000000));
  family (out, "berth_container_memory_usage_bytes", "gauge",
          "Memory the container's cgroup uses, page cache included.");
  EACH (c)
    if (c->stats.has_memory)
      sample_u64 (out, "berth_container_memory_usage_bytes", LABELS (c), c->stats.memory_usage_bytes);
  family (out, "berth_container_memory_limit_bytes", "gauge", "The container's memory limit; absent when it has none.");
  EACH (c)
    if (c->stats.has_memory && c->stats.memory_limit_bytes > 0)
      sample_u64 (out, "berth_container_memory_limit_bytes", LABELS (c), c->stats.memory_limit_bytes);
  family (out, "berth_container_pids_current", "gauge", "Processes and threads in the container's cgroup.");
  EACH (c)
    if (c->stats.has_pids)
      sample_u64 (out, "berth_container_pids_current", LABELS (c), c->stats.pids_current);
  family (out, "berth_container_io_bytes_total", "counter",
          "Bytes the container's cgroup read from and wrote to block devices, by op (read, write).");
  EACH (c)
    if (c->stats.has_io)
      {
        const char *read_labels[] = { "namespace", c->namespace_, "container_id", c->id, "op", "read", NULL };
        const char *write_labels[] = { "namespace", c->namespace_, "container_id", c->id, "op", "write", NULL };
        sample_u64 (out, "berth_container_io_bytes_total", read_labels, c->stats.io_read_bytes);
        sample_u64 (out, "berth_container_io_bytes_total", write_labels, c->stats.io_write_bytes);
      }
#undef EACH
#undef LABELS
}

char *
berth_metrics_render (BerthDaemon *daemon, GCancellable *cancellable)
{
  GString *out = g_string_new (NULL);
  family (out, "berth_build_info", "gauge", "The running berthd's version; always 1.");
  sample (out, "berth_build_info", (const char *[]) { "version", PACKAGE_VERSION, NULL }, "1");
  render_grpc (out);
  render_plugins (out, daemon);
  render_content (out, daemon, cancellable);
  render_snapshots (out, daemon, cancellable);
  render_gc (out);
  render_containers (out, daemon);
  return g_string_free (out, FALSE);
}

/* ---------------- the HTTP server ---------------- */

gboolean
berth_metrics_parse_address (const char *text, GSocketAddress **address_out, GError **error)
{
  g_autoptr (GSocketConnectable) parsed = g_network_address_parse (text, 0, NULL);
  const char *host = parsed ? g_network_address_get_hostname (G_NETWORK_ADDRESS (parsed)) : NULL;
  guint16 port = parsed ? g_network_address_get_port (G_NETWORK_ADDRESS (parsed)) : 0;
  g_autoptr (GInetAddress) inet = host ? g_inet_address_new_from_string (host) : NULL;
  if (inet == NULL || port == 0)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT,
                        "want an IP address and a port, e.g. 127.0.0.1:1338 or [::1]:1338");
  if (address_out != NULL)
    *address_out = g_inet_socket_address_new (inet, port);
  return TRUE;
}

/* ---------------- metrics endpoint (libsoup) ---------------- */

extern __typeof__ (berth_metrics_server_module_new) berth_metrics_server_module_new __attribute__ ((weak));
extern __typeof__ (berth_metrics_server_module_get_address) berth_metrics_server_module_get_address
  __attribute__ ((weak));
extern __typeof__ (berth_metrics_server_module_stop) berth_metrics_server_module_stop __attribute__ ((weak));

BerthMetricsServer *
berth_metrics_server_new (BerthDaemon *daemon, const char *address, GError **error)
{
  __typeof__ (berth_metrics_server_module_new) *new_server =
    BERTH_MODULE_FUNC ("metrics-http", berth_metrics_server_module_new, error);
  return new_server ? new_server (daemon, address, error) : NULL;
}

/* A server exists: its module is open. */
const char *
berth_metrics_server_get_address (BerthMetricsServer *self)
{
  return BERTH_MODULE_FUNC ("metrics-http", berth_metrics_server_module_get_address, NULL) (self);
}

void
berth_metrics_server_stop (BerthMetricsServer *self)
{
  BERTH_MODULE_FUNC ("metrics-http", berth_metrics_server_module_stop, NULL) (self);
}
