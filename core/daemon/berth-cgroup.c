/* berth-cgroup.c — cgroup statistics as containerd reports them, from v1, v2 or hybrid
 * hosts. Mount points come from mountinfo, not a fixed /sys/fs/cgroup layout: v1
 * controllers may share a hierarchy ("cpu,cpuacct") and cgroup2 may be mounted at
 * /sys/fs/cgroup or at /sys/fs/cgroup/unified. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <berth/berth-error.h>
#include "berth-cgroup.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb-c.h"
#include "github.com/containerd/cgroups/v2/stats/metrics.pb-c.h"

typedef enum { CTL_MEMORY, CTL_CPUACCT, CTL_PIDS, CTL_BLKIO, N_CTL } Controller;
static const char *const controller_names[N_CTL] = { "memory", "cpuacct", "pids", "blkio" };

/* Above this a v1 memory limit is the kernel's "unlimited" (LONG_MAX rounded to a page). */
#define V1_NO_LIMIT (G_GUINT64_CONSTANT (1) << 62)

typedef struct {
  char *v1[N_CTL]; /* the process's directory on the v1 hierarchy of each controller, or NULL */
  char *unified;   /* its directory on the cgroup2 hierarchy, NULL when none or the root */
} CgroupDirs;

static void
cgroup_dirs_clear (CgroupDirs *dirs)
{
  for (guint i = 0; i < N_CTL; i++)
    g_clear_pointer (&dirs->v1[i], g_free);
  g_clear_pointer (&dirs->unified, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CgroupDirs, cgroup_dirs_clear)

typedef struct {
  char *root;        /* the cgroup shown at the mount point */
  char *mount_point;
  gboolean v2;
  GStrv options;     /* super options: the v1 controllers */
} CgroupMount;

static void
cgroup_mount_free (CgroupMount *mount)
{
  g_free (mount->root);
  g_free (mount->mount_point);
  g_strfreev (mount->options);
  g_free (mount);
}

/* The cgroup and cgroup2 mounts of mountinfo ("ID PARENT MAJ:MIN ROOT MOUNT OPTS
 * [OPTIONAL…] - FSTYPE SOURCE SUPEROPTS"; paths with \ooo escapes). */
static GPtrArray *
read_mounts (const char *sysroot)
{
  GPtrArray *mounts = g_ptr_array_new_with_free_func ((GDestroyNotify) cgroup_mount_free);
  g_autofree char *path = g_build_filename (sysroot, "/proc/self/mountinfo", NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return mounts;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) fields = g_strsplit (lines[i], " ", -1);
      guint n = g_strv_length (fields), dash = 6;
      while (dash < n && !g_str_equal (fields[dash], "-"))
        dash++;
      if (n < 7 || dash + 1 >= n)
        continue;
      const char *fstype = fields[dash + 1];
      if (!g_str_equal (fstype, "cgroup") && !g_str_equal (fstype, "cgroup2"))
        continue;
      CgroupMount *mount = g_new0 (CgroupMount, 1);
      mount->root = g_strcompress (fields[3]);
      mount->mount_point = g_strcompress (fields[4]);
      mount->v2 = g_str_equal (fstype, "cgroup2");
      mount->options = g_strsplit (dash + 3 < n ? fields[dash + 3] : "", ",", -1);
      g_ptr_array_add (mounts, mount);
    }
  return mounts;
}

/* Where cgroup @path of a hierarchy is seen through @mount, or NULL when the mount
 * shows only another part of the hierarchy. */
static char *
dir_in_mount (const char *sysroot, const CgroupMount *mount, const char *path)
{
  const char *rest = path;
  if (!g_str_equal (mount->root, "/"))
    {
      gsize len = strlen (mount->root);
      if (strncmp (path, mount->root, len) != 0 || (path[len] != '/' && path[len] != '\0'))
        return NULL;
      rest = path + len;
    }
  return g_build_filename (sysroot, mount->mount_point, rest, NULL);
}

