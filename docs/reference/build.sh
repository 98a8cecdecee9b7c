#!/bin/bash
# docs/reference/build.sh SRCDIR OUTDIR VERSION: the API reference of the installed
# headers (berth-plugin-1 and berth-snapshotter-1), generated with gtk-doc into
# OUTDIR/html. Used by `make` with --enable-gtk-doc and by tests/api-docs.sh.
set -euo pipefail
SRC=$(cd "$1" && pwd) OUT=$2 VERSION=$3
command -v gtkdoc-scan >/dev/null || { echo "gtkdoc-scan not found; on Debian: apt-get install gtk-doc-tools" >&2; exit 1; }
mkdir -p "$OUT"
cd "$OUT"
rm -rf html xml
dirs=(--source-dir="$SRC/core/berth" --source-dir="$SRC/plugins/snapshotters/common/berth")
gtkdoc-scan --module=berth "${dirs[@]}" --rebuild-sections \
  --ignore-headers="berth.h" >scan.log 2>&1 || { cat scan.log >&2; exit 1; }
cp "$SRC/docs/reference/berth-docs.xml" .
gtkdoc-mkdb --module=berth --output-format=xml --name-space=berth "${dirs[@]}" \
  --main-sgml-file=berth-docs.xml >mkdb.log 2>&1 || { cat mkdb.log >&2; exit 1; }
printf '<!ENTITY package_version "%s">\n' "$VERSION" >xml/gtkdocentities.ent
mkdir -p html
(cd html && gtkdoc-mkhtml berth ../berth-docs.xml) >mkhtml.log 2>&1 || { cat mkhtml.log >&2; exit 1; }
echo "$OUT/html/index.html"
