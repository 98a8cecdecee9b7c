dnl plugins/differs/walking: --disable-walking; configure.ac includes every plugins/*/*/configure.m4.
BERTH_PLUGIN_OPTION([walking], [PLUGIN_WALKING], [differ])
dnl Its own libraries are looked for only when it is built.
AS_IF([test "x$enable_walking" = xyes], [
  BERTH_DEP([ZSTD], [libzstd], [libzstd-dev])
  AC_CHECK_HEADER([isa-l/igzip_lib.h],
    [AC_CHECK_LIB([isal], [isal_inflate], [ISAL_LIBS=-lisal; AC_DEFINE([HAVE_ISAL], [1], [isa-l inflate])])])
])
AC_SUBST([ISAL_LIBS])
