"""sha256 of a snapshot file and of its body in one read: ``digest.py FILE OUTDIR`` writes OUTDIR/sha,
OUTDIR/body and OUTDIR/trailer (hex).

The body (size - 32 bytes) is a multiple of 64 bytes, so SHA-256's state after it is shared by
sha256(body) (etcd's integrity hash) and sha256(file) (body + trailer).
"""

from __future__ import annotations

import hashlib
import os
import sys


def main(path: str, outdir: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    left = max(os.fstat(fd).st_size - 32, 0)
    h, buf = hashlib.sha256(), bytearray(1 << 17)
    view = memoryview(buf)
    while left:
        n = os.readv(fd, [view[:min(left, len(buf))]])
        if n <= 0:
            break
        h.update(view[:n])
        left -= n
    trailer = os.read(fd, 64)
    whole = h.copy()
    whole.update(trailer)
    for name, value in (("sha", whole.hexdigest()), ("body", h.hexdigest()), ("trailer", trailer.hex())):
        with open(os.path.join(outdir, name), "w") as out:
            out.write(value)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
