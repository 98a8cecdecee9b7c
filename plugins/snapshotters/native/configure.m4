dnl plugins/snapshotters/native: --disable-native; configure.ac includes every plugins/*/*/configure.m4.
BERTH_PLUGIN_OPTION([native], [PLUGIN_NATIVE], [snapshotter])
