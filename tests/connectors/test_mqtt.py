"""ChirpStack MQTT integration against a real Mosquitto: uplinks stored, subscriptions restored after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from clapas.config import Settings
from clapas.service import Service
from tests.helpers import as_message, up_event

LPP_TH = bytes.fromhex("0167011002682A")


def publish(url_host: str, port: int, messages: list[tuple[str, bytes]]) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect(url_host, port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def uplinks(samples, app: str, n: int, start: int = 0, fmt: str = "json") -> list[tuple[str, bytes]]:
    """Uplinks on this test's own application topic, so that other traffic on a shared broker cannot mix in."""
    out = []
    for i in range(start, start + n):
        m = as_message(up_event(samples, eui=f"{i:016x}", payload=LPP_TH, tags={"decoder": "cayenne_lpp"}), fmt=fmt)
        out.append((f"application/{app}/device/{i:016x}/event/up", m.raw))
    return out


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Service]:
    """`clapas run`'s service in this loop (no HTTP), connected to its broker; stopped cleanly afterwards."""
    service = Service(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(service.serve(http=False, stop=stop))
    try:
        await asyncio.wait_for(service.subscribers[0].connected.wait(), 10)
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def settings_for(tmp_path: Path, mqtt: str, app: str) -> Settings:
    s = Settings(store=f"duckdb:///{tmp_path / 'city.duckdb'}")
    s.chirpstack.mqtt_url = mqtt
    s.chirpstack.client_id = f"clapas-test-{app}"
    s.chirpstack.topic = f"application/{app}/device/+/event/+"
    s.pipeline.flush_interval_s = 0.1
    return s


async def test_uplinks_from_broker_are_stored(tmp_path, samples, mqtt_url):
    app = uuid.uuid4().hex
    async with serving(settings_for(tmp_path, mqtt_url, app)) as service:
        sub = service.subscribers[0]
        await asyncio.to_thread(publish, sub.url.host, sub.url.port,
                                uplinks(samples, app, 20) + uplinks(samples, app, 5, 100, "protobuf"))
        await wait_for(lambda: service.store.counts()["stored"] == 25)
        counts = service.store.counts()
        assert (counts["observations"], counts["quarantined"], counts["devices"]) == (50, 0, 25)
        assert {r["fmt"] for r in service.store.uplinks(limit=100)} == {"json", "protobuf"}


async def test_subscription_restored_after_broker_restart(tmp_path, samples, own_broker):
    app = uuid.uuid4().hex
    async with serving(settings_for(tmp_path, f"mqtt://127.0.0.1:{own_broker.port}", app)) as service:
        sub = service.subscribers[0]
        await asyncio.to_thread(publish, "127.0.0.1", own_broker.port, uplinks(samples, app, 3))
        await wait_for(lambda: service.store.counts()["stored"] == 3)

        own_broker.stop()
        await wait_for(lambda: not sub.connected.is_set())
        await asyncio.sleep(1.5)  # clapas keeps retrying with backoff while the broker is down
        own_broker.start()
        await wait_for(lambda: sub.connected.is_set() and sub.connections >= 2, timeout=40)

        await asyncio.to_thread(publish, "127.0.0.1", own_broker.port, uplinks(samples, app, 4, 50))
        await wait_for(lambda: service.store.counts()["stored"] == 7)


async def test_broker_restart_costs_one_reconnection_and_loses_nothing_at_qos1(tmp_path, samples, own_broker):
    """Published while the broker restarts and while clapas reconnects: all stored; one new connection, kept (the
    gmqtt client given up on used to come back after 6 s with the same id and make the session flap)."""
    app = uuid.uuid4().hex
    s = settings_for(tmp_path, f"mqtt://127.0.0.1:{own_broker.port}", app)
    s.chirpstack.qos = 1
    async with serving(s) as service:
        sub = service.subscribers[0]
        await asyncio.to_thread(publish, "127.0.0.1", own_broker.port, uplinks(samples, app, 20))
        own_broker.stop()
        await wait_for(lambda: not sub.connected.is_set())
        own_broker.start()
        # published before clapas is back: the broker keeps them in clapas's persistent session
        await asyncio.to_thread(publish, "127.0.0.1", own_broker.port, uplinks(samples, app, 20, 100))
        await wait_for(lambda: sub.connected.is_set() and sub.connections == 2, timeout=20)
        await wait_for(lambda: service.store.counts()["stored"] == 40, timeout=20)
        await asyncio.sleep(8)  # longer than gmqtt's 6 s reconnect delay: no second client shows up
        assert sub.connections == 2 and sub.connected.is_set()
        assert service.store.counts()["stored"] == 40


def test_mqtt_url_parsing():
    from clapas.connectors.mqtt import MqttUrl

    u = MqttUrl("mqtts://app%40ttn:secret@broker.example:8883")
    assert (u.tls, u.host, u.port, u.username, u.password) == (True, "broker.example", 8883, "app@ttn", "secret")
    assert MqttUrl("mqtt://10.0.0.1").port == 1883
    with pytest.raises(ValueError, match="not an MQTT URL"):
        MqttUrl("http://x")


@pytest.fixture
def own_broker(tmp_path):
    """A Mosquitto of this test's own, on a free port, that the test can stop and start again."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.skip("mosquitto is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    # with persistence: a restarted broker still has the QoS 1 sessions and their queued messages
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                    f"persistence_location {tmp_path}/\n" + ("user root\n" if os.geteuid() == 0 else ""))

    class Broker:
        proc: subprocess.Popen | None = None

        def start(self) -> None:
            self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    return
                except OSError:
                    time.sleep(0.05)
            raise RuntimeError("mosquitto did not start")

        def stop(self) -> None:
            if self.proc:
                self.proc.terminate()
                self.proc.wait(5)
                self.proc = None

    broker = Broker()
    broker.port = port
    broker.start()
    yield broker
    broker.stop()


async def test_the_things_stack_uplinks_from_broker(tmp_path, samples, mqtt_url):
    app = uuid.uuid4().hex
    s = Settings(store=f"duckdb:///{tmp_path / 'city.duckdb'}")
    s.ttn.mqtt_url = mqtt_url
    s.ttn.client_id = f"clapas-test-{app}"
    s.ttn.topic = f"v3/{app}@tenant1/devices/+/up"
    s.pipeline.flush_interval_s = 0.1
    async with serving(s) as service:
        sub = service.subscribers[0]
        raw = (samples / "ttn" / "uplink.json").read_bytes()
        await asyncio.to_thread(publish, sub.url.host, sub.url.port, [(f"v3/{app}@tenant1/devices/dev1/up", raw)])
        await wait_for(lambda: service.store.counts()["stored"] == 1)
        latest = {r["quantity"]: r["value"] for r in service.store.latest("0004a30b001c0530")}
        # no decoder configured: the application server's decoded_payload is mapped by its field names
        assert latest == {"air.temperature": 1.0, "light.illuminance": 0.64}
