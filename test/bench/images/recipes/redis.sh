# shellcheck shell=bash disable=SC2034
# database: redis-server.
CATEGORY=database
FROM=base
DESCRIPTION='redis-server (7.0) on 127.0.0.1:16379 without persistence, as user redis'
PROBE='stdout:Ready to accept connections'
BUDGET=10

build() {
  RUN 'groupadd -r -g 999 redis && useradd -r -g redis -u 999 --home-dir /var/lib/redis redis'
  APT redis-server
  RUN 'mkdir /data && chown redis:redis /data'
  COPY redis/redis.conf /etc/redis/bench.conf
  WORKDIR /data
  USER redis
  EXPOSE 16379/tcp
  CMD redis-server /etc/redis/bench.conf
}
