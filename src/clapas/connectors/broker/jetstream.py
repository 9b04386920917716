"""NATS JetStream (2.9 or later) as the partitioned mode's broker: one stream per partition (nats-py).

Layout: stream `{prefix}-p{NNN}` holds subject `{prefix}.p.{NNN}` (file storage, kept `max_age`); a delivery's
position is its stream sequence (1, 2, …: strictly increasing, contiguous unless retention cut the head). Each
event carries its MQTT-form topic and the time it was first received in headers, as on RabbitMQ.

Publishing is asynchronous with every acknowledgement awaited before `publish` returns: JetStream has then stored
each event, in the order given (one connection writes them in that order). Reading is an ordered push consumer per
partition, ephemeral (no acks, flow control, heartbeats), started at the position asked for; the library
re-creates it from the last sequence it delivered after a reconnection or a gap, so nothing is skipped or given
twice. The worker keeps its position in PostgreSQL, as with RabbitMQ streams: JetStream keeps no consumer state
that matters, and a paused "zombie" worker holds nothing.

nats-py is asyncio; the partitioned mode's roles are threads. Each `NatsJetStream` runs one event loop in a
daemon thread and its methods wait for coroutines there, so they may be called from any thread.

What differs from RabbitMQ: ChirpStack has no NATS integration, so events come in through `clapas bridge` (its
MQTT integration); `clapas route` reads RabbitMQ's AMQP ingress queue and needs RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections import deque
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.js import api

from clapas.connectors.broker import ORIGINAL, Affinity, BrokerError, Delivery, Event, Publishing

log = logging.getLogger("clapas.broker")
T = TypeVar("T")

TOPIC, RECEIVED, ROLE = "Clapas-Topic", "Clapas-Received-Us", "Clapas-Role"
# acknowledgements awaited together (nats-py's own limit on pending async publishes is 4,000)
PUBLISH_WINDOW = 2000
CALL_TIMEOUT_S = 60.0  # longest a publish window or a declaration may wait for the server
# deliveries buffered per consumer before the callbacks wait for `poll` (flow control then holds the server back)
MAX_BUFFERED = 20_000
_AGE = re.compile(r"^(\d+)([YMDhms])$")  # RabbitMQ's x-max-age units, so that one setting serves both brokers
_AGE_S = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}


def max_age_s(text: str) -> float:
    """`7D`, `12h`… (the `stream_max_age` setting, RabbitMQ's notation) in seconds."""
    m = _AGE.match(text.strip())
    if not m:
        raise ValueError(f"stream_max_age {text!r}: expected a number and one of Y M D h m s, e.g. 7D")
    return float(int(m.group(1)) * _AGE_S[m.group(2)])


def _micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


class NatsJetStream(Publishing):
    """`Broker` over NATS JetStream streams; safe to share between threads."""

    def __init__(self, url: str, partitions: int, prefix: str = "clapas", max_age: str = "7D") -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        Publishing.__init__(self)
        self.url = url
        self.partitions = partitions
        self.prefix = prefix
        self.max_age_s = max_age_s(max_age)
        self.affinity = Affinity(partitions)  # by DevEUI until the registry's zones are given (`clapas bridge`)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Any = None
        self._js: Any = None
        self._lock = threading.Lock()

    def stream(self, p: int) -> str:
        return f"{self.prefix}-p{p:03d}"

    def subject(self, p: int) -> str:
        return f"{self.prefix}.p.{p:03d}"

    # the loop thread ----------------------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T], what: str, timeout_s: float = CALL_TIMEOUT_S) -> T:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="nats-broker", daemon=True)
                self._thread.start()
                self._loop = loop
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)
        except BrokerError:
            raise
        except (nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError) as e:
            raise BrokerError(f"{what} failed: {e!r}") from e

    async def _jetstream(self) -> Any:
        if self._nc is None or self._nc.is_closed:
            try:
                self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=-1,
                                              reconnect_time_wait=0.5, error_cb=_log_error,
                                              disconnected_cb=_disconnected, reconnected_cb=_reconnected)
            except (nats.errors.Error, OSError) as e:
                raise BrokerError(f"cannot connect to NATS at {_safe(self.url)}: {e!r}") from e
            self._js = self._nc.jetstream(timeout=CALL_TIMEOUT_S)
        return self._js

    # Broker ------------------------------------------------------------------------------------------------
    def declare(self, ingress: bool = False) -> None:
        """Create the partitions' streams (idempotent). `ingress` is RabbitMQ's notion: refused here."""
        if ingress:
            raise BrokerError("NATS has no AMQP ingress queue: feed the partitions with `clapas bridge`")
        self._run(self._declare(), "declaring the partitions")

    async def _declare(self) -> None:
        js = await self._jetstream()
        for p in range(self.partitions):
            cfg = api.StreamConfig(name=self.stream(p), subjects=[self.subject(p)], storage=api.StorageType.FILE,
                                   retention=api.RetentionPolicy.LIMITS, discard=api.DiscardPolicy.OLD,
                                   max_age=self.max_age_s)
            try:
                await js.add_stream(cfg)
            except nats.js.errors.BadRequestError as e:
                raise BrokerError(f"declaring stream {self.stream(p)} failed (another layout already there?): "
                                  f"{e.description}") from e

    def publish(self, events: Iterable[Event]) -> int:
        events = list(events)
        self._run(self._publish(events), "publishing to the partitions")
        self._note(events)
        return len(events)

    async def _publish(self, events: list[Event]) -> None:
        js = await self._jetstream()
        acks = []
        for e in events:
            headers = {TOPIC: e.topic, RECEIVED: str(_micros(e.received_at))}
            for p, role in self.targets(e):
                acks.append(await js.publish_async(self.subject(p), e.body, wait_stall=CALL_TIMEOUT_S,
                                                   headers={**headers, ROLE: role} if role else headers))
                if len(acks) >= PUBLISH_WINDOW:
                    await asyncio.wait_for(asyncio.gather(*acks), CALL_TIMEOUT_S)
                    acks = []
        await asyncio.wait_for(asyncio.gather(*acks), CALL_TIMEOUT_S)

    def consume(self, after: dict[int, int]) -> JetStreamConsumer:
        consumer = JetStreamConsumer(self, after)
        self._run(consumer.start(), "subscribing to the partitions")
        return consumer

    def delete(self) -> None:
        """Remove the partitions' streams (tests, or starting a city anew)."""
        self._run(self._delete(), "deleting the partitions")

    async def _delete(self) -> None:
        js = await self._jetstream()
        for p in range(self.partitions):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(self.stream(p))

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        nc, self._nc, self._js = self._nc, None, None
        try:
            asyncio.run_coroutine_threadsafe(_shutdown(nc), loop).result(10)
        except Exception as e:  # closing: what matters is said, the thread still stops
            log.warning("closing the NATS connection: %r", e)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
            if not self._thread.is_alive():
                loop.close()


