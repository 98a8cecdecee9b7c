/* berth-cgroup.h — statistics and OOM kills of a task's cgroups (core-internal).
 * Runtime plugins need not know containerd's cgroup protobufs: the core finds the task's cgroups from
 * /proc/PID/cgroup and the host's cgroup mounts, controller by controller, so v1, v2
 * and hybrid hosts (v1 controllers plus a cgroup2 mount) all work: a controller bound
 * to a v1 hierarchy is read there, anything else from the process's cgroup2 directory. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The figures every cgroup version has, in common units. */
typedef struct {
  gboolean has_cpu;
  guint64 cpu_usage_ns;
  gboolean has_memory;
  guint64 memory_usage_bytes;
  guint64 memory_limit_bytes; /* 0: no limit */
  gboolean has_pids;
  guint64 pids_current;
  guint64 pids_limit;         /* 0: no limit */
  gboolean has_io;
  guint64 io_read_bytes;      /* summed over devices */
  guint64 io_write_bytes;
} BerthCgroupStats;

/* @pid's figures. NOT_FOUND when @pid is gone, FAILED_PRECONDITION when it is in no
 * cgroup of its own on any hierarchy. Figures whose controller it is not under stay
 * unset (has_… FALSE). */
gboolean berth_cgroup_stats (guint32 pid, BerthCgroupStats *stats, GError **error);

/* @pid's statistics packed as containerd's io.containerd.cgroups.v1.Metrics when its
 * memory, cpuacct or pids controller is on a v1 hierarchy, else as
 * io.containerd.cgroups.v2.Metrics; *type_url_out names the type. Errors as above. */
GBytes *berth_cgroup_metrics (guint32 pid, char **type_url_out, GError **error);

/* The cgroup directory that accounts @pid's memory: its v1 memory cgroup, else its
 * cgroup2 directory. Read it while @pid lives: the directory outlives the process (until
 * the runtime deletes the container), /proc/PID/cgroup does not. Errors as above. */
char *berth_cgroup_memory_dir (guint32 pid, GError **error);
/* How many processes the kernel's OOM killer has killed in memory cgroup @dir (the
 * oom_kill of v2's memory.events or v1's memory.oom_control, Linux 4.13+). FALSE when
 * @dir has no such counter (gone, or another kernel). */
gboolean berth_cgroup_oom_kills (const char *dir, guint64 *count_out);

/* The same with every /proc and /sys path under @sysroot: for tests that build a fake
 * host. */
gboolean _berth_cgroup_stats_at (const char *sysroot, guint32 pid, BerthCgroupStats *stats, GError **error);
GBytes *_berth_cgroup_metrics_at (const char *sysroot, guint32 pid, char **type_url_out, GError **error);
char *_berth_cgroup_memory_dir_at (const char *sysroot, guint32 pid, GError **error);

G_END_DECLS
