/* berth-cri.h — the Kubernetes CRI v1 services inside berthd (core-internal).
 *
 * cri-runtime.c serves runtime.v1.RuntimeService (pods there; containers in
 * cri-containers.c, cri-container-spec.c and cri-container-status.c) and cri-images.c
 * runtime.v1.ImageService. Everything lives in berth's metadata namespace "k8s.io": a pod
 * sandbox is a berth container + task running berth-pause from a root filesystem berthd
 * prepares itself, holding the pod's network (a CNI-configured namespace bound under
 * <state>/cri/netns/), IPC and UTS namespaces; a CRI container is a berth container +
 * task (created at StartContainer) on a snapshot of its image, joining those
 * namespaces. berth's own records of both (berth-cri.proto) are under "cri/k8s.io/".
 */
#pragma once

#include "wire/berth-grpc.h"
#include "daemon/berth-daemon.h"
#include "api.pb-c.h"
#include "berth-cri.pb-c.h"
#include "image/berth-image-info.h"
#include "image/berth-snapshots.h"
#include "google/protobuf/any.pb-c.h"
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define BERTH_CRI_NAMESPACE "k8s.io"

typedef Berth__Cri__V1__SandboxRecord CriSandbox;
typedef Berth__Cri__V1__ContainerRecord CriContainer;

void berth_cri_register (BerthGrpcServer *server, BerthDaemon *daemon);
void berth_cri_register_images (BerthGrpcServer *server, BerthDaemon *daemon);

/* Records, by kind ("sandboxes", "containers"): NOT_FOUND naming the id when absent.
 * Free with berth_grpc_message_free. */
gpointer berth_cri_record_get (BerthDaemon *daemon, const char *kind, const char *id,
                               const ProtobufCMessageDescriptor *descriptor, GError **error);
gboolean berth_cri_record_put (BerthDaemon *daemon, const char *kind, const char *id, const ProtobufCMessage *record,
                               GError **error);
gboolean berth_cri_record_delete (BerthDaemon *daemon, const char *kind, const char *id, GError **error);
/* Every record of @kind (berth_grpc_message_free as the array's free function). */
GPtrArray *berth_cri_record_list (BerthDaemon *daemon, const char *kind, const ProtobufCMessageDescriptor *descriptor,
                                  GError **error);
CriSandbox *berth_cri_sandbox_get (BerthDaemon *daemon, const char *id, GError **error);
CriContainer *berth_cri_container_get (BerthDaemon *daemon, const char *id, GError **error);

/* Serialises lifecycle operations on one object (sandbox or container id). */
void berth_cri_lock (const char *id);
void berth_cri_unlock (const char *id);

/* A fresh 64-hex-digit id, as containerd's CRI makes. */
char *berth_cri_new_id (void);
/* A rootless berthd (berthd --rootless) refuses what only real root may do, with an
 * error that says so: a privileged pod or container (the host's devices), a negative
 * oom_score_adj. @what names the request in the error. */
gboolean berth_cri_check_rootless (BerthDaemon *daemon, const char *what, gboolean privileged, gint64 oom_score_adj,
                                   GError **error);
/* <state>/cri/<what>[/<id>] */
char *berth_cri_path (BerthDaemon *daemon, const char *what, const char *id);
/* ROOT/io.containerd.grpc.v1.cri/sandboxes/ID: the pod's hosts, hostname, resolv.conf. */
char *berth_cri_sandbox_dir (BerthDaemon *daemon, const char *id);
/* Whether every pair of @selector is among @entries (map entries). */
gboolean berth_cri_labels_match (void *const *selector, size_t n_selector, void *const *entries, size_t n_entries);
/* The task of berth container @id in k8s.io, NULL when there is none. */
BerthTask *berth_cri_task (BerthDaemon *daemon, const char *id);
/* A finished container's CRI reason: "OOMKilled", "Completed" or "Error". */
const char *berth_cri_exit_reason (const BerthExitStatus *exit, gboolean oom_killed);
/* The task of container (or sandbox) @id when it is running; else FAILED_PRECONDITION. */
BerthTask *berth_cri_running_task (BerthDaemon *daemon, const char *id, GError **error);
/* Kills @task's processes with SIGKILL, waits for the exit and deletes the task. */
gboolean berth_cri_task_destroy (BerthDaemon *daemon, BerthTask *task, BerthExitStatus *exit_out, GError **error);

/* Replaces a string field of a message: unpacked messages hold protobuf-c's static ""
 * in empty fields, which must not be freed. */
static inline void
berth_cri_set_string (char **field, const char *value)
{
  if (*field != protobuf_c_empty_string)
    g_free (*field);
  *field = g_strdup (value ? value : "");
}

/* The berth container's runtime for a runtime handler ([plugin.cri] runtime-handlers):
 * its name in *@runtime_name (owned by the daemon), and runc's Options naming the binary
 * when the handler names one, else NULL. Free with berth_grpc_message_free. */
