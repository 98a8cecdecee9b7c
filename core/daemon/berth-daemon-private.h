/* berth-daemon-private.h — building and running the daemon (berthd.c and tests). */
#pragma once

#include "berth-daemon.h"
#include "wire/berth-grpc.h"

G_BEGIN_DECLS

/* Takes @config, also when it fails. Creates root and state, takes the root's lock (a second daemon on the
 * same root is refused, naming the pid), opens metadata, loads plugins. */
BerthDaemon *berth_daemon_new (BerthConfig *config, GError **error);
/* Adds the gRPC services to @server. The daemon core knows no service (they are a layer
 * above it): berthd passes berth_api_register_all. */
typedef void (*BerthDaemonServicesFunc) (BerthGrpcServer *server, BerthDaemon *daemon);
/* Publishes a process's exit (the "exited" signal of a watched task); the service layer
 * owns the event, as it owns the start it must follow: berthd passes
 * berth_api_ops_task_exited. @oom_killed: the OOM killer killed a process of the task
 * since its previous exit (/tasks/oom goes out just before this /tasks/exit). */
typedef void (*BerthDaemonTaskExitFunc) (BerthDaemon *daemon, BerthTask *task, const char *exec_id, guint pid,
                                         guint exit_status, gint64 exited_at, gboolean oom_killed);
/* Reconnects runtimes to their tasks and starts serving @register_services' services:
 * on @listen_fd when ≥ 0 (socket activation), else on the configured address. */
gboolean berth_daemon_start (BerthDaemon *daemon, int listen_fd, BerthDaemonServicesFunc register_services,
                             BerthDaemonTaskExitFunc task_exited, GError **error);
/* Takes @config, re-read from the file: applies what a running daemon can change
 * (log-level, gc-interval, [metrics] address) and logs a "needs restart" warning for
 * every other key or plugin group that differs. */
void berth_daemon_reload (BerthDaemon *daemon, BerthConfig *config);
/* Stops serving; removes the socket. */
void berth_daemon_stop (BerthDaemon *daemon);
/* Finalizes plugins, closes metadata, releases and removes the locks. */
void berth_daemon_free (BerthDaemon *daemon);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthDaemon, berth_daemon_free)

G_END_DECLS
