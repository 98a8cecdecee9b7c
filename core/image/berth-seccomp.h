/* berth-seccomp.h — seccomp profiles in docker's format (the one containerd, docker and
 * podman users already write) turned into the OCI `linux.seccomp` object runc and crun read.
 *
 * A profile's rules may be limited to architectures and capabilities ("includes" /
 * "excludes"); those are decided here, for one architecture and one bounding set, so
 * the runtime gets a flat list. Syscall names the host's libseccomp does not know are
 * dropped (with a g_debug), never passed through: a runtime would refuse the whole
 * spec, or silently ignore them, depending on its version.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The host's architecture as libseccomp names it ("SCMP_ARCH_X86_64"). */
const char *berth_seccomp_native_arch (void);

/* The OCI `linux.seccomp` object for @profile (a parsed docker-format profile; @source
 * names it in errors) on @arch ("SCMP_ARCH_…", NULL for the host) for a container whose
 * bounding set is @capabilities ("CAP_…", NULL-terminated, NULL for none). */
JsonNode *berth_seccomp_profile_to_oci (JsonNode *profile, const char *source, const char *arch,
                                        const char *const *capabilities, GError **error);

/* The same, reading the profile from @path. */
JsonNode *berth_seccomp_load (const char *path, const char *arch, const char *const *capabilities,
                              GError **error);

/* Checks the profile at @path for `berth seccomp check`: FALSE with an error naming the
 * path (and line:col for JSON syntax) when it is unreadable or malformed; otherwise TRUE,
 * and if @unknown_names_out is given, a new array of the syscall names this host's
 * libseccomp does not know (each once, in profile order; empty when all are known). */
gboolean berth_seccomp_check_file (const char *path, GPtrArray **unknown_names_out, GError **error);

G_END_DECLS
