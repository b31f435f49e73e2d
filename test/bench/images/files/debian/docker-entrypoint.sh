#!/bin/bash
# What an interactive shell container typically does first: look around.
set -e
. /etc/os-release
echo "$PRETTY_NAME on $(uname -sr)"
echo "packages: $(dpkg-query -W -f='${Package}\n' | wc -l) installed"
curl --version | head -n 1
echo "processes: $(ps -e --no-headers | wc -l); uptime: $(cut -d' ' -f1 /proc/uptime) s"
echo "zoneinfo: $(find /usr/share/zoneinfo -type f | wc -l) files; now $(date '+%F %T %Z')"
echo "certificates: $(ls /etc/ssl/certs | wc -l)"
echo "distro ready"
exec sleep infinity
