/* berth-cli.h — what the berth CLI's command files share.
 *
 * Exit codes follow docker/podman: 0 success, 1 an object named on the command line
 * does not exist, 125 any other failure of berth itself (bad flags, daemon
 * unreachable, a gRPC error); `berth run` otherwise exits with the container's status
 * (126/127 when the command cannot be run / is not found). */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "berth-grpc-client.h"

G_BEGIN_DECLS

#define CLI_EXIT_NOT_FOUND 1
#define CLI_EXIT_ERROR 125

typedef struct {
  char *address;
  char *ns;
  gboolean debug;
  BerthGrpcClient *client; /* connected on first use */
} BerthCli;

typedef int (*BerthCliCommand) (BerthCli *cli, int argc, char **argv);

/* The connection, opened on first use. */
BerthGrpcClient *cli_client (BerthCli *cli, GError **error);
/* A second connection, for a thread of its own (the client is not thread-safe). */
BerthGrpcClient *cli_client_new (BerthCli *cli, GError **error);
gpointer cli_unary (BerthCli *cli, const char *path, const ProtobufCMessage *request,
                    const ProtobufCMessageDescriptor *response_type, GError **error);

/* The daemon's default snapshotter (the one Introspection exports as "default"); a
 * daemon that names none (containerd) gets containerd's default, overlayfs. */
const char *cli_default_snapshotter (BerthCli *cli);

/* Prints "berth: WHAT: MESSAGE" (plus a hint for the usual mistakes) and returns the
 * exit code for @error. */
int cli_fail (const GError *error, const char *format, ...) G_GNUC_PRINTF (2, 3);
int cli_usage (GOptionContext *context, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Parses @argv with @entries; NULL-terminated @argv left with the positional args.
 * Returns FALSE after printing the error (exit code in *exit_code). */
gboolean cli_parse (GOptionContext *context, int *argc, char ***argv, int *exit_code);

/* Dispatches "berth GROUP SUB …" to @table's entry for SUB. */
typedef struct {
  const char *name;
  BerthCliCommand run;
  const char *summary;
} BerthCliSubcommand;
int cli_dispatch (BerthCli *cli, const char *group, const BerthCliSubcommand *table, int argc, char **argv);

/* 1.2 MB / 3.4 GB … */
char *cli_format_size (gint64 bytes);
/* "3 seconds ago", from nanoseconds since the epoch. */
char *cli_format_age (gint64 unix_ns);
void cli_print_json (JsonNode *node);
/* JSON listings: a member each, a labels object from protobuf-c map entries (every
 * *LabelsEntry message is {base, key, value}), and the end of a listing's array,
 * printed when @json. */
void cli_json_string (JsonBuilder *builder, const char *name, const char *value);
void cli_json_int (JsonBuilder *builder, const char *name, gint64 value);
void cli_json_labels (JsonBuilder *builder, void *const *entries, size_t n);
void cli_json_finish (JsonBuilder *builder, gboolean json);

/* A server-streaming call: started, its one request sent and the sending side closed. */
BerthGrpcClientCall *cli_server_stream (BerthCli *cli, const char *path, const ProtobufCMessage *request,
                                        const ProtobufCMessageDescriptor *response_type, GError **error);

/* A whole blob through Content.Read. */
GBytes *cli_read_blob (BerthCli *cli, const char *digest, gsize max, GError **error);
JsonObject *cli_read_json_blob (BerthCli *cli, const char *digest, GError **error);

/* The image's manifest for this host's platform, its config, and the layers' chain ids. */
typedef struct {
  char *name;
  char *manifest_digest;
  JsonObject *manifest;
  char *config_digest;
  JsonObject *config;
  GPtrArray *layers;    /* JsonObject* descriptors */
  GPtrArray *chain_ids; /* char*, one per layer */
  gint64 size;          /* manifest + config + layers */
} CliImage;
void cli_image_free (CliImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CliImage, cli_image_free)
CliImage *cli_image_resolve (BerthCli *cli, const char *name, GError **error);
/* Applies missing layers into @snapshotter (idempotent), as `ctr images import` does. */
gboolean cli_image_unpack (BerthCli *cli, CliImage *image, const char *snapshotter, GError **error);

/* The live progress line (TTY) or plain lines (not a TTY), for import/pull/push. */
typedef struct _CliProgress CliProgress;
CliProgress *cli_progress_new (const char *what, gint64 total, gboolean quiet);
void cli_progress_update (CliProgress *progress, gint64 done);
/* For totals learnt on the way (a pull knows its layers once it has the manifest). */
void cli_progress_set_total (CliProgress *progress, gint64 total);
void cli_progress_item (CliProgress *progress, const char *text);
void cli_progress_finish (CliProgress *progress);

/* Command groups. */
int cli_cmd_image (BerthCli *cli, int argc, char **argv);
int cli_cmd_images (BerthCli *cli, int argc, char **argv);
int cli_cmd_image_import (BerthCli *cli, int argc, char **argv);
int cli_cmd_pull (BerthCli *cli, int argc, char **argv);
int cli_cmd_push (BerthCli *cli, int argc, char **argv);
int cli_cmd_run (BerthCli *cli, int argc, char **argv);
int cli_cmd_ps (BerthCli *cli, int argc, char **argv);
int cli_cmd_exec (BerthCli *cli, int argc, char **argv);
int cli_cmd_logs (BerthCli *cli, int argc, char **argv);
int cli_cmd_stop (BerthCli *cli, int argc, char **argv);
int cli_cmd_kill (BerthCli *cli, int argc, char **argv);
int cli_cmd_rm (BerthCli *cli, int argc, char **argv);
int cli_cmd_version (BerthCli *cli, int argc, char **argv);
int cli_cmd_info (BerthCli *cli, int argc, char **argv);
int cli_cmd_plugins (BerthCli *cli, int argc, char **argv);
int cli_cmd_events (BerthCli *cli, int argc, char **argv);
int cli_cmd_gc (BerthCli *cli, int argc, char **argv);
int cli_cmd_snapshot (BerthCli *cli, int argc, char **argv);
int cli_cmd_lease (BerthCli *cli, int argc, char **argv);
int cli_cmd_seccomp (BerthCli *cli, int argc, char **argv);

G_END_DECLS