static gboolean
resolve_dirs (const char *sysroot, guint32 pid, CgroupDirs *dirs, GError **error)
{
  g_autofree char *proc = g_strdup_printf ("%s/proc/%u/cgroup", sysroot, pid);
  g_autofree char *text = NULL;
  if (pid == 0 || !g_file_get_contents (proc, &text, NULL, NULL))
    return berth_throw (error, BERTH_ERROR_NOT_FOUND, "process %u is gone", pid);
  g_autoptr (GPtrArray) mounts = read_mounts (sysroot);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      /* "N:controller,controller:/path", or "0::/path" for the cgroup2 hierarchy. */
      g_auto (GStrv) fields = g_strsplit (lines[i], ":", 3);
      if (g_strv_length (fields) != 3)
        continue;
      if (g_str_equal (fields[0], "0") && fields[1][0] == '\0')
        {
          /* The root cgroup's figures are the whole host's, not the process's. */
          if (g_str_equal (fields[2], "/"))
            continue;
          for (guint m = 0; m < mounts->len && dirs->unified == NULL; m++)
            {
              CgroupMount *mount = mounts->pdata[m];
              if (mount->v2)
                dirs->unified = dir_in_mount (sysroot, mount, fields[2]);
            }
          continue;
        }
      g_auto (GStrv) controllers = g_strsplit (fields[1], ",", -1);
      for (guint c = 0; c < N_CTL; c++)
        {
          if (dirs->v1[c] != NULL || !g_strv_contains ((const char *const *) controllers, controller_names[c]))
            continue;
          for (guint m = 0; m < mounts->len && dirs->v1[c] == NULL; m++)
            {
              CgroupMount *mount = mounts->pdata[m];
              if (!mount->v2 && g_strv_contains ((const char *const *) mount->options, controller_names[c]))
                dirs->v1[c] = dir_in_mount (sysroot, mount, fields[2]);
            }
        }
    }
  for (guint c = 0; c < N_CTL; c++)
    if (dirs->v1[c] != NULL)
      return TRUE;
  if (dirs->unified == NULL)
    return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                        "process %u is in no cgroup of its own on any cgroup hierarchy", pid);
  return TRUE;
}

static char *
read_text (const char *dir, const char *file)
{
  if (dir == NULL)
    return NULL;
  g_autofree char *path = g_build_filename (dir, file, NULL);
  char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return text;
}

/* One number from a cgroup file; "max" reads as @max_value. FALSE when the file is
 * missing or holds no number. */
static gboolean
read_number (const char *dir, const char *file, guint64 max_value, guint64 *out)
{
  g_autofree char *text = read_text (dir, file);
  if (text == NULL)
    return FALSE;
  g_strstrip (text);
  if (g_str_equal (text, "max"))
    {
      *out = max_value;
      return TRUE;
    }
  char *end = NULL;
  guint64 value = g_ascii_strtoull (text, &end, 10);
  if (end == text)
    return FALSE;
  *out = value;
  return TRUE;
}

/* "key value" lines (memory.stat, cpu.stat) as a table; NULL when the file is missing. */
static GHashTable *
read_keyed (const char *dir, const char *file)
{
  g_autofree char *text = read_text (dir, file);
  if (text == NULL)
    return NULL;
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
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

#define STAT(t, k) ((t) ? (guint64) GPOINTER_TO_SIZE (g_hash_table_lookup ((t), (k))) : 0)

/* One device of v2 io.stat: "MAJ:MIN rbytes=… wbytes=… rios=… wios=… …". */
typedef struct {
  guint64 major, minor, rbytes, wbytes, rios, wios;
} IoLine;

static GArray *
read_io_stat_v2 (const char *dir)
{
  g_autofree char *text = read_text (dir, "io.stat");
  if (text == NULL)
    return NULL;
  GArray *devices = g_array_new (FALSE, TRUE, sizeof (IoLine));
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) fields = g_strsplit (g_strstrip (lines[i]), " ", -1);
      IoLine line = { 0 };
      if (fields[0] == NULL || sscanf (fields[0], "%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, &line.major, &line.minor) != 2)
        continue;
      for (guint f = 1; fields[f] != NULL; f++)
        {
          char *eq = strchr (fields[f], '=');
          if (eq == NULL)
            continue;
          *eq = '\0';
          guint64 value = g_ascii_strtoull (eq + 1, NULL, 10);
          if (g_str_equal (fields[f], "rbytes"))
            line.rbytes = value;
          else if (g_str_equal (fields[f], "wbytes"))
            line.wbytes = value;
          else if (g_str_equal (fields[f], "rios"))
            line.rios = value;
          else if (g_str_equal (fields[f], "wios"))
            line.wios = value;
        }
      g_array_append_val (devices, line);
    }
  return devices;
}

/* v1 blkio bytes, "MAJ:MIN Read N" lines summed over devices. */
static gboolean
read_io_v1 (const char *dir, guint64 *read_out, guint64 *write_out)
{
  g_autofree char *text = read_text (dir, "blkio.throttle.io_service_bytes_recursive");
  if (text == NULL)
    text = read_text (dir, "blkio.throttle.io_service_bytes");
  if (text == NULL)
    return FALSE;
  *read_out = *write_out = 0;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) fields = g_strsplit (g_strstrip (lines[i]), " ", -1);
      if (g_strv_length (fields) != 3)
        continue;
      if (g_str_equal (fields[1], "Read"))
        *read_out += g_ascii_strtoull (fields[2], NULL, 10);
      else if (g_str_equal (fields[1], "Write"))
        *write_out += g_ascii_strtoull (fields[2], NULL, 10);
    }
  return TRUE;
}

