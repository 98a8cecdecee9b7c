/* berth-api-util.h — conversions every containerd service needs (core-internal); the
 * metadata records themselves are in berth-metadata-schema.h. */
#pragma once

#include "wire/berth-grpc-wire.h"

#include "wire/berth-grpc.h"
#include "metadata/berth-metadata-schema.h"
#include "daemon/berth-daemon.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "github.com/containerd/containerd/api/types/mount.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"

G_BEGIN_DECLS

/* Applies a field mask's paths to @labels from @update: "labels" replaces all,
 * "labels.<k>" sets or removes one key. Other paths are left to the caller: returns
 * FALSE with INVALID_ARGUMENT naming a path that is neither. */
gboolean berth_api_update_labels (GHashTable *labels, GHashTable *update, char **paths, gsize n_paths,
                                  const char *const *other_allowed, GError **error);

/* A deep copy whose every pointer is owned (pack + unpack through the server's
 * allocator): ready to be a response, freed with berth_grpc_message_free. */
gpointer berth_api_message_copy (const ProtobufCMessage *message);
/* Unpacks a stored record the same way (NULL when it does not parse). */
gpointer berth_api_message_unpack (const ProtobufCMessageDescriptor *descriptor, const guint8 *data, gsize len);

/* Parses a request's filters: protobuf-c's repeated strings are counted, not
 * NULL-terminated, so they never go to a GStrv function directly. */
BerthFilter *berth_api_filter_parse (char **filters, size_t n_filters, GError **error);
/* Whether a counted string array (a field mask's paths) holds @value. */
gboolean berth_api_strings_contain (char **strings, size_t n, const char *value);

/* Publishes @event on @topic in the call's namespace. */
void berth_api_publish (BerthGrpcCall *call, const char *topic, const ProtobufCMessage *event);

/* BerthMount lists → API mounts (the other way: berth_proto_mounts_to_list). */
Containerd__Types__Mount **berth_api_mounts_to (GPtrArray *mounts, size_t *n_out);

/* The value of "labels.<key>" for a filter lookup over a message's map entries. */
const char *berth_api_label_field (const char *const *fieldpath, void *const *entries, size_t n_entries);

/* Waiting for a process to exit without a thread: @func runs once, when process
 * @exec_id (NULL or "": init) of @task exits (from the thread the runtime announces it
 * in, usually the main one) or at once, in this call, if it has exited already; with
 * @error (NOT_FOUND) when there is no such exec. Call from a worker: it asks the runtime
 * for the process's state. @func runs under the waiter's lock: it must not block or
 * cancel the waiter. After berth_api_exit_waiter_cancel returns, @func does not run. */
typedef struct _BerthApiExitWaiter BerthApiExitWaiter;
typedef void (*BerthApiExitFunc) (const BerthExitStatus *exit, const GError *error, gpointer user_data);
BerthApiExitWaiter *berth_api_wait_exit (BerthTask *task, const char *exec_id, BerthApiExitFunc func,
                                         gpointer user_data);
void berth_api_exit_waiter_cancel (BerthApiExitWaiter *waiter);

G_END_DECLS
