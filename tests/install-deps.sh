#!/bin/bash
# Installs everything berth needs to build, test and run on Debian 12 (as root).
# Idempotent; also prepares a cgroup v1-hybrid host for crun (see HACKING notes in README).
set -euo pipefail
PACKAGES=(
  build-essential autoconf automake libtool pkg-config
  libglib2.0-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
  golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev golang-google-grpc-dev
  libostree-dev libseccomp-dev liblmdb-dev libnghttp2-dev libarchive-dev zlib1g-dev libzstd-dev
  isal time # igzip: the isa-l inflate floor of tests/bench/compare; /usr/bin/time: ctr's CPU there
  libisal-dev nettle-dev libjson-glib-dev libsystemd-dev libsoup-3.0-dev
  ostree containerd runc crun busybox-static python3 python3-grpcio nghttp2-client util-linux procps bc tmux
  curl prometheus glib-networking docker-registry skopeo apache2-utils openssl systemd man-db groff-base
  # tests/fuzz/make-seeds.py (zstd); tests/fuzz/run installs clang for libFuzzer itself
  zstd
  # tests/shim-valgrind.sh
  valgrind
  # tests/cri.sh: CNI plugins for pod networks, python stubs from core/services/cri/api.proto,
  # WebSockets for the streaming server
  containernetworking-plugins python3-grpc-tools iproute2 python3-websocket
  # tests/go-client.sh (Go builds containerd's client library offline), tests/docker.sh
  golang-go docker.io
  # tests/api-docs.sh, configure --enable-gtk-doc: the plugin API reference
  gtk-doc-tools
  # tests/critest.sh, tests/crictl.sh: cri-tools built offline from its vendored tarball
  golang-go
  # tests/rootless.sh, data/berthd-rootless: user namespaces with subordinate ids and
  # the user's network
  rootlesskit uidmap slirp4netns
  # tests/runsc.sh: gVisor's runsc as an OCI runtime under berth-shim (CRI runtime handlers)
  runsc
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# crun refuses cgroup v1-hybrid hosts whose cgroup2 mount still offers a controller
# (hugetlb here); binding that controller to v1 clears it.
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers \
   && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
  mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || true
fi
