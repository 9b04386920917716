"""Real receivers for the notifiers: a local HTTP server (webhook), an SMTP server (aiosmtpd), an MQTT subscriber
(paho, on the test broker, on a topic of its own)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest


@dataclass
class Hook:
    """What the webhook server received; it answers `fail_first` requests with 500 (all, with fail_first < 0)."""

    url: str = ""
    fail_first: int = 0
    slow: dict[str, float] = field(default_factory=dict)  # event → seconds the server takes before reading it
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answered_ok: list[bytes] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            time.sleep(state.slow.get(self.headers.get("X-Clapas-Event", ""), 0.0))
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append((dict(self.headers.items()), data))
            fail = state.fail_first < 0 or len(state.requests) <= state.fail_first
            self.send_response(500 if fail else 204)
            self.end_headers()
            if not fail:
                state.answered_ok.append(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/clapas"
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    with socket.socket() as sock:  # Controller checks its server by connecting to it: it needs a real port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box = Mailbox("127.0.0.1", port)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            box.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield box
    controller.stop()


class Subscriber:
    """A paho client subscribed to `prefix/#` (a topic no other test uses)."""

    def __init__(self, url: str) -> None:
        import paho.mqtt.client as mqtt

        self.prefix = f"clapas-test/{uuid.uuid4().hex[:10]}"
        self.messages: list[tuple[str, bytes]] = []
        u = urlparse(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *a: c.subscribe(f"{self.prefix}/#", qos=1)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = lambda c, ud, m: self.messages.append((m.topic, m.payload))
        self.client.connect(u.hostname or "127.0.0.1", u.port or 1883)
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def wait(self, n: int, timeout: float = 10) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(mqtt_url: str) -> Iterator[Subscriber]:
    s = Subscriber(mqtt_url)
    yield s
    s.close()
