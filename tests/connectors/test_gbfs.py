"""GBFS: the samples against the vendored schemas, one model for v2.3 and v3.0, and the poller of `clapas run`
against a real local HTTP server, into both stores (issue 12, "Done when" 1)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from clapas.connectors.gbfs import normalize, schema
from clapas.connectors.gbfs.messages import station_eui, system_eui, zone_eui
from clapas.connectors.gbfs.poller import GbfsPoller, GbfsSystemSettings
from clapas.model import Zone
from clapas.pipeline.ingest import Pipeline
from clapas.store.base import open_store
from tests.connectors.gbfs_feed import V23_TIME, Feed, load, repaired, v3_status_from_v2

FILES = {"v2.3": ["gbfs", "system_information", "vehicle_types", "station_information", "station_status",
                  "free_bike_status"],
         "v3.0": ["gbfs", "manifest", "system_information", "vehicle_types", "station_information",
                  "station_status", "vehicle_status"]}


@pytest.mark.parametrize("version", ["v2.3", "v3.0"])
def test_every_sample_validates_once_its_upstream_defects_are_repaired(samples, version):
    for name in FILES[version]:
        raw_errors = schema.errors(name, load(samples, version, name))
        for e in raw_errors:  # only the known defects of the upstream examples (see gbfs_feed.py)
            assert ("last_updated" in e or "last_reported" in e or "feeds" in e or "version" in e), e
        assert schema.errors(name, repaired(samples, version, name)) == [], name


def test_a_2_2_feed_is_checked_on_its_content_not_refused_for_its_number(samples):
    doc = load(samples, "v2.3", "system_information")  # declares 2.2, like the live Vélomagg feed (§6.2)
    assert schema.errors("system_information", doc) == []
    doc["data"].pop("name")
    assert any("name" in e for e in schema.errors("system_information", doc))


def test_invalid_files_give_the_validators_message(samples):
    doc = repaired(samples, "v3.0", "station_status")
    doc["data"]["stations"][0]["num_docks_available"] = -1
    errs = schema.errors("station_status", doc)
    assert errs and "data/stations/0/num_docks_available" in errs[0]
    doc = repaired(samples, "v3.0", "station_status")
    doc["last_updated"] = "yesterday"
    assert any("date-time" in e for e in schema.errors("station_status", doc))


def test_a_v2_3_and_a_v3_0_feed_of_the_same_stations_give_the_same_rows(samples):
    v2 = repaired(samples, "v2.3", "station_status")
    v3 = v3_status_from_v2(v2)
    assert schema.errors("station_status", v2) == [] and schema.errors("station_status", v3) == []
    a, b = normalize.station_status(v2), normalize.station_status(v3)
    assert a == b and len(a) == 2
    assert a[0].bikes_available == 1 and a[0].last_reported == V23_TIME
    assert normalize.header(v2) == normalize.header(v3).__class__(
        last_updated=V23_TIME, ttl=v2["ttl"], version="2.3")
    names = normalize.station_information(repaired(samples, "v3.0", "station_information"), "en")
    assert names[0].name == "Parking garage A" and names[0].capacity == 7


def test_cross_file_checks(samples):
    info = {i.station_id: i for i in normalize.station_information(repaired(samples, "v2.3", "station_information"))}
    samples_ = [normalize.StationSample(station_id="TST:Station:1", bikes_available=5, docks_available=3,
                                        last_reported=1000.0),
                normalize.StationSample(station_id="nowhere", bikes_available=1, last_reported=2000.0)]
    flags = {(f.station_id, f.check) for f in normalize.cross_checks(samples_, info, last_updated=1990.0,
                                                                      poll_time=2000.0)}
    assert flags == {("TST:Station:1", "over_capacity"), ("TST:Station:1", "stale_report"),
                     ("nowhere", "unknown_station")}
    future = normalize.StationSample(station_id="TST:Station:2", bikes_available=1, last_reported=3000.0)
    assert [f.check for f in normalize.cross_checks([future], info, 2000.0, 2000.0)] == ["future_report"]


# the poller of `clapas run` ------------------------------------------------------------------------------------
@pytest.fixture
def feed(samples):
    f = Feed()
    f.discovery(["system_information", "station_information", "station_status"])
    f.files["system_information"] = repaired(samples, "v2.3", "system_information")
    info = repaired(samples, "v2.3", "station_information")
    info["ttl"] = 600
    f.files["station_information"] = info
    f.files["station_status"] = repaired(samples, "v2.3", "station_status")
    f.files["station_status"]["ttl"] = 90
    yield f
    f.close()


def _zones() -> list[Zone]:
    square = {"type": "Polygon", "coordinates": [[[45.0, 12.0], [46.0, 12.0], [46.0, 13.0], [45.0, 13.0],
                                                  [45.0, 12.0]]]}
    return [Zone(id="quartier-nord", kind="district", geometry=square)]


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _poll(poller: GbfsPoller) -> float:
    async def go() -> float:
        async with httpx.AsyncClient() as client:
            poller.client = client
            return await poller.poll_once()
    return asyncio.run(go())


def _run_poller(store, feed):
    store.upsert_zones(_zones())
    pipeline = Pipeline(store)
    clock = Clock(V23_TIME + 30.0)
    poller = GbfsPoller(GbfsSystemSettings(id="test", url=feed.url("gbfs"), min_interval_s=60,
                                           backoff_base_s=30), pipeline, store,
                        on_registry=pipeline.reload_registry, clock=clock)
    delay = _poll(poller)
    assert delay == 90  # the status file's ttl, within [60, 300]
    assert poller.status()["state"] == "ok"
    # an invalid status file: quarantined with the validator's message, previous state kept, backoff
    bad = dict(feed.files["station_status"])
    bad["version"] = "2.3"
    bad["data"] = {"stations": [{"station_id": "TST:Station:1", "num_bikes_available": "many"}]}
    feed.files["station_status"] = bad
    clock.t += 90
    assert _poll(poller) == 30
    clock.t += 30
    assert _poll(poller) == 60  # backoff doubles
    st = poller.status()
    assert st["state"] == "failing" and st["failures"] == 2 and "refused by the GBFS schema" in st["last_error"]
    feed.fail = True
    clock.t += 60
    assert _poll(poller) == 120 and "503" in poller.status()["last_error"]
    pipeline.close()



def _check_store(store) -> None:
    eui = station_eui("test", "TST:Station:1")
    dev = store.device(eui)
    assert dev["kind"] == "bike_station" and dev["zone"] == "quartier-nord" and dev["tags"]["capacity"] == "7"
    assert store.device(station_eui("test", "TST:Station:2"))["zone"] == ""  # at lat 11.34: outside
    t0 = datetime.fromtimestamp(V23_TIME, UTC)
    t1 = datetime.fromtimestamp(V23_TIME + 400, UTC)
    obs = {q: store.observations(eui, q, t0, t1) for q in ("bikeshare.bikes_available", "bikeshare.last_reported",
                                                           "bikeshare.last_updated", "bikeshare.docks_available")}
    assert [r["time"].timestamp() for r in obs["bikeshare.bikes_available"]] == [V23_TIME + 30.0]  # poll time
    assert obs["bikeshare.bikes_available"][0]["value"] == 1
    assert obs["bikeshare.docks_available"][0]["value"] == 3
    assert obs["bikeshare.last_reported"][0]["value"] == V23_TIME
    assert obs["bikeshare.last_updated"][0]["value"] == V23_TIME
    quarantined = store.uplinks(status="quarantined")
    assert len(quarantined) == 2
    assert all("station_status refused" in q["error"] and "num_bikes_available" in q["error"]
               for q in quarantined)
    # over capacity: 1 + 3 docks + 1 + 0 ≤ 7 is fine; the flags of the poll are device events
    assert store.counts()["stored"] >= 3


def test_poller_duckdb(feed, tmp_path):
    store = open_store(f"duckdb:///{tmp_path / 'g.duckdb'}")
    store.migrate()
    _run_poller(store, feed)
    _check_store(store)
    store.close()


def test_poller_postgres(feed, pg_url):
    store = open_store(pg_url)
    store.migrate()
    _run_poller(store, feed)
    _check_store(store)
    store.close()


def test_flags_are_device_events_and_free_vehicles_counted_per_zone(feed, samples, tmp_path):
    status = feed.files["station_status"]
    status["data"]["stations"].append({**status["data"]["stations"][0], "station_id": "ghost"})
    free = repaired(samples, "v2.3", "free_bike_status")
    bike = {**free["data"]["bikes"][0], "is_disabled": False}
    free["data"]["bikes"] += [{**bike, "bike_id": "b2", "lat": 12.5, "lon": 45.5},
                              {**bike, "bike_id": "b3", "lat": 12.6, "lon": 45.6}, {**bike, "bike_id": "b4"}]
    feed.files["free_bike_status"] = free
    feed.discovery(["system_information", "station_information", "station_status", "free_bike_status"])
    store = open_store(f"duckdb:///{tmp_path / 'g.duckdb'}")
    store.migrate()
    store.upsert_zones(_zones())
    pipeline = Pipeline(store)
    poller = GbfsPoller(GbfsSystemSettings(id="test", url=feed.url("gbfs")), pipeline, store,
                        clock=Clock(V23_TIME + 10))
    _poll(poller)
    pipeline.close()
    events = store.device_events(station_eui("test", "ghost"))
    assert [e["event"] for e in events] == ["log"]
    assert "unknown_station" in str(events[0])
    system = store.device(system_eui("test"))
    assert system["kind"] == "bikeshare_system"
    # the disabled scooter is not available; two bikes in the district, one outside every zone
    assert system["attributes"] == {"vehicles_free.quartier-nord": 2.0, "vehicles_free.outside": 1.0}
    t = datetime.fromtimestamp(V23_TIME + 10, UTC)
    assert store.observations(system_eui("test"), "bikeshare.vehicles_free", t, t + timedelta(seconds=1))[0][
        "value"] == 3
    store.close()


def test_free_floating_vehicles_have_a_history_per_zone_and_an_emptied_zone_reads_zero(feed, samples, tmp_path):
    free = repaired(samples, "v2.3", "free_bike_status")
    bike = {**free["data"]["bikes"][0], "is_disabled": False}
    free["data"]["bikes"] = [{**bike, "bike_id": "b2", "lat": 12.5, "lon": 45.5},
                             {**bike, "bike_id": "b3", "lat": 12.6, "lon": 45.6}]
    feed.files["free_bike_status"] = free
    feed.discovery(["system_information", "station_information", "station_status", "free_bike_status"])
    store = open_store(f"duckdb:///{tmp_path / 'g.duckdb'}")
    store.migrate()
    store.upsert_zones(_zones())
    clock = Clock(V23_TIME + 10)

    def poll_with(bikes: list[dict]) -> None:
        free["data"]["bikes"] = bikes
        pipeline = Pipeline(store)  # a new poller each time too: what it knew comes back from the registry
        _poll(GbfsPoller(GbfsSystemSettings(id="test", url=feed.url("gbfs")), pipeline, store,
                         on_registry=pipeline.reload_registry, clock=clock))
        pipeline.close()
        clock.t += 60

    poll_with(free["data"]["bikes"])
    poll_with([{**bike, "bike_id": "b4"}])  # both district bikes gone, one outside every zone
    north = store.device(zone_eui("test", "quartier-nord"))
    assert (north["kind"], north["zone"]) == ("bikeshare_zone", "quartier-nord")
    t0 = datetime.fromtimestamp(V23_TIME, UTC)
    t1 = t0 + timedelta(hours=1)

    def history(zone: str) -> list[float]:
        return [r["value"] for r in store.observations(zone_eui("test", zone), "bikeshare.vehicles_free", t0, t1)]

    assert history("quartier-nord") == [2.0, 0.0]  # emptied: 0, not a gap
    assert history("") == [1.0]  # outside every zone, from the second poll on
    store.close()


def test_the_example_config_gbfs_block_is_valid_once_uncommented(tmp_path):
    import re
    from pathlib import Path

    from clapas.config import ConfigError, load_settings

    text = (Path(__file__).parents[2] / "city.example.toml").read_text(encoding="utf-8")
    block = re.sub(r"(?m)^# (\[\[gbfs\]\]|[a-z_]+ = )", r"\1", text[text.index("# Bike share (issue 12)"):])
    f = tmp_path / "city.toml"
    f.write_text(block, encoding="utf-8")
    s = load_settings(f, env={})
    assert s.gbfs[0].id == "velomagg" and s.gbfs[0].max_interval_s == 300 and s.bikeshare.peak_limit_s == 3600
    f.write_text(block.replace('url = "https://', 'url = "ftp://'), encoding="utf-8")
    with pytest.raises(ConfigError, match="auto-discovery"):
        load_settings(f, env={})
