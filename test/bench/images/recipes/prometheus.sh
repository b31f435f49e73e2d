# shellcheck shell=bash disable=SC2034
# application: Prometheus, a large Go binary with a clear readiness line.
CATEGORY=application
FROM=base
DESCRIPTION='prometheus (2.42, Go) scraping itself, TSDB in /prometheus, web on 127.0.0.1:19090, as user prometheus'
PROBE='stdout:Server is ready to receive web requests'
BUDGET=20

build() {
  APT ca-certificates
  APT prometheus
  RUN 'mkdir -p /prometheus && chown prometheus:prometheus /prometheus'
  COPY prometheus/prometheus.yml /etc/prometheus/prometheus.yml
  USER prometheus
  WORKDIR /prometheus
  EXPOSE 19090/tcp
  ENTRYPOINT /usr/bin/prometheus
  CMD --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus --web.listen-address=127.0.0.1:19090 --web.console.libraries=/usr/share/prometheus/console_libraries --web.console.templates=/etc/prometheus/consoles
}
