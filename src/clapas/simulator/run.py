"""Running a simulation: pacing simulated time against the wall clock, and the sinks its messages go to.

Sinks: an MQTT broker (as a ChirpStack integration would publish), a `Pipeline` in the same process, a JSON-lines
file for replay and benchmarks. Pacing: `speed` simulated seconds per wall second (`math.inf` for as fast as
possible), and optionally never ahead of the real clock, so that a run that started in the past catches up and
then goes on in real time, as the demo does.
"""

from __future__ import annotations

import base64
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import msgspec

from clapas.connectors import chirpstack_gateway
from clapas.connectors.chirpstack import message as chirpstack_message
from clapas.model import Message
from clapas.simulator.city import City
from clapas.simulator.incidents import select, write_truth
from clapas.simulator.simulation import Simulation

Event = tuple[float, str, bytes]
SOURCE = "simulator"
FEED_BATCH = 2000
MIN_SLEEP_S = 0.005  # below this, waiting costs more than it paces
DEMO_CATCH_UP_S = 180.0  # the demo replays its past week in about three minutes
DEFAULT_DAYS = 7
MQTT_KEEPALIVE_S = 60
MQTT_BATCH = 500
MQTT_PENDING_BATCHES = 8
MQTT_MAX_BUFFER_BYTES = 4 * 1024 * 1024


def paced(events: Iterable[Event], speed: float, stop: threading.Event | None = None, *, not_after_now: bool = False,
          on_wait: Callable[[], None] | None = None) -> Iterator[Event]:
    """Yield events no faster than `speed` simulated seconds per wall second (and, if asked, not before they happen).

    `on_wait` is called before each pause (to flush what was batched); `stop` ends the run at the next event.
    """
    wall0 = time.monotonic()
    sim0: float | None = None
    for ev in events:
        if stop is not None and stop.is_set():
            return
        ts = ev[0]
        if sim0 is None:
            sim0 = ts
        delay = (wall0 + (ts - sim0) / speed - time.monotonic()) if math.isfinite(speed) else -1.0
        if not_after_now:
            delay = max(delay, ts - time.time())
        if delay > MIN_SLEEP_S:
            if on_wait is not None:
                on_wait()
            if stop is not None:
                if stop.wait(delay):
                    return
            else:
                time.sleep(delay)
        yield ev


def message(raw: bytes, received_at: datetime, *, topic: str, source: str = SOURCE) -> Message:
    """A simulated event as a connector would wrap it: Gateway Bridge topics as gateway events."""
    if chirpstack_gateway.is_gateway_topic(topic):
        return chirpstack_gateway.message(raw, received_at, topic=topic)
    return chirpstack_message(raw, received_at, topic=topic, source=source)


# --- sinks -----------------------------------------------------------------------------------------------------
def to_messages(events: Iterable[Event]) -> Iterator[Message]:
    """Events as the journal keeps them: what a ChirpStack connector would have received, at the simulated time."""
    for ts, topic, raw in events:
        yield message(raw, datetime.fromtimestamp(ts, UTC), topic=topic, source=SOURCE)


def feed(pipeline: Any, events: Iterable[Event], batch_size: int = FEED_BATCH, stop: threading.Event | None = None,
         speed: float = math.inf, not_after_now: bool = False, progress: Callable[[float, int], None] | None = None,
         drain: bool = True) -> int:
    """Submit the events to a `Pipeline` in batches; returns how many were submitted."""
    batch: list[Message] = []
    n = 0

    def flush() -> None:
        nonlocal batch
        if batch:
            pipeline.submit_many(batch)
            batch = []

    for ts, topic, raw in paced(events, speed, stop, not_after_now=not_after_now, on_wait=flush):
        batch.append(message(raw, datetime.fromtimestamp(ts, UTC), topic=topic, source=SOURCE))
        n += 1
        if len(batch) >= batch_size:
            flush()
            if progress is not None:
                progress(ts, n)
    flush()
    if drain:
        pipeline.drain()
    return n