class JetStreamConsumer:
    """Reads owned partitions from positions on (an ordered consumer per partition); `poll` from one thread."""

    def __init__(self, broker: NatsJetStream, after: dict[int, int]) -> None:
        self.broker = broker
        self.next = {p: pos + 1 for p, pos in after.items()}  # the position each partition resumes from
        self._buf: deque[Delivery] = deque()
        self._ready = threading.Condition()
        self._subs: list[Any] = []
        self.gaps = 0  # deliveries that started past the position asked for (retention cut the stream's head)

    async def start(self) -> None:
        js = await self.broker._jetstream()
        for p, start in self.next.items():
            if start > 1:
                cfg = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
            else:
                cfg = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL)
            self._subs.append(await js.subscribe(self.broker.subject(p), stream=self.broker.stream(p),
                                                 ordered_consumer=True, config=cfg, cb=self._on_message_for(p)))

    def _on_message_for(self, p: int) -> Any:
        async def on_message(msg: Any) -> None:
            pos = msg.metadata.sequence.stream
            want = self.next[p]
            if pos < want:
                return
            if pos > want and want > 1:
                self.gaps += 1
                log.error("partition %d: position %d asked for, %d delivered (retention cut the stream?)",
                          p, want, pos)
            self.next[p] = pos + 1
            headers = msg.headers or {}
            received = datetime.fromtimestamp(int(headers.get(RECEIVED, 0)) / 1e6, UTC)
            while len(self._buf) >= MAX_BUFFERED:  # the worker is behind: hold the subscription back
                await asyncio.sleep(0.01)
            with self._ready:
                self._buf.append(Delivery(p, pos, Event(headers.get(TOPIC, ""), msg.data, received,
                                                        headers.get(ROLE) or ORIGINAL)))
                self._ready.notify()
        return on_message

    def poll(self, max_events: int, timeout_s: float) -> list[Delivery]:
        with self._ready:
            self._ready.wait_for(lambda: len(self._buf) >= max_events, timeout_s)
            return [self._buf.popleft() for _ in range(min(max_events, len(self._buf)))]

    def close(self) -> None:
        subs, self._subs = self._subs, []
        if subs and self.broker._loop is not None:
            self.broker._run(_unsubscribe(subs), "closing the partitions' subscriptions", 10)


async def _shutdown(nc: Any) -> None:
    """Close the connection, then end the tasks nats-py leaves behind (the ordered consumers' heartbeat checks)."""
    if nc is not None and not nc.is_closed:
        await nc.close()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _unsubscribe(subs: list[Any]) -> None:
    for s in subs:
        with contextlib.suppress(nats.errors.Error):  # the connection is gone: so is the ephemeral consumer
            await s.unsubscribe()


async def _log_error(e: Exception) -> None:
    log.warning("NATS: %r", e)


async def _disconnected() -> None:
    log.warning("NATS connection lost; reconnecting")


async def _reconnected() -> None:
    log.info("NATS connection back")


def _safe(url: str) -> str:
    """The URL without its password or token, for messages."""
    from urllib.parse import urlparse

    u = urlparse(url)
    return u._replace(netloc=f"{u.hostname}:{u.port or 4222}").geturl() if u.password or u.username else url
