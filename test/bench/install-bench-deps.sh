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
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