Google__Protobuf__Any *berth_cri_runtime_options (BerthDaemon *daemon, const char *handler, const char **runtime_name);

/* Map entries of one protoc-c type copied as another's (they share a layout). */
void berth_cri_entries_copy (void *const *entries, size_t n, const ProtobufCMessageDescriptor *descriptor, void ***out,
                             size_t *n_out);
#define BERTH_CRI_ENTRIES_COPY(from, n_from, descriptor, to, n_to) \
  berth_cri_entries_copy ((void *const *) (from), (n_from), (descriptor), (void ***) &(to), &(n_to))
/* Points the spec's namespace @type at @path; NULL: a new one; "": the host's (no entry). */
void berth_cri_spec_set_namespace (JsonObject *spec, const char *type, const char *path);
/* The seccomp profile for BerthSpecOptions from a CRI profile (or the deprecated path
 * form): *out is NULL for the default, "unconfined", or a file. An unset profile is
 * unconfined, as the CRI says. A path form other than runtime/default, docker/default,
 * unconfined or localhost/PATH is INVALID_ARGUMENT, as on containerd. */
gboolean berth_cri_seccomp (const Runtime__V1__SecurityProfile *profile, const char *legacy_path, const char **out,
                            GError **error);
/* Checks a container's AppArmor profile (or its deprecated name form): runtime/default,
 * unconfined or localhost/NAME, else INVALID_ARGUMENT. *out is the profile to put in the
 * spec (NULL: none). A named profile on a host without AppArmor is FAILED_PRECONDITION. */
gboolean berth_cri_apparmor (const Runtime__V1__SecurityProfile *profile, const char *legacy_name, const char **out,
                             GError **error);
/* The deprecated seccomp_profile_path fields, which older kubelets still send. */
G_GNUC_BEGIN_IGNORE_DEPRECATIONS
static inline const char *
berth_cri_legacy_seccomp_sandbox (const Runtime__V1__LinuxSandboxSecurityContext *sc)
{
  return sc->seccomp_profile_path;
}
static inline const char *
berth_cri_legacy_seccomp_container (const Runtime__V1__LinuxContainerSecurityContext *sc)
{
  return sc->seccomp_profile_path;
}
static inline const char *
berth_cri_legacy_apparmor_container (const Runtime__V1__LinuxContainerSecurityContext *sc)
{
  return sc->apparmor_profile;
}
G_GNUC_END_IGNORE_DEPRECATIONS

/* cri-containers.c and cri-container-status.c: the handlers, and what sandboxes need of
 * containers. */
