"""Into the partitions: `clapas route` (ChirpStack's AMQP integration) and `clapas bridge` (its MQTT one).

`route` reads the ingress quorum queue that `amq.topic` feeds with ChirpStack's events (single active consumer:
run two routers, one reads, the other stands by and takes over in order) and appends each event to its device's
partition; the ingress is acknowledged only once the partitions have the events (an AMQP transaction), so a
router crash repeats at most the unacknowledged tail — the workers' deduplication (ChirpStack's
deduplicationId) journals those repeats as duplicates, never as new observations.

`bridge` is for cities whose ChirpStack has no AMQP integration: it subscribes to the MQTT integration (QoS 1,
persistent session) and to the Gateway Bridge's topics, and acknowledges each message (PUBACK) once the partitions
have it.

Both send every partition a tick (`connectors.broker.TICK`) of the stream time reached: after a batch once the
stream has moved on TICK_MIN_S, and whenever they go idle — so that a partition whose devices all fell silent still
sees its silence rules come due, never ahead of what a single process would have seen at that point.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions

from clapas.cli import add_config_argument
from clapas.config import Settings, load_settings
from clapas.connectors.broker import AMQP_SCHEMES, Affinity, Broker, BrokerError, Event, amqp_to_topic, open_broker
from clapas.connectors.broker.rabbitmq import PREFETCH, RabbitStreams, _params

log = logging.getLogger("clapas.route")

REGISTRY_REFRESH_S = 60.0  # how often the device → zone map is read again from the store
ROUTE_BATCH = 1000  # events per partition transaction and ingress acknowledgement
ROUTE_WAIT_S = 0.2  # longest an event waits in the router for its batch
RETRY_MAX_S = 5.0
# stream time between two ticks while events flow (design: a tenth of the health rules' 300-s check grid; when the
# input goes quiet a tick is sent at once)
TICK_MIN_S = 30.0


def _broker(s: Settings) -> Broker:
    p = s.partitioned
    return open_broker(p.broker_url, p.partitions, p.prefix, p.stream_max_age)


class Zones:
    """Keeps the broker's `Affinity` up to date with the registry's device → zone map (read every
    REGISTRY_REFRESH_S from the store, if one is configured)."""

    def __init__(self, broker: Broker, store_url: str) -> None:
        self.broker = broker
        self.store: Any = None
        if store_url.startswith(("postgresql://", "postgres://")):
            from clapas.store.base import open_store

            self.store = open_store(store_url)
        self._next = 0.0

    def refresh(self) -> None:
        if self.store is None or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + REGISTRY_REFRESH_S
        try:
            self.broker.affinity = Affinity.from_devices(self.broker.partitions, self.store.devices(limit=10_000_000))
        except Exception:
            log.exception("reading the registry's zones failed; routing by the previous map")


class Router:
    """Ingress queue → partitions, in order, a batch at a time."""

    def __init__(self, broker: RabbitStreams, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 zones: Zones | None = None) -> None:
        self.broker = broker
        self.zones = zones
        self.now = now
        self.routed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        self.broker.declare()
        delay = 0.2
        while not self.stop.is_set():
            try:
                self._run_connected()
                delay = 0.2
            except (pika.exceptions.AMQPError, BrokerError, OSError) as e:
                log.warning("router: broker connection lost (%r); again in %.1f s", e, delay)
                self.broker.close()
                self.stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _run_connected(self) -> None:
        con = pika.BlockingConnection(_params(self.broker.url))
        try:
            ch = con.channel()
            ch.basic_qos(prefetch_count=PREFETCH)
            pending: list[Event] = []
            last_tag = 0

            def on_message(_ch: Any, method: Any, props: Any, body: bytes) -> None:
                nonlocal last_tag
                pending.append(Event(amqp_to_topic(method.routing_key), body, received_at(props) or self.now()))
                last_tag = method.delivery_tag

            ch.basic_consume(self.broker.ingress, on_message, auto_ack=False)
            started = time.monotonic()
            while not self.stop.is_set():
                if not pending:
                    self.broker.tick()  # idle: the stream time reached, to every partition
                    if self.zones is not None:
                        self.zones.refresh()
                con.process_data_events(time_limit=ROUTE_WAIT_S / 4)
                if pending and (len(pending) >= ROUTE_BATCH or time.monotonic() - started >= ROUTE_WAIT_S):
                    self.broker.publish(pending)  # the partitions have them: now the ingress may forget them
                    self.broker.tick(TICK_MIN_S)
                    ch.basic_ack(last_tag, multiple=True)
                    self.routed += len(pending)
                    pending.clear()
                if not pending:
                    started = time.monotonic()
        finally:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                if con.is_open:
                    con.close()


class Bridge:
    """ChirpStack's MQTT integration → partitions; the PUBACK waits until the partitions have the message."""

    def __init__(self, broker: Broker, qos: int = 1, zones: Zones | None = None) -> None:
        self.broker = broker
        self.zones = zones
        self.qos = qos
        self._buf: list[tuple[Event, asyncio.Future[None] | None]] = []
        self.bridged = 0

    def sink(self, topic: str, payload: bytes) -> asyncio.Future[None] | None:
        fut = asyncio.get_running_loop().create_future() if self.qos else None
        self._buf.append((Event(topic, payload, datetime.now(UTC)), fut))
        return fut

    async def pump(self, stop: asyncio.Event) -> None:
        delay = 0.2
        while not (stop.is_set() and not self._buf):
            if not self._buf:
                await asyncio.to_thread(self._idle)
                await asyncio.sleep(0.02)
                continue
            batch, self._buf = self._buf[:ROUTE_BATCH], self._buf[ROUTE_BATCH:]
            try:
                await asyncio.to_thread(self._publish, [e for e, _ in batch])
            except BrokerError as e:
                log.warning("bridge: publishing failed (%s); again in %.1f s", e, delay)
                self._buf[:0] = batch  # in order, first
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                if stop.is_set():
                    return  # unacknowledged: the MQTT broker keeps them for the persistent session
                continue
            delay = 0.2
            self.bridged += len(batch)
            for _, fut in batch:
                if fut is not None and not fut.done():
                    fut.set_result(None)

    def _publish(self, events: list[Event]) -> None:
        self.broker.publish(events)
        self.broker.tick(TICK_MIN_S)

    def _idle(self) -> None:
        try:
            self.broker.tick()
        except BrokerError as e:
            log.warning("bridge: ticking the partitions failed (%s)", e)
        if self.zones is not None:
            self.zones.refresh()


