/* berth-mount.c — mounting the mount lists snapshotters hand out. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <berth/berth-error.h>
#include <berth/berth-types.h>

/* Options that are mount flags rather than filesystem data. */
static const struct {
  const char *name;
  gboolean clear;
  unsigned long flag;
} flag_options[] = {
  { "ro", FALSE, MS_RDONLY },     { "rw", TRUE, MS_RDONLY },        { "bind", FALSE, MS_BIND },
  { "rbind", FALSE, MS_BIND | MS_REC }, { "nosuid", FALSE, MS_NOSUID }, { "suid", TRUE, MS_NOSUID },
  { "nodev", FALSE, MS_NODEV },   { "dev", TRUE, MS_NODEV },        { "noexec", FALSE, MS_NOEXEC },
  { "exec", TRUE, MS_NOEXEC },    { "sync", FALSE, MS_SYNCHRONOUS }, { "async", TRUE, MS_SYNCHRONOUS },
  { "noatime", FALSE, MS_NOATIME }, { "relatime", FALSE, MS_RELATIME }, { "private", FALSE, MS_PRIVATE },
  { "rprivate", FALSE, MS_PRIVATE | MS_REC },
};

static void
parse_options (char **options, unsigned long *flags_out, GString *data)
{
  unsigned long flags = 0;
  for (char **o = options; o != NULL && *o != NULL; o++)
    {
      gboolean is_flag = FALSE;
      for (guint i = 0; i < G_N_ELEMENTS (flag_options); i++)
        if (g_str_equal (*o, flag_options[i].name))
          {
            is_flag = TRUE;
            if (flag_options[i].clear)
              flags &= ~flag_options[i].flag;
            else
              flags |= flag_options[i].flag;
          }
      if (!is_flag)
        g_string_append_printf (data, "%s%s", data->len ? "," : "", *o);
    }
  *flags_out = flags;
}

/* The directory all lowerdirs share, so a mount whose options pass the page size can
 * name them relative to it (as containerd does). */
static char *
common_lower_parent (const char *data)
{
  const char *lower = strstr (data, "lowerdir=");
  if (lower == NULL)
    return NULL;
  lower += strlen ("lowerdir=");
  g_autofree char *list = g_strndup (lower, strcspn (lower, ","));
  g_auto (GStrv) dirs = g_strsplit (list, ":", -1);
  g_autofree char *common = g_path_get_dirname (dirs[0]);
  for (guint i = 1; dirs[i] != NULL; i++)
    while (!g_str_has_prefix (dirs[i], common) || dirs[i][strlen (common)] != '/')
      {
        char *up = g_path_get_dirname (common);
        if (g_str_equal (up, common))
          {
            g_free (up);
            return NULL;
          }
        g_free (common);
        common = up;
      }
  return g_steal_pointer (&common);
}

static char *
relative_to (const char *data, const char *parent)
{
  /* Drop every "<parent>/" in the option string. */
  g_autofree char *needle = g_strconcat (parent, "/", NULL);
  g_auto (GStrv) parts = g_strsplit (data, needle, -1);
  return g_strjoinv ("", parts);
}

static gboolean
mount_one (const BerthMount *m, const char *target, GError **error)
{
  unsigned long flags = 0;
  g_autoptr (GString) data = g_string_new (NULL);
  parse_options (m->options, &flags, data);
  const char *type = m->type;
  if (g_str_equal (type, "bind") || g_str_equal (type, "rbind"))
    {
      flags |= MS_BIND | (g_str_equal (type, "rbind") ? MS_REC : 0);
      type = "none";
    }
  long page = sysconf (_SC_PAGESIZE);
  if ((long) data->len < page - 1)
    {
      /* Bind mounts ignore MS_RDONLY until remounted. */
      if (mount (m->source, target, type, flags & ~(flags & MS_BIND ? MS_RDONLY : 0), data->len ? data->str : NULL) < 0)
        return berth_throw_errno (error, "mounting %s (%s) on %s", m->source, m->type, target);
      if ((flags & MS_BIND) && (flags & MS_RDONLY)
          && mount (NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
        return berth_throw_errno (error, "making %s read-only", target);
      return TRUE;
    }
  /* Too long for one page: mount from a child whose working directory is the layers'
   * common parent, naming each layer relative to it. */
  g_autofree char *parent = common_lower_parent (data->str);
  if (parent == NULL)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "mount options of %zu bytes are too long for %s", data->len,
                        target);
  g_autofree char *short_data = relative_to (data->str, parent);
  if ((long) strlen (short_data) >= page - 1)
    return berth_throw (error, BERTH_ERROR_INVALID_ARGUMENT, "mount options still %zu bytes long relative to %s",
                        strlen (short_data), parent);
  g_autofree char *abs_target = g_canonicalize_filename (target, NULL);
  pid_t pid = fork ();
  if (pid < 0)
    return berth_throw_errno (error, "fork");
  if (pid == 0)
    {
      /* Only async-signal-safe calls from here on. */
      if (chdir (parent) < 0 || mount (m->source, abs_target, type, flags, short_data) < 0)
        _exit (errno);
      _exit (0);
    }
  int status = 0;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      errno = WIFEXITED (status) ? WEXITSTATUS (status) : EIO;
      return berth_throw_errno (error, "mounting %s on %s (relative to %s)", m->type, target, parent);
    }
  return TRUE;
}

gboolean
berth_mount_list_mount (GPtrArray *mounts, const char *target, GError **error)
{
  for (guint i = 0; i < mounts->len; i++)
    if (!mount_one (mounts->pdata[i], target, error))
      {
        for (guint j = i; j > 0; j--)
          umount2 (target, MNT_DETACH);
        return FALSE;
      }
  return TRUE;
}

gboolean
berth_mount_unmount (const char *target, GError **error)
{
  if (umount2 (target, 0) == 0)
    return TRUE;
  if (errno == EINVAL || errno == ENOENT)
    return TRUE; /* not mounted */
  if (errno == EBUSY && umount2 (target, MNT_DETACH) == 0)
    return TRUE;
  return berth_throw_errno (error, "unmounting %s", target);
}
