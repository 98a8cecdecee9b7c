/* berth-daemon.h — the daemon object that services reach everything through
 * (core-internal). */
#pragma once

#include <berth/berth.h>
#include "berth-config.h"
#include "berth-registry.h"
#include "metadata/berth-metadata.h"
#include "berth-events.h"

G_BEGIN_DECLS

typedef struct _BerthDaemon BerthDaemon;

BerthConfig *berth_daemon_get_config (BerthDaemon *daemon);
BerthRegistry *berth_daemon_get_registry (BerthDaemon *daemon);
BerthMetadata *berth_daemon_get_metadata (BerthDaemon *daemon);
BerthEvents *berth_daemon_get_events (BerthDaemon *daemon);

/* Loaded backends, by kind. NOT_FOUND / FAILED_PRECONDITION with the plugin's load error
 * when the asked-for one is missing or failed. (transfer none) */
BerthContentStore *berth_daemon_get_content_store (BerthDaemon *daemon, GError **error);
/* @name: "overlayfs", … or NULL for the configured default. */
BerthSnapshotter *berth_daemon_get_snapshotter (BerthDaemon *daemon, const char *name, GError **error);
BerthDiffer *berth_daemon_get_differ (BerthDaemon *daemon, const char *name, GError **error);
/* @name: a runtime name as clients send it ("io.containerd.runc.v2") or NULL. */
BerthRuntime *berth_daemon_get_runtime (BerthDaemon *daemon, const char *name, GError **error);

/* Every task of @namespace_ (NULL: of all namespaces), of every runtime plugin.
 * (transfer full) */
GPtrArray *berth_daemon_list_tasks (BerthDaemon *daemon, const char *namespace_, GError **error);
/* The task @id of @namespace_, whichever runtime plugin runs it; NOT_FOUND. (transfer full) */
BerthTask *berth_daemon_find_task (BerthDaemon *daemon, const char *namespace_, const char *id, GError **error);

/* Publishes /tasks/exit when a process of @task exits, on the runtime's "exited"
 * signal (no thread waits). Idempotent per task; @exec_id is not needed any more. */
void berth_daemon_watch_exit (BerthDaemon *daemon, BerthTask *task, const char *exec_id);
/* TRUE once the kernel's OOM killer killed a process of @task (seen when one of its
 * processes exited; /tasks/oom was published then): what CRI reports as "OOMKilled". */
gboolean berth_daemon_task_oom_killed (BerthTask *task);

G_END_DECLS
