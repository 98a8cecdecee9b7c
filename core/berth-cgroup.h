/* berth-cgroup.h — statistics of a task's cgroups (core-internal). Runtime plugins
 * need not know containerd's cgroup protobufs: the core reads the task's cgroups from
 * /proc/PID/cgroup. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @pid's cgroup v1 statistics (memory, cpuacct, pids) packed as containerd's
 * io.containerd.cgroups.v1.Metrics; *type_url_out names that type. UNIMPLEMENTED on a
 * host with only cgroup v2, NOT_FOUND when @pid is gone. */
GBytes *berth_cgroup_metrics (guint32 pid, char **type_url_out, GError **error);

G_END_DECLS
