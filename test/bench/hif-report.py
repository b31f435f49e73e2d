#!/usr/bin/env python3
"""Markdown tables (stdout) from test/bench/hif.sh's results.

  hif-report.py hif-<date>.csv [--compare OTHER.csv[=LABEL]]...
                 [--crosscheck X-crosscheck.csv[=LABEL]] [--notes FILE.md]

Reads hif-<date>-layers.csv beside it and, for --compare, the raw profiles
of both runs (the directories named like the CSVs without .csv).

1. Profile size per image: the files and bytes one traced cold start read,
   as a share of the image's unpacked bytes (sum of the layers' regular-file
   bytes; the share of the final rootfs, du -sb, in brackets).
2. Per category: pooled share (sum of profile bytes / sum of unpacked bytes)
   and the range over the category's images.
3. Static analysis vs the trace, per image: the layers the static analysis
   kept fast (engine/application), the hot bytes per layer, agreement = hot
   bytes in kept layers / all hot bytes, kept layers that served no hot
   file, layers not kept that served hot bytes; as the daemon analysed the
   image and with the history as BuildKit writes it (hif.sh analyze_buildkit).
4. Per layer: class, the daemon's placement rule, size, hot files and bytes.
5. With --compare (repeatable): per image, the files (and bytes) only one of
   the two runs' profiles has, e.g. against a run with a longer quiet_ms
   (what the 2 s quiet period cut off) or a second run (noise).
6. With --crosscheck: hif.sh --crosscheck's comparison of each profile with
   an independent syscall trace (bpftrace) of the same start.
--notes: a hand-written Markdown section (findings) placed after the intro.
"""
import json
import csv
import os
import sys

MB = 1e6


def f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def mb(x, nd=1):
    v = f(x)
    return "–" if v is None else f"{v / MB:.{nd}f}"


def pct(x, nd=1):
    v = f(x)
    return "–" if v is None else f"{100 * v:.{nd}f}%"


def short_class(c):
    return {"base": "B", "engine": "E", "application": "A", "unknown": "?"}.get(c, c)


def profile_paths(raw_dir, image):
    try:
        with open(os.path.join(raw_dir, image, "profile.json")) as fh:
            return {x["path"]: x["size"] for x in json.load(fh).get("files", [])}
    except (OSError, ValueError):
        return None


