"""A TCP relay a test controls, between clapas and a real server (PostgreSQL, an MQTT broker).

The machine's servers are shared and must never be stopped; a fault is made in the relay instead:

- `cut()`        the server is unreachable: open connections are dropped and new ones are refused
                 (accepted and closed at once, as a server that is down behind a proxy);
- `blackhole()`  the network hangs: open and new connections stay open but no byte is forwarded
                 (what a firewall dropping packets looks like: timeouts, not errors);
- `drop_connections()` a server restart: open connections are dropped, new ones are forwarded;
- `restore()`    forwarding resumes for new connections (connections held by a blackhole are dropped).

Threads, not asyncio, so that a synchronous test, an asyncio test and a benchmark can all use it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

_CHUNK = 65536


@dataclass
class RelayStats:
    """What went through the relay, for assertions ("clapas reconnected") and reports."""

    accepted: int = 0
    refused: int = 0
    dropped: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


class _Pair:
    """One client connection and its connection to the server, pumped both ways by two threads."""

    def __init__(self, relay: Relay, client: socket.socket, server: socket.socket) -> None:
        self.relay = relay
        self.client = client
        self.server = server
        self.closed = threading.Event()

    def start(self) -> None:
        for src, dst, up in ((self.client, self.server, True), (self.server, self.client, False)):
            threading.Thread(target=self._pump, args=(src, dst, up), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while not self.closed.is_set():
                if not self.relay._flowing.wait(0.1):
                    continue  # blackholed: leave the bytes in the kernel buffers, the peer waits
                readable, _, _ = select.select([src], [], [], 0.1)
                if not readable:
                    continue
                data = src.recv(_CHUNK)
                if not data:
                    break
                while not self.relay._flowing.is_set() and not self.closed.is_set():
                    self.relay._flowing.wait(0.1)  # arrived just as the network hung: hold it
                if self.closed.is_set():
                    break
                dst.sendall(data)
                with self.relay._lock:
                    if up:
                        self.relay.stats.bytes_up += len(data)
                    else:
                        self.relay.stats.bytes_down += len(data)
        except (OSError, ValueError):  # closed by the other pump or by a fault
            pass
        finally:
            self.close()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.relay._forget(self)


class Relay:
    """Listen on 127.0.0.1:<free port> and forward to (host, port) until told otherwise.

    Use as a context manager, or call `start()` and `close()`. `url(u)` rewrites a server URL
    (postgresql://…, mqtt://…) to go through the relay.
    """

    def __init__(self, host: str, port: int, *, listen_port: int = 0) -> None:
        self.target = (host, port)
        self.stats = RelayStats()
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing = False
        self._stopped = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", listen_port))
        self._sock.listen(128)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @classmethod
    def for_url(cls, url: str, default_port: int = 5432) -> Relay:
        u = urlparse(url)
        return cls(u.hostname or "127.0.0.1", u.port or default_port)

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the relay's."""
        u = urlparse(url)
        userinfo = u.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return u._replace(netloc=netloc).geturl()

    # ---------------------------------------------------------------------------------- lifecycle

    def start(self) -> Relay:
        self._thread.start()
        return self

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stopped.set()
        self._flowing.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self._sock.close()
        self.drop_connections()

    # ---------------------------------------------------------------------------------- faults

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def cut(self) -> None:
        """Server unreachable: drop open connections, refuse new ones until `restore()`."""
        self._refusing = True
        self._flowing.set()
        self.drop_connections()

    def blackhole(self) -> None:
        """Network hangs: nothing forwarded, nothing closed, until `restore()`."""
        self._flowing.clear()

    def drop_connections(self) -> int:
        """Close every open connection (a server restart); return how many."""
        with self._lock:
            pairs = list(self._pairs)
            self.stats.dropped += len(pairs)
        for p in pairs:
            p.close()
        return len(pairs)

    def restore(self) -> None:
        """Forward again. Connections a blackhole held are dropped: their peers have timed out anyway."""
        was_blackholed = not self._flowing.is_set()
        self._refusing = False
        if was_blackholed:
            self.drop_connections()
        self._flowing.set()

    # ---------------------------------------------------------------------------------- internals

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._refusing:
                with self._lock:
                    self.stats.refused += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                with self._lock:
                    self.stats.refused += 1
                client.close()
                continue
            for s in (client, server):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(self, client, server)
            with self._lock:
                self._pairs.add(pair)
                self.stats.accepted += 1
            pair.start()
