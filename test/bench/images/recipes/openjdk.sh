# shellcheck shell=bash disable=SC2034
# language: openjdk-17-jre-headless and a small jar (compiled on the build
# host with javac from openjdk-17-jdk-headless, like a multi-stage build).
CATEGORY=language
FROM=base
DESCRIPTION='openjdk-17-jre-headless with a jar that parses XML, hashes, uses regex, java.time, streams and zip, then serves HTTP (com.sun.net.httpserver) on 127.0.0.1:18092'
PROBE='stdout:^java app ready'
BUDGET=20

# COPY_BUILT step: javac + jar on the build host.
java_app() {
  local out=$1 src=$HERE/files/openjdk/src t
  t=$(mktemp -d)
  local -a sources
  mapfile -t sources < <(find "$src" -name '*.java' | sort)
  javac --release 17 -d "$t/classes" "${sources[@]}"
  jar --create --file "$out/app.jar" --main-class bench.App -C "$t/classes" .
  rm -rf "$t"
}

build() {
  APT ca-certificates netbase tzdata
  APT openjdk-17-jre-headless
  COPY_BUILT java_app /app 'COPY --from=build /src/target/app.jar /app/app.jar # buildkit (javac --release 17 + jar)'
  ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 LANG=C.UTF-8
  WORKDIR /app
  EXPOSE 18092/tcp
  CMD java -XX:+UseSerialGC -Xmx256m -jar /app/app.jar
}