gboolean
_berth_cgroup_stats_at (const char *sysroot, guint32 pid, BerthCgroupStats *stats, GError **error)
{
  g_auto (CgroupDirs) dirs = { 0 };
  memset (stats, 0, sizeof *stats);
  if (!resolve_dirs (sysroot, pid, &dirs, error))
    return FALSE;

  if (dirs.v1[CTL_CPUACCT] != NULL)
    stats->has_cpu = read_number (dirs.v1[CTL_CPUACCT], "cpuacct.usage", 0, &stats->cpu_usage_ns);
  else
    {
      g_autoptr (GHashTable) cpu = read_keyed (dirs.unified, "cpu.stat");
      stats->has_cpu = cpu != NULL && g_hash_table_contains (cpu, "usage_usec");
      stats->cpu_usage_ns = STAT (cpu, "usage_usec") * 1000;
    }

  if (dirs.v1[CTL_MEMORY] != NULL)
    {
      stats->has_memory = read_number (dirs.v1[CTL_MEMORY], "memory.usage_in_bytes", 0, &stats->memory_usage_bytes);
      read_number (dirs.v1[CTL_MEMORY], "memory.limit_in_bytes", 0, &stats->memory_limit_bytes);
      if (stats->memory_limit_bytes >= V1_NO_LIMIT)
        stats->memory_limit_bytes = 0;
    }
  else
    {
      stats->has_memory = read_number (dirs.unified, "memory.current", 0, &stats->memory_usage_bytes);
      read_number (dirs.unified, "memory.max", 0, &stats->memory_limit_bytes);
    }

  const char *pids = dirs.v1[CTL_PIDS] ? dirs.v1[CTL_PIDS] : dirs.unified;
  stats->has_pids = read_number (pids, "pids.current", 0, &stats->pids_current);
  read_number (pids, "pids.max", 0, &stats->pids_limit);

  if (dirs.v1[CTL_BLKIO] != NULL)
    stats->has_io = read_io_v1 (dirs.v1[CTL_BLKIO], &stats->io_read_bytes, &stats->io_write_bytes);
  else
    {
      g_autoptr (GArray) devices = read_io_stat_v2 (dirs.unified);
      stats->has_io = devices != NULL;
      for (guint i = 0; devices != NULL && i < devices->len; i++)
        {
          stats->io_read_bytes += g_array_index (devices, IoLine, i).rbytes;
          stats->io_write_bytes += g_array_index (devices, IoLine, i).wbytes;
        }
    }
  return TRUE;
}

gboolean
berth_cgroup_stats (guint32 pid, BerthCgroupStats *stats, GError **error)
{
  return _berth_cgroup_stats_at ("", pid, stats, error);
}

char *
_berth_cgroup_memory_dir_at (const char *sysroot, guint32 pid, GError **error)
{
  g_auto (CgroupDirs) dirs = { 0 };
  if (!resolve_dirs (sysroot, pid, &dirs, error))
    return NULL;
  if (dirs.v1[CTL_MEMORY] != NULL)
    return g_steal_pointer (&dirs.v1[CTL_MEMORY]);
  if (dirs.unified != NULL)
    return g_steal_pointer (&dirs.unified);
  berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION, "process %u is in no memory cgroup of its own", pid);
  return NULL;
}

