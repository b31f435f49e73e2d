#!/usr/bin/env bash
# HBCSA static analysis (issue 9, item 1) on images built here, checked
# against what each recipe did:
#  - the library's test image (busybox base, data layers, whiteout, opaque
#    dir, /app/run.sh; CMD sh -c 'cat /etc/greeting');
#  - images assembled from this host's own files with umoci and
#    BuildKit-style history: a python app (interpreter, pip packages, COPY'd
#    app), a JVM app (JRE from /usr/lib/jvm, CA certificates, a jar), a node
#    app (node, an entrypoint script, the app under WORKDIR), a shell-only
#    image (all base), and the python app with one layer blob truncated
#    (that layer "unknown", the others unchanged);
#  - the same analysis on containerd's own content store after a real
#    `ctr pull` (overlayfs), which must give the same classes.
# ndocker-analyze prints each layer's class and evidence (JSON with --json).
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NDOCKER_ANALYZE_BIN:=$NDT_SRC_DIR/build/hbcsa/ndocker-analyze}"
[[ -x "$NDOCKER_ANALYZE_BIN" ]] || ndt_fail "NDOCKER_ANALYZE_BIN=$NDOCKER_ANALYZE_BIN is not an executable; build it first"
ndt_setup hbcsa_static

L=$NDT_WORKDIR/oci-hb
B=$NDT_WORKDIR/hb-bundle
R=$B/rootfs
umoci init --layout "$L"

# manifest_of LAYOUT TAG
manifest_of() {
  jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"
}

# analyze ROOT DIGEST NAME: run the tool (text and JSON), keep both in logs/.
analyze() {
  local root=$1 digest=$2 name=$3
  "$NDOCKER_ANALYZE_BIN" "$root" "$digest" >"$NDT_WORKDIR/logs/analyze-$name.txt" ||
    ndt_fail "ndocker-analyze $name failed"
  "$NDOCKER_ANALYZE_BIN" --json "$root" "$digest" >"$NDT_WORKDIR/logs/analyze-$name.json" ||
    ndt_fail "ndocker-analyze --json $name failed"
  sed 's/^/    /' "$NDT_WORKDIR/logs/analyze-$name.txt" >&2
}

# expect_classes NAME CLASS...: the classes of every layer, bottom first.
expect_classes() {
  local name=$1 got want
  shift
  want="$*"
  got=$(jq -r '[.layers[].class] | join(" ")' "$NDT_WORKDIR/logs/analyze-$name.json")
  assert_eq "$want" "$got" "layer classes of $name"
  ndt_pass "$name: $got"
}

# expect_evidence NAME LAYER REGEX: some evidence line of that layer matches.
expect_evidence() {
  local name=$1 layer=$2 re=$3
  jq -r --argjson i "$layer" '.layers[$i].evidence[].text' "$NDT_WORKDIR/logs/analyze-$name.json" | grep -Eq -- "$re" ||
    ndt_fail "$name layer $layer: no evidence matching /$re/"
}

# A new image from a busybox base (one layer, a rootfs ADD as base images have).
hb_new() {
  local tag=$1
  rm -rf "$B"
  umoci new --image "$L:$tag"
  umoci unpack --image "$L:$tag" "$B" >/dev/null
  mkdir -p "$R"/{bin,etc,tmp,root,usr/bin,usr/local/bin,lib,var/lib/dpkg}
  cp /bin/busybox "$R/bin/busybox"
  local a
  for a in sh ls cat env mkdir; do ln -s busybox "$R/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
  printf 'Package: base-files\nStatus: install ok installed\n' >"$R/var/lib/dpkg/status"
  hb_layer "$tag" "/bin/sh -c #(nop) ADD file:$(sha256sum /bin/busybox | cut -c1-64) in / "
}
hb_layer() { umoci repack --refresh-bundle --history.created_by "$2" --image "$L:$1" "$B" >/dev/null; }

# ---------------------------------------------------------------------------
ndt_step "the library's test image"
image_build "$NDT_WORKDIR/oci" v1
analyze "$NDT_WORKDIR/oci" "$(manifest_of "$NDT_WORKDIR/oci" v1)" ndt
# CMD /bin/sh -c 'cat /etc/greeting': cat is busybox of the root filesystem (base);
# /app/run.sh in layer 5.
expect_classes ndt base base base base application
expect_evidence ndt 0 '^cmd cat resolves to /bin/busybox in this layer \(a base-system tool of the root filesystem\)$'
expect_evidence ndt 4 '^1 files under /app \(e\.g\. app/run\.sh\)$'

