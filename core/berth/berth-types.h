/* berth-types.h — plain data passed across the plugin interfaces. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* One mount, as containerd's types.Mount: what to mount, never mounted by its maker. */
typedef struct {
  char *type;     /* "overlay", "bind", … */
  char *source;
  char *target;   /* optional subpath, usually NULL */
  GStrv options;  /* "ro", "lowerdir=…", … */
} BerthMount;

#define BERTH_TYPE_MOUNT (berth_mount_get_type ())
GType berth_mount_get_type (void);
BerthMount *berth_mount_new (const char *type, const char *source, const char *const *options);
BerthMount *berth_mount_copy (const BerthMount *mount);
void berth_mount_free (BerthMount *mount);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthMount, berth_mount_free)
/* A GPtrArray of BerthMount that frees its elements. */
GPtrArray *berth_mount_list_new (void);
/* Mounts @mounts (in order, as containerd's mount.All) onto @target. Blocks. */
gboolean berth_mount_list_mount (GPtrArray *mounts, const char *target, GError **error);
/* Unmounts @target (lazily if busy). */
gboolean berth_mount_unmount (const char *target, GError **error);

/* An OCI content descriptor. */
typedef struct {
  char *media_type;
  char *digest;          /* "sha256:<hex>" */
  gint64 size;
  GHashTable *annotations; /* char* → char*, may be NULL */
} BerthDescriptor;

#define BERTH_TYPE_DESCRIPTOR (berth_descriptor_get_type ())
GType berth_descriptor_get_type (void);
BerthDescriptor *berth_descriptor_new (const char *media_type, const char *digest, gint64 size);
BerthDescriptor *berth_descriptor_copy (const BerthDescriptor *desc);
void berth_descriptor_free (BerthDescriptor *desc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthDescriptor, berth_descriptor_free)

/* Labels: a GHashTable char* → char* with owned strings. */
GHashTable *berth_labels_new (void);
GHashTable *berth_labels_copy (GHashTable *labels);
/* containerd's limits: one label ≤ 4096 bytes (key + value), all ≤ 16 KiB. */
gboolean berth_labels_validate (GHashTable *labels, GError **error);

/* A digest "sha256:<64 hex>" (only sha256 is accepted). */
gboolean berth_digest_validate (const char *digest, GError **error);

/* A key filter, as containerd's filters package: `labels."a"==b,name~=re` … The
 * core parses; plugins receive the parsed filter and ask it about each object. */
typedef struct _BerthFilter BerthFilter;
/* Looks up a field of the object under test, e.g. "name", "labels.foo"; returns NULL
 * when the object has no such field. */
typedef const char *(*BerthFieldLookup) (const char *const *fieldpath, gpointer object);
BerthFilter *berth_filter_parse (const char *const *filters, GError **error);
gboolean berth_filter_match (BerthFilter *filter, BerthFieldLookup lookup, gpointer object);
void berth_filter_free (BerthFilter *filter);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BerthFilter, berth_filter_free)

G_END_DECLS
