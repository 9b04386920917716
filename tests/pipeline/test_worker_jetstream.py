"""A partitioned worker over NATS JetStream (the broker contract's second implementation) into a real PostgreSQL:
every uplink stored once, and a second worker after the first stopped resumes from the committed positions
(nothing read again)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

from clapas.config import load_settings
from clapas.connectors.broker import Event
from clapas.connectors.broker.jetstream import NatsJetStream
from clapas.pipeline.worker import Worker
from clapas.store.base import open_store
from tests.helpers import T0, up_event

PARTITIONS = 4
EUIS = [f"70b3d57ed0{i:06x}" for i in range(12)]


def uplinks(samples, n_per_device: int, first: int = 1) -> list[Event]:
    return [Event(f"application/app-1/device/{eui}/event/up",
                  json.dumps(up_event(samples, eui=eui, f_cnt=k, time=T0 + timedelta(minutes=k),
                                      obj={"air.temperature": 20.0 + k % 7})).encode(), T0)
            for k in range(first, first + n_per_device) for eui in EUIS]


def run_worker(settings, until) -> dict[str, int]:
    w = Worker(settings, exit_on_lost=False)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 90
    try:
        while not until() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        w.stop.set()
        t.join(30)
        counts = w.store.counts()
        w.close()
    return counts


def test_a_worker_over_jetstream_stores_each_uplink_once_and_resumes_after_its_position(pg_url, jetstream, samples):
    settings = load_settings(env={
        "CLAPAS_STORE": pg_url, "CLAPAS_PARTITIONED_BROKER_URL": jetstream.url,
        "CLAPAS_PARTITIONED_PREFIX": jetstream.prefix, "CLAPAS_PARTITIONED_PARTITIONS": str(PARTITIONS),
        "CLAPAS_PARTITIONED_LEASE_S": "2", "CLAPAS_PARTITIONED_POLL_S": "0.2", "CLAPAS_ALERTS_ENABLED": "false"})
    store = open_store(pg_url)
    store.migrate()
    broker = NatsJetStream(jetstream.url, PARTITIONS, jetstream.prefix)
    try:
        broker.declare()
        first = uplinks(samples, 25)
        assert broker.publish(first) == len(first)

        def stored(n: int):
            return lambda: store.counts()["stored"] >= n

        counts = run_worker(settings, stored(len(first)))
        assert (counts["stored"], counts["duplicate"]) == (len(first), 0)
        more = uplinks(samples, 10, first=26)
        broker.publish(more)
        counts = run_worker(settings, stored(len(first) + len(more)))
        # the second worker read only what came after the committed positions: no duplicate journaled
        assert (counts["stored"], counts["duplicate"]) == (len(first) + len(more), 0)
        rows = store.observations(EUIS[0], "air.temperature", T0, T0 + timedelta(hours=2))
        assert len(rows) == 35 and [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    finally:
        broker.close()
        store.close()
