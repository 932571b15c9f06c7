#!/usr/bin/env python3
"""Screenshot HTML reports with headless Chromium and print each page's height.

    .venv/bin/python scripts/screenshots.py REPORT.html [...] --out DIR [--width 1400]

Drives Debian's ``chromium`` over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
no port, no extra library), loads each page from a file:// URL, reads the page height
(``document.documentElement.scrollHeight``) at the given width and saves a full-page PNG
(capped at ``--max-height`` px; the height printed is the page's, not the capped one).
Runs as root with ``--no-sandbox``. Prints one ``height_px<TAB>png<TAB>html`` line per page.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class Browser:
    """One headless Chromium driven over ``--remote-debugging-pipe`` (fds 3 and 4, NUL-framed JSON)."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = [binary, "--headless", "--remote-debugging-pipe", "--disable-gpu", "--hide-scrollbars",
                "--no-first-run", "--disable-extensions", "--user-data-dir=" + _profile_dir(), "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")

        def _fds() -> None:  # chromium reads commands on fd 3 and writes replies on fd 4
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)  # above 4, so neither is clobbered
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, close_fds=False,
                                     preexec_fn=_fds)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.session = ""

    def send(self, method: str, params: dict[str, Any] | None = None, session: bool = True) -> dict[str, Any]:
        """Send one command and wait (bounded by ``timeout``) for its reply."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def wait_event(self, name: str) -> None:
        deadline = time.monotonic() + self.timeout
        while self._next(deadline).get("method") != name:
            pass

    def _next(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium exited")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return dict(json.loads(raw))

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Page.enable")

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def _profile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="runbooks-chromium-")


def shoot(browser: Browser, page: Path, png: Path, width: int, max_height: int) -> int:
    """Load ``page``; save a full-page PNG; return the page height in CSS px at ``width``."""
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    browser.send("Page.navigate", {"url": page.resolve().as_uri()})
    browser.wait_event("Page.loadEventFired")
    height = int(browser.send("Runtime.evaluate", {
        "expression": "Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)",
        "returnByValue": True})["result"]["value"])
    shot = browser.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": min(height, max_height), "scale": 1}})
    png.write_bytes(base64.b64decode(shot["data"]))
    return height


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="+", type=Path, help="HTML files")
    ap.add_argument("--out", type=Path, required=True, help="directory for the PNGs")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--max-height", type=int, default=12000, help="PNG height cap in px")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args(argv)
    if not shutil.which(args.chromium):
        print("chromium not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    browser = Browser(args.chromium)
    try:
        browser.open_page()
        for page in args.pages:
            name = page.parent.name + "_" + page.stem if page.stem != "index" else page.stem
            png = args.out / f"{name}.png"
            height = shoot(browser, page, png, args.width, args.max_height)
            print(f"{height}\t{png}\t{page}")
    finally:
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
