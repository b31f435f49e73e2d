#!/bin/bash
# As the official mariadb image (much shortened): runtime directories,
# mariadb-install-db into an empty datadir, then the server as user mysql.
set -Eeo pipefail
mkdir -p /run/mysqld /var/lib/mysql
chown mysql:mysql /run/mysqld /var/lib/mysql
if [ ! -d /var/lib/mysql/mysql ]; then
  echo "initializing the database in /var/lib/mysql"
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
    --auth-root-authentication-method=socket --skip-name-resolve --disable-log-bin
fi
if [ "${1:0:1}" = - ]; then set -- mariadbd "$@"; fi
if [ "$1" = mariadbd ]; then set -- "$@" --user=mysql; fi
exec "$@"
