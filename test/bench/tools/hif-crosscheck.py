#!/usr/bin/env python3
"""Cross-check of a cold-start profile (HBCSA tracer) against an independent
syscall trace of the same start (hif.sh --crosscheck).

  hif-crosscheck.py --log BPFTRACE.out --mntns INUM --root ROOTFS --upper UPPERDIR
                    --profile profile.json [--workdir DIR] [--until-mono NS]
                    [--out crosscheck.json]

BPFTRACE.out: tab-separated lines from hif.sh's bpftrace program, for each
open/openat/openat2 ("O") or execve/execveat ("X") of a thread outside the
host mount namespace, at the syscall's entry:
  E  O|X  <monotonic ns>  <pid>  <tid>  <mnt ns inum>  <dirfd>  <comm>  <filename as passed>
and at its exit:
  R  <monotonic ns>  <tid>  <return value>
bpftrace prints each CPU's buffer in turn, so lines are sorted by time first;
then a thread's R line belongs to its last E line.
An open counts when it returned a descriptor, an exec when it returned 0.
Only the container's mount namespace (--mntns) counts, and only what came
after --since-mono (its start: namespace inode numbers are reused).
Opens after --until-mono (the trace's end) are not in the profile by design:
image files first opened then are reported apart ("late": what the quiet
rule cut off, up to the time of the check).

Names on a mount of the container other than its rootfs (--mountinfo: the
/etc/hosts and /etc/resolv.conf bind mounts of `ctr run --net-host`, /proc,
/dev, ...) are not image files. Each filename is resolved inside ROOTFS (the container's rootfs mount, seen
from the host) the way the kernel would (symlinks followed, absolute ones
from ROOTFS; relative names from --workdir, the image's WorkingDir, which is
right for processes that never chdir). A name that resolves to a regular file
is an image file unless UPPERDIR (the container's own layer) holds that path:
then it is the container's own file, which the profile leaves out by design.

Output (JSON): the image files the syscalls opened (S), the profile's paths
(P), S - P ("missed": opened by the container before the trace's end,
served by an image layer, not in the profile: a tracer miss), "late" (see
above) and P - S ("profile only": e.g. the ELF interpreter and
script interpreters the kernel opens itself at exec, with no open syscall),
with sizes, plus the counts of names ignored and why. HIF_XC_DEBUG=1 prints
each decision on stderr.
"""
import argparse
import json
import os
import stat
import sys


