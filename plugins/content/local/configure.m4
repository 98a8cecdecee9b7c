dnl plugins/content/local: --disable-local; configure.ac includes every plugins/*/*/configure.m4.
BERTH_PLUGIN_OPTION([local], [PLUGIN_LOCAL], [content store])
