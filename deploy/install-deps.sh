#!/usr/bin/env bash
# Installs every package needed to build ndocker-snapshotter and to run its
# tests and quickstart (containerd, runc, a registry, image tools) on Debian 12.
# Safe to run any number of times.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev liblmdb-dev libarchive-dev libssl-dev libpmem2-dev libsystemd-dev
  nlohmann-json3-dev libtomlplusplus-dev libspdlog-dev libcli11-dev catch2
  # integration tests and quickstart
  containerd runc docker-registry umoci skopeo busybox-static
  libre2-dev
  curl attr jq util-linux procps coreutils findutils kmod iproute2 fio
  # the tests' slow tier is an ext4 image (mkfs.ext4; chattr for immutable files)
  e2fsprogs
)

"$(dirname "$0")/apt-install-missing.sh" "${packages[@]}"

# The Debian packages start a system containerd / registry where systemd runs;
# the tests and the quickstart start their own instances and never touch those.
