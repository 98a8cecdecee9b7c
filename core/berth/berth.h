/* berth.h — everything a berth plugin may use. Plugins include only this header. */
#pragma once

#include <berth/berth-version.h>
#include <berth/berth-error.h>
#include <berth/berth-types.h>
#include <berth/berth-plugin.h>
#include <berth/berth-content-store.h>
#include <berth/berth-snapshotter.h>
#include <berth/berth-differ.h>
#include <berth/berth-runtime.h>
#include <berth/berth-digest.h>
#include <berth/berth-fs.h>
#include <berth/berth-json-limits.h>
#include <berth/berth-identifiers.h>
#include <berth/berth-kv.h>