char *
berth_cgroup_memory_dir (guint32 pid, GError **error)
{
  return _berth_cgroup_memory_dir_at ("", pid, error);
}

gboolean
berth_cgroup_oom_kills (const char *dir, guint64 *count_out)
{
  /* v1 and v2 name the counter alike, in different files; v2's counts the subtree. */
  g_autoptr (GHashTable) events = read_keyed (dir, "memory.events");
  if (events == NULL)
    events = read_keyed (dir, "memory.oom_control");
  if (events == NULL || !g_hash_table_contains (events, "oom_kill"))
    return FALSE;
  *count_out = STAT (events, "oom_kill");
  return TRUE;
}

static GBytes *
pack (const ProtobufCMessage *message, char **type_url_out)
{
  gsize size = protobuf_c_message_get_packed_size (message);
  guint8 *buf = g_malloc (size ? size : 1);
  protobuf_c_message_pack (message, buf);
  if (type_url_out != NULL)
    *type_url_out = g_strdup (message->descriptor->name);
  return g_bytes_new_take (buf, size);
}

/* One uint64 field of a Metrics message: a key of a "key value" file (memory.stat,
 * cpu.stat, memory.events) or, when key is NULL, a single-number file. */
typedef struct {
  const char *file;
  const char *key;
  gsize offset;
} StatField;

#define FILE_FIELD(file, type, member) { file, NULL, G_STRUCT_OFFSET (type, member) }
#define KEY_FIELD(file, key, type, member) { file, key, G_STRUCT_OFFSET (type, member) }
/* Most keys are named as their field. */
#define SAME_KEY(file, type, member) KEY_FIELD (file, #member, type, member)

/* Fills @message's fields from the files under @dir (absent ones stay 0; "max" reads as
 * @max_value). TRUE when the first field's file is there: it decides whether the
 * message is reported at all. */
static gboolean
read_fields (const char *dir, const StatField *fields, gsize n_fields, guint64 max_value, gpointer message)
{
  g_autoptr (GHashTable) keyed = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                        (GDestroyNotify) g_hash_table_unref);
  gboolean first_found = FALSE;
  for (gsize i = 0; i < n_fields; i++)
    {
      const StatField *field = &fields[i];
      guint64 *out = &G_STRUCT_MEMBER (guint64, message, field->offset);
      gboolean found;
      if (field->key == NULL)
        found = read_number (dir, field->file, max_value, out);
      else
        {
          GHashTable *table = g_hash_table_lookup (keyed, field->file);
          if (table == NULL && (table = read_keyed (dir, field->file)) != NULL)
            g_hash_table_insert (keyed, (gpointer) field->file, table);
          found = table != NULL;
          *out = STAT (table, field->key);
        }
      if (i == 0)
        first_found = found;
    }
  return first_found;
}

static const StatField v1_pids_fields[] = {
  FILE_FIELD ("pids.current", Io__Containerd__Cgroups__V1__PidsStat, current),
  FILE_FIELD ("pids.max", Io__Containerd__Cgroups__V1__PidsStat, limit),
};
static const StatField v1_cpu_usage_fields[] = {
  FILE_FIELD ("cpuacct.usage", Io__Containerd__Cgroups__V1__CPUUsage, total),
  FILE_FIELD ("cpuacct.usage_user", Io__Containerd__Cgroups__V1__CPUUsage, user),
  FILE_FIELD ("cpuacct.usage_sys", Io__Containerd__Cgroups__V1__CPUUsage, kernel),
};
#define V1_MEM(member) SAME_KEY ("memory.stat", Io__Containerd__Cgroups__V1__MemoryStat, member)
static const StatField v1_memory_fields[] = {
  V1_MEM (cache), V1_MEM (rss), V1_MEM (rss_huge), V1_MEM (mapped_file),
  KEY_FIELD ("memory.stat", "pgfault", Io__Containerd__Cgroups__V1__MemoryStat, pg_fault),
  KEY_FIELD ("memory.stat", "pgmajfault", Io__Containerd__Cgroups__V1__MemoryStat, pg_maj_fault),
  V1_MEM (inactive_anon), V1_MEM (active_anon), V1_MEM (inactive_file), V1_MEM (active_file),
};
static const StatField v1_memory_usage_fields[] = {
  FILE_FIELD ("memory.usage_in_bytes", Io__Containerd__Cgroups__V1__MemoryEntry, usage),
  FILE_FIELD ("memory.limit_in_bytes", Io__Containerd__Cgroups__V1__MemoryEntry, limit),
  FILE_FIELD ("memory.max_usage_in_bytes", Io__Containerd__Cgroups__V1__MemoryEntry, max),
  FILE_FIELD ("memory.failcnt", Io__Containerd__Cgroups__V1__MemoryEntry, failcnt),
};

