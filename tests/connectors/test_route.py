"""Into the partitions: `clapas route` (ChirpStack's AMQP integration through the ingress queue) and `clapas
bridge` (its MQTT integration), against the real RabbitMQ and Mosquitto."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from urllib.parse import urlparse

import pika

from clapas.connectors.broker import Affinity, device_key
from clapas.connectors.broker.rabbitmq import RabbitStreams
from clapas.connectors.broker.route import Bridge, Router
from clapas.connectors.mqtt import MqttSubscriber
from tests.connectors.test_broker import read_all
from tests.connectors.test_mqtt import publish

EUIS = [f"70b3d57ed0{i:06x}" for i in range(12)]
ZONES = {e: f"dma-{i % 3}" for i, e in enumerate(EUIS[:9])}  # the last three have no zone: routed by DevEUI


def _order_and_partitions(got, affinity: Affinity) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for d in got:
        eui = device_key(d.event.topic)
        assert d.partition == affinity.of_device(eui)
        seen.setdefault(eui, []).append(int(d.event.body.split(b":")[1]))
    return seen


def test_router_moves_chirpstack_amqp_events_to_their_zone_partition(amqp):
    b = RabbitStreams(amqp.url, 8, amqp.prefix)
    b.affinity = Affinity(8, ZONES)
    b.declare()
    con = pika.BlockingConnection(pika.URLParameters(amqp.url))
    ch = con.channel()
    for k in range(20):  # as ChirpStack publishes: amq.topic, its routing key, no confirms
        for e in EUIS:
            ch.basic_publish("amq.topic", f"application.app-1.device.{e}.event.up", f"{e}:{k}".encode())
    con.close()
    router = Router(b)
    t = threading.Thread(target=router.run, daemon=True)
    t.start()
    got = read_all(RabbitStreams(amqp.url, 8, amqp.prefix).consume({p: -1 for p in range(8)}), 240)
    router.stop.set()
    t.join(10)
    assert len(got) == 240
    seen = _order_and_partitions(got, b.affinity)
    assert seen == {e: list(range(20)) for e in EUIS}  # every event once, each device in order
    # a zone's devices share one partition
    assert len({b.affinity.of_device(e) for e in EUIS[:9:3]}) == 1
    assert got[0].event.topic == f"application/app-1/device/{EUIS[0]}/event/up"  # the MQTT form the parser reads
    b.close()


async def test_bridge_from_chirpstack_mqtt(amqp, mqtt_url):
    b = RabbitStreams(amqp.url, 4, amqp.prefix)
    b.declare(ingress=False)
    app = f"app-{uuid.uuid4().hex[:8]}"
    bridge = Bridge(b, qos=1)
    sub = MqttSubscriber(mqtt_url, [f"application/{app}/device/+/event/+"], bridge.sink,
                         client_id=f"bridge-{app}", qos=1, name="bridge-test")
    stop = asyncio.Event()
    tasks = [asyncio.create_task(sub.run(stop)), asyncio.create_task(bridge.pump(stop))]
    await asyncio.sleep(1.0)  # subscribed
    u = urlparse(mqtt_url)
    msgs = [(f"application/{app}/device/{e}/event/up", f"{e}:{k}".encode()) for k in range(5) for e in EUIS]
    await asyncio.to_thread(publish, u.hostname, u.port or 1883, msgs)
    deadline = time.monotonic() + 20
    while bridge.bridged < len(msgs) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    got = await asyncio.to_thread(read_all, RabbitStreams(amqp.url, 4, amqp.prefix).consume({p: -1 for p in
                                                                                             range(4)}), len(msgs))
    assert bridge.bridged == len(msgs) == len(got)
    assert _order_and_partitions(got, Affinity(4)) == {e: list(range(5)) for e in EUIS}
    b.close()
