"""The exports' streaming read on both stores: every row once, in order, in bounded chunks, writers not blocked."""

from __future__ import annotations

from datetime import timedelta

from clapas.model import QUANTITY_BY_KEY
from clapas.store.base import Batch, Store
from tests.store import test_store as suite
from tests.store.batches import uplink, utc

make_store = suite.make_store
store = suite.store

T0 = utc(2026, 5, 1)
TEMP, RH = QUANTITY_BY_KEY["air.temperature"].id, QUANTITY_BY_KEY["air.humidity"].id


def fill(store: Store, devices: int, hours: int, step_min: int = 10) -> int:
    """Devices reporting temperature and humidity every `step_min` minutes, sparse at night (a window test)."""
    b = Batch()
    n = 0
    for i in range(hours * 60 // step_min):
        t = T0 + timedelta(minutes=step_min * i)
        for d in range(devices):
            if t.hour < 6 and d % 2:  # half the devices sleep at night: windows of varied density
                continue
            uplink(b, f"a{d:015x}", t, {"air.temperature": 10 + d + i / 100, "air.humidity": 50.0},
                   kind="weather_station", zone="z1")
            n += 2
    store.write(b)
    return n


def test_every_row_once_in_order_in_bounded_chunks(store: Store) -> None:
    n = fill(store, devices=5, hours=30)
    euis = [f"a{d:015x}" for d in range(5)]
    chunks = list(store.export_observations(euis, T0, T0 + timedelta(days=2), chunk_rows=97))
    rows = [r for c in chunks for r in c]
    assert len(rows) == n and all(0 < len(c) <= 97 for c in chunks)
    keys = [(r["time"], r["eui"], r["quantity_id"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == n  # time, then device, then quantity; no row twice
    # the same rows as the API's bulk read
    series = store.series("air.temperature", T0, T0 + timedelta(days=2), euis=euis)
    assert sorted((r["eui"], r["time"], r["value"]) for r in series) == sorted(
        (r["eui"], r["time"], r["value"]) for r in rows if r["quantity_id"] == TEMP)


def test_filters_devices_quantities_and_period(store: Store) -> None:
    fill(store, devices=4, hours=3)
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    rows = [r for c in store.export_observations(["a" + "0" * 15, f"a{2:015x}"], start, end,
                                                 quantity_ids=[RH], chunk_rows=5) for r in c]
    assert {r["eui"] for r in rows} == {"a" + "0" * 15, f"a{2:015x}"}
    assert {r["quantity_id"] for r in rows} == {RH}
    assert min(r["time"] for r in rows) == start and max(r["time"] for r in rows) < end
    assert len(rows) == 2 * 6  # two devices, six readings an hour
    assert list(store.export_observations([], T0, end)) == []
    assert list(store.export_observations(["a" + "0" * 15], end, start)) == []


def test_a_write_between_two_chunks_is_not_blocked(store: Store) -> None:
    fill(store, devices=2, hours=2)
    it = store.export_observations(["a" + "0" * 15, f"a{1:015x}"], T0, T0 + timedelta(days=1), chunk_rows=10)
    first = next(it)
    b = Batch()
    uplink(b, "b" + "0" * 15, T0 + timedelta(minutes=5), {"air.temperature": 1.0})
    store.write(b)  # the export holds no lock between chunks
    rest = [r for c in it for r in c]
    assert len(first) + len(rest) == 2 * 12  # device 1 sleeps before 06:00


def test_observation_extent_per_kind(store: Store) -> None:
    fill(store, devices=2, hours=3)
    b = Batch()
    uplink(b, "c" + "0" * 15, T0 - timedelta(days=3), {"water.volume": 1.0}, kind="water_meter")
    uplink(b, "c" + "0" * 15, T0 - timedelta(days=2), {"water.flow": 1.0}, kind="water_meter")
    store.write(b)
    extent = store.observation_extent()
    assert extent["weather_station"] == (T0, T0 + timedelta(hours=2, minutes=50))
    assert extent["water_meter"] == (T0 - timedelta(days=3), T0 - timedelta(days=2))
