/* berth-cgroup.c — cgroup v1 statistics as containerd reports them. */
#include "config.h"

#include <string.h>

#include <berth/berth-error.h>
#include "berth-cgroup.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb-c.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

/* "memory" → "/docker/abc" from /proc/PID/cgroup ("N:controller,controller:/path"). */
static char *
controller_path (const char *proc_cgroup, const char *controller)
{
  g_auto (GStrv) lines = g_strsplit (proc_cgroup, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) fields = g_strsplit (lines[i], ":", 3);
      if (g_strv_length (fields) != 3)
        continue;
      g_auto (GStrv) controllers = g_strsplit (fields[1], ",", -1);
      if (g_strv_contains ((const char *const *) controllers, controller))
        return g_strdup (fields[2]);
    }
  return NULL;
}

/* One number from a cgroup file; "max" reads as 0 (no limit), a missing file as 0. */
static guint64
read_u64 (const char *controller, const char *path, const char *file)
{
  g_autofree char *full = g_build_filename (CGROUP_ROOT, controller, path, file, NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (full, &text, NULL, NULL))
    return 0;
  return g_ascii_strtoull (g_strstrip (text), NULL, 10);
}

/* "key value" lines (memory.stat) as a table. */
static GHashTable *
read_keyed (const char *controller, const char *path, const char *file)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *full = g_build_filename (CGROUP_ROOT, controller, path, file, NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (full, &text, NULL, NULL))
    return table;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *space = strchr (lines[i], ' ');
      if (space == NULL)
        continue;
      *space = '\0';
      g_hash_table_insert (table, g_strdup (lines[i]), GSIZE_TO_POINTER (g_ascii_strtoull (space + 1, NULL, 10)));
    }
  return table;
}

#define STAT(t, k) ((guint64) GPOINTER_TO_SIZE (g_hash_table_lookup ((t), (k))))

GBytes *
berth_cgroup_metrics (guint32 pid, char **type_url_out, GError **error)
{
  g_autofree char *proc = g_strdup_printf ("/proc/%u/cgroup", pid);
  g_autofree char *text = NULL;
  if (pid == 0 || !g_file_get_contents (proc, &text, NULL, NULL))
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "process %u is gone", pid), NULL;
  g_autofree char *memory = controller_path (text, "memory");
  g_autofree char *cpuacct = controller_path (text, "cpuacct");
  g_autofree char *pids = controller_path (text, "pids");
  if (memory == NULL && cpuacct == NULL && pids == NULL)
    return berth_throw (error, BERTH_ERROR_UNIMPLEMENTED, "metrics need cgroup v1 controllers; this host has only cgroup v2"),
           NULL;

  Io__Containerd__Cgroups__V1__Metrics metrics = IO__CONTAINERD__CGROUPS__V1__METRICS__INIT;
  Io__Containerd__Cgroups__V1__PidsStat pid_stat = IO__CONTAINERD__CGROUPS__V1__PIDS_STAT__INIT;
  Io__Containerd__Cgroups__V1__CPUStat cpu = IO__CONTAINERD__CGROUPS__V1__CPUSTAT__INIT;
  Io__Containerd__Cgroups__V1__CPUUsage usage = IO__CONTAINERD__CGROUPS__V1__CPUUSAGE__INIT;
  Io__Containerd__Cgroups__V1__MemoryStat mem = IO__CONTAINERD__CGROUPS__V1__MEMORY_STAT__INIT;
  Io__Containerd__Cgroups__V1__MemoryEntry mem_usage = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT;
  g_autoptr (GArray) per_cpu = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_autoptr (GHashTable) stat = NULL;
  if (pids != NULL)
    {
      pid_stat.current = read_u64 ("pids", pids, "pids.current");
      pid_stat.limit = read_u64 ("pids", pids, "pids.max");
      metrics.pids = &pid_stat;
    }
  if (cpuacct != NULL)
    {
      usage.total = read_u64 ("cpuacct", cpuacct, "cpuacct.usage");
      usage.user = read_u64 ("cpuacct", cpuacct, "cpuacct.usage_user");
      usage.kernel = read_u64 ("cpuacct", cpuacct, "cpuacct.usage_sys");
      g_autofree char *percpu_path = g_build_filename (CGROUP_ROOT, "cpuacct", cpuacct, "cpuacct.usage_percpu", NULL);
      g_autofree char *percpu = NULL;
      if (g_file_get_contents (percpu_path, &percpu, NULL, NULL))
        {
          g_auto (GStrv) values = g_strsplit (g_strstrip (percpu), " ", -1);
          for (guint i = 0; values[i] != NULL; i++)
            if (*values[i])
              {
                guint64 v = g_ascii_strtoull (values[i], NULL, 10);
                g_array_append_val (per_cpu, v);
              }
        }
      usage.n_per_cpu = per_cpu->len;
      usage.per_cpu = (uint64_t *) per_cpu->data;
      cpu.usage = &usage;
      metrics.cpu = &cpu;
    }
  if (memory != NULL)
    {
      stat = read_keyed ("memory", memory, "memory.stat");
      mem.cache = STAT (stat, "cache");
      mem.rss = STAT (stat, "rss");
      mem.rss_huge = STAT (stat, "rss_huge");
      mem.mapped_file = STAT (stat, "mapped_file");
      mem.pg_fault = STAT (stat, "pgfault");
      mem.pg_maj_fault = STAT (stat, "pgmajfault");
      mem.inactive_anon = STAT (stat, "inactive_anon");
      mem.active_anon = STAT (stat, "active_anon");
      mem.inactive_file = STAT (stat, "inactive_file");
      mem.active_file = STAT (stat, "active_file");
      mem_usage.usage = read_u64 ("memory", memory, "memory.usage_in_bytes");
      mem_usage.limit = read_u64 ("memory", memory, "memory.limit_in_bytes");
      mem_usage.max = read_u64 ("memory", memory, "memory.max_usage_in_bytes");
      mem_usage.failcnt = read_u64 ("memory", memory, "memory.failcnt");
      mem.usage = &mem_usage;
      metrics.memory = &mem;
    }
  gsize size = protobuf_c_message_get_packed_size (&metrics.base);
  guint8 *buf = g_malloc (size ? size : 1);
  protobuf_c_message_pack (&metrics.base, buf);
  if (type_url_out != NULL)
    *type_url_out = g_strdup (io__containerd__cgroups__v1__metrics__descriptor.name);
  return g_bytes_new_take (buf, size);
}
