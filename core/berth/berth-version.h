/* berth-version.h — the version of the berth SDK a plugin is compiled against.
 *
 * The plugin ABI is berth's MAJOR.MINOR: a plugin built against MAJOR.M loads in every
 * berthd MAJOR.N with N ≥ M, and in no other (see "ABI policy" in berth-plugins(7)).
 * configure.ac reads the numbers from this file, so they are written once.
 */
#pragma once

/**
 * SECTION:berth-version
 * @title: Version checks
 * @short_description: the SDK version at compile time
 *
 * BERTH_PLUGIN_DEFINE() records BERTH_MAJOR_VERSION and BERTH_MINOR_VERSION in the
 * plugin's descriptor; berthd refuses a plugin of another major version or of a newer
 * minor version than its own, naming both versions.
 */

/**
 * BERTH_MAJOR_VERSION:
 *
 * The major version of the berth headers in use. Plugins of another major version
 * never load.
 *
 * Since: 0.2
 */
#define BERTH_MAJOR_VERSION 0
/**
 * BERTH_MINOR_VERSION:
 *
 * The minor version of the berth headers in use. A minor release only appends (vfuncs,
 * fields of core-allocated structs, functions), so older minors keep loading.
 *
 * Since: 0.2
 */
#define BERTH_MINOR_VERSION 2
/**
 * BERTH_MICRO_VERSION:
 *
 * The micro version: bug fixes, no ABI change.
 *
 * Since: 0.2
 */
#define BERTH_MICRO_VERSION 0

/**
 * BERTH_CHECK_VERSION:
 * @major: a major version
 * @minor: a minor version
 * @micro: a micro version
 *
 * TRUE at compile time when the berth headers are version @major.@minor.@micro or
 * newer, for code that uses something added later than its oldest supported berth:
 * |[<!-- language="C" -->
 * #if BERTH_CHECK_VERSION (0, 3, 0)
 *   ... use what 0.3 added ...
 * #endif
 * ]|
 *
 * Since: 0.2
 */
#define BERTH_CHECK_VERSION(major, minor, micro)                                   \
  (BERTH_MAJOR_VERSION > (major)                                                   \
   || (BERTH_MAJOR_VERSION == (major) && BERTH_MINOR_VERSION > (minor))            \
   || (BERTH_MAJOR_VERSION == (major) && BERTH_MINOR_VERSION == (minor)            \
       && BERTH_MICRO_VERSION >= (micro)))
