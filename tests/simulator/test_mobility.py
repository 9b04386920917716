"""The simulated bike-share feed: valid GBFS 2.3 and 3.0 over real HTTP, the same stations in both, polled by the
connector of `clapas run` into the store (issue 12)."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx

from clapas.connectors.gbfs import normalize, schema
from clapas.connectors.gbfs.poller import GbfsPoller, GbfsSystemSettings
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.mobility import FeedServer, StationModel, build_mobility, mobility_incidents
from clapas.store.base import open_store


def test_feed_documents_validate_in_both_versions_and_normalise_alike():
    city = build_mobility(1, stations=6, counters=2)
    model = StationModel(city, [])
    t = time.time()
    for name, doc in (("station_status", model.status_doc(t, "2.3")), ("station_status", model.status_doc(t, "3.0")),
                      ("station_information", model.information_doc(t, "2.3")),
                      ("station_information", model.information_doc(t, "3.0"))):
        assert schema.errors(name, doc) == [], (name, doc["version"])
    assert normalize.station_status(model.status_doc(t, "2.3")) == normalize.station_status(model.status_doc(t, "3.0"))
    assert model.status_doc(t) == StationModel(build_mobility(1, stations=6, counters=2), []).status_doc(t)


def test_incidents_have_ground_truth():
    city = build_mobility(0)
    start = datetime(2026, 5, 31, 22, tzinfo=UTC)
    inc = mobility_incidents(city, start, start + timedelta(days=14))
    kinds = {i.kind for i in inc}
    assert kinds == {"station_empty", "station_full", "brief_empty", "feed_outage", "feed_frozen", "counter_zero",
                     "counter_reset"}
    assert all(not i.expected_alert for i in inc if i.kind == "brief_empty")


async def _poll(poller: GbfsPoller) -> float:
    async with httpx.AsyncClient() as c:
        poller.client = c
        return await poller.poll_once()


def test_the_demo_feed_is_polled_into_the_store(tmp_path):
    city = build_mobility(2, stations=5, counters=0)
    for version in ("2.3", "3.0"):
        server = FeedServer(city, version=version).start()
        store = open_store(f"duckdb:///{tmp_path / f'd{version}.duckdb'}")
        store.migrate()
        store.upsert_zones(city.zones)
        pipeline = Pipeline(store)
        poller = GbfsPoller(GbfsSystemSettings(id=city.system, url=server.url), pipeline, store)

        assert asyncio.run(_poll(poller)) == 300  # the feed's ttl
        pipeline.close()
        assert poller.status()["state"] == "ok", poller.status()
        stations = store.devices(kind="bike_station")
        assert len(stations) == 5 and all(d["zone"].startswith("mob-") for d in stations)
        assert store.counts()["quarantined"] == 0
        server.close()
        store.close()
