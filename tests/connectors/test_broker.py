"""The broker contract (connectors.broker): what the partitioned workers rely on, run against RabbitMQ streams
and NATS JetStream. Another broker (Kafka) passes by adding its factory to BROKERS."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from clapas.connectors.broker import Event, device_key, partition_of
from clapas.connectors.broker.jetstream import NatsJetStream
from clapas.connectors.broker.rabbitmq import RabbitStreams

T0 = datetime(2026, 3, 1, tzinfo=UTC)
EUIS = [f"70b3d57ed0{i:06x}" for i in range(40)]


def _rabbit(amqp, partitions: int) -> RabbitStreams:
    return RabbitStreams(amqp.url, partitions, amqp.prefix)


def _jetstream(nats, partitions: int) -> NatsJetStream:
    return NatsJetStream(nats.url, partitions, nats.prefix)


# broker → (its factory, the fixture of its server)
BROKERS: dict[str, tuple[Callable, str]] = {"rabbitmq-streams": (_rabbit, "amqp"),
                                            "nats-jetstream": (_jetstream, "jetstream")}


@pytest.fixture(params=sorted(BROKERS))
def make(request):
    made = []
    build, server = BROKERS[request.param]
    service = request.getfixturevalue(server)

    def factory(partitions: int = 4):
        b = build(service, partitions)
        made.append(b)
        return b
    yield factory
    for b in made:
        b.close()


def events(n_per_device: int, euis=EUIS) -> list[Event]:
    """Interleaved events of every device, each device's in frame-counter order (the counter in the body)."""
    return [Event(f"application/app-1/device/{eui}/event/up", f"{eui}:{k}".encode(), T0)
            for k in range(n_per_device) for eui in euis]


def read_all(consumer, expected: int, timeout_s: float = 60.0) -> list:
    out: list = []
    deadline = datetime.now(UTC).timestamp() + timeout_s
    while len(out) < expected and datetime.now(UTC).timestamp() < deadline:
        out += consumer.poll(5000, 0.5)
    return out


def test_device_key_and_partition_are_stable():
    assert device_key("application/a/device/70B3D57ED0000001/event/up") == "70b3d57ed0000001"
    assert device_key("application/a/device/70b3d57ed0000001/event/status") == "70b3d57ed0000001"
    # CRC-32, a fixed function: these numbers may never change for a city (they would move its devices)
    assert [partition_of(e, 32) for e in ("70b3d57ed0000001", "0004a30b001c0530")] == [
        partition_of("70b3d57ed0000001", 32), partition_of("0004a30b001c0530", 32)]
    import zlib
    assert partition_of("70b3d57ed0000001", 32) == zlib.crc32(b"70b3d57ed0000001") % 32


def test_publish_then_consume_in_order_per_partition(make):
    b = make(4)
    b.declare()
    b.declare()  # idempotent
    evs = events(25)
    assert b.publish(evs) == len(evs)
    got = read_all(b.consume({p: -1 for p in range(4)}), len(evs))
    assert len(got) == len(evs)
    last_pos: dict[int, int] = {}
    last_k: dict[str, int] = {}
    for d in got:
        eui = device_key(d.event.topic)
        assert d.partition == partition_of(eui, 4)  # a device's events all in its partition
        assert d.position > last_pos.get(d.partition, -1)
        last_pos[d.partition] = d.position
        k = int(d.event.body.split(b":")[1])
        assert k == last_k.get(eui, -1) + 1  # every event, once, in order
        last_k[eui] = k
        assert d.event.received_at == T0


def test_consume_resumes_exactly_after_a_position(make):
    b = make(2)
    b.declare()
    b.publish(events(50))
    first = read_all(b.consume({0: -1, 1: -1}), 2000)
    cut = {p: [d.position for d in first if d.partition == p][k] for p, k in ((0, 17), (1, 250))}
    again = read_all(b.consume(cut), 2000 - 18 - 251)
    expect = [d for d in first if d.position > cut[d.partition]]
    assert sorted((d.partition, d.position, d.event.body) for d in again) == \
        sorted((d.partition, d.position, d.event.body) for d in expect)


def test_routing_is_identical_across_reconnection_and_redeclaration(make):
    """A broker restart, as the client sees it: new connection, declarations again. The partition of each device
    is the same (and the same as before the restart); tests/pipeline/test_partitioned_restart.py restarts a real
    RabbitMQ node."""
    b = make(8)
    b.declare()
    b.publish(events(1))
    before = {device_key(d.event.topic): d.partition for d in read_all(b.consume({p: -1 for p in range(8)}), 40)}
    b.close()
    b2 = make(8)
    b2.declare()
    b2.publish(events(1))
    ends = {p: -1 for p in range(8)}
    after: dict[str, list[int]] = {}
    for d in read_all(b2.consume(ends), 80):
        after.setdefault(device_key(d.event.topic), []).append(d.partition)
    assert {e: [p, p] for e, p in before.items()} == after
    assert len(set(before.values())) > 4  # spread, not all in one


def test_a_gateways_events_reach_its_owner_and_copies_every_other_partition_and_ticks_all(make):
    from clapas.connectors.broker import COPY, ORIGINAL, TICK

    b = make(4)
    b.declare(ingress=False)
    gw = "0016c001ff10a235"
    stats = Event(f"eu868/gateway/{gw}/event/stats", b'{"gatewayId":"0016c001ff10a235"}', T0)
    conn = Event(f"eu868/gateway/{gw}/state/conn", b'{"gatewayId":"0016c001ff10a235","state":"OFFLINE"}', T0)
    b.publish([stats, conn])
    assert b.tick()  # the stream time reached (a gateway event's: its reception), to every partition
    got = read_all(b.consume({p: -1 for p in range(4)}), 2 * 4 + 4)
    owner = partition_of(gw, 4)  # `Affinity.of_subject(gateway id)`, where its saved state lives too
    originals = [(d.partition, d.event.topic) for d in got if d.event.role == ORIGINAL]
    assert originals == [(owner, stats.topic), (owner, conn.topic)]  # stats and conn on one partition, in order
    assert sorted(d.partition for d in got if d.event.role == COPY) == sorted([p for p in range(4) if p != owner] * 2)
    ticks = [d for d in got if d.event.role == TICK]
    assert sorted(d.partition for d in ticks) == [0, 1, 2, 3] and all(d.event.received_at == T0 for d in ticks)
