"""Retention per class and quantity, with the clock moved forward, in both stores (§8.6, §8.9)."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import pytest

from clapas.charter.jobs import retention_plan, run_retention
from clapas.charter.retention import ClassRetention, RetentionSettings, months_before
from clapas.config import Settings
from clapas.model import Device
from clapas.store.alerts import AlertChange
from clapas.store.base import Batch, Store
from tests.store.batches import device_event, uplink, utc
from tests.store.test_store import make_store  # noqa: F401 - the fixture that opens both stores

HOME, HOME2, STATION, DMA, ROOM = ("a000000000000001", "a000000000000002", "b000000000000001", "c000000000000001",
                                   "d000000000000001")
START = utc(2024, 1, 10)  # three local days, hourly readings
DAYS = 3


@pytest.fixture
def db(make_store) -> Store:  # noqa: F811 - the imported fixture, by name
    return make_store()


def city(store: Store) -> None:
    store.upsert_devices([
        Device(eui=HOME, kind="water_meter", data_class="personal", subscriber="AB-1", premises_use="habitation"),
        Device(eui=HOME2, kind="water_meter", data_class="personal", subscriber="AB-2", premises_use="habitation"),
        Device(eui=STATION, kind="weather_station", data_class="open"),
        Device(eui=DMA, kind="district_meter", data_class="restricted"),
        Device(eui=ROOM, kind="indoor_climate", data_class="restricted"),
    ])
    b = Batch()
    for h in range(24 * DAYS):
        t = START + timedelta(hours=h)
        uplink(b, HOME, t, {"water.volume": 100 + h * 0.01, "battery": 90.0})
        uplink(b, HOME2, t + timedelta(minutes=1), {"water.volume": 50 + h * 0.02})
        uplink(b, STATION, t, {"air.temperature": 10.0 + h % 7})
        uplink(b, DMA, t, {"water.volume": 1e4 + h})
        uplink(b, ROOM, t, {"air.co2": 400.0 + h})
    device_event(b, HOME, START + timedelta(minutes=30), "join", {"devAddr": "01020304"})
    device_event(b, STATION, START + timedelta(minutes=30), "join", {"devAddr": "05060708"})
    store.write(b)
    at = START + timedelta(hours=5)
    store.apply_alert_changes([AlertChange("water.continuous_flow", HOME, "open", at),
                               AlertChange("heat.heat_stress", STATION, "open", at)], now=at)
    store.apply_alert_changes([AlertChange("water.continuous_flow", HOME, "clear", at + timedelta(hours=1)),
                               AlertChange("heat.heat_stress", STATION, "clear", at + timedelta(hours=1))],
                              now=at + timedelta(hours=1))
    if hasattr(store, "maintain"):
        store.maintain(settle_s=0)


def rows(store: Store, eui: str, quantity: str) -> list[datetime]:
    return [r["time"] for r in store.observations(eui, quantity, START - timedelta(days=1),
                                                  START + timedelta(days=DAYS + 1))]


def snapshot(store: Store) -> dict[str, int]:
    out = {}
    for t in ("observations", "journal", "device_events", "alerts", "alert_events", "devices"):
        out[t] = store.sql(f"SELECT count(*) AS n FROM {t}")[0]["n"]
    for t in ("rollup_1h", "rollup_1d"):
        if hasattr(store, "maintain"):
            out[t] = store.sql(f"SELECT count(*) AS n FROM {t}")[0]["n"]
    return out


def settings(**retention) -> Settings:
    return msgspec.structs.replace(Settings(), charter=msgspec.structs.replace(
        Settings().charter, retention=RetentionSettings(**retention) if retention else RetentionSettings()))


def test_cutoffs_are_local_midnights_whole_calendar_months() -> None:
    assert months_before(utc(2026, 3, 31, 12), 1, "Europe/Paris") == utc(2026, 2, 27, 23)  # 28 Feb, local midnight
    assert months_before(utc(2026, 7, 1, 12), 24, "Europe/Paris") == utc(2024, 6, 30, 22)


def test_nothing_is_due_before_24_months(db: Store) -> None:
    city(db)
    before = snapshot(db)
    assert run_retention(db, settings(), now=utc(2025, 12, 1)) == {}
    assert snapshot(db) == before


def test_after_24_months_personal_sub_daily_rows_go_and_daily_volumes_stay(db: Store) -> None:
    city(db)
    before = snapshot(db)
    now = utc(2026, 2, 15)  # January 2024 is 25 months old: past 24, within 36
    dry = run_retention(db, settings(), now=now, dry_run=True)
    assert snapshot(db) == before  # a dry run changes nothing
    done = run_retention(db, settings(), now=now)
    assert done == dry  # and says exactly what the real run does
    # the meters: one reading per local day left (the day's last index: the daily volume), battery gone
    home = rows(db, HOME, "water.volume")
    assert len(home) == DAYS + 1  # 10, 11, 12 January local days (+ the 13th's first hour: 00:00 UTC = 01:00 local)
    assert home == [utc(2024, 1, 10, 22), utc(2024, 1, 11, 22), utc(2024, 1, 12, 22), utc(2024, 1, 12, 23)]
    assert db.observations(HOME, "battery", START, START + timedelta(days=DAYS)) == []
    assert len(rows(db, HOME2, "water.volume")) == DAYS + 1
    # their raw frames and events are gone; the alert (resolved 25 months ago) stays until 36 months
    assert db.uplinks(dev_eui=HOME) == [] and db.device_events(HOME) == []
    assert len(db.alerts(device=HOME)) == 1
    # open and restricted devices: untouched, every table
    for eui, q in ((STATION, "air.temperature"), (DMA, "water.volume"), (ROOM, "air.co2")):
        assert len(rows(db, eui, q)) == 24 * DAYS, eui
        assert len(db.uplinks(dev_eui=eui, limit=1000)) == 24 * DAYS + (eui == STATION)
    assert len(db.device_events(STATION)) == 1 and len(db.alerts(device=STATION)) == 1
    assert done["observations"] == before["observations"] - snapshot(db)["observations"]
    assert done["journal"] == 2 * 24 * DAYS + 1
    if hasattr(db, "maintain"):  # the hourly rollups of the meters went, and the battery's daily ones
        assert (done["rollup_1h"], done["rollup_1d"]) == (3 * 24 * DAYS, DAYS + 1)
        daily = db.series("water.volume", START - timedelta(days=1), START + timedelta(days=DAYS + 1),
                             euis=[HOME], resolution="1d")
        assert len(daily) == DAYS + 1
    assert db.counts()["observations"] == snapshot(db)["observations"]
    assert run_retention(db, settings(), now=now) == {}  # idempotent


def test_after_36_months_the_daily_volumes_and_the_alert_go(db: Store) -> None:
    city(db)
    done = run_retention(db, settings(), now=utc(2027, 3, 1))
    assert rows(db, HOME, "water.volume") == [] and rows(db, HOME2, "water.volume") == []
    assert db.alerts(device=HOME) == [] and len(db.alerts(device=STATION)) == 1
    assert done["alerts"] == 1 and done["alert_events"] == 2
    assert len(rows(db, DMA, "water.volume")) == 24 * DAYS  # restricted: kept


def test_a_kind_rule_touches_only_that_kind(db: Store) -> None:
    city(db)
    s = settings(kinds={"indoor_climate": ClassRetention(months=1)})
    done = run_retention(db, s, now=utc(2024, 4, 1))  # personal data still within 24 months
    assert rows(db, ROOM, "air.co2") == []
    assert done["observations"] == 24 * DAYS and done["journal"] == 24 * DAYS
    for eui, q in ((HOME, "water.volume"), (STATION, "air.temperature"), (DMA, "water.volume")):
        assert len(rows(db, eui, q)) == 24 * DAYS


def test_a_quantity_classed_personal_follows_the_personal_rule_on_an_open_device(db: Store) -> None:
    city(db)
    s = msgspec.structs.replace(Settings(), charter=msgspec.structs.replace(
        Settings().charter, quantities={"air.temperature": "personal"}))
    plan = retention_plan(db, s, now=utc(2026, 2, 15))
    assert {g.rule for g in plan.groups} == {"class personal", "class open", "class restricted"}
    run_retention(db, s, now=utc(2026, 2, 15))
    assert rows(db, STATION, "air.temperature") == []
    assert len(db.uplinks(dev_eui=STATION, limit=1000)) == 24 * DAYS + 1  # an open device's frames stay


def test_open_data_is_kept_by_default(db: Store) -> None:
    city(db)
    run_retention(db, settings(), now=utc(2040, 1, 1))
    assert len(rows(db, STATION, "air.temperature")) == 24 * DAYS
    assert len(rows(db, DMA, "water.volume")) == 24 * DAYS


def test_retention_tells_its_progress_per_group_of_devices(db: Store) -> None:
    """`apply_retention` tells the devices of each rule group once done: what `clapas retention` counts."""
    city(db)
    plan = retention_plan(db, settings(), utc(2026, 2, 15))
    told: list[int] = []
    db.apply_retention(plan, dry_run=True, progress=told.append)
    assert told == [len(g.ids) for g in plan.groups] and sum(told) == 2  # the two dwellings' meters
