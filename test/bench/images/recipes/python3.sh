# shellcheck shell=bash disable=SC2034
# language: Debian's python3 and a small app that imports ~30 stdlib modules,
# does a little work and serves HTTP.
CATEGORY=language
FROM=base
DESCRIPTION='python3 (3.11) with an app that imports ~30 stdlib modules (json, sqlite3, ssl, asyncio, email, xml, ...), uses them, and serves HTTP on 127.0.0.1:18090'
PROBE='stdout:^python app ready'
BUDGET=15

build() {
  APT ca-certificates netbase tzdata
  APT python3
  RUN 'useradd --system --home-dir /app --shell /usr/sbin/nologin app && mkdir -p /app'
  COPY python3/app.py /app/app.py
  ENV PYTHONUNBUFFERED=1 LANG=C.UTF-8
  WORKDIR /app
  EXPOSE 18090/tcp
  CMD python3 /app/app.py
}
