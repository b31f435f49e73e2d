# shellcheck shell=bash disable=SC2034
# language: Debian's nodejs (18) and an app that loads most core modules.
CATEGORY=language
FROM=base
DESCRIPTION='nodejs (18) with an app that loads ~20 core modules, uses them, and serves HTTP on 127.0.0.1:18091'
PROBE='stdout:^node app ready'
BUDGET=15

build() {
  APT ca-certificates netbase
  APT nodejs
  COPY nodejs/app.js /app/app.js
  ENV NODE_ENV=production LANG=C.UTF-8
  WORKDIR /app
  EXPOSE 18091/tcp
  CMD node /app/app.js
}
