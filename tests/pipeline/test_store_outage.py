"""PostgreSQL cut off (through a relay the test controls) while uplinks keep coming at QoS 0: /healthz answers at once,
degraded with the reason; the spool grows; once the database is back it drains in order and nothing is lost."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from clapas.config import Settings
from clapas.service import Service
from tests.connectors.test_mqtt import publish, uplinks, wait_for
from tests.faults.relay import Relay

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def healthz(port: int) -> tuple[int, float, dict]:
    t0 = time.monotonic()
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    return r.status_code, time.monotonic() - t0, r.json()


async def test_store_outage_spools_then_drains_nothing_lost(tmp_path, samples, pg_url, mqtt_url):
    app = uuid.uuid4().hex
    with Relay.for_url(pg_url) as relay:
        s = Settings(store=relay.url(pg_url))
        s.alerts.enabled = False
        s.chirpstack.mqtt_url = mqtt_url
        s.chirpstack.client_id = f"clapas-test-{app}"
        s.chirpstack.topic = f"application/{app}/device/+/event/+"
        s.pipeline.flush_interval_s = 0.1
        s.pipeline.spool_dir = str(tmp_path / "spool")
        s.http.port = free_port()
        service = Service(s)
        sub = service.subscribers[0]
        stop = asyncio.Event()
        task = asyncio.create_task(service.serve(stop=stop))
        try:
            await asyncio.wait_for(sub.connected.wait(), 10)
            await asyncio.to_thread(publish, sub.url.host, sub.url.port, uplinks(samples, app, 50))
            await wait_for(lambda: service.pipeline.counts["stored"] == 50)

            relay.cut()  # the database goes away: open connections dropped, new ones refused
            await asyncio.to_thread(publish, sub.url.host, sub.url.port, uplinks(samples, app, 300, 1000))
            await wait_for(lambda: sub.received == 350)
            await wait_for(lambda: service.pipeline.store_problem() is not None)
            slowest = 0.0
            for _ in range(5):
                code, took, body = await healthz(s.http.port)
                slowest = max(slowest, took)
            assert code == 503 and body["status"] == "degraded" and "store unreachable" in body["reason"]
            assert body["ingest"]["spool"]["pending"] == 300 and body["ingest"]["spool"]["oldest_age_s"] > 0
            assert slowest < 0.1 + 0.4  # 100 ms asked; slack for the shared, loaded machine's HTTP round trip
            assert sub.connections == 1 and sub.connected.is_set()  # the broker session was kept

            relay.restore()
            back = time.monotonic()
            await wait_for(lambda: service.pipeline.counts["stored"] == 350, timeout=15)
            assert time.monotonic() - back < 5  # retries at most every retry_max_s (2 s)
            await wait_for(lambda: service.spool.pending == 0)
            code, _, body = await healthz(s.http.port)
            assert code == 200 and body["status"] == "ok" and body["counts"]["stored"] == 350
        finally:
            stop.set()
            await asyncio.wait_for(task, 40)
        assert service.store.__class__.__name__ == "PostgresStore"
    from clapas.store.base import open_store

    store = open_store(pg_url)
    try:
        assert store.counts()["stored"] == 350 and store.counts()["duplicate"] == 0
    finally:
        store.close()
