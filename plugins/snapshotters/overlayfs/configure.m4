dnl plugins/snapshotters/overlayfs: --disable-overlayfs; configure.ac includes every plugins/*/*/configure.m4.
BERTH_PLUGIN_OPTION([overlayfs], [PLUGIN_OVERLAYFS], [snapshotter])
