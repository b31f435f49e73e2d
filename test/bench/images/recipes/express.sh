# shellcheck shell=bash disable=SC2034
# web framework: an express app, FROM the nodejs image; node_modules from
# `npm ci --omit=dev` (npm registry) run on the build host.
CATEGORY=web-framework
FROM=nodejs
DESCRIPTION='FROM nodejs: express 4 + compression + morgan (npm ci --omit=dev from the committed package-lock.json), a small app (router, JSON API, static files) on 127.0.0.1:18083'
PROBE='tcp:18083'
BUDGET=20

# COPY_BUILT step: npm ci on the build host (any npm; the packages are pure JS).
npm_ci() {
  local out=$1 t
  t=$(mktemp -d)
  cp "$HERE"/files/express/manifest/package.json "$HERE"/files/express/manifest/package-lock.json "$t/"
  (cd "$t" && npm ci --omit=dev --no-audit --no-fund --cache "$CACHE/npm")
  cp -a "$t/node_modules/." "$out/"
  rm -rf "$t"
}

build() {
  COPY express/manifest /app
  COPY_BUILT npm_ci /app/node_modules 'RUN /bin/sh -c npm ci --omit=dev # buildkit (run on the build host, copied in)'
  COPY express/src /app
  EXPOSE 18083/tcp
  CMD node /app/server.js
}