/* cpu.stat of the cpu controller where it is co-mounted with cpuacct ("cpu,cpuacct");
 * zeros elsewhere. */
static const StatField v1_throttle_fields[] = {
  KEY_FIELD ("cpu.stat", "nr_periods", Io__Containerd__Cgroups__V1__Throttle, periods),
  KEY_FIELD ("cpu.stat", "nr_throttled", Io__Containerd__Cgroups__V1__Throttle, throttled_periods),
  KEY_FIELD ("cpu.stat", "throttled_time", Io__Containerd__Cgroups__V1__Throttle, throttled_time),
};
/* The swap, kmem and kmem.tcp counterparts of v1_memory_usage_fields. */
#define V1_MEM_ENTRY(prefix)                                                                \
  {                                                                                         \
    FILE_FIELD (prefix ".usage_in_bytes", Io__Containerd__Cgroups__V1__MemoryEntry, usage), \
    FILE_FIELD (prefix ".limit_in_bytes", Io__Containerd__Cgroups__V1__MemoryEntry, limit), \
    FILE_FIELD (prefix ".max_usage_in_bytes", Io__Containerd__Cgroups__V1__MemoryEntry, max), \
    FILE_FIELD (prefix ".failcnt", Io__Containerd__Cgroups__V1__MemoryEntry, failcnt),      \
  }
static const StatField v1_memory_swap_fields[] = V1_MEM_ENTRY ("memory.memsw");
static const StatField v1_memory_kernel_fields[] = V1_MEM_ENTRY ("memory.kmem");
static const StatField v1_memory_kernel_tcp_fields[] = V1_MEM_ENTRY ("memory.kmem.tcp");

/* As containerd's cgroups v1 Stat: CPU (with Usage and Throttling) is always there, and
 * Memory comes with all four entries. dockerd reads them without nil checks. */
static GBytes *
metrics_v1 (const CgroupDirs *dirs, char **type_url_out)
{
  const char *memory = dirs->v1[CTL_MEMORY], *cpuacct = dirs->v1[CTL_CPUACCT], *pids = dirs->v1[CTL_PIDS];
  Io__Containerd__Cgroups__V1__Metrics metrics = IO__CONTAINERD__CGROUPS__V1__METRICS__INIT;
  Io__Containerd__Cgroups__V1__PidsStat pid_stat = IO__CONTAINERD__CGROUPS__V1__PIDS_STAT__INIT;
  Io__Containerd__Cgroups__V1__CPUStat cpu = IO__CONTAINERD__CGROUPS__V1__CPUSTAT__INIT;
  Io__Containerd__Cgroups__V1__CPUUsage usage = IO__CONTAINERD__CGROUPS__V1__CPUUSAGE__INIT;
  Io__Containerd__Cgroups__V1__MemoryStat mem = IO__CONTAINERD__CGROUPS__V1__MEMORY_STAT__INIT;
  Io__Containerd__Cgroups__V1__Throttle throttling = IO__CONTAINERD__CGROUPS__V1__THROTTLE__INIT;
  Io__Containerd__Cgroups__V1__MemoryEntry mem_usage = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT;
  Io__Containerd__Cgroups__V1__MemoryEntry mem_swap = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT;
  Io__Containerd__Cgroups__V1__MemoryEntry mem_kernel = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT;
  Io__Containerd__Cgroups__V1__MemoryEntry mem_kernel_tcp = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT;
  g_autoptr (GArray) per_cpu = g_array_new (FALSE, FALSE, sizeof (guint64));
  /* v1 reports a message whenever the process has that controller's cgroup. */
  if (pids != NULL)
    {
      read_fields (pids, v1_pids_fields, G_N_ELEMENTS (v1_pids_fields), 0, &pid_stat);
      metrics.pids = &pid_stat;
    }
  if (cpuacct != NULL)
    {
      read_fields (cpuacct, v1_cpu_usage_fields, G_N_ELEMENTS (v1_cpu_usage_fields), 0, &usage);
      g_autofree char *percpu = read_text (cpuacct, "cpuacct.usage_percpu");
      if (percpu != NULL)
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
      read_fields (cpuacct, v1_throttle_fields, G_N_ELEMENTS (v1_throttle_fields), 0, &throttling);
    }
  cpu.usage = &usage;
  cpu.throttling = &throttling;
  metrics.cpu = &cpu;
  if (memory != NULL)
    {
      read_fields (memory, v1_memory_fields, G_N_ELEMENTS (v1_memory_fields), 0, &mem);
      read_fields (memory, v1_memory_usage_fields, G_N_ELEMENTS (v1_memory_usage_fields), 0, &mem_usage);
      read_fields (memory, v1_memory_swap_fields, G_N_ELEMENTS (v1_memory_swap_fields), 0, &mem_swap);
      read_fields (memory, v1_memory_kernel_fields, G_N_ELEMENTS (v1_memory_kernel_fields), 0, &mem_kernel);
      read_fields (memory, v1_memory_kernel_tcp_fields, G_N_ELEMENTS (v1_memory_kernel_tcp_fields), 0, &mem_kernel_tcp);
      mem.usage = &mem_usage;
      mem.swap = &mem_swap;
      mem.kernel = &mem_kernel;
      mem.kernel_tcp = &mem_kernel_tcp;
      metrics.memory = &mem;
    }
  return pack (&metrics.base, type_url_out);
}