def received_at(props: Any) -> datetime | None:
    """When the broker received a message, if it says (RabbitMQ's `message_interceptors.incoming.
    set_header_timestamp` adds `timestamp_in_ms`): the same on every delivery, whichever router reads it."""
    ms = (props.headers or {}).get("timestamp_in_ms") if props is not None else None
    return datetime.fromtimestamp(ms / 1000, UTC) if isinstance(ms, int) else None


def cmd_route(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if not settings.partitioned.broker_url.startswith(AMQP_SCHEMES):
        log.error("clapas route reads RabbitMQ's AMQP ingress queue: partitioned.broker_url must be amqp://… "
                  "(with NATS JetStream, feed the partitions with `clapas bridge`)")
        return 2
    broker = _broker(settings)
    assert isinstance(broker, RabbitStreams)
    router = Router(broker, zones=Zones(broker, settings.store))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: router.stop.set())
    router.run()
    return 0


def cmd_bridge(args: argparse.Namespace) -> int:
    from clapas.connectors.mqtt import MqttSubscriber
    from clapas.service import run_loop, stop_on_signals

    settings = load_settings(args.config)
    cs = settings.chirpstack
    if not cs.mqtt_url:
        log.error("clapas bridge needs CLAPAS_CHIRPSTACK_MQTT_URL")
        return 2
    broker = _broker(settings)
    broker.declare(ingress=False)
    qos = max(1, cs.qos)  # at least once into the partitions: QoS 1, acknowledged once published
    bridge = Bridge(broker, qos, Zones(broker, settings.store))
    sub = MqttSubscriber(cs.mqtt_url, [cs.topic, *cs.gateway_topics], bridge.sink,
                         client_id=cs.client_id + "-bridge", qos=qos, name="chirpstack-bridge")

    async def main() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await asyncio.gather(sub.run(stop), bridge.pump(stop))

    run_loop(main())
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("route", help="partitioned mode: ChirpStack AMQP events (ingress queue) → partitions",
                       description="Move ChirpStack's AMQP integration events from the ingress queue into the "
                       "device partitions (run two: one stands by). Settings: [partitioned] (CLAPAS_PARTITIONED_*).")
    add_config_argument(r)
    r.set_defaults(func=cmd_route)
    b = sub.add_parser("bridge", help="partitioned mode: ChirpStack MQTT integration → partitions",
                       description="Subscribe to ChirpStack's MQTT integration (CLAPAS_CHIRPSTACK_MQTT_URL, QoS 1) "
                       "and append each event to its device's partition, acknowledging it once the broker has it.")
    add_config_argument(b)
    b.set_defaults(func=cmd_bridge)
