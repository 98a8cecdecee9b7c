/* fuzz.h — what every fuzz target under tests/fuzz/ defines.
 *
 * Each fuzz-*.c file defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize). It builds two ways:
 *  - with `./configure --enable-fuzzing CC=clang` as tests/fuzz/fuzz-NAME, a libFuzzer
 *    binary (tests/fuzz/run NAME MINUTES runs it);
 *  - always as tests/fuzz/repro-NAME, linked with fuzz-main.c, which replays every file
 *    of tests/fuzz/corpus/NAME (or the files and dirs given as arguments) and prints TAP:
 *    `make check` runs it over the committed seeds and crashers.
 * An oracle failure is an abort (g_error, g_assert), which both builds report.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <glib.h>

/* An oracle failure. Not g_error: its SIGTRAP is no crash to libFuzzer, which would
 * then keep no crasher. */
#define FUZZ_FAIL(...) (g_printerr (__VA_ARGS__), g_printerr ("\n"), abort ())

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);
