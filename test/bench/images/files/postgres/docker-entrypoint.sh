#!/bin/bash
# As the official postgres image (much shortened): create the runtime
# directories as root, drop to postgres, initdb into an empty PGDATA, exec.
set -Eeo pipefail
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 2777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "initializing the database in $PGDATA"
  initdb --username=postgres --auth=trust --encoding=UTF8 --locale=en_US.utf8 -D "$PGDATA"
  printf "listen_addresses = '127.0.0.1'\nport = 15432\nunix_socket_directories = '/var/run/postgresql'\n" >>"$PGDATA/postgresql.conf"
fi
exec "$@"
