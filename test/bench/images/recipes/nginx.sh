# shellcheck shell=bash disable=SC2034
# web server: nginx serving a static site.
CATEGORY=web-server
FROM=base
DESCRIPTION='nginx (1.22) in the foreground serving a small static site on 127.0.0.1:18080, logs to stdout/stderr'
PROBE='tcp:18080'
BUDGET=10

build() {
  APT ca-certificates
  APT nginx
  RUN 'ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log && rm -f /etc/nginx/sites-enabled/default'
  COPY nginx/conf.d /etc/nginx/conf.d
  COPY nginx/html /usr/share/nginx/html
  EXPOSE 18080/tcp
  CMD nginx -g 'daemon off;'
}
