/* berth-json.h — JSON accessors for documents from hostile sources (manifests, indexes,
 * image configs, registry replies): a member of the wrong type reads as absent, where
 * json-glib's own getters complain loudly instead. Shared by berthd and the berth CLI.
 */
#pragma once

#include <json-glib/json-glib.h>
#include <berth/berth-json-limits.h>

G_BEGIN_DECLS

/* This machine's GOARCH: "amd64", "arm64", … */
const char *berth_host_architecture (void);

JsonObject *berth_json_member_object (JsonObject *object, const char *name);
JsonArray *berth_json_member_array (JsonObject *object, const char *name);
const char *berth_json_member_string (JsonObject *object, const char *name);
gint64 berth_json_member_int (JsonObject *object, const char *name);
guint berth_json_array_length (JsonArray *array);
JsonObject *berth_json_element_object (JsonArray *array, guint i);
const char *berth_json_element_string (JsonArray *array, guint i);
/* The digest of the entry of an index's @manifests for linux on this machine's
 * architecture (an entry without a platform counts as one); NULL when none is. */
const char *berth_json_host_manifest (JsonArray *manifests);
/* The root of a JSON document of @len bytes, checked against BERTH_JSON_MAX_DEPTH and
 * BERTH_JSON_MAX_SIZE first; INVALID_ARGUMENT naming @what when it is not valid JSON or
 * breaks a limit. Every JSON document from outside goes through here (or at least through
 * berth_json_check_limits, for plugins). */
JsonNode *berth_json_parse (const char *data, gsize len, const char *what, GError **error);
/* A JSON document's root object; INVALID_ARGUMENT naming @what when it is not one. */
JsonNode *berth_json_parse_object (GBytes *bytes, const char *what, GError **error);
char *berth_json_to_text (JsonNode *node, gsize *len);

G_END_DECLS
