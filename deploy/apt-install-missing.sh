#!/usr/bin/env bash
# apt-install-missing.sh PACKAGE...: installs those of the Debian packages that
# are not installed yet (apt-get update only when something is missing).
# Shared by install-deps.sh and test/bench/install-bench-deps.sh.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
