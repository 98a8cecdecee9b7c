/* test-daemon-util.h — a daemon core for GTest programs: metadata store, the local content
 * store and the native snapshotter from the build tree, on a temp root; not serving. */
#pragma once

#include "daemon/berth-daemon-private.h"

G_BEGIN_DECLS

/* Sets *tmp_out to the temp dir holding root and state (remove it with test_remove_tree). */
BerthDaemon *test_daemon_new (char **tmp_out);
/* The same with the plugins built in @plugins (build-tree dirs: "plugins/differs/walking"). */
BerthDaemon *test_daemon_new_with (char **tmp_out, const char *const *plugins);
void test_remove_tree (const char *path);

G_END_DECLS
