"""Hash a snapshot while ``etcdctl snapshot save`` writes it:
``follow_save.py NAME RCFILE SECONDS [CHECKS_JSON]`` prints one JSON document (size, inode, dev, mtime_ns,
sha256, body_sha256, trailer, and ``inline`` when checks ran).

Follows NAME.part while etcdctl (clientv3 Save: open O_TRUNC, io.Copy, fsync, close, rename to NAME)
writes it sequentially; keeps the same descriptor across the rename; finishes at EOF once etcdctl
has exited 0 (RCFILE written by the shell). The last 32 bytes are held back from the body digest,
so sha256(body) (etcd's integrity hash) and sha256(file) come from one read. The stream is complete
when the held-back bytes equal sha256 of the body (etcd's trailer): etcdctl then still fsyncs
(~0.17 s for 120 MB on the bench machine), and the checks (CHECKS_JSON: {"status": argv, "count": argv},
NAME replaced by /dev/fd/N, this very inode) run meanwhile. fd 3 is the command's own stdout (the
SSH channel): when its reader is gone (poll: POLLERR/POLLHUP) the runner has dropped the channel,
and the hasher gives up so the shell can stop etcdctl and remove NAME.part. Exit codes: 3 etcdctl
failed, 4 deadline, 5 the file on disk is not what was hashed, 6 the channel closed.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import time
from typing import Any, NoReturn


class Follow:
    def __init__(self, path: str, rcfile: str, seconds: float, checks: dict[str, list[str]]) -> None:
        self.path, self.rcfile, self.end, self.checks = path, rcfile, time.monotonic() + seconds, checks
        self.watch = select.poll()
        try:
            os.fstat(3)
            self.watch.register(3, 0)
        except OSError:
            pass
        self.started: dict[str, subprocess.Popen[str]] = {}
        self.when = ""

    def channel_gone(self) -> bool:
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in self.watch.poll(0))

    def rc(self) -> int | None:
        try:
            with open(self.rcfile) as fh:
                return int(fh.read().strip() or 1)
        except FileNotFoundError:
            return None

    def give_up(self, code: int, why: str) -> NoReturn:
        sys.stderr.write(why + "\n")
        sys.exit(code)

    def open(self) -> int:
        while True:
            for p in (self.path + ".part", self.path):
                try:
                    return os.open(p, os.O_RDONLY)
                except FileNotFoundError:
                    continue
            r = self.rc()
            if r is not None:
                self.give_up(3, f"etcdctl exited {r} before the file appeared")
            if time.monotonic() > self.end:
                self.give_up(4, "no snapshot file before the deadline")
            if self.channel_gone():
                self.give_up(6, "the runner's channel closed")
            time.sleep(0.005)

    def start_checks(self, fd: int, moment: str) -> None:
        self.when = moment
        for name, argv in self.checks.items():
            argv = [f"/dev/fd/{fd}" if a == self.path else a for a in argv]
            self.started[name] = subprocess.Popen(
                argv, stdout=subprocess.PIPE, pass_fds=(fd,), text=True,
                stderr=subprocess.STDOUT if name == "status" else subprocess.DEVNULL)

    def run(self) -> dict[str, Any]:
        fd = self.open()
        h, n, done = hashlib.sha256(), 0, False
        buf = bytearray(32 + (1 << 20))  # one buffer: a fresh 1 MB object per read costs more in page faults
        view, held = memoryview(buf), 0  # buf[:held]: the last bytes read, not yet in the body digest
        while True:
            got = os.readv(fd, [view[held:]])
            if got:
                n += got
                end_ = held + got
                cut = max(end_ - 32, 0)
                h.update(view[:cut])
                buf[:end_ - cut] = bytes(view[cut:end_])
                held = end_ - cut
                if self.checks and not self.started and n % 512 == 32 and h.copy().digest() == bytes(view[:held]):
                    self.start_checks(fd, "while etcdctl fsyncs")
                continue
            if done:
                break
            r = self.rc()
            if r is not None:
                if r != 0:
                    self.give_up(3, f"etcdctl exited {r}")
                done = True  # etcdctl closed and renamed the file: drain to EOF once more
                continue
            if os.fstat(fd).st_size < n:
                self.give_up(5, "file shrank while hashing")
            if time.monotonic() > self.end:
                self.give_up(4, "etcdctl still writing at the deadline")
            if self.channel_gone():
                self.give_up(6, "the runner's channel closed")
            time.sleep(0.005)
        fst, st = os.fstat(fd), os.stat(self.path)
        if (fst.st_ino, fst.st_dev) != (st.st_ino, st.st_dev) or not fst.st_size == st.st_size == n:
            self.give_up(5, f"hashed {n} bytes of inode {fst.st_ino}, file on disk: {st.st_size} bytes, "
                         f"inode {st.st_ino}")
        tail = bytes(view[:held])
        whole = h.copy()
        whole.update(tail)
        doc: dict[str, Any] = {"size": n, "inode": st.st_ino, "dev": st.st_dev, "mtime_ns": st.st_mtime_ns,
                               "sha256": whole.hexdigest(), "body_sha256": h.hexdigest(), "trailer": tail.hex()}
        if self.checks and not self.started:
            self.start_checks(fd, "after the save")
        if self.started:
            inline: dict[str, Any] = {"when": self.when}
            for name, proc in self.started.items():
                try:
                    out, _ = proc.communicate(timeout=max(1.0, self.end - time.monotonic()))
                    inline[name], inline[name + "_rc"] = out, proc.returncode
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
                    inline[name], inline[name + "_rc"] = "timed out", -1
            doc["inline"] = inline
        return doc


if __name__ == "__main__":
    checks = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    print(json.dumps(Follow(sys.argv[1], sys.argv[2], float(sys.argv[3]), checks).run()))
