#!/usr/bin/env python3
"""Summary of test/bench/migrate.sh's results.csv as Markdown (stdout).

  migrate-report.py results.csv

Medians over rounds (min–max in brackets). Ratios: cold start during a
migration / without one (same throttle setting, same rounds), and each
against the stock overlayfs cold start with containerd's root on the slow
tier (cold_overlay_slow), the reference the project reports against.
"""
import csv
import statistics
import sys


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def span(xs, nd=2):
    if not xs:
        return "–"
    return f"{fmt(med(xs), nd)} ({fmt(min(xs), nd)}–{fmt(max(xs), nd)})"


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    by = {}
    for r in rows:
        by.setdefault((r["throttle"], r["measure"]), []).append(r)

    def vals(t, m, f="seconds"):
        return [float(r[f]) for r in by.get((t, m), []) if r[f] not in ("", None)]

    throttles = []
    for r in rows:
        if r["throttle"] != "-" and r["throttle"] not in throttles:
            throttles.append(r["throttle"])
    ovl = vals("-", "cold_overlay_slow")
    loads = [float(r["load1"]) for r in rows if r["load1"]]
    nbytes = next((int(r["bytes"]) for r in rows if r["bytes"]), 0)
    print(f"Migrated: {nbytes} bytes ({nbytes / 1048576:.1f} MiB) per migration. "
          f"Rounds: {max(int(r['round']) for r in rows)}. "
          f"1-min load average before the measurements: {min(loads):.1f}–{max(loads):.1f} (shared machine).\n")

    print("### Migration rate vs throttle\n")
    print("| throttle | setting MiB/s | alone: s | alone: MiB/s | alone / setting | during a cold start: MiB/s |")
    print("|---|---|---|---|---|---|")
    for t in throttles:
        tb = next((int(r["throttle_bytes"]) for r in rows if r["throttle"] == t and r["throttle_bytes"]), 0)
        setting = tb / 1048576 if tb else None
        alone = vals(t, "migrate_alone", "mib_s")
        ratio = med(alone) / setting if setting and alone else None
        print(f"| {t} | {fmt(setting, 1) if setting else 'unlimited'} | {span(vals(t, 'migrate_alone'))} | "
              f"{span(alone, 1)} | {fmt(ratio)} | {span(vals(t, 'migrate_during', 'mib_s'), 1)} |")

    print("\n### Cold start of the other image (seconds, caches dropped, to readiness)\n")
    print(f"Stock overlayfs, containerd root on slow (reference): {span(ovl, 3)}\n")
    print("| throttle | without migration | during migration | during / without | without / overlay-slow | "
          "during / overlay-slow | migration still running at ready |")
    print("|---|---|---|---|---|---|---|")
    o = med(ovl)
    for t in throttles:
        a, d = vals(t, "cold_nomig"), vals(t, "cold_during")
        run = [r["mig_running_at_ready"] for r in by.get((t, "cold_during"), [])]
        ra = med(d) / med(a) if a and d else None
        print(f"| {t} | {span(a, 3)} | {span(d, 3)} | {fmt(ra)} | "
              f"{fmt(med(a) / o) if a and o else '–'} | {fmt(med(d) / o) if d and o else '–'} | "
              f"{run.count('1')}/{len(run)} |")
    allno = [v for t in throttles for v in vals(t, "cold_nomig")]
    if allno and o:
        print(f"\nAll cold starts without a migration (every setting): {span(allno, 3)}; / overlay-slow: "
              f"{fmt(med(allno) / o)}")


if __name__ == "__main__":
    main()
