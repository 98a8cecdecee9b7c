dnl plugins/runtimes/shimv2: --disable-shimv2; configure.ac includes every plugins/*/*/configure.m4.
BERTH_PLUGIN_OPTION([shimv2], [PLUGIN_SHIMV2], [runtime: any containerd shim v2 over ttrpc])
