/* berth-cni.h — pods' networks through CNI plugins (core-internal), per the CNI spec
 * (1.0): a network configuration list from the configured directory, each plugin
 * executed from the plugin directory with CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/
 * CNI_IFNAME/CNI_ARGS/CNI_PATH in its environment and its configuration (name,
 * cniVersion, prevResult, runtimeConfig for the capabilities it declares) on stdin.
 * ADD runs the list in order, chaining each result into the next as prevResult; DEL
 * runs it in reverse with the ADD result; CHECK in order. The loopback interface is set
 * up by the "loopback" plugin, as containerd does, outside the list.
 *
 * Network namespaces are files under berthd's state dir: a bind mount of the namespace
 * of a short-lived child that unshared it.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Creates a new network namespace bound at @path (a file that must not exist). */
gboolean berth_netns_create (const char *path, GError **error);
/* Unmounts and removes @path; nothing there is fine. */
gboolean berth_netns_remove (const char *path, GError **error);

typedef struct {
  const char *bin_dir;
  const char *network;      /* the configuration list, JSON text (berth_cni_load_network) */
  const char *container_id;
  const char *netns;
  const char *ifname;       /* "eth0" */
  const char *args;         /* CNI_ARGS, may be NULL */
  JsonNode *runtime_config; /* {"portMappings": [...]} or NULL */
} BerthCniCall;

/* The first configuration in @conf_dir in lexical order (*.conflist, *.conf or *.json),
 * as a configuration list's JSON text; NOT_FOUND naming the directory when there is none,
 * INVALID_ARGUMENT naming the file when it is malformed. *name_out: its network name. */
char *berth_cni_load_network (const char *conf_dir, char **name_out, GError **error);
/* Returns the final result, JSON text. A failed ADD is undone (DEL) before returning. */
char *berth_cni_add (const BerthCniCall *call, GError **error);
gboolean berth_cni_del (const BerthCniCall *call, const char *prev_result, GError **error);
gboolean berth_cni_check (const BerthCniCall *call, const char *prev_result, GError **error);
/* The addresses (without prefix length) of a result's "ips", in order. */
GPtrArray *berth_cni_result_ips (const char *result);

G_END_DECLS
