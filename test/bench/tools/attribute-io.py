#!/usr/bin/python3
"""Attributes the requests of an HDD-emulator trace to files and categories on
the slow tier's ext4 (benchmark harness only; root).

  attribute-io.py capture --trace FILE --dev /dev/loopN --mnt DIR --out RUN.json
                          [--no-freeze] [--label TEXT]
      Maps every block a traced request touched to what owns it and writes one
      JSON per run. Run it right after the traced window, while the container
      still runs (its snapshot still exists). By default the file system is
      frozen during the look-up (fsfreeze: ext4 checkpoints its journal, so the
      on-disk inode tables and directories that debugfs reads are current).
  attribute-io.py report RUN.json... [--top N] [--group-by label]
      Tables per run (and medians per label): positionings, requests, bytes
      read/written and modelled disk time per category; the top files.

How a block is attributed (the loop device has offset 0, so fs block =
disk offset / block size):
  - superblock / group descriptors, block and inode bitmaps, inode tables:
    from the group layout (dumpe2fs); an inode-table block is also tagged with
    the categories of the in-use inodes it holds ("inode table: <category>")
  - everything else: debugfs `icheck <block>...` (owning inode; extent-tree
    blocks included), then `ncheck <inode>...` (a path); inode 8 = the journal
  - a block nobody owns now: "unowned (freed since)"
A request's positioning (if it paid one) goes to the owner of its first block;
its bytes (and modelled time: 8 ms per positioning + bytes / rate) are split
over its blocks.

Categories by path (below the tier's mount point):
  ext4 journal; fs metadata: inode tables / bitmaps / superblock+GDT;
  containerd meta.db (io.containerd.metadata.v1.bolt); containerd content
  store; overlayfs snapshotter metadata.db; ndocker metadata (LMDB,
  <ndocker root>/metadata); ndocker l/ links; container snapshot (upper/work
  of a running container = the overlay upperdir's snapshot); snapshot dirs
  (snapshots/, snapshots/<id>, <id>/fs, <id>/work themselves); layer
  directories (directories inside an image layer); layer files (regular files,
  symlinks of a layer); other.
"""
import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys

JOURNAL_INO = 8


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw).stdout


def debugfs(dev, commands):
    """Runs debugfs commands (a list) read-only; returns stdout."""
    script = "\n".join(commands) + "\n"
    p = subprocess.run(["debugfs", "-f", "-", dev], input=script, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, check=True)
    return p.stdout


def read_trace(path):
    reqs, header = [], ""
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                if "trace:" in line and not header:
                    header = line[1:].strip()
                continue
            p = line.split()
            if len(p) < 7:
                continue
            reqs.append({"t_us": int(p[0]), "op": p[1], "off": int(p[2]), "len": int(p[3]),
                         "seek": int(p[4]), "wait_us": int(p[5]), "service_us": int(p[6])})
    return reqs, header


def fs_layout(dev):
    """Block size, inode size, inodes per group and the metadata block ranges."""
    out = run(["dumpe2fs", dev])
    head = {}
    for line in out.splitlines():
        m = re.match(r"^([A-Za-z][^:]+):\s+(.*)$", line)
        if m and m.group(1) not in head:
            head[m.group(1)] = m.group(2)
    bs = int(head["Block size"])
    isz = int(head["Inode size"])
    ipg = int(head["Inodes per group"])
    ranges = []  # (first, last, kind, group, itable_first)
    group = None
    for line in out.splitlines():
        m = re.match(r"^Group (\d+):", line)
        if m:
            group = int(m.group(1))
            continue
        if group is None:
            continue
        for m in re.finditer(r"(Primary|Backup) superblock at (\d+)", line):
            ranges.append((int(m.group(2)), int(m.group(2)), "superblock+GDT", group, 0))
        m = re.search(r"Group descriptors at (\d+)-(\d+)", line)
        if m:
            ranges.append((int(m.group(1)), int(m.group(2)), "superblock+GDT", group, 0))
        m = re.search(r"Reserved GDT blocks at (\d+)-(\d+)", line)
        if m:
            ranges.append((int(m.group(1)), int(m.group(2)), "superblock+GDT", group, 0))
        m = re.search(r"Block bitmap at (\d+)", line)
        if m:
            ranges.append((int(m.group(1)), int(m.group(1)), "bitmaps", group, 0))
        m = re.search(r"Inode bitmap at (\d+)", line)
        if m:
            ranges.append((int(m.group(1)), int(m.group(1)), "bitmaps", group, 0))
        m = re.search(r"Inode table at (\d+)-(\d+)", line)
        if m:
            ranges.append((int(m.group(1)), int(m.group(2)), "inode table", group, int(m.group(1))))
    ranges.sort()
    return bs, isz, ipg, ranges


