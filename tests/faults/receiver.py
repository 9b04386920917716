"""A webhook receiver that a scenario takes down and brings back (answers 503 while down, as a receiver behind a
load balancer whose backend is gone), recording what it accepted."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self) -> None:
        self._up = True
        self.accepted: list[dict] = []  # bodies answered 204, in arrival order
        self.refused = 0
        self._lock = threading.Lock()
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with state._lock:
                    ok = state._up
                    if ok:
                        state.accepted.append(json.loads(body))
                    else:
                        state.refused += 1
                self.send_response(204 if ok else 503)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def down(self) -> None:
        self._up = False

    def up(self) -> None:
        self._up = True

    @property
    def repeats(self) -> int:
        """Notifications accepted more than once."""
        return sum(n - 1 for n in Counter(b["notification_id"] for b in self.accepted).values() if n > 1)

    def order_ok(self) -> bool:
        """Each alert's events arrived in the order they happened (opened before resolved)."""
        seen: dict[int, list[str]] = {}
        for b in self.accepted:
            seen.setdefault(b["alert"]["id"], []).append(b["event"])
        return all(ev == sorted(ev, key=["opened", "acknowledged", "resolved"].index) for ev in seen.values())

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
