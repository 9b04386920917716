"""Device states (ok, late, silent, never seen, unknown) served by the health routes, on both stores: intervals
from the profile, the registry or learned from the journal; personal devices counted, not listed, without the
scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter import Caller
from clapas.config import ProfileSettings, Settings
from clapas.model import Device
from clapas.store.alerts import AlertChange
from clapas.store.base import DUPLICATE, Batch, Store
from tests.helpers import as_local
from tests.store import test_store as suite
from tests.store.batches import uplink

make_store = suite.make_store
store = suite.store
AT = datetime(2026, 8, 3, 12, tzinfo=UTC)
OK_, LATE_, SILENT_, NEVER, LEARNED, FEW, METER, PROF, ALERTED = (f"70b3d5000000010{i}" for i in range(9))
NOC = Caller(actor="noc", via="key", role="operator", scopes=frozenset({"open:read", "restricted:read"}))


def _city(store: Store) -> None:
    store.upsert_devices([
        Device(eui=OK_, kind="weather_station", zone="z1", expected_interval_s=600),
        Device(eui=LATE_, kind="weather_station", zone="z1", expected_interval_s=600),
        Device(eui=SILENT_, kind="air_quality", zone="z2", expected_interval_s=600),
        Device(eui=NEVER, kind="air_quality", zone="z2", expected_interval_s=600),
        Device(eui=LEARNED, kind="air_quality", zone="z2"),
        Device(eui=FEW, kind="air_quality", zone="z2"),
        Device(eui=METER, kind="water_meter", zone="z1", data_class="personal", expected_interval_s=3600),
        Device(eui=PROF, kind="weather_station", zone="z1", profile="fast", expected_interval_s=100_000),
        Device(eui=ALERTED, kind="weather_station", zone="z1", expected_interval_s=600)])
    b = Batch()
    uplink(b, OK_, AT - timedelta(seconds=600))
    uplink(b, LATE_, AT - timedelta(seconds=1000))  # 1000 s > 1.5 × 600
    uplink(b, SILENT_, AT - timedelta(seconds=2000))  # > 3 × 600
    for k in range(8):  # every 300 s, the last 500 s ago: T learned 300, late
        uplink(b, LEARNED, AT - timedelta(seconds=500 + 300 * k))
    uplink(b, LEARNED, AT - timedelta(seconds=500), status=DUPLICATE)  # a duplicate is no interval
    uplink(b, FEW, AT - timedelta(seconds=9000))
    uplink(b, FEW, AT - timedelta(seconds=9300))
    uplink(b, METER, AT - timedelta(seconds=6000))  # late (> 5400)
    uplink(b, PROF, AT - timedelta(seconds=400))  # the profile's 100 s wins over the registry: silent (> 300)
    uplink(b, ALERTED, AT - timedelta(seconds=60))
    store.write(b)
    store.apply_alert_changes([AlertChange("health.silent", ALERTED, "open", AT, "warning", {}, "no uplink",
                                           "device", "z1")])


def _settings() -> Settings:
    return Settings(profiles={"fast": ProfileSettings(expected_interval_s=100)})


@pytest.fixture
def city(store: Store) -> Store:
    _city(store)
    return store


def test_each_device_gets_its_state_from_its_interval(city: Store) -> None:
    with TestClient(as_local(create_app(city, _settings()))) as c:
        r = c.get("/api/v1/health/devices", params={"at": AT.isoformat()})
    assert r.status_code == 200
    body = r.json()
    by = {d["eui"]: d for d in body["devices"]}
    assert {e: d["state"] for e, d in by.items()} == {
        OK_: "ok", LATE_: "late", SILENT_: "silent", NEVER: "never_seen", LEARNED: "late", FEW: "unknown",
        METER: "late", PROF: "silent", ALERTED: "silent"}
    assert body["counts"] == {"ok": 1, "late": 3, "silent": 3, "never_seen": 1, "unknown": 1}
    assert by[LEARNED]["interval_s"] == 300 and by[LEARNED]["interval_source"] == "learned"
    assert by[PROF]["interval_s"] == 100 and by[PROF]["interval_source"] == "profile"
    assert by[LATE_]["interval_source"] == "registry"
    assert datetime.fromisoformat(by[LATE_]["late_after"]) == AT - timedelta(seconds=100)
    assert datetime.fromisoformat(by[LATE_]["silent_after"]) == AT + timedelta(seconds=800)


def test_the_state_moves_with_the_time_asked(city: Store) -> None:
    with TestClient(as_local(create_app(city, _settings()))) as c:
        earlier = c.get("/api/v1/health/devices", params={"at": (AT - timedelta(seconds=200)).isoformat(),
                                                          "state": "late"}).json()
        one = c.get(f"/api/v1/health/devices/{LATE_}", params={"at": AT.isoformat()}).json()
        alerted = c.get(f"/api/v1/health/devices/{ALERTED}", params={"at": AT.isoformat()}).json()
        assert c.get("/api/v1/health/devices/70b3d500000001ff").status_code == 404
        assert c.get("/api/v1/health/devices", params={"at": "yesterday"}).status_code == 422
    assert LATE_ not in {d["eui"] for d in earlier["devices"]}  # 800 s: not yet 1.5 × 600
    assert {d["state"] for d in earlier["devices"]} == {"late"}
    assert one["state"] == "late" and one["alerts"] == []
    assert alerted["state"] == "silent" and [a["rule"] for a in alerted["alerts"]] == ["health.silent"]


def test_late_devices_are_counted_in_the_fleet_summary(city: Store) -> None:
    with TestClient(as_local(create_app(city, _settings()))) as c:
        body = c.get("/api/v1/health", params={"at": AT.isoformat()}).json()
    assert body["problems"]["late"] == 3 and body["device_states"]["late"] == 3
    assert body["by_kind"]["water_meter"] == {"late": 1} and body["by_zone"]["z2"]["late"] == 1
    assert {d["eui"] for d in body["late"]} == {LATE_, LEARNED, METER}


def test_a_personal_device_is_counted_not_listed_without_the_scope(city: Store) -> None:
    app = create_app(city, _settings())
    app.state.identify = lambda request: NOC
    with TestClient(app) as c:
        states = c.get("/api/v1/health/devices", params={"at": AT.isoformat(), "state": "late"}).json()
        fleet = c.get("/api/v1/health", params={"at": AT.isoformat()}).json()
        assert c.get(f"/api/v1/health/devices/{METER}").status_code == 403
    assert {d["eui"] for d in states["devices"]} == {LATE_, LEARNED} and states["withheld"] == 1
    assert states["counts"]["late"] == 3
    assert METER not in {d["eui"] for d in fleet["late"]} and fleet["device_states"]["late"] == 3


def test_frame_loss_per_segment_on_the_device_route(store: Store) -> None:
    eui = "70b3d50000000150"
    store.upsert_devices([Device(eui=eui, kind="weather_station", expected_interval_s=60)])
    missing = {5, 17, 23, 42, 43, 44, 60, 71, 88, 99}
    b, t = Batch(), AT - timedelta(hours=3)
    for f in (f for f in range(1, 101) if f not in missing):
        uplink(b, eui, t + timedelta(minutes=f), f_cnt=f)
    uplink(b, eui, t + timedelta(minutes=100, seconds=10), f_cnt=100, dedup="again", status=DUPLICATE)
    for k, f in enumerate((0, 1, 3)):  # a reboot: the counter starts again
        uplink(b, eui, t + timedelta(minutes=120 + k), f_cnt=f)
    uplink(b, eui, AT - timedelta(days=8), f_cnt=5000)  # before the 7-day window
    store.write(b)
    with TestClient(as_local(create_app(store, Settings()))) as c:
        frames = c.get(f"/api/v1/health/devices/{eui}", params={"at": AT.isoformat()}).json()["frames"]
    assert [(s["first_fcnt"], s["last_fcnt"], s["received"], s["lost"], s["ended_by"]) for s in frames["segments"]] \
        == [(1, 100, 90, 10, "reset"), (0, 3, 3, 1, None)]
    assert frames["segments"][0]["loss"] == 0.1 and frames["resets"] == 1 and frames["retransmissions"] == 0
    assert (frames["uplinks"], frames["received"], frames["expected"], frames["lost"]) == (93, 93, 104, 11)
    assert frames["loss"] == round(11 / 104, 4)
