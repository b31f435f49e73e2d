# shellcheck shell=bash disable=SC2034
# database: mariadb-server, datadir initialised at the first start like the official image.
CATEGORY=database
FROM=base
DESCRIPTION='mariadb-server (10.11); the entrypoint runs mariadb-install-db into an empty /var/lib/mysql at start (as the official image does), then mariadbd on 127.0.0.1:13306'
PROBE='stdout:ready for connections'
BUDGET=60

build() {
  RUN 'groupadd -r mysql && useradd -r -g mysql --home-dir /var/lib/mysql mysql'
  APT ca-certificates tzdata
  RUN 'apt-get update && apt-get install -y --no-install-recommends mariadb-server && rm -rf /var/lib/apt/lists/* && rm -rf /var/lib/mysql && mkdir -p /var/lib/mysql /run/mysqld && chown -R mysql:mysql /var/lib/mysql /run/mysqld && chmod 1777 /run/mysqld'
  COPY mariadb/bench.cnf /etc/mysql/mariadb.conf.d/90-bench.cnf
  COPY mariadb/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
  EXPOSE 13306/tcp
  ENTRYPOINT docker-entrypoint.sh
  CMD mariadbd
}
