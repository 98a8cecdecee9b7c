/* fuzz-main.c — the plain reproducer around a fuzz target (see fuzz.h):
 *   repro-NAME [FILE|DIR]...   (default: $G_TEST_SRCDIR/fuzz/corpus/NAME)
 * runs every file through LLVMFuzzerTestOneInput, one TAP line each. */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "fuzz.h"

/* Targets without an initializer get this one. */
__attribute__ ((weak)) int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  return 0;
}

static void
collect (const char *path, GPtrArray *files)
{
  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_ptr_array_add (files, g_strdup (path));
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) dir = g_dir_open (path, 0, &error);
  if (dir == NULL)
    FUZZ_FAIL ("%s", error->message);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (const char *name; (name = g_dir_read_name (dir)) != NULL;)
    g_ptr_array_add (names, g_build_filename (path, name, NULL));
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  for (guint i = 0; i < names->len; i++)
    collect (names->pdata[i], files);
}

static int
compare (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

int
main (int argc, char **argv)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  if (argc > 1)
    for (int i = 1; i < argc; i++)
      collect (argv[i], files);
  else
    {
      const char *srcdir = g_getenv ("G_TEST_SRCDIR");
      g_autofree char *corpus = g_build_filename (srcdir ? srcdir : "tests", "fuzz", "corpus", FUZZ_TARGET, NULL);
      collect (corpus, files);
      g_ptr_array_sort (files, compare);
    }
  LLVMFuzzerInitialize (&argc, &argv);
  g_print ("1..%u\n", files->len);
  for (guint i = 0; i < files->len; i++)
    {
      const char *path = files->pdata[i];
      g_autoptr (GError) error = NULL;
      g_autofree char *data = NULL;
      gsize len = 0;
      if (!g_file_get_contents (path, &data, &len, &error))
        {
          g_print ("not ok %u - %s: %s\n", i + 1, path, error->message);
          continue;
        }
      /* A copy of exactly @len bytes, so ASan sees reads past the end as libFuzzer would. */
      g_autofree guint8 *copy = g_malloc (len ? len : 1); /* never NULL, as libFuzzer's */
      memcpy (copy, data, len);
      LLVMFuzzerTestOneInput (copy, len);
      g_autofree char *base = g_path_get_basename (path);
      g_print ("ok %u - %s %s\n", i + 1, FUZZ_TARGET, base);
    }
  return 0;
}
