# shellcheck shell=bash disable=SC2034
# distro: the minbase rootfs with the few things every derived image adds.
CATEGORY=distro
FROM=base
DESCRIPTION='debootstrap --variant=minbase bookworm + ca-certificates, curl, procps, less, tzdata; a shell entrypoint that looks around (os-release, dpkg database, curl, ps, zoneinfo) and then waits'
PROBE='stdout:^distro ready$'
BUDGET=10

build() {
  APT ca-certificates curl procps less tzdata
  RUN 'useradd --create-home --uid 1000 --shell /bin/bash app && ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime && echo Etc/UTC >/etc/timezone'
  COPY debian/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
  ENV LANG=C.UTF-8 TZ=Etc/UTC
  CMD /usr/local/bin/docker-entrypoint.sh
}