def resolve(root, path, cwd="/", max_links=40):
    """Resolve `path` inside `root` (chroot semantics). Returns (resolved
    absolute path inside root, lstat result or None)."""
    if not path.startswith("/"):
        path = cwd.rstrip("/") + "/" + path
    todo = [p for p in path.split("/") if p]
    cur = []
    links = 0
    st = os.lstat(root)
    while todo:
        comp = todo.pop(0)
        if comp == ".":
            continue
        if comp == "..":
            if cur:
                cur.pop()
            continue
        cand = cur + [comp]
        host = os.path.join(root, *cand)
        try:
            st = os.lstat(host)
        except OSError:
            return "/" + "/".join(cand + todo), None
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                return "/" + "/".join(cand + todo), None
            target = os.readlink(host)
            parts = [p for p in target.split("/") if p]
            if target.startswith("/"):
                cur = []
            todo = parts + todo
            continue
        cur = cand
    return "/" + "/".join(cur), st


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--mntns", required=True, type=int)
    ap.add_argument("--root", required=True)
    ap.add_argument("--upper", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--workdir", default="/")
    ap.add_argument("--until-mono", type=int, default=0)
    ap.add_argument("--since-mono", type=int, default=0,
                    help="the container's start: mount namespace inode numbers are reused, so an "
                    "earlier, gone namespace may have had the same one")
    ap.add_argument("--mountinfo", help="/proc/<container pid>/mountinfo (a copy): paths on mounts other "
                    "than the rootfs (/etc/hosts, /proc, ...) are not image files")
    ap.add_argument("--out")
    a = ap.parse_args()

    prof = json.load(open(a.profile))
    P = {f["path"]: f["size"] for f in prof.get("files", [])}

    S = {}  # resolved path -> {"size", "first": name as passed, "comm", "kind"}: until the trace's end
    L = {}  # the same, opened after the trace's end (until this check)
    ignored = {"other_mntns": 0, "missing": 0, "not_regular": 0,
               "upper": 0, "truncated_name": 0, "relative_to_dirfd": 0}
    relative_from_workdir = 0
    upper_files = set()
    mounts = []
    if a.mountinfo:
        for line in open(a.mountinfo):
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp != "/":
                mounts.append(mp.rstrip("/"))
    ignored["container_mount"] = 0
    ignored["before_start"] = 0
    ignored["empty_name"] = 0
    lines = []
    for line in open(a.log, errors="replace"):
        f = line.rstrip("\n").split("\t")
        if (len(f) == 9 and f[0] == "E") or (len(f) == 4 and f[0] == "R"):
            lines.append((int(f[2] if f[0] == "E" else f[1]), 0 if f[0] == "E" else 1, f))
    lines.sort(key=lambda x: (x[0], x[1]))
    pending = {}  # tid -> the E fields of its syscall in flight
    calls = []
    unpaired = 0
    for _, _, f in lines:
        if f[0] == "E":
            if f[4] in pending:
                unpaired += 1
            pending[f[4]] = f
        else:
            f = f[1:]  # [ns, tid, ret] -> index 1 = tid, 2 = ret as before
            e = pending.pop(f[1], None)
            if e is None:
                unpaired += 1
            if e is None:
                continue
            ret = int(f[2])
            if (e[1] == "O" and ret >= 0) or (e[1] == "X" and ret == 0):
                calls.append(e)
    if os.environ.get("HIF_XC_DEBUG"):
        print(f"{len(lines)} lines, {len(calls)} successful calls", file=sys.stderr)
    for e in calls:
        _, kind, mono, pid, _tid, mntns, dfd, comm, name = e
        if int(mntns) != a.mntns:
            ignored["other_mntns"] += 1
            continue
        if a.since_mono and int(mono) < a.since_mono:
            ignored["before_start"] += 1
            continue
        late = bool(a.until_mono) and int(mono) > a.until_mono
        if not name:
            ignored["empty_name"] += 1  # the name was not paged in at the syscall's entry
            continue
        if len(name.encode()) >= 199:
            ignored["truncated_name"] += 1
            continue
        if not name.startswith("/"):
            if int(dfd) != -100:
                ignored["relative_to_dirfd"] += 1  # relative to another directory: cannot resolve
                continue
            relative_from_workdir += 1
        path, st = resolve(a.root, name, a.workdir)
        if st is None:
            ignored["missing"] += 1
            if os.environ.get("HIF_XC_DEBUG"):
                print(f"missing: {name} -> {path}", file=sys.stderr)
            continue
        if any(path == m or path.startswith(m + "/") for m in mounts):
            ignored["container_mount"] += 1
            continue
        if not stat.S_ISREG(st.st_mode):
            ignored["not_regular"] += 1
            continue
        try:
            ust = os.lstat(os.path.join(a.upper, path.lstrip("/")))
            in_upper = stat.S_ISREG(ust.st_mode)
        except OSError:
            in_upper = False
        if in_upper:
            ignored["upper"] += 1
            upper_files.add(path)
            continue
        target = L if late else S
        if os.environ.get("HIF_XC_DEBUG"):
            print(f"image file ({'late' if late else 'in trace'}): {name} -> {path}", file=sys.stderr)
        if path not in target:
            target[path] = {"size": st.st_size, "first": name, "comm": comm, "kind": kind}

    missed = sorted(set(S) - set(P))
    late = sorted(set(L) - set(P) - set(S))
    extra = sorted(set(P) - set(S))
    out = {
        "syscall_image_files": len(S),
        "syscall_image_bytes": sum(v["size"] for v in S.values()),
        "profile_files": len(P),
        "profile_bytes": sum(P.values()),
        "common": len(set(S) & set(P)),
        "missed": [{"path": p, "size": S[p]["size"], "opened_as": S[p]["first"], "comm": S[p]["comm"],
                    "kind": S[p]["kind"]} for p in missed],
        "missed_bytes": sum(S[p]["size"] for p in missed),
        "late": [{"path": p, "size": L[p]["size"], "opened_as": L[p]["first"], "comm": L[p]["comm"],
                  "kind": L[p]["kind"]} for p in late],
        "late_bytes": sum(L[p]["size"] for p in late),
        "profile_only": [{"path": p, "size": P[p]} for p in extra],
        "profile_only_bytes": sum(P[p] for p in extra),
        "upper_files_opened": sorted(upper_files),
        "ignored": ignored,
        "relative_names_resolved_from_workdir": relative_from_workdir,
        "unpaired_lines": unpaired,
    }
    text = json.dumps(out, indent=2)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)
    print(f"crosscheck: syscalls {len(S)} image files, profile {len(P)}, common {out['common']}, "
          f"missed {len(missed)} ({out['missed_bytes']} B), late {len(late)} ({out['late_bytes']} B), "
          f"profile only {len(extra)}", file=sys.stderr)


if __name__ == "__main__":
    main()
