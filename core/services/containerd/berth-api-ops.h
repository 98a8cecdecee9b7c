/* berth-api-ops.h — the Containers and Tasks services' operations without a gRPC call
 * around them (core-internal), so the CRI services (core/services/cri/) create, start and delete
 * containers and tasks exactly as ctr's requests do: same records, same events, same
 * GC roots. */
#pragma once

#include "daemon/berth-daemon.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"

G_BEGIN_DECLS

/* Records container @in (validated as Containers.Create does) in namespace @ns and
 * publishes /containers/create. Free the result with berth_grpc_message_free. */
Containerd__Services__Containers__V1__Container *berth_api_ops_container_create (
  BerthDaemon *daemon, const char *ns, const Containerd__Services__Containers__V1__Container *in, GError **error);
/* FAILED_PRECONDITION while the container has a task; NOT_FOUND when there is none. */
gboolean berth_api_ops_container_delete (BerthDaemon *daemon, const char *ns, const char *id, GError **error);

/* The task of container @container_id from its record (spec, runtime), with @rootfs
 * mounted; publishes /tasks/create and watches for its exit. @options NULL: the
 * container's runtime options. */
BerthTask *berth_api_ops_task_create (BerthDaemon *daemon, const char *ns, const char *container_id, GPtrArray *rootfs,
                                      const BerthStdio *stdio, const Google__Protobuf__Any *options,
                                      GCancellable *cancellable, GError **error);
/* Starts init (@exec_id NULL or "") or an exec; publishes /tasks/start or /tasks/exec-started. */
gboolean berth_api_ops_task_start (BerthDaemon *daemon, BerthTask *task, const char *exec_id, guint32 *pid_out,
                                   GCancellable *cancellable, GError **error);
/* Publishes /tasks/exit for a process of @task (the runtime's "exited" signal, any
 * thread): after the process's start event when its Start is still publishing it;
 * preceded by /tasks/oom when @oom_killed. */
void berth_api_ops_task_exited (BerthDaemon *daemon, BerthTask *task, const char *exec_id, guint pid,
                                guint exit_status, gint64 exited_at, gboolean oom_killed);
/* Deletes the exited task (bundle, rootfs mount); publishes /tasks/delete. */
gboolean berth_api_ops_task_delete (BerthDaemon *daemon, BerthTask *task, BerthExitStatus *exit_out,
                                    GCancellable *cancellable, GError **error);

/* Deletes image record @name and publishes /images/delete; NOT_FOUND when absent. */
gboolean berth_api_ops_image_delete (BerthDaemon *daemon, const char *ns, const char *name, GError **error);

G_END_DECLS
