/* fuzz-config.c — berthd's config-file parser (berth_config_load). The input is the
 * file's text. Oracles: a config that loads prints (berth_config_to_data) as a config
 * that loads again and prints the same; every error names the file; the line lookup
 * used in error messages answers for every group and key; no value that loaded ends in
 * a lone backslash (which GKeyFile drops without a word). */
#include "config.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/berth-config.h"
#include "fuzz.h"

static char *
write_memfd (const char *data, gsize size, int *fd_out)
{
  int fd = memfd_create ("berthd.conf", MFD_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  for (gsize off = 0; off < size;)
    {
      ssize_t n = write (fd, data + off, size - off);
      g_assert_cmpint (n, >, 0);
      off += n;
    }
  *fd_out = fd;
  return g_strdup_printf ("/proc/self/fd/%d", fd);
}

static BerthConfig *
load (const char *data, gsize size, GError **error)
{
  int fd = -1;
  g_autofree char *path = write_memfd (data, size, &fd);
  BerthConfig *config = berth_config_load (path, error);
  close (fd);
  if (config == NULL)
    g_assert_true (*error != NULL && (*error)->message[0] != '\0');
  return config;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BerthConfig) config = load ((const char *) data, size, &error);
  if (config == NULL)
    return 0;
  g_auto (GStrv) groups = g_key_file_get_groups (config->keyfile, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      /* Every group and key that loaded is found again for error messages. */
      if (berth_config_find_line (config, groups[i], NULL) == 0)
        FUZZ_FAIL ("group [%s] has no line", groups[i]);
      g_autofree char *where = berth_config_location (config, groups[i], NULL);
      g_assert_true (g_str_has_prefix (where, config->path) && g_str_has_suffix (where, ": "));
      g_auto (GStrv) keys = g_key_file_get_keys (config->keyfile, groups[i], NULL, NULL);
      for (guint k = 0; keys != NULL && keys[k] != NULL; k++)
        {
          if (berth_config_find_line (config, groups[i], keys[k]) == 0)
            FUZZ_FAIL ("key %s in [%s] has no line", keys[k], groups[i]);
          /* GKeyFile would silently drop a lone trailing backslash of what loaded. */
          g_autofree char *raw = g_key_file_get_value (config->keyfile, groups[i], keys[k], NULL);
          gsize len = strlen (raw), run = 0;
          while (run < len && raw[len - 1 - run] == '\\')
            run++;
          if (run % 2 == 1)
            FUZZ_FAIL ("key %s in [%s] loaded with a lone trailing backslash", keys[k], groups[i]);
        }
    }
  g_autofree char *text = berth_config_to_data (config);
  g_autoptr (GError) again_error = NULL;
  g_autoptr (BerthConfig) again = load (text, strlen (text), &again_error);
  if (again == NULL)
    FUZZ_FAIL ("the printed config does not load: %s\n%s", again_error->message, text);
  g_autofree char *text_again = berth_config_to_data (again);
  g_assert_cmpstr (text_again, ==, text);
  return 0;
}