def find_range(ranges, b):
    lo, hi = 0, len(ranges)
    while lo < hi:
        mid = (lo + hi) // 2
        if ranges[mid][0] <= b:
            lo = mid + 1
        else:
            hi = mid
    if lo and ranges[lo - 1][0] <= b <= ranges[lo - 1][1]:
        return ranges[lo - 1]
    return None


def icheck(dev, blocks):
    owner = {}
    blocks = sorted(blocks)
    for i in range(0, len(blocks), 400):
        chunk = blocks[i:i + 400]
        out = debugfs(dev, ["icheck " + " ".join(map(str, chunk))])
        for line in out.splitlines():
            p = line.split("\t")
            if len(p) == 2 and p[0].strip().isdigit():
                v = p[1].strip()
                owner[int(p[0])] = int(v) if v.isdigit() else None
    return owner


def ncheck(dev, inodes):
    path = {}
    inodes = sorted(set(inodes))
    for i in range(0, len(inodes), 400):
        chunk = inodes[i:i + 400]
        out = debugfs(dev, ["ncheck " + " ".join(map(str, chunk))])
        for line in out.splitlines():
            p = line.split("\t", 1)
            if len(p) == 2 and p[0].strip().isdigit():
                path.setdefault(int(p[0]), p[1].strip())
    return path


def file_types(dev, inodes):
    """inode -> 'dir' | 'file' | 'symlink' | 'other' (debugfs stat)."""
    kinds = {}
    inodes = sorted(set(inodes))
    for i in range(0, len(inodes), 200):
        chunk = inodes[i:i + 200]
        out = debugfs(dev, ["stat <%d>" % n for n in chunk])
        # one "Inode: N   Type: T ..." line per stat, in order
        for m in re.finditer(r"^Inode: (\d+)\s+Type: (\S+)", out, re.M):
            t = m.group(2)
            kinds[int(m.group(1))] = {"directory": "dir", "regular": "file", "symlink": "symlink"}.get(t, "other")
    return kinds


def active_snapshot_dirs(mnt):
    """Snapshot directories (relative to mnt, with a leading /) of the overlay
    upperdirs mounted now, i.e. of running containers."""
    res = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _src, opts = (right.split() + ["", "", ""])[:3]
            if fstype != "overlay":
                continue
            for o in opts.split(","):
                if o.startswith("upperdir="):
                    up = o[len("upperdir="):].replace("\\040", " ")
                    if up.startswith(mnt.rstrip("/") + "/"):
                        res.add(os.path.dirname(up[len(mnt.rstrip("/")):]))
    return sorted(res)


SNAP_RE = re.compile(r"^(.*/(?:io\.containerd\.snapshotter\.v1\.overlayfs/snapshots|snapshots))/(\d+)(/.*)?$")


def categorise(path, kind, active):
    if path is None:
        return "unknown inode"
    if "/io.containerd.metadata.v1.bolt/" in path:
        return "containerd meta.db"
    if "/io.containerd.content.v1.content" in path:
        return "containerd content store"
    if path.endswith("/io.containerd.snapshotter.v1.overlayfs/metadata.db"):
        return "overlayfs snapshotter metadata.db"
    if re.search(r"/ndocker/metadata(/|$)", path):
        return "ndocker metadata (LMDB)"
    if re.search(r"/ndocker/l(/|$)", path):
        return "ndocker l/ links"
    m = SNAP_RE.match(path)
    if m:
        snap = m.group(1) + "/" + m.group(2)
        rest = m.group(3) or ""
        if any(snap == a for a in active):
            return "container snapshot (upper/work)"
        if rest in ("", "/fs", "/work"):
            return "snapshot dirs"
        if not rest.startswith("/fs/"):
            return "snapshot dirs"
        return "layer directories" if kind == "dir" else "layer files"
    if path.endswith("/snapshots") or re.search(r"/(staging|l)$", path):
        return "snapshot dirs"
    if re.search(r"/ndocker(/|$)", path):
        return "ndocker root (other)"
    if "/containerd" in path:
        return "containerd other"
    return "other (tree above)"


