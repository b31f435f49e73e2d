#!/usr/bin/env bash
# The test command: installs every dependency (Debian 12, root), builds, and
# runs all tests. First the unit tests under ASan + UBSan, then the full suite
# (unit, daemon, integration against real containerd) whose ctest summary is
# the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "test/run.sh must run as root (it installs packages, mounts overlays and runs containerd)" >&2
  exit 1
fi

deploy/install-deps.sh

jobs=$(nproc)
echo "== sanitizer build (ASan + UBSan): unit tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNDOCKER_SANITIZE=ON \
  -DNDOCKER_INTEGRATION_TESTS=OFF >/dev/null
cmake --build build-asan -j "$jobs" --target ndocker_unit_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j "$jobs"

echo "== release build: all tests"
# Fault points on: the kill -9 tests make the daemon crash at each step.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNDOCKER_FAULT_POINTS=ON >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure
