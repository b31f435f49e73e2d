#!/usr/bin/env python3
"""Summarises benchmark CSVs into test/bench/RESULTS.md and PNG plots.

Input: one or more CSV files written by test/bench/run.sh, one row per
measurement (columns below). Output: per image and configuration the min and
median of each metric, and ratios of medians against the two stock overlayfs
baselines of the same run (overlay-slow = the paper's "Docker", overlay-fast =
"NVM-Docker"). Plots per category: deployment, store time after the last
download, cold start, fast-tier bytes.
"""
import argparse
import csv
import os
import statistics
import sys
from collections import defaultdict

METRICS = [
    ("pull_s", "deployment (pull) s"),
    ("pull_sync_s", "pull + sync s"),
    ("store_after_download_s", "store after last download s"),
    ("cold_start_s", "cold start s"),
    ("warm_start_s", "warm start s"),
    ("cold_concurrent_s", "cold start of N containers at once s (N: the CSV's concurrent column)"),
    ("fast_bytes", "fast-tier bytes"),
    ("cold_seeks", "cold start: positionings on the emulated disk"),
    ("cold_slow_read_mb", "cold start: MiB read from the emulated disk"),
    ("fast_layer_share", "share of the unpacked layer bytes on the fast tier"),
]
# Metrics that exist only where the slow tier is used (0 on all-fast configs).
SLOW_ONLY = ("cold_seeks", "cold_slow_read_mb")
BASELINES = ("overlay-slow", "overlay-fast")


def read_rows(paths):
    rows = []
    for p in paths:
        with open(p, newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def summarise(rows):
    """(image, config) -> metric -> list of values; plus image -> category."""
    data = defaultdict(lambda: defaultdict(list))
    category = {}
    for r in rows:
        key = (r["image"], r["config"])
        category[r["image"]] = r.get("category", "")
        for m, _ in METRICS:
            v = num(r.get(m))
            if v is not None:
                data[key][m].append(v)
    return data, category


def fmt(v, metric):
    if v is None:
        return "-"
    if metric == "fast_bytes":
        return f"{v / 2**20:.1f} MiB"
    if metric == "cold_seeks":
        return f"{v:.0f}"
    if metric == "cold_slow_read_mb":
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def table(data, category, configs, metric, title):
    images = sorted({i for i, _ in data}, key=lambda i: (category.get(i, ""), i))
    out = [f"### {title}", "", "min / median per configuration; ratios are medians against overlay-slow and overlay-fast (lower is faster)", ""]
    out.append("| image | category | " + " | ".join(configs) + " | " +
               " | ".join(f"{c} / {b}" for c in configs if c not in BASELINES for b in BASELINES) + " |")
    ncols = 2 + len(configs) + sum(1 for c in configs if c not in BASELINES) * len(BASELINES)
    out.append("|" + "---|" * ncols)
    for img in images:
        cells, med = [], {}
        for c in configs:
            vals = data.get((img, c), {}).get(metric, [])
            med[c] = statistics.median(vals) if vals else None
            cells.append(f"{fmt(min(vals), metric)} / {fmt(med[c], metric)}" if vals else "-")
        ratios = []
        for c in configs:
            if c in BASELINES:
                continue
            for b in BASELINES:
                # Bytes on the fast tier compare only with all-on-fast; the
                # all-on-slow baseline holds none.
                r = None if metric == "fast_bytes" and b == "overlay-slow" else ratio(med.get(c), med.get(b))
                if metric in SLOW_ONLY and (b == "overlay-fast" or c.endswith("-fast")):
                    r = None
                ratios.append("-" if r is None else f"{r:.2f}x")
        out.append(f"| {img} | {category.get(img, '')} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    out.append("")
    return out


def plots(data, category, configs, outdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: python3-matplotlib missing, no plots", file=sys.stderr)
        return []
    made = []
    by_cat = defaultdict(list)
    for img in {i for i, _ in data}:
        by_cat[category.get(img, "") or "other"].append(img)
    for metric, label in METRICS:
        if metric in ("pull_sync_s", "warm_start_s") or metric in SLOW_ONLY:
            continue
        for cat, imgs in sorted(by_cat.items()):
            imgs = sorted(imgs)
            fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(imgs) * len(configs) / 3), 3.2))
            width = 0.8 / max(1, len(configs))
            for k, c in enumerate(configs):
                meds = []
                for img in imgs:
                    vals = data.get((img, c), {}).get(metric, [])
                    v = statistics.median(vals) if vals else 0
                    meds.append(v / 2**20 if metric == "fast_bytes" else v)
                ax.bar([i + k * width for i in range(len(imgs))], meds, width, label=c)
            ax.set_xticks([i + width * (len(configs) - 1) / 2 for i in range(len(imgs))])
            ax.set_xticklabels(imgs)
            ax.set_ylabel("MiB" if metric == "fast_bytes" else "seconds (median)")
            ax.set_title(f"{label} — {cat}")
            ax.legend(fontsize="small")
            fig.tight_layout()
            name = f"{metric}-{cat}.png"
            fig.savefig(os.path.join(outdir, name), dpi=110)
            plt.close(fig)
            made.append(name)
    return made


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"))
    ap.add_argument("--plots", help="directory for PNG plots (default: next to the first CSV)")
    ap.add_argument("--note", default="", help="text placed under the title (conditions of the run)")
    ap.add_argument("--extra", action="append", default=[],
                    help="markdown file appended after the tables (repeatable)")
    args = ap.parse_args()
    rows = read_rows(args.csv)
    if not rows:
        sys.exit("report.py: no rows")
    data, category = summarise(rows)
    order = ["overlay-slow", "overlay-fast", "ndocker-slow", "ndocker-fast", "ndocker-ldl", "ndocker-predict", "ndocker-hbcsa"]
    seen = {c for _, c in data}
    configs = [c for c in order if c in seen] + sorted(seen - set(order))
    plotdir = args.plots or os.path.dirname(os.path.abspath(args.csv[0]))
    os.makedirs(plotdir, exist_ok=True)
    made = plots(data, category, configs, plotdir)
    def describe(p):
        with open(p, newline="") as f:
            rs = list(csv.DictReader(f))
        return f"`{os.path.relpath(p)}` ({len(rs)} measurements, {len({r.get('round', r.get('run')) for r in rs})} rounds)"
    lines = ["# Benchmark results", "", "Generated by `test/bench/report.py` from " +
             ", ".join(describe(p) for p in args.csv) + ".", ""]
    if args.note:
        lines += [args.note, ""]
    for metric, label in METRICS:
        if not any(data[k].get(metric) for k in data):
            continue
        lines += table(data, category, configs, metric, label)
    for extra in args.extra:
        with open(extra) as f:
            lines += [f.read().rstrip("\n"), ""]
    if made:
        lines += ["### Plots", ""] + [f"- `{os.path.relpath(os.path.join(plotdir, m))}`" for m in made] + [""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.out} and {len(made)} plots in {plotdir}")


if __name__ == "__main__":
    main()
