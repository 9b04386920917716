"""`clapas run`'s daily retention job: it runs in the service, deletes what is due, and stops with it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec

from clapas.config import Settings
from clapas.model import Device
from clapas.service import Service
from clapas.store.base import Batch
from clapas.store.duckdb import DuckDBStore
from tests.store.batches import uplink


def test_the_retention_job_runs_in_the_service(tmp_path) -> None:
    store = DuckDBStore(f"duckdb:///{tmp_path}/city.duckdb")
    store.upsert_devices([Device(eui="a000000000000001", kind="water_meter", data_class="personal"),
                          Device(eui="b000000000000001", kind="weather_station")])
    old = datetime.now(UTC) - timedelta(days=3 * 365)  # past the personal 24 months
    b = Batch()
    for h in range(48):
        uplink(b, "a000000000000001", old + timedelta(hours=h), {"battery": 80.0})
        uplink(b, "b000000000000001", old + timedelta(hours=h), {"air.temperature": 12.0})
    store.write(b)
    settings = msgspec.structs.replace(Settings(), store=store.url)
    settings.alerts.enabled = False
    service = Service(settings, store=store)
    service.retention_first_s = 0.0

    async def main() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(service.serve(http=False, stop=stop))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if not store.observations("a000000000000001", "battery", old, old + timedelta(days=3)):
                break
        stop.set()
        await run

    reopened = None
    try:
        asyncio.run(main())
        reopened = DuckDBStore(f"duckdb:///{tmp_path}/city.duckdb")
        assert reopened.observations("a000000000000001", "battery", old, old + timedelta(days=3)) == []
        assert reopened.uplinks(dev_eui="a000000000000001") == []
        assert len(reopened.observations("b000000000000001", "air.temperature", old, old + timedelta(days=3))) == 48
    finally:
        if reopened is not None:
            reopened.close()


def test_the_service_polls_its_gbfs_systems(tmp_path) -> None:
    """`clapas run` and the demo poll each [[gbfs]] system (a merge had lost the poller's task: nothing was polled)."""
    from clapas.connectors.gbfs.poller import GbfsSystemSettings
    from clapas.simulator.mobility import FeedServer, build_mobility

    feed = FeedServer(build_mobility(0, stations=3, counters=0)).start()
    store = DuckDBStore(f"duckdb:///{tmp_path}/city.duckdb")
    settings = msgspec.structs.replace(Settings(), store=store.url,
                                       gbfs=[GbfsSystemSettings(id=feed.model.city.system, url=feed.url)])
    settings.alerts.enabled = False
    service = Service(settings, store=store)

    async def main() -> int:
        stop = asyncio.Event()
        run = asyncio.create_task(service.serve(http=False, stop=stop))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if len(store.devices(kind="bike_station")) == 3:
                break
        stations = len(store.devices(kind="bike_station"))
        stop.set()
        await run  # the service closes the store
        return stations

    try:
        assert asyncio.run(main()) == 3  # the poller read the feed and put its stations into the registry
    finally:
        feed.close()
