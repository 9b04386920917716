"""Driving the machine's headless Chromium through the DevTools protocol over a pipe (`--remote-debugging-pipe`:
commands on its fd 3, answers on its fd 4, each JSON message ended by a NUL byte) — no WebSocket library, nothing
downloaded. Enough for a test to load a page, run JavaScript in it (type, click) and wait for what it shows."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
from typing import Any

from tests.web.test_dashboard import CHROMIUM


class PageError(AssertionError):
    """JavaScript threw in the page, or what a test waited for did not come."""


class Browser:
    def __init__(self, timeout: float = 30.0) -> None:
        self.profile = tempfile.TemporaryDirectory()
        # fd 3 and 4 of Chromium are our stdin and stdout pipes
        self.proc = subprocess.Popen(
            ["bash", "-c", 'exec 3<&0 4>&1 0</dev/null 1>/dev/null; exec "$@"', "chromium", CHROMIUM,
             "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-dev-shm-usage", "--no-first-run", f"--user-data-dir={self.profile.name}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.timeout = timeout
        self._id = 0
        self._buf = b""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def _send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg).encode() + b"\0")
        self.proc.stdin.flush()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while b"\0" not in self._buf:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                raise PageError("Chromium closed its DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self._send(msg)
        while True:
            r = self._read()
            if r.get("id") == self._id:
                if "error" in r:
                    raise PageError(f"{method}: {r['error']}")
                return r.get("result", {})

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        r = self.call("Runtime.evaluate", session=True, expression=expression, awaitPromise=True,
                      returnByValue=True)
        if "exceptionDetails" in r:
            raise PageError(f"{expression[:200]}: {r['exceptionDetails'].get('exception', {}).get('description')}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float | None = None) -> Any:
        """Poll until the expression is truthy in the page; its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.js(expression)
            except PageError:
                last = None  # the page is (re)loading
            if last:
                return last
            time.sleep(0.1)
        page = self.js("document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise PageError(f"waited {timeout or self.timeout} s for {expression!r}: {last!r}; page: {page!r}")

    def close(self) -> None:
        with contextlib.suppress(PageError, OSError):  # it may be gone already
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.profile.cleanup()