# ---------------------------------------------------------------------------
ndt_step "python app: interpreter, pip packages, COPY'd app"
hb_new py
mkdir -p "$R/usr/lib/python3.11"
cp /usr/bin/python3.11 "$R/usr/bin/python3.11"
ln -s python3.11 "$R/usr/bin/python3"
cp /usr/lib/python3.11/*.py "$R/usr/lib/python3.11/"
cp -r /usr/lib/python3.11/encodings "$R/usr/lib/python3.11/"
hb_layer py "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/* # buildkit"
mkdir -p "$R/usr/local/lib/python3.11/site-packages/requests"
printf '__version__ = "2.31.0"\n' >"$R/usr/local/lib/python3.11/site-packages/requests/__init__.py"
hb_layer py "RUN /bin/sh -c pip install --no-cache-dir requests # buildkit"
mkdir -p "$R/app"
printf 'import requests\nprint("python app ready")\n' >"$R/app/app.py"
hb_layer py "COPY app.py /app/ # buildkit"
umoci config --image "$L:py" --config.workingdir /app --config.env PATH=/usr/local/bin:/usr/bin:/bin \
  --config.cmd python3 --config.cmd app.py
analyze "$L" "$(manifest_of "$L" py)" py
expect_classes py base engine engine application
expect_evidence py 1 '^cmd python3 resolves to /usr/bin/python3.11 in this layer: the python interpreter$'
expect_evidence py 3 '^cmd script app.py resolves to /app/app.py in this layer$'
expect_evidence py 3 '^history: COPY app.py /app/$'

ndt_step "the python app with its interpreter layer truncated"
pym=$(manifest_of "$L" py)
pyl1=$(jq -r '.layers[1].digest' "$L/blobs/sha256/${pym#sha256:}")
size=$(stat -c %s "$L/blobs/sha256/${pyl1#sha256:}")
head -c $((size / 2)) "$L/blobs/sha256/${pyl1#sha256:}" >"$NDT_WORKDIR/tmp/cut"
cut_digest=sha256:$(sha256sum "$NDT_WORKDIR/tmp/cut" | cut -c1-64)
mv "$NDT_WORKDIR/tmp/cut" "$L/blobs/sha256/${cut_digest#sha256:}"
jq -c --arg d "$cut_digest" '.layers[1].digest = $d' "$L/blobs/sha256/${pym#sha256:}" >"$NDT_WORKDIR/tmp/m"
cut_manifest=sha256:$(sha256sum "$NDT_WORKDIR/tmp/m" | cut -c1-64)
mv "$NDT_WORKDIR/tmp/m" "$L/blobs/sha256/${cut_manifest#sha256:}"
analyze "$L" "$cut_manifest" py-truncated
expect_classes py-truncated base unknown engine application
expect_evidence py-truncated 1 '^file list unreadable: '

# ---------------------------------------------------------------------------
ndt_step "JVM app: CA certificates, a JRE, a jar"
hb_new java
mkdir -p "$R/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/"
hb_layer java "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates netbase tzdata && rm -rf /var/lib/apt/lists/* # buildkit"
jdk=/usr/lib/jvm/java-17-openjdk-amd64
mkdir -p "$R$jdk/bin" "$R$jdk/lib/server" "$R/etc/alternatives"
cp "$jdk/bin/java" "$R$jdk/bin/"
cp "$jdk/lib/server/libjvm.so" "$R$jdk/lib/server/"
cp "$jdk"/lib/libjava.so "$jdk"/lib/libjli.so "$jdk"/lib/libzip.so "$R$jdk/lib/"
ln -s "$jdk/bin/java" "$R/etc/alternatives/java"
ln -s /etc/alternatives/java "$R/usr/bin/java"
hb_layer java "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless && rm -rf /var/lib/apt/lists/* # buildkit"
mkdir -p "$R/app"
head -c 200000 /dev/urandom >"$R/app/app.jar"
hb_layer java "COPY --from=build /src/target/app.jar /app/app.jar # buildkit"
umoci config --image "$L:java" --config.workingdir /app --config.env "JAVA_HOME=$jdk" \
  --config.cmd java --config.cmd -XX:+UseSerialGC --config.cmd -jar --config.cmd /app/app.jar
analyze "$L" "$(manifest_of "$L" java)" java
expect_classes java base base engine application
expect_evidence java 2 "^java runtime library ${jdk#/}/lib/server/libjvm.so\$"
expect_evidence java 2 "^cmd java resolves to $jdk/bin/java in this layer: the java interpreter\$"
expect_evidence java 3 '^cmd script /app/app.jar resolves to /app/app.jar in this layer$'

# ---------------------------------------------------------------------------
ndt_step "node app: node, an entrypoint script, the app under WORKDIR"
hb_new node
mkdir -p "$R/usr/local/lib/node_modules/npm"
cp "$(readlink -f /usr/bin/node)" "$R/usr/local/bin/node"
printf '{"name":"npm"}\n' >"$R/usr/local/lib/node_modules/npm/package.json"
hb_layer node "RUN /bin/sh -c set -ex && tar -xJf node-v20-linux-x64.tar.xz -C /usr/local --strip-components=1 # buildkit"
printf '#!/bin/sh\nset -e\nexec "$@"\n' >"$R/usr/local/bin/docker-entrypoint.sh"
chmod 0755 "$R/usr/local/bin/docker-entrypoint.sh"
hb_layer node "COPY docker-entrypoint.sh /usr/local/bin/ # buildkit"
mkdir -p "$R/usr/src/app/node_modules/express"
printf 'console.log("node app ready")\n' >"$R/usr/src/app/server.js"
printf 'module.exports = {}\n' >"$R/usr/src/app/node_modules/express/index.js"
hb_layer node "RUN /bin/sh -c npm ci --omit=dev # buildkit"
umoci config --image "$L:node" --config.workingdir /usr/src/app \
  --config.entrypoint docker-entrypoint.sh --config.cmd node --config.cmd server.js
analyze "$L" "$(manifest_of "$L" node)" node
expect_classes node base engine application application
expect_evidence node 1 '^cmd node resolves to /usr/local/bin/node in this layer: the node interpreter$'
expect_evidence node 2 '^entrypoint docker-entrypoint.sh resolves to /usr/local/bin/docker-entrypoint.sh in this layer$'
expect_evidence node 3 '^cmd script server.js resolves to /usr/src/app/server.js in this layer$'

# ---------------------------------------------------------------------------
ndt_step "a shell-only image: nothing to keep fast"
hb_new tools
printf 'curl\n' >"$R/usr/bin/curl"
chmod 0755 "$R/usr/bin/curl"
hb_layer tools "RUN /bin/sh -c apt-get install -y curl # buildkit"
umoci config --image "$L:tools" --config.cmd sh
analyze "$L" "$(manifest_of "$L" tools)" tools
expect_classes tools base base
expect_evidence tools 0 '^cmd sh resolves to /bin/busybox in this layer \(a shell: base system\)$'

# ---------------------------------------------------------------------------
ndt_step "the same analysis on containerd's content store after ctr pull"
registry_start
containerd_start --no-ndocker
content=$(containerd_root_dir)/io.containerd.content.v1.content
# The daemon's path alongside: lass's watcher and the StaticAdvisor worker
# follow the pulls; each verdict change is a JSON line with its time.
ndt_spawn ndocker-analyze-watch "$NDT_WORKDIR/logs/watch.log" "$NDOCKER_ANALYZE_BIN" --watch 250 "$content"
watch_pid=$NDT_LAST_PID
sleep 0.5
image_push "$NDT_WORKDIR/oci" v1 ndt/layers
ctr_pull overlayfs "$NDT_IMAGE_REF"
ndt_ref=$NDT_IMAGE_REF
for t in py java node; do
  image_push "$L" "$t" "hb/$t"
  ctr_pull overlayfs "$NDT_IMAGE_REF"
done
for pair in "ndt:$ndt_ref" "py:$NDT_REGISTRY/hb/py:py" "java:$NDT_REGISTRY/hb/java:java" "node:$NDT_REGISTRY/hb/node:node"; do
  name=${pair%%:*} ref=${pair#*:}
  dig=$(ctrw images ls | awk -v r="$ref" 'NR > 1 && $1 == r { print $3 }')
  [[ -n "$dig" ]] || ndt_fail "image $ref not known to containerd"
  analyze "$content" "$dig" "ctrd-$name"
  assert_eq "$(jq -c '[.layers[] | [.class, .chain_id]]' "$NDT_WORKDIR/logs/analyze-$name.json")" \
    "$(jq -c '[.layers[] | [.class, .chain_id]]' "$NDT_WORKDIR/logs/analyze-ctrd-$name.json")" \
    "classes and chainIDs of $name from containerd's store vs the OCI layout"
  ndt_pass "$name from containerd's content store: $(jq -r '[.layers[].class] | join(" ")' "$NDT_WORKDIR/logs/analyze-ctrd-$name.json")"
  # The chainIDs are the names of the snapshots containerd's unpack made,
  # i.e. what an unpack Prepare will ask the advisor about.
  for c in $(jq -r '.layers[].chain_id' "$NDT_WORKDIR/logs/analyze-ctrd-$name.json"); do
    ctrw snapshots --snapshotter overlayfs info "$c" >/dev/null 2>&1 ||
      ndt_fail "$name: chainID $c is not a snapshot of the pull"
  done
done

ndt_step "the advisor's verdicts during the pulls vs containerd's unpack"
sleep 1
kill -TERM "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
grep '^{' "$NDT_WORKDIR/logs/watch.log" >"$NDT_WORKDIR/logs/watch.jsonl" || true
# The unpack Prepare of layer i comes after the blob fetch (ctr pull fetches
# everything first) and after layer i-1's commit, so max(download ends) for
# layer 0 and layer i-1's snapshot time are lower bounds of Prepare(i):
# "slack" >= 0 means Advise already had the final verdict (or, last column,
# its first fast advice: provisional from the history) then.
printf '    %-6s %-5s %-12s %12s %14s %14s\n' image layer class "blob->final" "final slack" "advice slack" >&2
for pair in "ndt:$ndt_ref" "py:$NDT_REGISTRY/hb/py:py" "java:$NDT_REGISTRY/hb/java:java" "node:$NDT_REGISTRY/hb/node:node"; do
  name=${pair%%:*}
  i=0
  prev_snap=""
  fetch_end=0
  for c in $(jq -r '.layers[].chain_id' "$NDT_WORKDIR/logs/analyze-ctrd-$name.json"); do
    t=$(jq -r --arg c "$c" 'select(.chain_id == $c) | .download_end_unix_nano' "$NDT_WORKDIR/logs/watch.jsonl" | sort -n | tail -n 1)
    ((t > fetch_end)) && fetch_end=$t
  done
  for c in $(jq -r '.layers[].chain_id' "$NDT_WORKDIR/logs/analyze-ctrd-$name.json"); do
    want=$(jq -r --argjson i "$i" '.layers[$i].class' "$NDT_WORKDIR/logs/analyze-ctrd-$name.json")
    final=$(jq -c --arg c "$c" 'select(.chain_id == $c and .provisional == false)' "$NDT_WORKDIR/logs/watch.jsonl" | head -n 1)
    [[ -n "$final" ]] || ndt_fail "$name layer $i ($c): the watching advisor never reached a final verdict"
    assert_eq "$want" "$(jq -r .class <<<"$final")" "$name layer $i: the watching advisor's class"
    t_final=$(jq -r .unix_nano <<<"$final")
    t_blob=$(jq -r .download_end_unix_nano <<<"$final")
    bound=${prev_snap:-$fetch_end}
    advice=$(jq -r --arg c "$c" 'select(.chain_id == $c and .advice != "") | .unix_nano' "$NDT_WORKDIR/logs/watch.jsonl" | head -n 1)
    advice_slack=-
    [[ -n "$advice" ]] && advice_slack="$(((bound - advice) / 1000000)) ms"
    if [[ "$want" == engine || "$want" == application ]]; then
      [[ -n "$advice" ]] || ndt_fail "$name layer $i is $want but the advisor never advised fast"
    fi
    printf '    %-6s %-5s %-12s %9s ms %11s ms %14s\n' "$name" "$i" "$want" \
      "$(((t_final - t_blob) / 1000000))" "$(((bound - t_final) / 1000000))" "$advice_slack" >&2
    created=$(ctrw snapshots --snapshotter overlayfs info "$c" | jq -r .Created)
    prev_snap=$(date -d "$created" +%s%N)
    i=$((i + 1))
  done
done

ndt_pass "static analysis"
