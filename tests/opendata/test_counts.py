"""Bicycle counts in the national counting schema's measure format (§6.3), on both stores: one row per channel and
hourly slot, start inclusive and end exclusive in local time with offset, 0 without passage, empty without data."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from clapas.charter import Caller
from clapas.charter.classes import Classifier
from clapas.model import Device
from clapas.opendata import formats
from clapas.opendata.datasets import resolve
from clapas.opendata.source import export
from clapas.store.base import Batch, Store
from tests.opendata.city import city_store
from tests.store.batches import uplink, utc

__all__ = ["city_store"]

BIDIR, ONE = "b1b1b1b1b1b1b1b1", "b2b2b2b2b2b2b2b2"
T0 = utc(2026, 3, 28, 22)  # the night clocks go forward in Paris (29 March 2026, 02:00 → 03:00)
PUBLIC = Caller(scopes=frozenset({"open:read"}))


def counters(store: Store) -> None:
    store.upsert_devices([Device(eui=BIDIR, name="Pont Zuccarelli", kind="bike_counter", zone="s1"),
                          Device(eui=ONE, name="Piste Lez", kind="bike_counter", zone="d2")])
    b = Batch()
    for h in range(1, 7):  # uplinks at the end of each hour, covering it
        t = T0 + timedelta(hours=h)
        if h != 3:  # the bidirectional counter misses its 3rd uplink: no data for that slot
            uplink(b, BIDIR, t, {"counter.in": float(h), "counter.out": 0.0 if h == 2 else 2.0}, kind="bike_counter")
        uplink(b, ONE, t, {"counter.count": 5.0}, kind="bike_counter")
    uplink(b, ONE, T0 + timedelta(hours=4, minutes=30), {"counter.count": 1.5}, kind="bike_counter")  # mid-slot
    store.write(b)


def rows(store: Store, **kw) -> list[dict[str, str]]:
    ds = resolve("bike-count-measures", None, set())
    ex = export(store, PUBLIC, Classifier(), ds, start=T0, end=T0 + timedelta(hours=6), chunk_rows=4, **kw)
    return list(csv.DictReader(io.StringIO(b"".join(formats.encode("csv", ex.columns, ex.chunks())).decode())))


def test_measures_every_slot_every_channel(city_store: tuple[Store, int]) -> None:
    store, _ = city_store
    counters(store)
    out = rows(store)
    assert list(out[0]) == ["channel_id", "counter_id", "start_datetime", "end_datetime", "count"]
    channels = sorted({r["channel_id"] for r in out})
    assert channels == [f"{BIDIR}-IN", f"{BIDIR}-OUT", f"{ONE}-INDISTINCT"]
    assert len(out) == 6 * 3  # each slot present for each channel
    by = {(r["channel_id"], r["start_datetime"]): r for r in out}
    # local times with their offset; the 23-hour day: 01:00+01:00 is followed by 03:00+02:00
    assert [r["start_datetime"] for r in out if r["channel_id"] == f"{ONE}-INDISTINCT"] == [
        "2026-03-28T23:00:00+01:00", "2026-03-29T00:00:00+01:00", "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00", "2026-03-29T05:00:00+02:00"]
    assert by[(f"{ONE}-INDISTINCT", "2026-03-29T01:00:00+01:00")]["end_datetime"] == "2026-03-29T03:00:00+02:00"
    assert by[(f"{BIDIR}-IN", "2026-03-28T23:00:00+01:00")]["count"] == "1"
    assert by[(f"{BIDIR}-OUT", "2026-03-29T00:00:00+01:00")]["count"] == "0"  # an uplink with no passage
    assert by[(f"{BIDIR}-IN", "2026-03-29T01:00:00+01:00")]["count"] == ""  # no uplink: no data
    assert by[(f"{ONE}-INDISTINCT", "2026-03-29T03:00:00+02:00")]["count"] == "5"
    assert by[(f"{ONE}-INDISTINCT", "2026-03-29T04:00:00+02:00")]["count"] == "6.5"  # 1.5 mid-slot + 5 at its end


def test_zone_filter(city_store: tuple[Store, int]) -> None:
    store, _ = city_store
    counters(store)
    assert {r["counter_id"] for r in rows(store, zone="d1")} == {BIDIR}  # s1 is in d1