def cmd_capture(a):
    reqs, header = read_trace(a.trace)
    bs, isz, ipg, ranges = fs_layout(a.dev)
    ipb = bs // isz
    frozen = False
    if not a.no_freeze:
        subprocess.run(["sync", "-f", a.mnt], check=False)
        subprocess.run(["fsfreeze", "-f", a.mnt], check=True)
        frozen = True
    try:
        blocks = set()
        for r in reqs:
            first, last = r["off"] // bs, (r["off"] + r["len"] - 1) // bs
            blocks.update(range(first, last + 1))
        static = {}
        itable_inodes = {}
        rest = []
        for b in blocks:
            rg = find_range(ranges, b)
            if rg is None:
                rest.append(b)
                continue
            static[b] = rg[2]
            if rg[2] == "inode table":
                g, it0 = rg[3], rg[4]
                first_ino = g * ipg + (b - it0) * ipb + 1
                itable_inodes[b] = list(range(first_ino, first_ino + ipb))
        owner = icheck(a.dev, rest)
        all_inodes = {i for i in owner.values() if i} | {i for l in itable_inodes.values() for i in l}
        paths = ncheck(a.dev, all_inodes)
        kinds = file_types(a.dev, [i for i in paths if i in set(owner.values())])
        active = active_snapshot_dirs(a.mnt)
    finally:
        if frozen:
            subprocess.run(["fsfreeze", "-u", a.mnt], check=False)

    def block_owner(b):
        """(category, file) of a block."""
        if b in static:
            kind = static[b]
            if kind != "inode table":
                return "fs metadata: " + kind, "<%s>" % kind
            cats = sorted({categorise(paths[i], None, active) for i in itable_inodes[b] if i in paths})
            return "fs metadata: inode table", "<inode table: %s>" % (", ".join(cats) or "no named inode")
        ino = owner.get(b)
        if ino is None:
            return "unowned (freed since)", "<unowned>"
        if ino == JOURNAL_INO:
            return "ext4 journal", "<journal>"
        if ino < 11:
            return "fs metadata: reserved inode %d" % ino, "<inode %d>" % ino
        p = paths.get(ino)
        return categorise(p, kinds.get(ino), active), p or "<inode %d>" % ino

    rows = []
    for r in reqs:
        first, last = r["off"] // bs, (r["off"] + r["len"] - 1) // bs
        parts = collections.Counter()
        for b in range(first, last + 1):
            lo = max(r["off"], b * bs)
            hi = min(r["off"] + r["len"], (b + 1) * bs)
            parts[block_owner(b)] += hi - lo
        cat0, file0 = block_owner(first)
        rows.append(dict(r, first=[cat0, file0], parts=[[c, f, n] for (c, f), n in parts.items()]))
    doc = {"label": a.label, "trace": os.path.abspath(a.trace), "header": header, "block_size": bs,
           "device": a.dev, "mount": a.mnt, "active_snapshots": active, "requests": rows}
    with open(a.out, "w") as f:
        json.dump(doc, f)
    print("attribute-io: %d requests, %d blocks -> %s" % (len(reqs), len(blocks), a.out), file=sys.stderr)


