"""The partitioned mode's message broker, behind a small interface (`Broker`), so that RabbitMQ streams
(`rabbitmq`), NATS JetStream (`jetstream`) or Kafka can carry it; `open_broker` picks one by its URL.

What the workers need of a broker is little: append a device's events to its partition in order (`publish`),
read one partition from a position on (`consume`), and tell each delivery's position, which the worker commits
in PostgreSQL in the same transaction as the rows it produced (exactly-once effects: the broker keeps no consumer
state that matters). A partition is chosen here, by the client (`Affinity`: CRC-32 of the device's zone, or of its
DevEUI, modulo a fixed count), never by the broker: the same key goes to the same partition across broker restarts,
upgrades and re-declarations (a consistent-hash exchange does not promise that, domain-rules §9.2), and a device's
up, status and join events land together (the ChirpStack routing key also holds the event type, which an
`x-modulus-hash` exchange would hash too).

Two kinds of events are not a device's (the health rules in workers, `pipeline.partition_detectors`):
- a gateway's (`gateway_of`: stats and conn state) goes to the partition owning the gateway's subject
  (`Affinity.of_subject(gateway id)`, which journals it) and, as a `COPY`, to every other one: each partition judges
  its own devices' orphaning, only the owner opens the gateway's incident;
- a `TICK` (no topic) goes to every partition and carries the stream time the publisher has reached (the newest
  event time published before it; its body: where the stream began, epoch s as text): a partition whose devices
  fell silent still sees time pass, in order with its own events. Ticks and copies are extra messages; where each
  event goes does not change.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from clapas.model import normalize_eui


class BrokerError(RuntimeError):
    """The broker refused or lost the connection; the message says what it was doing."""


ORIGINAL, COPY, TICK = "", "copy", "tick"  # an event's role in its partition


class Event(NamedTuple):
    """One ChirpStack integration event on its way to a partition."""

    topic: str  # MQTT form: application/{id}/device/{dev_eui}/event/{event} (or a Gateway Bridge topic)
    body: bytes
    received_at: datetime  # when the bridge first received it: journaled as such, the same on every re-read
    role: str = ORIGINAL  # COPY: a gateway event for the detectors only; TICK: `received_at` is the stream time


class Delivery(NamedTuple):
    partition: int
    position: int  # the partition's offset of this event: strictly increasing within a partition
    event: Event


def partition_of(key: str, partitions: int) -> int:
    """The partition of a device (or any key): CRC-32 of the normalised key modulo the partition count. Stable
    forever for a given count; changing the count moves most keys, so it is fixed when a city starts."""
    return zlib.crc32(key.encode()) % partitions


class Affinity:
    """Which partition a device's events go to: its zone's (from the registry) when it has one, so that the rules
    over a zone (a district's night flow, a zone's air quality, a heatwave over the reference zone) see all of the
    zone's devices on one worker, in order; else its own (by DevEUI). Workers use the same function to know which
    detector subjects (device EUIs, zone ids) belong to a partition. A device moved to another zone moves with it
    (from the next registry refresh on): its events in flight may then be processed out of order, once."""

    def __init__(self, partitions: int, zone_of: dict[str, str] | None = None) -> None:
        self.partitions = partitions
        self.zone_of = zone_of or {}

    @classmethod
    def from_devices(cls, partitions: int, devices: Iterable[dict]) -> Affinity:
        return cls(partitions, {d["eui"]: d["zone"] for d in devices if d.get("zone")})

    def of_device(self, eui: str) -> int:
        return partition_of(self.zone_of.get(eui) or eui, self.partitions)

    def of_subject(self, subject: str) -> int:
        """A detector subject's partition: a device EUI (by its zone, if any) or a zone id."""
        return self.of_device(subject)


