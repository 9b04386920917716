"""Headless Chromium driven over the DevTools protocol (CDP) through a pipe (`--remote-debugging-pipe`: file
descriptors 3 and 4, NUL-terminated JSON), so that a test can click, choose, wait for the page and see every request
the page makes — with nothing but the machine's Chromium and the standard library.

Every request is intercepted (`Fetch`): one to 127.0.0.1 goes on, any other is failed before it leaves and recorded
in `Browser.blocked`; `Browser.requests` lists every URL asked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

LOCAL_HOSTS = frozenset({"127.0.0.1"})


class CdpError(RuntimeError):
    """Chromium answered a command with an error, or the page's JavaScript threw."""


class Browser:
    """One headless Chromium with one page (`Page.*`, `Runtime.*`, `Input.*` go to it)."""

    def __init__(self, chromium: str, *, width: int = 1280, height: int = 900, timeout: float = 30) -> None:
        self.timeout = timeout
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self._profile = tempfile.TemporaryDirectory()
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        # In the child: its fd 3 reads our commands, its fd 4 writes answers. (close_fds=False: Python's own fds
        # are not inheritable, and pass_fds would close 3 and 4 after this runs.)
        def fds() -> None:
            r, w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w))
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-pipe",
             f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}", "about:blank"],
            preexec_fn=fds, close_fds=False, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next = 0
        self._lock = threading.Lock()
        self._answers: dict[int, dict[str, Any]] = {}
        self._answered = threading.Condition()
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {"Fetch.requestPaused": self._paused}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.send(f"{domain}.enable")
        self.send("Fetch.enable", patterns=[{"urlPattern": "*"}])

    # the protocol -------------------------------------------------------------------------------------------
    def _write(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        with self._lock:
            os.write(self._to_chrome, data)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                return
            if not chunk:
                with self._answered:
                    self._answered.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._answered:
                        self._answers[msg["id"]] = msg
                        self._answered.notify_all()
                elif msg.get("method") in self._handlers:
                    self._handlers[msg["method"]](msg)

    def _command(self, method: str, session: str | None, params: dict[str, Any], wait: bool) -> dict[str, Any]:
        with self._lock:
            self._next += 1
            n = self._next
        message: dict[str, Any] = {"id": n, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._write(message)
        if not wait:
            return {}
        deadline = time.monotonic() + self.timeout
        with self._answered:
            while n not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise CdpError(f"{method}: no answer from Chromium")
                self._answered.wait(left)
            answer = self._answers.pop(n)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A browser-level command."""
        return self._command(method, None, params, True)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A command to the page."""
        return self._command(method, self.session, params, True)

    def _paused(self, msg: dict[str, Any]) -> None:
        p = msg["params"]
        url = p["request"]["url"]
        self.requests.append(url)
        parsed = urlparse(url)
        local = parsed.scheme in ("data", "blob", "about") or parsed.hostname in LOCAL_HOSTS
        if local:
            self._command("Fetch.continueRequest", msg.get("sessionId"), {"requestId": p["requestId"]}, False)
        else:
            self.blocked.append(url)
            self._command("Fetch.failRequest", msg.get("sessionId"),
                          {"requestId": p["requestId"], "errorReason": "BlockedByClient"}, False)

    # what tests do ------------------------------------------------------------------------------------------
    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError(d.get("exception", {}).get("description") or d.get("text"))
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.js(expression)
            except CdpError:
                last = None  # the page is still loading (a navigation in progress)
            if last:
                return last
            time.sleep(0.05)
        raise AssertionError(f"never true within {timeout} s: {expression} (last: {last!r})")

    def click_at(self, x: float, y: float) -> None:
        """A real mouse click (press and release) at page coordinates."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def click(self, selector: str) -> None:
        """Click the middle of the first element matching `selector` (scrolled into view)."""
        box = self.js(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return null;
            e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        }})()""")
        if box is None:
            raise AssertionError(f"nothing matches {selector}")
        self.click_at(*box)

    def close(self) -> None:
        with contextlib.suppress(CdpError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