def main():
    args = sys.argv[1:]
    compares, crosschecks = [], []
    notes = None
    if "--notes" in args:
        i = args.index("--notes")
        notes = args[i + 1]
        del args[i:i + 2]
    while "--compare" in args or "--crosscheck" in args:
        i = args.index("--compare") if "--compare" in args else args.index("--crosscheck")
        dest = compares if args[i] == "--compare" else crosschecks
        v = args[i + 1]
        dest.append(tuple(v.split("=", 1)) if "=" in v else (v, None))
        del args[i:i + 2]
    path = args[0]
    rows = list(csv.DictReader(open(path)))
    lpath = path[:-4] + "-layers.csv" if path.endswith(".csv") else path + "-layers.csv"
    layers = list(csv.DictReader(open(lpath))) if os.path.exists(lpath) else []
    by_img = {}
    for l in layers:
        by_img.setdefault(l["image"], []).append(l)

    out = []
    p = out.append
    p(f"# HBCSA: cold-start profiles vs static analysis ({os.path.basename(path)})\n")
    p("One traced cold start per image through ndocker (`[hbcsa] enabled`), "
      "`ctr run` until the corpus probe fired; the trace ended by itself "
      "(nothing new for `quiet_ms`) before the container was stopped, unless "
      "the trace end column says otherwise. Unpacked = sum of the layers' "
      "regular-file bytes (`ndocker-analyze` file_bytes); rootfs = `du -sb` of "
      "the final rootfs (build.sh). MB = 10^6 bytes.\n")

    if notes:
        p(open(notes).read().rstrip() + "\n")

    p("## Profile size per image\n")
    p("| image | category | layers | unpacked MB | rootfs MB | profile files | profile MB | share of unpacked | share of rootfs | ready s | trace end (s after ready) | events | tracer CPU ms |")
    p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        after = f(r["trace_after_probe_s"])
        end = r["trace_end"] or "–"
        if after is not None:
            end += f" ({after:+.1f})"
        if r["trace_complete"] == "false":
            end += ", incomplete"
        if r["profile_key"] == "top_chain":
            end += ", keyed by top chainID"
        if r["profile_key"] == "none":
            end = "NO PROFILE"
        cpu = f(r["tracer_cpu_ms"])
        p(f"| {r['image']} | {r['category']} | {r['layers']} | {mb(r['unpacked_bytes'])} | {mb(r['rootfs_bytes'])} | "
          f"{r['profile_files']} | {mb(r['profile_bytes'])} | {pct(r['share'])} | {pct(r['share_rootfs'])} | "
          f"{r['probe_s'] or '–'} | {end} | {r['trace_events'] or '–'} | {'–' if cpu is None else f'{cpu:.1f}'} |")
    tu = sum(f(r["unpacked_bytes"]) or 0 for r in rows)
    tr = sum(f(r["rootfs_bytes"]) or 0 for r in rows)
    tp = sum(f(r["profile_bytes"]) or 0 for r in rows)
    tf = sum(int(r["profile_files"] or 0) for r in rows)
    if rows:
        p(f"| **all** | | | {mb(tu)} | {mb(tr)} | {tf} | {mb(tp)} | {pct(tp / tu if tu else None)} | "
          f"{pct(tp / tr if tr else None)} | | | | |")
    p("")

    p("## Per category\n")
    p("Agreement = hot bytes in the layers the static analysis kept fast / all hot bytes, pooled "
      "over the category's images; as the daemon analysed the corpus, and with the base "
      "layer's history as BuildKit writes it (see below).\n")
    p("| category | images | unpacked MB | profile files | profile MB | share (pooled) | share range (per image) | agreement | agreement, BuildKit history |")
    p("|---|---|---:|---:|---:|---:|---|---:|---:|")
    cats = []
    for r in rows:
        if r["category"] not in cats:
            cats.append(r["category"])
    for c in cats:
        rs = [r for r in rows if r["category"] == c]
        u = sum(f(r["unpacked_bytes"]) or 0 for r in rs)
        pb = sum(f(r["profile_bytes"]) or 0 for r in rs)
        kept = sum(f(r["hot_bytes_kept"]) or 0 for r in rs)
        keptb = sum(f(r["hot_bytes_kept_bk"]) or 0 for r in rs)
        files = sum(int(r["profile_files"] or 0) for r in rs)
        shares = [f(r["share"]) for r in rs if f(r["share"]) is not None]
        rng = "–" if not shares else (pct(shares[0]) if len(shares) == 1 else f"{pct(min(shares))}–{pct(max(shares))}")
        p(f"| {c} | {', '.join(r['image'] for r in rs)} | {mb(u)} | {files} | {mb(pb)} | "
          f"{pct(pb / u if u else None)} | {rng} | {pct(kept / pb if pb else None)} | {pct(keptb / pb if pb else None)} |")
    p("")

    p("## Static analysis vs the trace\n")
    p("Layers bottom first as `index:class`, B = base, E = engine, A = application, "
      "`*` = kept fast (engine/application). Hot MB per layer from the profile's files "
      "(each attributed to the layer whose inode served it). Agreement = hot bytes in "
      "kept layers / all hot bytes. \"As analysed\": what the daemon decided on this "
      "corpus, whose base layer's history reads `ADD rootfs.tar / # debootstrap ... "
      "<mirror>`: the analyzer strips only a `# buildkit` comment, takes the mirror URL "
      "for the ADD's destination and classes the whole Debian rootfs as application. "
      "\"BuildKit history\": the same image analysed with that entry written "
      "`ADD rootfs.tar / # buildkit` (the layer is then base, as intended).\n")
    p("| image | hot MB per layer | as analysed: classes | agreement | kept, no hot file | not kept, hot (MB) | BuildKit history: classes | agreement | kept, no hot file | not kept, hot (MB) |")
    p("|---|---|---|---:|---|---|---|---:|---|---|")

    def variant(ls, cls_key, keep_key):
        cls = " ".join(f"{l['index']}:{short_class(l[cls_key])}{'*' if l[keep_key] == 'true' else ''}" for l in ls)
        nohot = [l["index"] for l in ls if l[keep_key] == "true" and int(l["hot_files"]) == 0]
        unkept = [f"{l['index']} ({mb(l['hot_bytes'], 1)})" for l in ls
                  if l[keep_key] != "true" and (f(l["hot_bytes"]) or 0) > 0]
        return cls, ", ".join(nohot) or "–", ", ".join(unkept) or "–"

    for r in rows:
        ls = by_img.get(r["image"], [])
        hot = " / ".join(f"{mb(l['hot_bytes'], 2)}" for l in ls)
        a = variant(ls, "class", "keep_fast")
        b = variant(ls, "class_bk", "keep_fast_bk")
        p(f"| {r['image']} | {hot} | {a[0]} | {pct(r['agreement'])} | {a[1]} | {a[2]} | "
          f"{b[0]} | {pct(r['agreement_bk'])} | {b[1]} | {b[2]} |")
    tk = sum(f(r["hot_bytes_kept"]) or 0 for r in rows)
    tkb = sum(f(r["hot_bytes_kept_bk"]) or 0 for r in rows)
    if rows:
        p(f"| **all** | | | {pct(tk / tp if tp else None)} | | | | {pct(tkb / tp if tp else None)} | | |")
    p("")
    if layers:
        p("What the kept layers cost: their bytes against the hot bytes they hold, all images "
          "(hot density = hot bytes / layer bytes).\n")
        p("| analysis | kept layers | kept MB | share of unpacked | hot MB in kept | agreement | hot density, kept | hot density, not kept |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|")
        tb = sum(f(l["file_bytes"]) or 0 for l in layers)
        th = sum(f(l["hot_bytes"]) or 0 for l in layers)
        for name, key in (("as analysed", "keep_fast"), ("BuildKit history", "keep_fast_bk")):
            kl = [l for l in layers if l[key] == "true"]
            kb = sum(f(l["file_bytes"]) or 0 for l in kl)
            kh = sum(f(l["hot_bytes"]) or 0 for l in kl)
            p(f"| {name} | {len(kl)} of {len(layers)} | {mb(kb)} | {pct(kb / tb if tb else None)} | {mb(kh)} | "
              f"{pct(kh / th if th else None)} | {pct(kh / kb if kb else None)} | "
              f"{pct((th - kh) / (tb - kb) if tb - kb else None)} |")
        p("")

    if layers:
        p("## Per layer\n")
        p("| image | # | class (BuildKit history) | kept | daemon rule | tier | layer MB | hot files | hot MB | hot share of layer | created by |")
        p("|---|---:|---|---|---|---|---:|---:|---:|---:|---|")
        for l in layers:
            lb = f(l["file_bytes"]) or 0
            hb = f(l["hot_bytes"]) or 0
            cb = l["created_by"].replace("|", "\\|")
            if len(cb) > 70:
                cb = cb[:67] + "..."
            cls = l["class"] if l["class"] == l["class_bk"] else f"{l['class']} ({l['class_bk']})"
            kept = "yes" if l["keep_fast"] == "true" else "no"
            if l["keep_fast"] != l["keep_fast_bk"]:
                kept += f" ({'yes' if l['keep_fast_bk'] == 'true' else 'no'})"
            p(f"| {l['image']} | {l['index']} | {cls} | {kept} | "
              f"{l['rule'] or '–'} | {l['tier'] or '–'} | {mb(lb, 2)} | {l['hot_files']} | {mb(hb, 2)} | "
              f"{pct(hb / lb if lb else None)} | `{cb}` |")
        p("")
    for compare, label in compares:
        crow = {r["image"]: r for r in csv.DictReader(open(compare))}
        here, there = path[:-4], compare[:-4]
        p(f"## Compared with {label or os.path.basename(compare)}\n")
        p("Files only one of the two profiles has (path set; sizes summed). "
          "Trace end and time after ready of the other run in brackets.\n")
        p("| image | files here | files there | only here: files | MB | only there: files | MB | there: trace end |")
        p("|---|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            a = profile_paths(here, r["image"])
            b = profile_paths(there, r["image"])
            o = crow.get(r["image"])
            if a is None or b is None or o is None:
                p(f"| {r['image']} | {len(a) if a is not None else '–'} | {len(b) if b is not None else '–'} | – | – | – | – | – |")
                continue
            oa = [k for k in a if k not in b]
            ob = [k for k in b if k not in a]
            end = o["trace_end"] or "–"
            if f(o["trace_after_probe_s"]) is not None:
                end += f" ({f(o['trace_after_probe_s']):+.1f})"
            p(f"| {r['image']} | {len(a)} | {len(b)} | {len(oa)} | {sum(a[k] for k in oa) / MB:.2f} | "
              f"{len(ob)} | {sum(b[k] for k in ob) / MB:.2f} | {end} |")
        p("")
    for xc, label in crosschecks:
        xr = list(csv.DictReader(open(xc)))
        p(f"## Tracer vs an independent syscall trace ({label or os.path.basename(xc)})\n")
        p("bpftrace logged every successful open/openat/openat2/execve/execveat of the "
          "container's mount namespace during the same cold start; each name resolved in the "
          "running container's rootfs; the container's own (upperdir) files and other mounts "
          "(/proc, /dev, the /etc/hosts bind mount) left out. Missed = image files opened "
          "before the trace's end that the profile lacks; late = image files first opened "
          "after the trace's end (until the check, after readiness); profile only = files "
          "the kernel opens itself at exec (ELF interpreter, `#!` interpreter), which no "
          "open syscall names.\n")
        p("| image | syscall image files | profile files | common | missed (MB) | late (MB) | profile only | container's own files opened |")
        p("|---|---:|---:|---:|---:|---:|---|---:|")
        for r in xr:
            po = r["profile_only_examples"].replace(" ", ", ") or "–"
            p(f"| {r['image']} | {r['syscall_files']} | {r['profile_files']} | {r['common']} | "
              f"{r['missed']} ({mb(r['missed_bytes'], 2)}) | {r['late']} ({mb(r['late_bytes'], 2)}) | "
              f"{r['profile_only']}: {po} | {r['upper_files']} |")
        p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
