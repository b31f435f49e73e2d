# shellcheck shell=bash disable=SC2034
# web framework: a flask app under gunicorn, FROM the python3 image.
CATEGORY=web-framework
FROM=python3
DESCRIPTION='FROM python3: python3-flask + gunicorn from Debian, a small flask app (blueprint, jinja2 template, JSON API, sqlite3) under gunicorn --preload with 2 workers on 127.0.0.1:18082'
PROBE='tcp:18082'
BUDGET=20

build() {
  APT python3-flask gunicorn
  COPY flask /app
  ENV FLASK_APP=app
  EXPOSE 18082/tcp
  CMD gunicorn --preload --workers 2 --bind 127.0.0.1:18082 --access-logfile - app:app
}
