# shellcheck shell=bash disable=SC2034
# database: postgresql-15, initialised at the first start like the official image.
CATEGORY=database
FROM=base
DESCRIPTION='postgresql-15; the entrypoint runs initdb into an empty PGDATA at start (as the official image does), then postgres on 127.0.0.1:15432'
PROBE='stdout:database system is ready to accept connections'
BUDGET=60

build() {
  RUN 'groupadd -r postgres --gid=999 && useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres && mkdir -p /var/lib/postgresql && chown -R postgres:postgres /var/lib/postgresql'
  RUN 'apt-get update && apt-get install -y --no-install-recommends locales tzdata && rm -rf /var/lib/apt/lists/* && localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8'
  RUN 'apt-get update && apt-get install -y --no-install-recommends postgresql-common && sed -ri "s/#(create_main_cluster) .*\$/\1 = false/" /etc/postgresql-common/createcluster.conf && apt-get install -y --no-install-recommends postgresql-15 && rm -rf /var/lib/apt/lists/*'
  RUN 'mkdir -p /var/run/postgresql /var/lib/postgresql/data && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql/data && chmod 2777 /var/run/postgresql && chmod 700 /var/lib/postgresql/data'
  COPY postgres/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
  ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin PGDATA=/var/lib/postgresql/data LANG=en_US.utf8
  EXPOSE 15432/tcp
  ENTRYPOINT docker-entrypoint.sh
  CMD postgres
}
