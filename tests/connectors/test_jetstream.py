"""NATS JetStream beyond the broker contract (test_broker.py): a real server restart in the middle of reading,
the broker chosen by its URL, and the settings that only JetStream reads."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from clapas.config import ConfigError, load_settings
from clapas.connectors.broker import Event, device_key, open_broker
from clapas.connectors.broker.jetstream import NatsJetStream, max_age_s
from clapas.connectors.broker.rabbitmq import RabbitStreams
from clapas.connectors.broker.route import cmd_route
from tests.helpers import PrivateNats

T0 = datetime(2026, 3, 1, tzinfo=UTC)
EUIS = [f"70b3d57ed0{i:06x}" for i in range(20)]


def events(first: int, n: int) -> list[Event]:
    return [Event(f"application/a/device/{eui}/event/up", f"{eui}:{k}".encode(), T0)
            for k in range(first, first + n) for eui in EUIS]


@pytest.fixture
def node(tmp_path):
    if PrivateNats.executable() is None:
        pytest.skip("nats-server is not installed (scripts/test-services.sh installs it)")
    n = PrivateNats(tmp_path / "js")
    yield n
    n.close()


def test_a_server_restart_loses_nothing_and_repeats_nothing(node):
    b = NatsJetStream(node.url, 3, "restart")
    try:
        b.declare()
        b.publish(events(0, 50))
        consumer = b.consume({p: -1 for p in range(3)})
        got = []
        while len(got) < 500:
            got += consumer.poll(500, 1.0)
        node.restart()  # file storage: the streams come back; the client reconnects by itself
        b.publish(events(50, 50))
        deadline = datetime.now(UTC).timestamp() + 60
        while len(got) < 2000 and datetime.now(UTC).timestamp() < deadline:
            got += consumer.poll(2000, 0.5)
        consumer.close()
        assert len(got) == 2000
        last: dict[str, int] = {}
        for d in got:  # every event once, each device's in order, positions contiguous per partition
            eui = device_key(d.event.topic)
            k = int(d.event.body.split(b":")[1])
            assert k == last.get(eui, -1) + 1
            last[eui] = k
        for p in range(3):
            positions = [d.position for d in got if d.partition == p]
            assert positions == list(range(1, len(positions) + 1))
    finally:
        b.close()


def test_the_broker_is_chosen_by_its_url():
    assert isinstance(open_broker("nats://127.0.0.1:4222", 2), NatsJetStream)
    assert isinstance(open_broker("amqp://guest:guest@127.0.0.1:5672/%2F", 2), RabbitStreams)
    with pytest.raises(ValueError, match="not a broker URL"):
        open_broker("kafka://127.0.0.1:9092", 2)


def test_jetstream_settings_are_checked():
    assert max_age_s("7D") == 7 * 86400 and max_age_s("12h") == 43200
    s = load_settings(env={"CLAPAS_PARTITIONED_BROKER_URL": "nats://10.0.0.5:4222"})
    assert s.partitioned.broker_url.startswith("nats://")
    with pytest.raises(ConfigError, match="stream_max_age"):
        load_settings(env={"CLAPAS_PARTITIONED_BROKER_URL": "nats://10.0.0.5:4222",
                           "CLAPAS_PARTITIONED_STREAM_MAX_AGE": "a week"})
    with pytest.raises(ConfigError, match="nats://"):
        load_settings(env={"CLAPAS_PARTITIONED_BROKER_URL": "kafka://10.0.0.5:9092"})


def test_route_needs_rabbitmq_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv("CLAPAS_PARTITIONED_BROKER_URL", "nats://127.0.0.1:4222")
    assert cmd_route(argparse.Namespace(config=None)) == 2
    assert "clapas bridge" in caplog.text


def test_declare_refuses_an_ingress_queue():
    from clapas.connectors.broker import BrokerError

    with pytest.raises(BrokerError, match="clapas bridge"):
        NatsJetStream("nats://127.0.0.1:1", 1).declare(ingress=True)