def tally(doc, seek_ms=8.0):
    """category -> counters; file -> counters."""
    cats = collections.defaultdict(collections.Counter)
    files = collections.defaultdict(collections.Counter)
    for r in doc["requests"]:
        c0, f0 = r["first"]
        total = r["len"] or 1
        if r["seek"]:
            cats[c0]["seeks"] += 1
            files[(c0, f0)]["seeks"] += 1
            cats[c0]["seek_" + r["op"]] += 1
        for c, f, n in r["parts"]:
            share = n / total
            key = "read" if r["op"] == "R" else "written"
            cats[c]["bytes_" + key] += n
            files[(c, f)]["bytes_" + key] += n
            cats[c]["reqs"] += share
            # modelled disk time: the positioning to the first block's owner,
            # transfer split by bytes
            xfer = r["service_us"] - (seek_ms * 1000 if r["seek"] else 0)
            cats[c]["busy_us"] += xfer * share
            files[(c, f)]["busy_us"] += xfer * share
        if r["seek"]:
            cats[c0]["busy_us"] += seek_ms * 1000
            files[(c0, f0)]["busy_us"] += seek_ms * 1000
    return cats, files


def mb(n):
    return "%.2f" % (n / 1e6)


def cmd_report(a):
    docs = []
    for p in a.json:
        with open(p) as f:
            docs.append(json.load(f))
    by_label = collections.defaultdict(list)
    for d in docs:
        by_label[d.get("label") or os.path.basename(d["trace"])].append(d)
    for label, ds in by_label.items():
        print("### %s (%d run%s)\n" % (label, len(ds), "" if len(ds) == 1 else "s"))
        per_run = [tally(d)[0] for d in ds]
        allcats = sorted({c for t in per_run for c in t},
                         key=lambda c: -statistics.median([t[c]["seeks"] for t in per_run]))
        print("positionings per run (R = for a read, W = for a write), median of busy time, bytes read / written (median)\n")
        print("| category | positionings per run | median | R / W (median) | disk time ms (median) | MB read | MB written |")
        print("|---|---|---|---|---|---|---|")
        for c in allcats:
            s = [t[c]["seeks"] for t in per_run]
            print("| %s | %s | %g | %g / %g | %.0f | %s | %s |" % (
                c, " / ".join(str(x) for x in s), statistics.median(s),
                statistics.median([t[c]["seek_R"] for t in per_run]),
                statistics.median([t[c]["seek_W"] for t in per_run]),
                statistics.median([t[c]["busy_us"] for t in per_run]) / 1000,
                mb(statistics.median([t[c]["bytes_read"] for t in per_run])),
                mb(statistics.median([t[c]["bytes_written"] for t in per_run]))))
        s = [sum(t[c]["seeks"] for c in t) for t in per_run]
        busy = [sum(t[c]["busy_us"] for c in t) / 1000 for t in per_run]
        rb = [sum(t[c]["bytes_read"] for c in t) for t in per_run]
        wb = [sum(t[c]["bytes_written"] for c in t) for t in per_run]
        print("| **total** | %s | %g | | %.0f | %s | %s |\n" % (
            " / ".join(str(x) for x in s), statistics.median(s), statistics.median(busy),
            mb(statistics.median(rb)), mb(statistics.median(wb))))
        if a.top:
            print("top files by positionings (all runs summed):\n")
            files = collections.Counter()
            fbytes = collections.Counter()
            for d in ds:
                _, fl = tally(d)
                for k, v in fl.items():
                    files[k] += v["seeks"]
                    fbytes[k] += v["bytes_read"] + v["bytes_written"]
            print("| positionings | MB | category | file |")
            print("|---|---|---|---|")
            for (c, f), n in sorted(files.items(), key=lambda kv: (-kv[1], kv[0]))[:a.top]:
                print("| %d | %s | %s | `%s` |" % (n, mb(fbytes[(c, f)]), c, f))
            print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--trace", required=True)
    c.add_argument("--dev", required=True)
    c.add_argument("--mnt", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--label", default="")
    c.add_argument("--no-freeze", action="store_true")
    r = sub.add_parser("report")
    r.add_argument("json", nargs="+")
    r.add_argument("--top", type=int, default=15, help="top files by positionings (0: none)")
    a = ap.parse_args()
    if a.cmd == "capture":
        cmd_capture(a)
    else:
        cmd_report(a)


if __name__ == "__main__":
    main()
