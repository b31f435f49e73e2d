#!/usr/bin/env python3
"""Markdown tables from coldstart-meta.sh's outputs.

  coldstart-meta-report.py PREFIX   (reads PREFIX.csv, PREFIX-meta-<img>.json,
      PREFIX-layers-bytes-<img>.txt, PREFIX-erofs-bytes-<img>.txt,
      PREFIX-verify-<img>.txt, PREFIX-verify-erofs-<img>.txt)
"""
import csv
import json
import os
import statistics
import sys

ORDER = ["overlayfs-slow", "meta", "meta-erofs", "overlayfs-fast"]


def fmt_t(xs):
    if not xs:
        return "-"
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}–{max(xs):.3f})"


def fmt_i(xs):
    if not xs:
        return "-"
    m = statistics.median(xs)
    return f"{m:g} ({min(xs):g}–{max(xs):g})" if min(xs) != max(xs) else f"{m:g}"


def last_line(path):
    if not os.path.exists(path):
        return "not run"
    lines = open(path).read().strip().splitlines()
    return lines[-1] if lines else "empty"


def main():
    prefix = sys.argv[1]
    rows = list(csv.DictReader(open(prefix + ".csv")))
    images = []
    for r in rows:
        if r["image"] not in images:
            images.append(r["image"])
    present = [l for l in ORDER if any(r["layout"] == l for r in rows)]
    metas = [l for l in ("meta", "meta-erofs") if l in present]
    head = ["image", "rounds ok"] + [f"{l} s" for l in present]
    for m in metas:
        head += [f"slow/{m}", f"{m}/fast"]
    head += ["slow-disk positionings (" + " / ".join(present) + ")", "MB read from slow (" + " / ".join(present) + ")"]
    if any(r.get("load1") for r in rows):
        head.append("load1 during starts")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for img in images:
        t, seeks, mb, nok = {}, {}, {}, {}
        for lay in present:
            rs = [r for r in rows if r["image"] == img and r["layout"] == lay]
            ok = [r for r in rs if r["ok"] == "true" and r["seconds"]]
            nok[lay] = f"{len(ok)}/{len(rs)}"
            t[lay] = [float(r["seconds"]) for r in ok]
            seeks[lay] = [int(r["seeks"]) for r in ok if r["seeks"]]
            mb[lay] = [round(int(r["bytes_read"]) / 1e6, 1) for r in ok if r["bytes_read"]]
        med = {k: statistics.median(v) if v else None for k, v in t.items()}
        cells = [img, " / ".join(nok[l] for l in present)] + [fmt_t(t[l]) for l in present]
        for m in metas:
            s, f = med.get("overlayfs-slow"), med.get("overlayfs-fast")
            cells.append(f"{s / med[m]:.1f}x" if s and med[m] else "-")
            cells.append(f"{med[m] / f:.2f}" if f and med[m] else "-")
        cells.append(" / ".join(fmt_i(seeks[l]) for l in present))
        cells.append(" / ".join(fmt_i(mb[l]) for l in present))
        if "load1 during starts" in head:
            loads = [float(r["load1"]) for r in rows if r["image"] == img and r.get("load1")]
            cells.append(f"{min(loads):.1f}–{max(loads):.1f}" if loads else "-")
        out.append("| " + " | ".join(cells) + " |")

    out.append("")
    out.append("| image | entries | hot files (MB) | stubs | META ext4 dir on fast, st_blocks (MB) | bytes/entry | META EROFS image on fast, allocated (MB) | bytes/entry | layers on fast = overlayfs-fast (MB) | share ext4 | share EROFS | META build s | view check META (ext4) vs overlayfs-slow | view check META (EROFS) vs overlayfs-slow |")
    out.append("|" + "---|" * 14)
    sh_ext4, sh_erofs = [], []
    for img in images:
        mj = prefix + f"-meta-{img}.json"
        lb = prefix + f"-layers-bytes-{img}.txt"
        eb = prefix + f"-erofs-bytes-{img}.txt"
        m = json.load(open(mj)) if os.path.exists(mj) else None
        layers = int(open(lb).read().split()[0]) if os.path.exists(lb) else None
        erofs = int(open(eb).read().split()[0]) if os.path.exists(eb) else None
        erofs_apparent = int(open(eb).read().split()[1]) if erofs else None
        if m is None or not layers:
            out.append(f"| {img} |" + " - |" * 11 + f" {last_line(prefix + f'-verify-{img}.txt')} | - |")
            continue
        s1 = m["bytes_on_disk"] / layers
        sh_ext4.append(s1)
        s2 = erofs / layers if erofs else None
        if s2 is not None:
            sh_erofs.append(s2)
        out.append(
            f"| {img} | {m['entries']} | {m['hot_files']} ({m['hot_bytes'] / 1e6:.1f}) | {m['stubs']} | "
            f"{m['bytes_on_disk'] / 1e6:.1f} | {m['bytes_per_entry']:.0f} | "
            + (f"{erofs / 1e6:.1f} (file {erofs_apparent / 1e6:.1f}) | {erofs / m['entries']:.0f} | " if erofs else "- | - | ")
            + f"{layers / 1e6:.1f} | {s1 * 100:.1f}% | " + (f"{s2 * 100:.1f}% | " if s2 is not None else "- | ")
            + f"{m['seconds']:.2f} | {last_line(prefix + f'-verify-{img}.txt')} | "
            f"{last_line(prefix + f'-verify-erofs-{img}.txt')} |")
    out.append("")
    if sh_ext4:
        out.append(f"Mean fast-tier share, META as ext4 dir: {statistics.mean(sh_ext4) * 100:.1f}% ({len(sh_ext4)} images)"
                   + (f"; as EROFS image: {statistics.mean(sh_erofs) * 100:.1f}% ({len(sh_erofs)} images)." if sh_erofs else "."))
    print("\n".join(out))


if __name__ == "__main__":
    main()
