/* berth-fs.c — filesystem helpers plugins share. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include <berth/berth-fs.h>

DIR *
berth_fdopendir (int fd, const char *what, GError **error)
{
  int list_fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
  DIR *dir = list_fd >= 0 ? fdopendir (list_fd) : NULL;
  if (dir == NULL)
    {
      berth_throw_errno (error, "listing %s", what);
      if (list_fd >= 0)
        close (list_fd);
    }
  return dir;
}

const char *
berth_dir_next (DIR *dir)
{
  struct dirent *entry;
  do
    errno = 0;
  while ((entry = readdir (dir)) != NULL && (g_str_equal (entry->d_name, ".") || g_str_equal (entry->d_name, "..")));
  return entry ? entry->d_name : NULL;
}

/* Empties the directory open as @fd (on device @dev); @what names it in errors. */
static gboolean
empty_dir (int fd, dev_t dev, const char *what, GError **error)
{
  DIR *dir = berth_fdopendir (fd, what, error);
  if (dir == NULL)
    return FALSE;
  gboolean ok = TRUE;
  const char *name = NULL;
  while (ok && (name = berth_dir_next (dir)) != NULL)
    {
      if (unlinkat (fd, name, 0) == 0 || errno == ENOENT)
        continue;
      if (errno != EISDIR && errno != EPERM)
        {
          ok = berth_throw_errno (error, "removing %s/%s", what, name);
          break;
        }
      berth_autofd int child = openat (fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      struct stat st;
      g_autofree char *child_what = g_strdup_printf ("%s/%s", what, name);
      if (child < 0 || fstat (child, &st) < 0)
        ok = berth_throw_errno (error, "removing %s", child_what);
      else if (st.st_dev != dev)
        {
          errno = EBUSY;
          ok = berth_throw_errno (error, "removing %s: a filesystem is mounted there", child_what);
        }
      else
        ok = empty_dir (child, dev, child_what, error)
             && (unlinkat (fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT
                 || berth_throw_errno (error, "removing %s", child_what));
    }
  if (ok && errno != 0 && name == NULL)
    ok = berth_throw_errno (error, "listing %s", what);
  closedir (dir);
  return ok;
}

gboolean
berth_remove_tree_at (int dirfd, const char *name, GError **error)
{
  if (unlinkat (dirfd, name, 0) == 0 || errno == ENOENT)
    return TRUE;
  if (errno != EISDIR && errno != EPERM)
    return berth_throw_errno (error, "removing %s", name);
  berth_autofd int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT || berth_throw_errno (error, "removing %s", name);
  struct stat st, parent;
  if (fstat (fd, &st) < 0)
    return berth_throw_errno (error, "removing %s", name);
  /* @name itself a mount point: refuse, as for anything below it. */
  g_autofree char *parent_name = g_path_get_dirname (name);
  if (fstatat (dirfd, parent_name, &parent, 0) == 0 && parent.st_dev != st.st_dev)
    {
      errno = EBUSY;
      return berth_throw_errno (error, "removing %s: a filesystem is mounted there", name);
    }
  if (!empty_dir (fd, st.st_dev, name, error))
    return FALSE;
  if (unlinkat (dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return berth_throw_errno (error, "removing %s", name);
  return TRUE;
}

gboolean
berth_in_user_namespace (void)
{
  static gsize once = 0;
  static gboolean in_userns;
  if (g_once_init_enter (&once))
    {
      /* The initial namespace maps every uid onto itself: "0 0 4294967295". */
      g_autofree char *map = NULL;
      guint64 inside = 0, outside = 0, count = 0;
      if (g_file_get_contents ("/proc/self/uid_map", &map, NULL, NULL)
          && sscanf (map, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &inside, &outside, &count) == 3)
        in_userns = !(inside == 0 && outside == 0 && count == G_MAXUINT32);
      g_once_init_leave (&once, 1);
    }
  return in_userns;
}
