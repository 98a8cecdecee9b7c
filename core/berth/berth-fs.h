/* berth-fs.h — filesystem helpers plugins share. */
#pragma once

#include <dirent.h>
#include <glib.h>

G_BEGIN_DECLS

/* Removes @name under @dirfd (AT_FDCWD for a path) and everything below it, without
 * following symlinks and without crossing into another filesystem: a directory that is
 * a mount point is refused with EBUSY, so a mount left behind never loses its contents
 * (what `rm -rf --one-file-system` does, without a process per call). A missing @name
 * is success. */
gboolean berth_remove_tree_at (int dirfd, const char *name, GError **error);

/* A listing of the directory open as @fd, which stays open and usable (the listing has
 * its own descriptor); @what names it in the error. closedir() it. */
DIR *berth_fdopendir (int fd, const char *what, GError **error);
/* The next name in @dir, "." and ".." skipped; NULL at the end (errno 0) or on an error
 * (errno set). */
const char *berth_dir_next (DIR *dir);

/* Whether this process runs in a user namespace other than the host's (a rootless
 * berthd under rootlesskit): there, trusted.* xattrs, device nodes and the host's
 * cgroups are out of reach, and overlayfs wants "userxattr". */
gboolean berth_in_user_namespace (void);

G_END_DECLS