def device_key(topic: str) -> str:
    """The DevEUI of an MQTT-form topic (`application/…/device/{dev_eui}/event/…`), normalised; the topic itself if
    it names no device (such an event still lands in one fixed partition)."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[2] == "device":
        try:
            return normalize_eui(parts[3])
        except ValueError:
            return parts[3]
    return topic


def gateway_of(topic: str) -> str | None:
    """The gateway id of a Gateway Bridge topic (`[region/]gateway/{id}/state/conn` or `…/event/stats`), as the
    gateway parser reads it; None for any other topic."""
    from clapas.connectors.chirpstack_gateway import is_gateway_topic

    return topic.split("/")[-3].strip().lower() if is_gateway_topic(topic) else None


def event_time(e: Event) -> float | None:
    """The stream time an event shows (epoch s), as the worker's parsers will read it; None if it cannot be read.
    Gateway events are timed by their reception (`chirpstack_gateway`)."""
    from clapas.connectors import ParseError, chirpstack

    if e.role == TICK or gateway_of(e.topic) is not None:
        return e.received_at.timestamp()
    try:
        return chirpstack.parse(chirpstack.message(e.body, e.received_at, topic=e.topic)).time.timestamp()
    except (ParseError, ValueError):
        return None


def amqp_to_topic(routing_key: str) -> str:
    """ChirpStack's AMQP routing key (`application.{id}.device.{eui}.event.{event}`) in its MQTT topic form, which
    the ChirpStack parser and the journal use."""
    return routing_key.replace(".", "/")


class Consumer(Protocol):
    """The partitions a worker owns, each read from a position on. Not thread-safe: one thread polls it."""

    def poll(self, max_events: int, timeout_s: float) -> list[Delivery]:
        """Up to `max_events` deliveries (each partition's in position order), waiting at most `timeout_s`."""
        ...

    def close(self) -> None: ...


class Publishing:
    """What every broker's publisher does the same way: where each event goes (`targets`: a device's to its
    partition, a gateway's to its owner and copied to the others, a tick to all), and the stream time its ticks
    carry. A broker sets `partitions` and `affinity`, and its `publish` sends each event to `targets(e)`, then calls
    `_note(events)`."""

    partitions: int
    affinity: Affinity

    def __init__(self) -> None:
        self.stream_time = float("-inf")  # the newest event time published (epoch s): what a tick carries
        self.stream_start = float("inf")  # the first one this publisher saw: a tick's body
        self._ticked = float("-inf")

    def publish(self, events: Iterable[Event]) -> int:  # pragma: no cover - each broker's own
        raise NotImplementedError

    def route(self, topic: str) -> int:
        return self.affinity.of_device(device_key(topic))

    def targets(self, e: Event) -> list[tuple[int, str]]:
        """(partition, role) of each message an event becomes: a device's to its partition; a gateway's to its
        owner and, copied, to every other partition; a tick to every partition."""
        if e.role == TICK:
            return [(p, TICK) for p in range(self.partitions)]
        gid = gateway_of(e.topic)
        if gid is None:
            return [(self.route(e.topic), ORIGINAL)]
        home = self.affinity.of_subject(gid)
        return [(home, ORIGINAL)] + [(p, COPY) for p in range(self.partitions) if p != home]

    def _note(self, events: list[Event]) -> None:
        """The stream time reached: the last readable event's (events come in time order); and where it began."""
        for e in reversed(events):
            t = event_time(e)
            if t is not None:
                self.stream_time = max(self.stream_time, t)
                break
        if self.stream_start == float("inf"):
            self.stream_start = next((t for t in map(event_time, events) if t is not None), float("inf"))

    def tick(self, min_s: float = 0.0) -> bool:
        """Publish a tick at the stream time reached to every partition, if it moved on by more than `min_s` since
        the last tick; True if one was published."""
        if self.stream_time <= self._ticked + min_s:
            return False
        at = datetime.fromtimestamp(self.stream_time, UTC)
        self.publish([Event("", repr(self.stream_start).encode(), at, TICK)])
        self._ticked = self.stream_time
        return True


class Broker(Protocol):
    """The partitioned mode's broker: `partitions` ordered, replayable logs."""

    partitions: int
    affinity: Affinity  # the partition of each device its `publish` uses (kept up to date by the publisher)

    def declare(self) -> None:
        """Create the partitions (idempotent: a second call, or another process's, changes nothing)."""
        ...

    def publish(self, events: Iterable[Event]) -> int:
        """Append events to their devices' partitions, in the order given; returns (how many) once the broker has
        taken them, a batch at a time."""
        ...

    def tick(self, min_s: float = 0.0) -> bool:
        """Send every partition the stream time reached (`Publishing.tick`)."""
        ...

    def consume(self, after: dict[int, int]) -> Consumer:
        """Read each partition `p` of `after` from just after its committed position `after[p]` (-1: the start)."""
        ...

    def close(self) -> None: ...


NATS_SCHEMES = ("nats://", "tls://")
AMQP_SCHEMES = ("amqp://", "amqps://")


def open_broker(url: str, partitions: int, prefix: str = "clapas", max_age: str = "7D") -> Broker:
    """The broker a URL names: RabbitMQ streams (`amqp://`, `amqps://`) or NATS JetStream (`nats://`, `tls://`)."""
    if url.startswith(NATS_SCHEMES):
        from clapas.connectors.broker.jetstream import NatsJetStream

        return NatsJetStream(url, partitions, prefix, max_age)
    if url.startswith(AMQP_SCHEMES):
        from clapas.connectors.broker.rabbitmq import RabbitStreams

        return RabbitStreams(url, partitions, prefix, max_age)
    raise ValueError(f"not a broker URL (amqp://, amqps://, nats://, tls://): {url!r}")
