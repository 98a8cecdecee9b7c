#!/bin/sh
# install-generated.sh TMP DEST — moves the files a code generator wrote under TMP into
# DEST, then removes TMP. A file whose text is the same as DEST's copy stays as it was
# (its time too, so nothing that includes it recompiles); any other is renamed into
# place, one atomic step a file. Nothing else in DEST (objects, .deps) is touched, and a
# generator run that failed before this leaves DEST as the last complete run made it.
set -eu
tmp=$1
dest=$2
(cd "$tmp" && find . -type f) | while read -r f; do
  if ! cmp -s "$tmp/$f" "$dest/$f"; then
    mkdir -p "$(dirname "$dest/$f")"
    mv -f "$tmp/$f" "$dest/$f"
  fi
done
rm -rf "$tmp"