/* containerd reads "max" in v2 files as the largest uint64. */
#define V2_MAX G_MAXUINT64

static const StatField v2_pids_fields[] = {
  FILE_FIELD ("pids.current", Io__Containerd__Cgroups__V2__PidsStat, current),
  FILE_FIELD ("pids.max", Io__Containerd__Cgroups__V2__PidsStat, limit),
};
#define V2_CPU(member) SAME_KEY ("cpu.stat", Io__Containerd__Cgroups__V2__CPUStat, member)
static const StatField v2_cpu_fields[] = {
  V2_CPU (usage_usec), V2_CPU (user_usec), V2_CPU (system_usec),
  V2_CPU (nr_periods), V2_CPU (nr_throttled), V2_CPU (throttled_usec),
};
#define V2_MEM(member) SAME_KEY ("memory.stat", Io__Containerd__Cgroups__V2__MemoryStat, member)
static const StatField v2_memory_fields[] = {
  V2_MEM (anon), V2_MEM (file), V2_MEM (kernel_stack), V2_MEM (slab), V2_MEM (sock), V2_MEM (shmem),
  V2_MEM (file_mapped), V2_MEM (file_dirty), V2_MEM (file_writeback), V2_MEM (anon_thp),
  V2_MEM (inactive_anon), V2_MEM (active_anon), V2_MEM (inactive_file), V2_MEM (active_file),
  V2_MEM (unevictable), V2_MEM (slab_reclaimable), V2_MEM (slab_unreclaimable), V2_MEM (pgfault),
  V2_MEM (pgmajfault), V2_MEM (workingset_refault), V2_MEM (workingset_activate),
  V2_MEM (workingset_nodereclaim), V2_MEM (pgrefill), V2_MEM (pgscan), V2_MEM (pgsteal), V2_MEM (pgactivate),
  V2_MEM (pgdeactivate), V2_MEM (pglazyfree), V2_MEM (pglazyfreed), V2_MEM (thp_fault_alloc),
  V2_MEM (thp_collapse_alloc),
  FILE_FIELD ("memory.current", Io__Containerd__Cgroups__V2__MemoryStat, usage),
  FILE_FIELD ("memory.max", Io__Containerd__Cgroups__V2__MemoryStat, usage_limit),
  FILE_FIELD ("memory.swap.current", Io__Containerd__Cgroups__V2__MemoryStat, swap_usage),
  FILE_FIELD ("memory.swap.max", Io__Containerd__Cgroups__V2__MemoryStat, swap_limit),
};
#define V2_EVENT(member) SAME_KEY ("memory.events", Io__Containerd__Cgroups__V2__MemoryEvents, member)
static const StatField v2_memory_events_fields[] = {
  V2_EVENT (low), V2_EVENT (high), V2_EVENT (max), V2_EVENT (oom), V2_EVENT (oom_kill),
};

