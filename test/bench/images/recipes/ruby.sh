# shellcheck shell=bash disable=SC2034
# language: Debian's ruby (3.1) and an app that requires ~25 stdlib libraries.
CATEGORY=language
FROM=base
DESCRIPTION='ruby (3.1) with an app that requires ~25 stdlib libraries (json, yaml, openssl, erb, net/http, csv, ...), uses them, and serves HTTP with TCPServer on 127.0.0.1:18093'
PROBE='stdout:^ruby app ready'
BUDGET=15

build() {
  APT ca-certificates netbase tzdata
  APT ruby
  COPY ruby/app.rb /app/app.rb
  ENV LANG=C.UTF-8
  WORKDIR /app
  EXPOSE 18093/tcp
  CMD ruby /app/app.rb
}
