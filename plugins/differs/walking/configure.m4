dnl plugins/differs/walking: --disable-walking; configure.ac includes every plugins/*/*/configure.m4.
BERTH_PLUGIN_OPTION([walking], [PLUGIN_WALKING], [differ])
dnl Its own libraries are looked for only when it is built.
AS_IF([test "x$enable_walking" = xyes], [
  BERTH_DEP([ZSTD], [libzstd], [libzstd-dev])
  AC_CHECK_HEADER([isa-l/igzip_lib.h],
    [AC_CHECK_LIB([isal], [isal_inflate], [ISAL_LIBS=-lisal; AC_DEFINE([HAVE_ISAL], [1], [isa-l inflate])])])
  dnl libarchive's tar reader linked in statically and hidden (--exclude-libs): the shared
  dnl libarchive drags libxml2, ICU, libstdc++, lzma, bz2… (2.7 MB resident in berthd) in
  dnl for nothing but reading tar, and the hidden copy cannot clash with the shared one the
  dnl core's image-archive module may load. Layers are written by walking-tar-writer.c.
  walking_archive_a="$($PKG_CONFIG --variable=libdir libarchive)/libarchive.a"
  AS_IF([test -f "$walking_archive_a"],
    [WALKING_ARCHIVE_LIBS="$walking_archive_a -Wl,--exclude-libs,ALL"],
    [AC_MSG_NOTICE([walking differ: $walking_archive_a missing, linking the shared libarchive (and its dependencies) instead])
     WALKING_ARCHIVE_LIBS='$(ARCHIVE_LIBS)'])
])
AC_SUBST([ISAL_LIBS])
AC_SUBST([WALKING_ARCHIVE_LIBS])
