dnl plugins/snapshotters/ostree: --disable-ostree; configure.ac includes every plugins/*/*/configure.m4.
BERTH_PLUGIN_OPTION([ostree], [PLUGIN_OSTREE], [snapshotter: file-level deduplication with libostree])
dnl Its own libraries are looked for only when it is built.
AS_IF([test "x$enable_ostree" = xyes], [BERTH_DEP([OSTREE], [ostree-1], [libostree-dev])])