class MqttSink:
    """Publishes to an MQTT broker at QoS 0, as ChirpStack's MQTT integration does.

    gmqtt (the fastest Python client measured) runs on its own asyncio loop in a thread; `publish` hands messages
    over in batches, and waits when the socket's write buffer is full, so nothing is dropped on our side.
    """

    def __init__(self, url: str, client_id: str = "clapas-simulator", batch: int = MQTT_BATCH) -> None:
        import asyncio

        import gmqtt

        logging.getLogger("gmqtt").setLevel(logging.WARNING)  # one INFO line per connection otherwise
        u = urlparse(url)
        if u.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
            raise ValueError(f"MQTT URL must be mqtt://host:port (got {url!r})")
        tls = u.scheme in ("mqtts", "ssl")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="clapas-sim-mqtt", daemon=True)
        self.thread.start()
        self.client = gmqtt.Client(client_id)
        if u.username:
            self.client.set_auth_credentials(u.username, u.password)
        port = u.port or (8883 if tls else 1883)
        connect = self.client.connect(u.hostname or "localhost", port, ssl=tls, keepalive=MQTT_KEEPALIVE_S)
        asyncio.run_coroutine_threadsafe(connect, self.loop).result(timeout=10)
        self.batch_size = batch
        self._batch: list[tuple[str, bytes]] = []
        self._room = threading.Semaphore(MQTT_PENDING_BATCHES)
        self.published = 0

    def _send(self, batch: list[tuple[str, bytes]]) -> None:
        """On the loop: write a batch; release its slot once the socket buffer has room again."""
        publish = self.client.publish
        for topic, payload in batch:
            publish(topic, payload, qos=0)
        self._release_when_writable()

    def _release_when_writable(self) -> None:
        transport = self.client._connection._transport
        if transport.get_write_buffer_size() > MQTT_MAX_BUFFER_BYTES:
            self.loop.call_later(0.001, self._release_when_writable)
        else:
            self._room.release()

    def publish(self, topic: str, payload: bytes) -> None:
        self._batch.append((topic, payload))
        if len(self._batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self._room.acquire()
            self.loop.call_soon_threadsafe(self._send, self._batch)
            self.published += len(self._batch)
            self._batch = []

    def close(self, timeout: float = 30.0) -> None:
        """Send what is batched, wait until the socket has written it all, then disconnect."""
        import asyncio

        self.flush()

        async def drain() -> None:
            transport = self.client._connection._transport
            deadline = time.monotonic() + timeout
            while transport.get_write_buffer_size() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            await self.client.disconnect()

        try:
            asyncio.run_coroutine_threadsafe(drain(), self.loop).result(timeout=timeout + 5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


class _Line(msgspec.Struct):
    time: str
    topic: str
    format: str
    payload: msgspec.Raw = msgspec.Raw(b"null")
    payload_b64: str = ""


class FileSink:
    """JSON lines: {time, topic, format, payload (the JSON event itself) | payload_b64 (protobuf)}."""

    def __init__(self, path: str | Path) -> None:
        self.f: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed by close()

    def write(self, ts: float, topic: str, raw: bytes) -> None:
        head = f'{{"time":"{datetime.fromtimestamp(ts, UTC).isoformat()}","topic":"{topic}",'.encode()
        if raw[:1] == b"{":
            self.f.write(head + b'"format":"json","payload":' + raw + b"}\n")
        else:
            self.f.write(head + b'"format":"protobuf","payload_b64":"' + base64.b64encode(raw) + b'"}\n')

    def close(self) -> None:
        self.f.close()


def read_lines(path: str | Path) -> Iterator[Event]:
    """Read back a file written by `FileSink`: (epoch seconds, topic, raw payload bytes)."""
    dec = msgspec.json.Decoder(_Line)
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                ln = dec.decode(line)
                raw = bytes(ln.payload) if ln.format == "json" else base64.b64decode(ln.payload_b64)
                yield datetime.fromisoformat(ln.time).timestamp(), ln.topic, raw


# --- background run for the demo -----------------------------------------------------------------------------------
def run_in_background(pipeline: Any, city: City, speed: float | None = None, stop_event: threading.Event | None = None,
                      truth_path: str | Path | None = None, *, seed: int = 0, days: float = DEFAULT_DAYS,
                      incidents: str = "default", fmt: str = "json") -> threading.Thread:
    """Feed `pipeline` from a thread: the last `days` replayed at `speed` (default: in about three minutes), then
    real time, until `stop_event` is set. The ground truth of the replayed period is written to `truth_path`."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=days)
    speed = speed or days * 86400 / DEMO_CATCH_UP_S
    stop = stop_event or threading.Event()
    chosen = select(incidents, city, start, now, seed)
    if truth_path is not None:
        write_truth(truth_path, chosen)
    sim = Simulation(city, start, None, seed, chosen, fmt=fmt)

    def work() -> None:
        feed(pipeline, sim.messages(), stop=stop, speed=speed, not_after_now=True, drain=False)

    thread = threading.Thread(target=work, name="clapas-simulator", daemon=True)
    thread.stop_event = stop  # type: ignore[attr-defined]
    thread.simulation = sim  # type: ignore[attr-defined]
    thread.start()
    return thread


class Progress:
    """A one-line progress report on stderr, refreshed at most every `every_s` seconds."""

    def __init__(self, t_start: float, t_end: float | None, stream: IO[str] = sys.stderr, every_s: float = 0.5) -> None:
        self.t_start, self.t_end, self.stream, self.every_s = t_start, t_end, stream, every_s
        self.wall0 = self.last = time.monotonic()
        self.tty = stream.isatty() if hasattr(stream, "isatty") else False

    def __call__(self, ts: float, n: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        rate = n / max(now - self.wall0, 1e-9)
        share = ""
        if self.t_end and math.isfinite(self.t_end) and self.t_end > self.t_start:
            share = f" {100 * min(1.0, (ts - self.t_start) / (self.t_end - self.t_start)):5.1f}%"
        sim = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
        line = f"{sim} UTC{share} · {n:,} messages · {rate:,.0f} msg/s"
        self.stream.write(f"\r{line}   " + ("\n" if force else "") if self.tty else line + "\n")
        self.stream.flush()
