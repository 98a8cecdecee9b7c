/* berth-image-modules.c — the daemon's entry points into the image modules
 * (image-archive: libarchive; registry-client: pull and push, whose HTTP helper process
 * opens http-fetch: libsoup and TLS), opened on first use
 * (core/daemon/berth-modules.h). */
#include "config.h"

#include <berth/berth.h>
#include "daemon/berth-modules.h"
#include "berth-distribution.h"
#include "berth-image-archive.h"

/* ---------------- image archives (libarchive) ---------------- */

/* Weak: defined only in a program that links berth-image-archive.c itself. */
extern __typeof__ (berth_image_archive_module_import) berth_image_archive_module_import __attribute__ ((weak));
extern __typeof__ (berth_image_archive_module_export) berth_image_archive_module_export __attribute__ ((weak));

GPtrArray *
berth_image_archive_import_full (BerthDaemon *daemon, const char *ns, GInputStream *input, const char *base_name,
                                 BerthImageArchiveProgress progress, gpointer progress_data,
                                 GCancellable *cancellable, GError **error)
{
  __typeof__ (berth_image_archive_module_import) *import =
    BERTH_MODULE_FUNC ("image-archive", berth_image_archive_module_import, error);
  if (import == NULL)
    return NULL;
  return import (daemon, ns, input, base_name, progress, progress_data, cancellable, error);
}

GPtrArray *
berth_image_archive_import (BerthDaemon *daemon, const char *ns, GInputStream *input, const char *base_name,
                            GCancellable *cancellable, GError **error)
{
  return berth_image_archive_import_full (daemon, ns, input, base_name, NULL, NULL, cancellable, error);
}

gboolean
berth_image_archive_export (BerthDaemon *daemon, const char *ns, const char *const *names, GOutputStream *output,
                            GCancellable *cancellable, GError **error)
{
  __typeof__ (berth_image_archive_module_export) *export =
    BERTH_MODULE_FUNC ("image-archive", berth_image_archive_module_export, error);
  if (export == NULL)
    return FALSE;
  return export (daemon, ns, names, output, cancellable, error);
}

/* ---------------- registry client ---------------- */

extern __typeof__ (berth_distribution_module_pull) berth_distribution_module_pull __attribute__ ((weak));
extern __typeof__ (berth_distribution_module_push) berth_distribution_module_push __attribute__ ((weak));

char *
berth_distribution_pull (BerthDaemon *daemon, const char *ns, const BerthPullOptions *options,
                         BerthTransferProgressFunc progress, gpointer progress_data, char **target_out,
                         GCancellable *cancellable, GError **error)
{
  __typeof__ (berth_distribution_module_pull) *pull = BERTH_MODULE_FUNC ("registry-client", berth_distribution_module_pull, error);
  return pull ? pull (daemon, ns, options, progress, progress_data, target_out, cancellable, error) : NULL;
}

char *
berth_distribution_push (BerthDaemon *daemon, const char *ns, const BerthPushOptions *options,
                         BerthTransferProgressFunc progress, gpointer progress_data, GCancellable *cancellable,
                         GError **error)
{
  __typeof__ (berth_distribution_module_push) *push = BERTH_MODULE_FUNC ("registry-client", berth_distribution_module_push, error);
  return push ? push (daemon, ns, options, progress, progress_data, cancellable, error) : NULL;
}
