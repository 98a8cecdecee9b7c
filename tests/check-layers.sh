#!/bin/bash
# check-layers.sh — every #include in core/ and plugins/ follows an allowed edge between
# the layers (README, "Layout"); fails naming each offending include. No build needed.
# Each layer may include its own folder and the layers below it, never one above:
#
#   program   core/daemon/berthd.c             every layer but the shim: it wires the services in
#   services  core/services/{containerd,cri}/  image, daemon, metadata, wire, lib, public
#   client    core/client/                     image (spec, seccomp, json), wire, lib, public
#   image     core/image/                      daemon, metadata, wire, lib, public
#   daemon    core/daemon/                     metadata, wire, lib, public
#   metadata  core/metadata/                   wire (message allocation), lib, public
#   wire      core/wire/                       lib, public
#   lib       core/lib/                        public
#   public    core/berth/                      public (installed headers)
#   plugins   plugins/<kind>/<name>/           public, its own folder, plugins/<kind>/common
#   shim      core/shim/                       its own folder, libc (no GLib: it is static)
# core/proto/ (generated protocol types) is below all GLib code.
set -uo pipefail
SRC=${BERTH_TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$SRC"

layer_of () {
  case "$1" in
    core/daemon/berthd.c) echo program ;;
    core/berth/*) echo public ;;
    core/shim/*) echo shim ;;
    core/services/*) echo services ;;
    core/client/*) echo client ;;
    core/image/*) echo image ;;
    core/daemon/*) echo daemon ;;
    core/metadata/*) echo metadata ;;
    core/wire/*) echo wire ;;
    core/lib/*) echo lib ;;
    core/proto/*) echo proto ;;
    core/*) echo "other:${1%/*}" ;;
    plugins/*/common/*) local k=${1#plugins/}; echo "plugin-common:${k%%/*}" ;;
    plugins/*/*/*) local k=${1#plugins/}; k=${k%/*}; echo "plugin:${k%%/*}/$(basename "$k")" ;;
    *) echo other ;;
  esac
}

# The stack, lowest first: a layer includes its own and the ones before it.
STACK=(public lib wire metadata daemon image services)
rank () { local i; for i in "${!STACK[@]}"; do [ "${STACK[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }

allowed () { # FROM TO
  local from=$1 to=$2
  [ "$to" = proto ] && [ "$from" != shim ] && [ "$from" != public ] && [ "$from" != lib ] && return 0
  case "$from" in
    program) [ "$to" != shim ] && [[ $to != plugin* ]] ;;
    client) [[ $to =~ ^(public|lib|wire|image|client)$ ]] ;;
    public | lib | wire | metadata | daemon | image | services)
      local r; r=$(rank "$to"); [ "$r" -ge 0 ] && [ "$r" -le "$(rank "$from")" ] ;;
    shim) [ "$to" = shim ] ;;
    plugin:*) local kind=${from#plugin:}; [ "$to" = public ] || [ "$to" = "$from" ] || [ "$to" = "plugin-common:${kind%%/*}" ] ;;
    plugin-common:*) [ "$to" = public ] || [ "$to" = "$from" ] ;;
    *) return 1 ;;
  esac
}

# The include's file in the tree, as the compiler finds it: beside the includer, then
# under core/ (-I$(top_srcdir)/core). Empty for system and generated headers.
resolve () { # INCLUDER NAME
  local dir=${1%/*}
  if [ -f "$dir/$2" ]; then realpath --relative-to=. "$dir/$2"
  elif [ -f "core/$2" ]; then echo "core/$2"
  elif [[ $2 == github.com/* || $2 == google/* || $2 == berth/services/* ]]; then echo "core/proto/$2"
  fi
}

bad=0
checked=0
while IFS= read -r file; do
  from=$(layer_of "$file")
  while IFS=: read -r line text; do
    [[ $text =~ include[[:space:]]*[\<\"]([^\>\"]+) ]] || continue
    name=${BASH_REMATCH[1]}
    [ "$name" = config.h ] && continue
    checked=$((checked + 1))
    if [ "$from" = shim ] && [[ $name =~ ^(glib|gio|gobject|gmodule|json-glib|protobuf-c)(/|\.h|-) ]]; then
      echo "# $file:$line: includes <$name>: the shim is plain C, no GLib"
      bad=$((bad + 1))
      continue
    fi
    target=$(resolve "$file" "$name")
    [ -n "$target" ] || continue
    to=$(layer_of "$target")
    if ! allowed "$from" "$to"; then
      echo "# $file:$line: includes \"$name\" ($to) from $from: not an allowed edge"
      bad=$((bad + 1))
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$file")
done < <(find core plugins -name '*.[ch]' -not -path 'core/proto/*' -not -path '*/gen/*' | sort)

# TAP: one check, the offenders listed above it.
echo "1..1"
if [ "$bad" -eq 0 ]; then echo "ok 1 - $checked includes follow the layers"
else echo "not ok 1 - $bad of $checked includes break the layers (listed above)"; fi
exit 0
