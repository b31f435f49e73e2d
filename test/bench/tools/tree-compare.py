#!/usr/bin/env python3
"""Bench helper: path-by-path comparison of two mounted trees A and B.

  tree-compare.py [--sha all|hot|none] [--hot LIST] A B

Per path (never following symlinks): type, mode, uid, gid, size (regular
files), link target, device numbers, xattrs (all names readable via
llistxattr), hard-link groups (paths sharing an inode in A must share one in
B); sha256 of every regular file (--sha all) or of the hot files listed in
LIST, one rootfs path per line (--sha hot). Prints differences (at most 50)
and a summary line; exit 1 if any differ.
"""
import argparse
import hashlib
import os
import stat
import sys


def walk(root):
    out = {}
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            out["/" + os.path.relpath(p, root)] = os.lstat(p)
    out["/"] = os.lstat(root)
    return out


def xattrs(p):
    try:
        names = sorted(os.listxattr(p, follow_symlinks=False))
    except OSError:
        return ()
    res = []
    for n in names:
        try:
            res.append((n, os.getxattr(p, n, follow_symlinks=False)))
        except OSError as e:
            res.append((n, f"<{e.errno}>"))
    return tuple(res)


def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sha", default="hot")
    ap.add_argument("--hot", default="")
    ap.add_argument("a")
    ap.add_argument("b")
    a = ap.parse_args()
    hot = set()
    if a.hot:
        hot = {ln.strip() for ln in open(a.hot) if ln.strip()}
    ta, tb = walk(a.a), walk(a.b)
    diffs = []
    for p in sorted(set(ta) | set(tb)):
        if p not in ta or p not in tb:
            diffs.append(f"{p}: only in {'A' if p in ta else 'B'}")
            continue
        sa, sb = ta[p], tb[p]
        ka = (stat.S_IFMT(sa.st_mode), stat.S_IMODE(sa.st_mode), sa.st_uid, sa.st_gid)
        kb = (stat.S_IFMT(sb.st_mode), stat.S_IMODE(sb.st_mode), sb.st_uid, sb.st_gid)
        if ka != kb:
            diffs.append(f"{p}: type/mode/owner {ka} != {kb}")
            continue
        pa, pb = a.a + p, a.b + p
        if stat.S_ISREG(sa.st_mode) and sa.st_size != sb.st_size:
            diffs.append(f"{p}: size {sa.st_size} != {sb.st_size}")
        if stat.S_ISLNK(sa.st_mode) and os.readlink(pa) != os.readlink(pb):
            diffs.append(f"{p}: link {os.readlink(pa)} != {os.readlink(pb)}")
        if (stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode)) and sa.st_rdev != sb.st_rdev:
            diffs.append(f"{p}: rdev differs")
        if xattrs(pa) != xattrs(pb):
            diffs.append(f"{p}: xattrs {xattrs(pa)} != {xattrs(pb)}")
        if stat.S_ISREG(sa.st_mode) and (a.sha == "all" or (a.sha == "hot" and p in hot)):
            if sha(pa) != sha(pb):
                diffs.append(f"{p}: sha256 differs")
    # hard-link groups
    ga, gb = {}, {}
    for p, s in ta.items():
        if stat.S_ISREG(s.st_mode) and s.st_nlink > 1:
            ga.setdefault(s.st_ino, []).append(p)
    for grp in ga.values():
        inos = {tb[p].st_ino for p in grp if p in tb}
        if len(inos) != 1:
            diffs.append(f"hard-link group {grp} split in B")
    nsha = sum(1 for p, s in ta.items() if stat.S_ISREG(s.st_mode) and (a.sha == "all" or p in hot))
    for d in diffs[:50]:
        print(d)
    print(f"paths A={len(ta)} B={len(tb)} sha256-compared={nsha} ({a.sha}) differences={len(diffs)}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
