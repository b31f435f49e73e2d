#!/usr/bin/env python3
"""Bench helper (not CI): one cold start of an image's entrypoint in a chroot.

  chroot-start.py --root DIR [--user UID[:GID]] [--workdir D] [--env K=V ...]
                  --probe exit|stdout:REGEX|tcp:PORT [--timeout S] -- ARGV...

Forks, chroots into DIR, changes to the workdir, drops to the user, and execs
ARGV (looked up on the image's PATH) in its own process group. The clock runs
from just before the fork until the probe holds: "exit" = the command exited
0; "stdout:REGEX" = a line of its stdout or stderr matched; "tcp:PORT" = a TCP
connect to 127.0.0.1:PORT succeeded (polled every 2 ms). Then the process
group is killed. Prints one JSON object: {"ok", "seconds", "detail"}.
With --netns (the default) the helper first moves itself into a new network
namespace with only loopback up, so the start's ports never collide with
anything else on the host; the child inherits it and the TCP probe runs there.
"""
import argparse
import ctypes
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--user", default="")
    ap.add_argument("--workdir", default="/")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--probe", default="exit")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--netns", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("argv", nargs="+")
    a = ap.parse_args()

    env = dict(e.split("=", 1) for e in a.env)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOME", "/root")
    uid = gid = None
    if a.user:
        u, _, g = a.user.partition(":")
        uid = int(u)
        gid = int(g) if g else uid

    if a.netns:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
            print(json.dumps({"ok": False, "seconds": None, "detail": f"unshare: errno {ctypes.get_errno()}", "tail": []}))
            return 1
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    rfd, wfd = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            os.close(rfd)
            os.dup2(wfd, 1)
            os.dup2(wfd, 2)
            devnull = os.open("/dev/null", os.O_RDONLY)
            os.dup2(devnull, 0)
            os.chroot(a.root)
            os.chdir(a.workdir or "/")
            if gid is not None:
                os.setgroups([gid])
                os.setgid(gid)
            if uid is not None:
                os.setuid(uid)
            os.execvpe(a.argv[0], a.argv, env)
        except BaseException as e:  # noqa: BLE001
            os.write(2, f"chroot-start: {e}\n".encode())
        os._exit(127)
    os.close(wfd)
    kind, _, arg = a.probe.partition(":")
    ok = False
    detail = ""
    buf = b""
    out_tail = []
    deadline = t0 + a.timeout
    rx = re.compile(arg.encode()) if kind == "stdout" else None
    done_at = None
    eof = False
    while time.monotonic() < deadline:
        wait = 0.002 if kind == "tcp" else max(0.0, deadline - time.monotonic())
        if not eof:
            r, _, _ = select.select([rfd], [], [], wait)
        else:
            r = []
            time.sleep(wait if kind == "tcp" else 0.001)
        if r:
            chunk = os.read(rfd, 65536)
            if not chunk:
                eof = True
            else:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for ln in lines:
                    out_tail = (out_tail + [ln.decode(errors="replace")])[-5:]
                    if rx is not None and rx.search(ln):
                        done_at = time.monotonic()
                        ok = True
                        break
                if ok:
                    break
        if kind == "tcp":
            s = socket.socket()
            try:
                s.connect(("127.0.0.1", int(arg)))
                done_at = time.monotonic()
                ok = True
            except OSError:
                pass
            finally:
                s.close()
            if ok:
                break
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            if kind == "exit":
                # drain the output, then judge
                while True:
                    chunk = os.read(rfd, 65536)
                    if not chunk:
                        break
                    buf += chunk
                done_at = time.monotonic()
                ok = os.waitstatus_to_exitcode(status) == 0
                out_tail = (out_tail + buf.decode(errors="replace").splitlines())[-5:]
                detail = f"exit {os.waitstatus_to_exitcode(status)}"
            else:
                detail = f"exited {os.waitstatus_to_exitcode(status)} before the probe"
            pid = None
            break
        if eof and kind == "exit":
            # closed stdout, still running: keep waiting for exit
            pass
    else:
        detail = "timeout"
    secs = (done_at - t0) if done_at else None
    if pid is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    os.close(rfd)
    print(json.dumps({"ok": ok, "seconds": secs, "detail": detail, "tail": out_tail}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
