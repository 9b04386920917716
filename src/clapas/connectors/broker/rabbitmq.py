"""RabbitMQ (3.10 or later) as the partitioned mode's broker: one stream per partition, over AMQP 0-9-1 (pika).

Why streams and not quorum queues (measured, README "Partitioned mode"): both publish and consume at the same rate
here over AMQP 0-9-1, but a stream keeps what was read and gives each delivery its offset (`x-stream-offset`
header), so a worker can store its position in PostgreSQL with the rows and, after any crash or takeover, read
again from exactly there: no redelivery to sort out, no ack that matters, and a paused "zombie" consumer holds
nothing (a quorum queue's single active consumer keeps its unacknowledged messages until its connection dies,
and single-active-consumer does not fence it, domain-rules §9.2). The price: a stream is not fsync'd on each
write (a quorum queue is): on one node a power loss may lose the last writes; three nodes replicate them.

Layout: a durable direct exchange `{prefix}.partitions` with stream `{prefix}.p{NNN}` bound under the key
`NNN` (the partition number); ChirpStack's AMQP integration publishes to `amq.topic`, bound to the quorum queue
`{prefix}.ingress` (single active consumer) that `clapas route` moves into the partitions (`connectors.broker.
route`). Each event carries its MQTT-form topic and the time it was first received in headers; a gateway's copies
and the ticks (`connectors.broker`) carry their role too (`role` header).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions

from clapas.connectors.broker import ORIGINAL, Affinity, BrokerError, Delivery, Event, Publishing

log = logging.getLogger("clapas.broker")
# pika logs every failed connection attempt with a traceback at ERROR; what matters is said here, once
logging.getLogger("pika").setLevel(logging.CRITICAL)

# one AMQP transaction per this many published events (measured: ≈ 6,500 events/s per publisher at 1,000)
PUBLISH_TX = 1000
# stream credit: deliveries in flight per consumer channel (streams need a prefetch)
PREFETCH = 2000
# heartbeat long enough for a worker whose pipeline holds it back (backpressure) for a while
HEARTBEAT_S = 120
RECONNECT_MAX_S = 5.0
INGRESS_BINDING = "application.*.device.*.event.*"  # ChirpStack's AMQP routing keys (domain-rules §9.1)
# the Gateway Bridge's MQTT topics as RabbitMQ's MQTT plugin puts them on amq.topic (a city whose MQTT broker is
# this RabbitMQ): `[region.]gateway.{id}.event.stats` and `….state.conn`
GATEWAY_BINDINGS = ("#.gateway.*.event.stats", "#.gateway.*.state.conn")


def _params(url: str) -> pika.URLParameters:
    p = pika.URLParameters(url)
    p.heartbeat = HEARTBEAT_S
    p.blocked_connection_timeout = 300
    return p


def _micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


class RabbitStreams(Publishing):
    """`Broker` over RabbitMQ streams. One instance per thread (pika connections are not thread-safe)."""

    def __init__(self, url: str, partitions: int, prefix: str = "clapas", max_age: str = "7D") -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.url = url
        self.partitions = partitions
        self.prefix = prefix
        self.max_age = max_age
        self.affinity = Affinity(partitions)  # by DevEUI until the registry's zones are given (`clapas route`)
        self.exchange = f"{prefix}.partitions"
        self.ingress = f"{prefix}.ingress"
        self._con: pika.BlockingConnection | None = None
        self._ch: Any = None
        Publishing.__init__(self)

    def stream(self, p: int) -> str:
        return f"{self.prefix}.p{p:03d}"

    def _channel(self) -> Any:
        if self._con is None or self._con.is_closed or self._ch is None or self._ch.is_closed:
            self.close()
            try:
                self._con = pika.BlockingConnection(_params(self.url))
            except pika.exceptions.AMQPError as e:
                raise BrokerError(f"cannot connect to RabbitMQ at {_safe(self.url)}: {e!r}") from e
            self._ch = self._con.channel()
            self._ch.tx_select()
        return self._ch

    def declare(self, ingress: bool = True) -> None:
        ch = self._channel()
        try:
            ch.exchange_declare(self.exchange, "direct", durable=True)
            for p in range(self.partitions):
                name = self.stream(p)
                ch.queue_declare(name, durable=True, arguments={"x-queue-type": "stream", "x-max-age": self.max_age})
                ch.queue_bind(name, self.exchange, routing_key=str(p))
            if ingress:
                ch.queue_declare(self.ingress, durable=True,
                                 arguments={"x-queue-type": "quorum", "x-single-active-consumer": True})
                for key in (INGRESS_BINDING, *GATEWAY_BINDINGS):
                    ch.queue_bind(self.ingress, "amq.topic", routing_key=key)
            ch.tx_commit()
        except pika.exceptions.AMQPError as e:
            self.close()
            raise BrokerError(f"declaring the partitions failed (another layout already there?): {e!r}") from e

    def publish(self, events: Iterable[Event]) -> int:
        events = list(events)
        ch = self._channel()
        sent = 0
        try:
            for e in events:
                headers = {"topic": e.topic, "received_us": _micros(e.received_at)}
                for p, role in self.targets(e):
                    props = pika.BasicProperties(delivery_mode=2,
                                                 headers={**headers, "role": role} if role else headers)
                    ch.basic_publish(self.exchange, str(p), e.body, props)
                    sent += 1
                    if sent % PUBLISH_TX == 0:
                        ch.tx_commit()
            ch.tx_commit()
        except pika.exceptions.AMQPError as e:
            self.close()
            raise BrokerError(f"publishing to the partitions failed: {e!r}") from e
        self._note(events)
        return len(events)

    def consume(self, after: dict[int, int]) -> StreamConsumer:
        return StreamConsumer(self, after)

    def delete(self) -> None:
        """Remove the exchange, partitions and ingress queue (tests, or starting a city anew)."""
        ch = self._channel()
        for p in range(self.partitions):
            ch.queue_delete(self.stream(p))
        ch.queue_delete(self.ingress)
        ch.exchange_delete(self.exchange)
        ch.tx_commit()

    def close(self) -> None:
        con, self._con, self._ch = self._con, None, None
        if con is not None and con.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                con.close()


class StreamConsumer:
    """Reads owned partitions from positions on; reconnects by itself (a broker restart) from the position after
    the last one it delivered, so that nothing is skipped or delivered twice to the worker."""

    def __init__(self, broker: RabbitStreams, after: dict[int, int]) -> None:
        self.broker = broker
        self.next = {p: pos + 1 for p, pos in after.items()}  # the position each partition resumes from
        self._buf: deque[Delivery] = deque()
        self._con: pika.BlockingConnection | None = None
        self._ch: Any = None
        self._last_tag = 0
        self.reconnects = 0
        self.gaps = 0  # deliveries that started past the position asked for (retention truncated the stream)

    def _open(self) -> None:
        self._con = pika.BlockingConnection(_params(self.broker.url))
        ch = self._ch = self._con.channel()
        ch.basic_qos(prefetch_count=PREFETCH)
        for p, start in self.next.items():
            ch.basic_consume(self.broker.stream(p), self._on_message_for(p), auto_ack=False,
                             arguments={"x-stream-offset": start})

    def _on_message_for(self, p: int) -> Any:
        def on_message(ch: Any, method: Any, props: Any, body: bytes) -> None:
            self._last_tag = method.delivery_tag
            headers = props.headers or {}
            pos = headers.get("x-stream-offset")
            want = self.next[p]
            if pos is None or pos < want:
                return  # a stream delivers from the start of the chunk holding the offset asked for: skip
            if pos > want:
                self.gaps += 1
                log.error("partition %d: position %d asked for, %d delivered (retention truncated the stream?)",
                          p, want, pos)
            self.next[p] = pos + 1
            received = datetime.fromtimestamp(headers.get("received_us", 0) / 1e6, UTC)
            topic = headers.get("topic")
            topic = topic.decode() if isinstance(topic, bytes) else str(topic or "")
            role = headers.get("role") or ORIGINAL
            role = role.decode() if isinstance(role, bytes) else str(role)
            self._buf.append(Delivery(p, pos, Event(topic, body, received, role)))
        return on_message

    def poll(self, max_events: int, timeout_s: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout_s
        delay = 0.2
        while len(self._buf) < max_events:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                if self._con is None or self._con.is_closed:
                    self._open()
                self._con.process_data_events(time_limit=left)  # returns early once deliveries arrived
                if self._last_tag:
                    self._ch.basic_ack(self._last_tag, multiple=True)  # credit for the next ones
                    self._last_tag = 0
                delay = 0.2
            except (pika.exceptions.AMQPError, OSError) as e:
                self.reconnects += 1
                self._drop()
                self._rewind()
                log.warning("broker connection lost (%r); reading again from %s in %.1f s", e, self.next, delay)
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, RECONNECT_MAX_S)
        return [self._buf.popleft() for _ in range(min(max_events, len(self._buf)))]

    def _rewind(self) -> None:
        """Buffered deliveries are dropped on reconnect: read them again from the first one's position."""
        for d in self._buf:
            self.next[d.partition] = min(self.next[d.partition], d.position)
        self._buf.clear()

    def _drop(self) -> None:
        con, self._con, self._ch = self._con, None, None
        if con is not None and con.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                con.close()

    def close(self) -> None:
        self._drop()


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlparse

    u = urlparse(url)
    return u._replace(netloc=f"{u.username or ''}@{u.hostname}:{u.port or 5672}").geturl() if u.password else url
