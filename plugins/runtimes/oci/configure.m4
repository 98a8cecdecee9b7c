dnl plugins/runtimes/oci: --disable-oci; configure.ac includes every plugins/*/*/configure.m4.
BERTH_PLUGIN_OPTION([oci], [PLUGIN_OCI], [runtime: runc or crun under berth-shim])