ProtobufCMessage *cri_create_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_start_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_stop_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_remove_container (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_list_containers (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_container_status (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_update_container_resources (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon,
                                                  GError **error);
ProtobufCMessage *cri_reopen_container_log (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon,
                                           GError **error);
ProtobufCMessage *cri_exec_sync (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_container_stats (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_list_container_stats (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon,
                                            GError **error);
/* Runs @cmd in running container @container_id (FAILED_PRECONDITION when it is not)
 * with @stdio, waits up to @timeout_ms (< 0: no limit) for its exit, and deletes the
 * exec. On timeout or cancellation the process is killed: DEADLINE_EXCEEDED/CANCELLED. */
gboolean berth_cri_exec (BerthDaemon *daemon, const char *container_id, char **cmd, size_t n_cmd, const BerthStdio *stdio,
                         gint64 timeout_ms, BerthExitStatus *exit, GCancellable *cancellable, GError **error);
/* The same as exec @exec_id (from berth_cri_exec_id_new), which the caller may resize
 * while it runs (a terminal: @stdio->terminal). */
gboolean berth_cri_exec_as (BerthDaemon *daemon, const char *container_id, const char *exec_id, char **cmd, size_t n_cmd,
                            const BerthStdio *stdio, gint64 timeout_ms, BerthExitStatus *exit, GCancellable *cancellable,
                            GError **error);
char *berth_cri_exec_id_new (void);
/* A container's stdin FIFO (for a container created with stdin), which berthd keeps
 * open until berth_cri_stdin_close (@remove: and removes it); see cri-stream.c. */
char *berth_cri_stdin_open (BerthDaemon *daemon, const char *id, GError **error);
void berth_cri_stdin_close (BerthDaemon *daemon, const char *id, gboolean remove);
/* The output FIFO of a container created without a log path, which Attach reads
 * (<state>/cri/output/<id>, made anew); see cri-stream.c. */
char *berth_cri_output_open (BerthDaemon *daemon, const char *id, GError **error);
void berth_cri_output_remove (BerthDaemon *daemon, const char *id);
/* <state>/cri/exec/<random>, created 0700, for one exec's stdio files or FIFOs
 * ("stdin", "stdout", "stderr"); berth_cri_exec_dir_remove removes them and it. */
char *berth_cri_exec_dir_new (BerthDaemon *daemon, GError **error);
void berth_cri_exec_dir_remove (const char *dir);
/* Stops (and with @remove, removes) every container of sandbox @sandbox_id. */
gboolean berth_cri_containers_of_sandbox_stop (BerthDaemon *daemon, const char *sandbox_id, gboolean remove,
                                               GError **error);
/* ContainerStatus of a record. */
Runtime__V1__ContainerStatus *berth_cri_container_status_new (BerthDaemon *daemon, const CriContainer *record);
/* Stats of one container (NULL with @error when its figures cannot be read). */
Runtime__V1__ContainerStats *berth_cri_container_stats_new (BerthDaemon *daemon, const CriContainer *record,
                                                            GError **error);

/* cri-stream.c: Exec, Attach and PortForward, answered with a URL of the streaming
 * server on loopback ([cri] stream-address), started on the first such request. */
ProtobufCMessage *cri_exec (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_attach (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);
ProtobufCMessage *cri_port_forward (BerthGrpcCall *call, const ProtobufCMessage *request, gpointer daemon, GError **error);

/* cri-images.c: an image by name, normalised reference or ID ("sha256:<config digest>"). */
BerthImageInfo *berth_cri_image_lookup (BerthDaemon *daemon, const char *ref, GCancellable *cancellable, GError **error);

/* ---------------- between cri-runtime.c and cri-sandboxes.c (hidden) ---------------- */

/* The metadata key of CRI record @kind ("sandboxes", "containers") @id; NULL: the prefix. */
G_GNUC_INTERNAL char *cri_record_key (const char *kind, const char *id);
/* FAILED_PRECONDITION when the configured runtime handlers could not be loaded,
 * INVALID_ARGUMENT naming the known ones when @handler is not one of them. */
G_GNUC_INTERNAL gboolean cri_handler_check (const char *handler, GError **error);
/* The sandbox calls of the RuntimeService (cri-sandboxes.c). */
G_GNUC_INTERNAL ProtobufCMessage *cri_run_pod_sandbox (BerthGrpcCall *call, const ProtobufCMessage *request,
                                                       gpointer daemon, GError **error);
G_GNUC_INTERNAL ProtobufCMessage *cri_stop_pod_sandbox (BerthGrpcCall *call, const ProtobufCMessage *request,
                                                        gpointer daemon, GError **error);
G_GNUC_INTERNAL ProtobufCMessage *cri_remove_pod_sandbox (BerthGrpcCall *call, const ProtobufCMessage *request,
                                                          gpointer daemon, GError **error);
G_GNUC_INTERNAL ProtobufCMessage *cri_pod_sandbox_status (BerthGrpcCall *call, const ProtobufCMessage *request,
                                                          gpointer daemon, GError **error);
G_GNUC_INTERNAL ProtobufCMessage *cri_list_pod_sandbox (BerthGrpcCall *call, const ProtobufCMessage *request,
                                                        gpointer daemon, GError **error);
G_GNUC_INTERNAL ProtobufCMessage *cri_pod_sandbox_stats (BerthGrpcCall *call, const ProtobufCMessage *request,
                                                         gpointer daemon, GError **error);
G_GNUC_INTERNAL ProtobufCMessage *cri_list_pod_sandbox_stats (BerthGrpcCall *call, const ProtobufCMessage *request,
                                                              gpointer daemon, GError **error);

/* ---------------- between the cri-container*.c files and cri-exec-sync.c (hidden) ---------------- */

/* A JSON array of @n strings. */
G_GNUC_INTERNAL JsonArray *cri_json_strings (char **strings, size_t n);
/* The OCI LinuxResources of the CRI's resources: memory and CPU (cri-container-spec.c). */
G_GNUC_INTERNAL JsonObject *cri_resources_json (const Runtime__V1__LinuxContainerResources *r);
/* The OCI spec of container @record in @sandbox, on @image's @rootfs mounts
 * (cri-container-spec.c). */
G_GNUC_INTERNAL JsonNode *cri_container_spec (BerthDaemon *daemon, const CriSandbox *sandbox, const CriContainer *record,
                                              BerthImageInfo *image, GPtrArray *rootfs, GError **error);
/* The snapshots of container @id's snapshotter (its name in *@name_out) (cri-containers.c). */
G_GNUC_INTERNAL gboolean cri_container_snapshots (BerthDaemon *daemon, const char *id, BerthSnapshots *snaps,
                                                  char **name_out, GError **error);
/* Polls until @exec_id (NULL: init) of @task exits or @timeout_ms passes (< 0: never).
 * FALSE on timeout or cancellation. */
G_GNUC_INTERNAL gboolean cri_wait_exit (BerthTask *task, const char *exec_id, gint64 timeout_ms,
                                        BerthExitStatus *exit, GCancellable *cancellable);

G_END_DECLS
