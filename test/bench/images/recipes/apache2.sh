# shellcheck shell=bash disable=SC2034
# web server: apache2 (prefork/event MPM as Debian ships it) serving a static site.
CATEGORY=web-server
FROM=base
DESCRIPTION='apache2 (2.4) in the foreground (apache2-foreground, as the official httpd image) serving a small static site on 127.0.0.1:18081'
PROBE='tcp:18081'
BUDGET=10

build() {
  APT ca-certificates
  APT apache2
  RUN 'sed -ri "s/^Listen 80\$/Listen 127.0.0.1:18081/" /etc/apache2/ports.conf && sed -ri "s/<VirtualHost \*:80>/<VirtualHost *:18081>/" /etc/apache2/sites-available/000-default.conf && echo "ServerName localhost" >/etc/apache2/conf-available/servername.conf && a2enconf servername && a2enmod headers expires && ln -sfT /dev/stderr /var/log/apache2/error.log && ln -sfT /dev/stdout /var/log/apache2/access.log && ln -sfT /dev/stdout /var/log/apache2/other_vhosts_access.log'
  COPY apache2/html /var/www/html
  COPY apache2/apache2-foreground /usr/local/bin/apache2-foreground
  EXPOSE 18081/tcp
  CMD apache2-foreground
}
