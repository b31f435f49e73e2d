#!/usr/bin/env bash
# Installs what the benchmark harness under test/bench/ needs on Debian 12, on
# top of deploy/install-deps.sh (which builds the project). Not used by CI.
# Safe to run any number of times.
set -euo pipefail

packages=(
  # testbed: HDD emulator (FUSE) + loop device + ext4; zram fast tier
  libfuse3-dev fuse3 pkg-config util-linux e2fsprogs kmod procps psmisc
  # validation and reporting
  fio jq
  # images/ (corpus build, push, verify) and net/ (namespaces, shaping, registry)
  debootstrap umoci skopeo docker-registry containerd runc curl iproute2 tar gzip
  openjdk-17-jdk-headless  # javac + jar for the openjdk image's app (built on the host)
  python3-minimal python3-grpcio  # net/cri-pull.py (a CRI PullImage without crictl)
  python3-matplotlib              # report.py plots
  erofs-utils attr  # promoter bench: mkfs.erofs of a metadata layer; oci-layers-to-dirs.sh's setfattr
  bpftrace                        # hif.sh --crosscheck (syscall trace to check the HBCSA tracer against)
)
# images/: npm ci for the express image's node_modules (any npm will do; a
# nodejs from elsewhere brings its own, which Debian's npm would conflict with)
command -v npm >/dev/null 2>&1 || packages+=(npm)

"$(dirname "$0")/../../deploy/apt-install-missing.sh" "${packages[@]}"