static GBytes *
metrics_v2 (const char *dir, char **type_url_out)
{
  Io__Containerd__Cgroups__V2__Metrics metrics = IO__CONTAINERD__CGROUPS__V2__METRICS__INIT;
  Io__Containerd__Cgroups__V2__PidsStat pids = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;
  Io__Containerd__Cgroups__V2__CPUStat cpu = IO__CONTAINERD__CGROUPS__V2__CPUSTAT__INIT;
  Io__Containerd__Cgroups__V2__MemoryStat mem = IO__CONTAINERD__CGROUPS__V2__MEMORY_STAT__INIT;
  Io__Containerd__Cgroups__V2__MemoryEvents events = IO__CONTAINERD__CGROUPS__V2__MEMORY_EVENTS__INIT;
  Io__Containerd__Cgroups__V2__IOStat io = IO__CONTAINERD__CGROUPS__V2__IOSTAT__INIT;

  /* v2 reports a message when its first file is there. */
  if (read_fields (dir, v2_pids_fields, G_N_ELEMENTS (v2_pids_fields), V2_MAX, &pids))
    metrics.pids = &pids;
  if (read_fields (dir, v2_cpu_fields, G_N_ELEMENTS (v2_cpu_fields), V2_MAX, &cpu))
    metrics.cpu = &cpu;
  if (read_fields (dir, v2_memory_fields, G_N_ELEMENTS (v2_memory_fields), V2_MAX, &mem))
    metrics.memory = &mem;
  if (read_fields (dir, v2_memory_events_fields, G_N_ELEMENTS (v2_memory_events_fields), V2_MAX, &events))
    metrics.memory_events = &events;
  g_autoptr (GArray) devices = read_io_stat_v2 (dir);
  g_autofree Io__Containerd__Cgroups__V2__IOEntry *entries = NULL;
  g_autofree Io__Containerd__Cgroups__V2__IOEntry **entry_ptrs = NULL;
  if (devices != NULL)
    {
      entries = g_new0 (Io__Containerd__Cgroups__V2__IOEntry, devices->len);
      entry_ptrs = g_new0 (Io__Containerd__Cgroups__V2__IOEntry *, devices->len);
      for (guint i = 0; i < devices->len; i++)
        {
          const IoLine *line = &g_array_index (devices, IoLine, i);
          io__containerd__cgroups__v2__ioentry__init (&entries[i]);
          entries[i].major = line->major;
          entries[i].minor = line->minor;
          entries[i].rbytes = line->rbytes;
          entries[i].wbytes = line->wbytes;
          entries[i].rios = line->rios;
          entries[i].wios = line->wios;
          entry_ptrs[i] = &entries[i];
        }
      io.n_usage = devices->len;
      io.usage = entry_ptrs;
      metrics.io = &io;
    }
  return pack (&metrics.base, type_url_out);
}

GBytes *
_berth_cgroup_metrics_at (const char *sysroot, guint32 pid, char **type_url_out, GError **error)
{
  g_auto (CgroupDirs) dirs = { 0 };
  if (!resolve_dirs (sysroot, pid, &dirs, error))
    return NULL;
  /* Hybrid hosts report v1, as containerd does there. */
  if (dirs.v1[CTL_MEMORY] != NULL || dirs.v1[CTL_CPUACCT] != NULL || dirs.v1[CTL_PIDS] != NULL)
    return metrics_v1 (&dirs, type_url_out);
  if (dirs.unified != NULL)
    return metrics_v2 (dirs.unified, type_url_out);
  return berth_throw (error, BERTH_ERROR_FAILED_PRECONDITION,
                      "process %u has neither v1 memory, cpuacct or pids cgroups nor a cgroup2 one", pid),
         NULL;
}

GBytes *
berth_cgroup_metrics (guint32 pid, char **type_url_out, GError **error)
{
  return _berth_cgroup_metrics_at ("", pid, type_url_out, error);
}
