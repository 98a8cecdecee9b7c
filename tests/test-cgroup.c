/* test-cgroup.c — cgroup statistics on fake hosts (a temp dir standing for / with its
 * own /proc and /sys): cgroup v2 only, v1-hybrid with a shared cpu,cpuacct hierarchy, a
 * v1 mount that shows only part of its hierarchy, a process in the root cgroup, a gone
 * one; the OOM-kill counter of v1 and v2. The real host is one of these; the others cannot be had on it. */
#include "config.h"

#include <glib/gstdio.h>

#include <berth/berth-error.h>
#include "daemon/berth-cgroup.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb-c.h"
#include "github.com/containerd/cgroups/v2/stats/metrics.pb-c.h"

#define PID 4242

typedef struct {
  char *root;
} Host;

static void
put (Host *host, const char *path, const char *text)
{
  g_autofree char *full = g_build_filename (host->root, path, NULL);
  g_autofree char *dir = g_path_get_dirname (full);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (full, text, -1, &error));
  g_assert_no_error (error);
}

static void
host_setup (Host *host, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  host->root = g_dir_make_tmp ("berth-cgroup-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
host_teardown (Host *host, gconstpointer data)
{
  g_autofree char *quoted = g_shell_quote (host->root);
  g_autofree char *cmd = g_strconcat ("rm -rf ", quoted, NULL);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (host->root);
}

static void
put_proc (Host *host, const char *proc_cgroup, const char *mountinfo)
{
  g_autofree char *path = g_strdup_printf ("proc/%d/cgroup", PID);
  put (host, path, proc_cgroup);
  put (host, "proc/self/mountinfo", mountinfo);
}

static const char v2_mountinfo[] =
  "22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw\n"
  "30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

static void
test_v2 (Host *host, gconstpointer data)
{
  put_proc (host, "0::/default/c1\n", v2_mountinfo);
  put (host, "sys/fs/cgroup/default/c1/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n");
  put (host, "sys/fs/cgroup/default/c1/memory.current", "4096\n");
  put (host, "sys/fs/cgroup/default/c1/memory.max", "max\n");
  put (host, "sys/fs/cgroup/default/c1/memory.stat", "anon 100\nfile 200\npgfault 7\n");
  put (host, "sys/fs/cgroup/default/c1/pids.current", "3\n");
  put (host, "sys/fs/cgroup/default/c1/pids.max", "max\n");
  put (host, "sys/fs/cgroup/default/c1/io.stat",
       "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n");

  g_autoptr (GError) error = NULL;
  BerthCgroupStats stats;
  g_assert_true (_berth_cgroup_stats_at (host->root, PID, &stats, &error));
  g_assert_no_error (error);
  g_assert_true (stats.has_cpu && stats.has_memory && stats.has_pids && stats.has_io);
  g_assert_cmpuint (stats.cpu_usage_ns, ==, 1500000);
  g_assert_cmpuint (stats.memory_usage_bytes, ==, 4096);
  g_assert_cmpuint (stats.memory_limit_bytes, ==, 0);
  g_assert_cmpuint (stats.pids_current, ==, 3);
  g_assert_cmpuint (stats.pids_limit, ==, 0);
  g_assert_cmpuint (stats.io_read_bytes, ==, 101);
  g_assert_cmpuint (stats.io_write_bytes, ==, 202);

  g_autofree char *type_url = NULL;
  g_autoptr (GBytes) packed = _berth_cgroup_metrics_at (host->root, PID, &type_url, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (type_url, ==, "io.containerd.cgroups.v2.Metrics");
  gsize size = 0;
  const guint8 *bytes = g_bytes_get_data (packed, &size);
  Io__Containerd__Cgroups__V2__Metrics *m = io__containerd__cgroups__v2__metrics__unpack (NULL, size, bytes);
  g_assert_nonnull (m);
  g_assert_cmpuint (m->cpu->usage_usec, ==, 1500);
  g_assert_cmpuint (m->cpu->system_usec, ==, 500);
  g_assert_cmpuint (m->memory->usage, ==, 4096);
  g_assert_cmpuint (m->memory->usage_limit, ==, G_MAXUINT64); /* containerd's "max" */
  g_assert_cmpuint (m->memory->anon, ==, 100);
  g_assert_cmpuint (m->memory->pgfault, ==, 7);
  g_assert_cmpuint (m->pids->current, ==, 3);
  g_assert_cmpuint (m->io->n_usage, ==, 2);
  g_assert_cmpuint (m->io->usage[1]->minor, ==, 16);
  g_assert_cmpuint (m->io->usage[0]->wbytes, ==, 200);
  io__containerd__cgroups__v2__metrics__free_unpacked (m, NULL);

  /* A limit that is a number, and a controller that is not enabled (no files). */
  put (host, "sys/fs/cgroup/default/c1/memory.max", "1048576\n");
  g_autofree char *io_stat = g_build_filename (host->root, "sys/fs/cgroup/default/c1/io.stat", NULL);
  g_assert_cmpint (g_unlink (io_stat), ==, 0);
  g_assert_true (_berth_cgroup_stats_at (host->root, PID, &stats, &error));
  g_assert_cmpuint (stats.memory_limit_bytes, ==, 1048576);
  g_assert_false (stats.has_io);
}

/* Debian 12's layout: v1 controllers, cpu and cpuacct sharing a hierarchy, and a
 * cgroup2 mount at /sys/fs/cgroup/unified. v1 wins wherever a controller is there. */
static const char hybrid_mountinfo[] =
  "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
  "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
  "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
  "37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
  "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
  "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
  "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void
test_hybrid (Host *host, gconstpointer data)
{
  put_proc (host, "12:pids:/default/c1\n9:name=systemd:/\n5:cpu,cpuacct:/default/c1\n4:memory:/default/c1\n"
                  "3:blkio:/default/c1\n0::/default/c1\n",
            hybrid_mountinfo);
  put (host, "sys/fs/cgroup/cpu,cpuacct/default/c1/cpuacct.usage", "123456789\n");
  put (host, "sys/fs/cgroup/cpu,cpuacct/default/c1/cpuacct.usage_percpu", "100000000 23456789 \n");
  put (host, "sys/fs/cgroup/memory/default/c1/memory.usage_in_bytes", "8192\n");
  put (host, "sys/fs/cgroup/memory/default/c1/memory.limit_in_bytes", "9223372036854771712\n");
  put (host, "sys/fs/cgroup/memory/default/c1/memory.stat", "cache 10\nrss 20\n");
  put (host, "sys/fs/cgroup/pids/default/c1/pids.current", "2\n");
  put (host, "sys/fs/cgroup/pids/default/c1/pids.max", "64\n");
  put (host, "sys/fs/cgroup/blkio/default/c1/blkio.throttle.io_service_bytes_recursive",
       "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:16 Read 4\n8:16 Write 8\nTotal 4620\n");
  /* The cgroup2 side has figures too; they must not be the ones read. */
  put (host, "sys/fs/cgroup/unified/default/c1/memory.current", "1\n");
  put (host, "sys/fs/cgroup/unified/default/c1/cpu.stat", "usage_usec 1\n");

  g_autoptr (GError) error = NULL;
  BerthCgroupStats stats;
  g_assert_true (_berth_cgroup_stats_at (host->root, PID, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.cpu_usage_ns, ==, 123456789);
  g_assert_cmpuint (stats.memory_usage_bytes, ==, 8192);
  g_assert_cmpuint (stats.memory_limit_bytes, ==, 0); /* the kernel's "unlimited" */
  g_assert_cmpuint (stats.pids_current, ==, 2);
  g_assert_cmpuint (stats.pids_limit, ==, 64);
  g_assert_cmpuint (stats.io_read_bytes, ==, 4100);
  g_assert_cmpuint (stats.io_write_bytes, ==, 520);

  g_autofree char *type_url = NULL;
  g_autoptr (GBytes) packed = _berth_cgroup_metrics_at (host->root, PID, &type_url, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (type_url, ==, "io.containerd.cgroups.v1.Metrics");
  gsize size = 0;
  const guint8 *bytes = g_bytes_get_data (packed, &size);
  Io__Containerd__Cgroups__V1__Metrics *m = io__containerd__cgroups__v1__metrics__unpack (NULL, size, bytes);
  g_assert_nonnull (m);
  g_assert_cmpuint (m->cpu->usage->total, ==, 123456789);
  g_assert_cmpuint (m->cpu->usage->n_per_cpu, ==, 2);
  g_assert_cmpuint (m->memory->usage->usage, ==, 8192);
  g_assert_cmpuint (m->memory->usage->limit, ==, G_GUINT64_CONSTANT (9223372036854771712));
  g_assert_cmpuint (m->memory->rss, ==, 20);
  g_assert_cmpuint (m->pids->limit, ==, 64);
  io__containerd__cgroups__v1__metrics__free_unpacked (m, NULL);
}

/* A mount that shows a sub-tree of its hierarchy (as inside a container): cgroup paths
 * are relative to the hierarchy, so the mount's root is cut off them. */
static void
test_mount_root (Host *host, gconstpointer data)
{
  put_proc (host, "4:memory:/outer/default/c1\n",
            "34 30 0:31 /outer /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n");
  put (host, "sys/fs/cgroup/memory/default/c1/memory.usage_in_bytes", "77\n");
  g_autoptr (GError) error = NULL;
  BerthCgroupStats stats;
  g_assert_true (_berth_cgroup_stats_at (host->root, PID, &stats, &error));
  g_assert_no_error (error);
  g_assert_true (stats.has_memory);
  g_assert_false (stats.has_cpu);
  g_assert_cmpuint (stats.memory_usage_bytes, ==, 77);
}

static void
test_no_cgroup (Host *host, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  BerthCgroupStats stats;
  g_assert_false (_berth_cgroup_stats_at (host->root, PID, &stats, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* In the root cgroup: its figures are the host's, not the process's. */
  put_proc (host, "0::/\n", v2_mountinfo);
  put (host, "sys/fs/cgroup/cpu.stat", "usage_usec 99999\n");
  g_assert_false (_berth_cgroup_stats_at (host->root, PID, &stats, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION);
  g_clear_error (&error);
  g_assert_null (_berth_cgroup_metrics_at (host->root, PID, NULL, &error));
  g_assert_error (error, BERTH_ERROR, BERTH_ERROR_FAILED_PRECONDITION);
}

/* Whatever this machine is, berthd's own process has readable figures. */
/* The OOM-kill counter: in v2's memory.events, or in v1's memory.oom_control where the
 * memory controller is on a v1 hierarchy (as on a hybrid host). */
static void
test_oom_kills (Host *host, gconstpointer data)
{
  put_proc (host, "0::/default/c1\n", v2_mountinfo);
  put (host, "sys/fs/cgroup/default/c1/memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n");
  g_autoptr (GError) error = NULL;
  g_autofree char *v2 = _berth_cgroup_memory_dir_at (host->root, PID, &error);
  g_assert_no_error (error);
  g_autofree char *v2_want = g_build_filename (host->root, "sys/fs/cgroup/default/c1", NULL);
  g_assert_cmpstr (v2, ==, v2_want);
  guint64 count = 0;
  g_assert_true (berth_cgroup_oom_kills (v2, &count));
  g_assert_cmpuint (count, ==, 2);

  put_proc (host, "4:memory:/default/c2\n0::/default/c2\n", hybrid_mountinfo);
  put (host, "sys/fs/cgroup/memory/default/c2/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  g_autofree char *v1 = _berth_cgroup_memory_dir_at (host->root, PID, &error);
  g_assert_no_error (error);
  g_autofree char *v1_want = g_build_filename (host->root, "sys/fs/cgroup/memory/default/c2", NULL);
  g_assert_cmpstr (v1, ==, v1_want);
  g_assert_true (berth_cgroup_oom_kills (v1, &count));
  g_assert_cmpuint (count, ==, 1);

  /* A cgroup the runtime deleted has no counter: not zero kills, no answer. */
  g_autofree char *gone = g_build_filename (host->root, "sys/fs/cgroup/memory/default/gone", NULL);
  g_assert_false (berth_cgroup_oom_kills (gone, &count));
}

static void
test_this_host (void)
{
  g_autoptr (GError) error = NULL;
  BerthCgroupStats stats;
  if (!berth_cgroup_stats ((guint32) getpid (), &stats, &error))
    {
      g_test_skip (error->message);
      return;
    }
  g_assert_true (stats.has_cpu || stats.has_memory || stats.has_pids);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/cgroup/v2", Host, NULL, host_setup, test_v2, host_teardown);
  g_test_add ("/cgroup/hybrid", Host, NULL, host_setup, test_hybrid, host_teardown);
  g_test_add ("/cgroup/mount-root", Host, NULL, host_setup, test_mount_root, host_teardown);
  g_test_add ("/cgroup/no-cgroup", Host, NULL, host_setup, test_no_cgroup, host_teardown);
  g_test_add ("/cgroup/oom-kills", Host, NULL, host_setup, test_oom_kills, host_teardown);
  g_test_add_func ("/cgroup/this-host", test_this_host);
  return g_test_run ();
}
