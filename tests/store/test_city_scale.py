"""The city-scale read paths (issue 14), on both stores: each gives the answer of the slow path it replaces, on a small
city, and still after replay, retention and erasure (which delete rows): latest values of many devices in one query
(DuckDB's `latest_values` table), a group's series aggregated in the store, the journal tally behind `counts`, and
DuckDB's days rewritten sorted by device."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clapas.charter.jobs import run_erasure, run_retention
from clapas.model import QUANTITY_BY_ID, Device
from clapas.store.base import QUARANTINED, Batch, Store
from tests.charter.test_retention import HOME, HOME2, STATION
from tests.charter.test_retention import city as retention_city
from tests.charter.test_retention import settings as retention_settings
from tests.store.batches import uplink, utc
from tests.store.test_store import make_store  # noqa: F401 - the fixture that opens both stores

T0 = utc(2026, 3, 2)
METERS = [f"a0000000000001{i:02x}" for i in range(12)]
ZONES = ("dma-1", "dma-2")


@pytest.fixture
def store(make_store) -> Store:  # noqa: F811 - the imported fixture, by name
    return make_store()


def small_city(store: Store, days: int = 2) -> None:
    """12 meters in two zones, hourly, each with its own offset and a battery reading every 6 hours."""
    store.upsert_devices([Device(eui=e, kind="water_meter", zone=ZONES[i % 2]) for i, e in enumerate(METERS)])
    b = Batch()
    for h in range(24 * days):
        for i, e in enumerate(METERS):
            t = T0 + timedelta(hours=h, minutes=i)
            values = {"water.volume": 100.0 * i + h * (0.5 + i / 10)}
            if h % 6 == 0:
                values["battery"] = 100.0 - h / 10 - i
            uplink(b, e, t, values)
    store.write(b)


def reference_latest(store: Store) -> dict[str, list[tuple[str, datetime, float]]]:
    """Each device's last value of each quantity, from every raw row (the old path: a scan)."""
    last: dict[tuple[str, int], tuple[datetime, float]] = {}
    for r in store.sql("SELECT d.eui, o.quantity_id, o.time, o.value FROM observations o JOIN devices d "
                       "ON d.id = o.device_id"):
        k = (r["eui"], r["quantity_id"])
        if k not in last or r["time"] > last[k][0]:
            last[k] = (r["time"], r["value"])
    out: dict[str, list[tuple[str, datetime, float]]] = defaultdict(list)
    for (eui, q), (t, v) in sorted(last.items()):
        out[eui].append((QUANTITY_BY_ID[q].key, t, v))
    return dict(out)


def check_latest(store: Store) -> None:
    euis = [d["eui"] for d in store.devices(limit=10_000)] + ["ffffffffffffffff"]
    got = {e: [(r["quantity"], r["time"], r["value"]) for r in rows] for e, rows in store.latest_many(euis).items()}
    assert got == reference_latest(store)
    for e in euis[:3]:
        assert store.latest(e) == store.latest_many([e]).get(e, [])


def check_counts(store: Store) -> None:
    """`counts` (PostgreSQL: from the tally) equals counting the journal itself."""
    by_status = {r["status"]: r["n"] for r in store.sql("SELECT status, count(*) AS n FROM journal GROUP BY 1")}
    counts = store.counts()
    assert {s: counts[s] for s in ("stored", "quarantined", "duplicate")} == \
        {s: by_status.get(s, 0) for s in ("stored", "quarantined", "duplicate")}


def settle(store: Store) -> None:
    """Both stores' background steps, run now: PostgreSQL's rollups, DuckDB's sorted days."""
    for step in ("maintain", "compact"):
        if hasattr(store, step):
            getattr(store, step)(settle_s=0)


# latest values ------------------------------------------------------------------------------------------------
def test_latest_many_is_the_last_raw_row_of_each_quantity(store: Store) -> None:
    small_city(store)
    check_latest(store)
    late = uplink(Batch(), METERS[0], T0 + timedelta(hours=1), {"water.volume": -1.0, "air.temperature": 3.0})
    store.write(late)  # late: not the latest volume, but the only temperature
    check_latest(store)
    assert store.latest_many([]) == {}


def test_latest_after_a_replay_that_drops_the_newest_rows(store: Store) -> None:
    small_city(store, days=1)
    newest = store.sql("SELECT id, dev_eui, time FROM journal WHERE dev_eui = ? ORDER BY time DESC LIMIT 2"
                       .replace("?", "%s" if store.url.startswith("postgres") else "?"), [METERS[3]])
    replay = Batch()
    for r in newest:  # the two newest uplinks of a meter, now refused by a fixed decoder
        uplink(replay, r["dev_eui"], r["time"], status=QUARANTINED, error="now rejected", journal_id=r["id"])
    store.replace(replay)
    check_latest(store)
    check_counts(store)
    assert store.latest(METERS[3])[0]["time"] < newest[1]["time"]
    # and replayed again as stored, with new values: they are the latest again
    replay = Batch()
    for r in newest:
        uplink(replay, r["dev_eui"], r["time"], {"water.volume": 7.0}, journal_id=r["id"])
    store.replace(replay)
    check_latest(store)
    check_counts(store)
    assert store.latest(METERS[3])[0]["value"] == 7.0


def test_latest_and_counts_after_retention(store: Store) -> None:
    retention_city(store)
    check_latest(store)
    run_retention(store, retention_settings(), now=utc(2026, 2, 15))  # 25 months: meters keep a row a day
    check_latest(store)
    check_counts(store)
    assert store.latest(HOME) and "battery" not in {r["quantity"] for r in store.latest(HOME)}
    run_retention(store, retention_settings(), now=utc(2027, 2, 15))  # 37 months: the meters' rows all go
    check_latest(store)
    check_counts(store)
    assert store.latest(HOME) == [] and store.latest(STATION)


def test_latest_and_counts_after_erasure(store: Store) -> None:
    retention_city(store)
    newest = store.latest(HOME2)[0]["time"]
    run_erasure(store, request="r-1", eui=HOME2, before=None)  # the whole device
    run_erasure(store, request="r-2", eui=HOME, before=newest + timedelta(days=1))  # its period with its latest
    check_latest(store)
    check_counts(store)
    assert store.latest(HOME) == [] and store.latest(HOME2) == []
    settle(store)  # and once the background steps folded the tally
    check_latest(store)
    check_counts(store)


# a group's series ---------------------------------------------------------------------------------------------
def python_groups(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The old path: a group's buckets aggregated in Python from `series`' per-device buckets."""
    by: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[r["time"]].append(r)
    out = []
    for t, rs in sorted(by.items()):
        n = sum(r["count"] for r in rs)
        out.append((t.astimezone(UTC), len(rs), n, round(sum(r["mean"] * r["count"] for r in rs) / n, 9),
                    min(r["min"] for r in rs), max(r["max"] for r in rs)))
    return out


def sql_groups(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["time"].astimezone(UTC), r["devices"], r["count"], round(r["mean"], 9), r["min"], r["max"])
            for r in rows]


@pytest.mark.parametrize("resolution", ["1h", "1d"])
def test_group_series_aggregates_the_devices_buckets(store: Store, resolution: str) -> None:
    small_city(store)
    start, end = T0 + timedelta(hours=5), T0 + timedelta(days=2)
    zone = [e for i, e in enumerate(METERS) if i % 2 == 0]
    for phase in ("pending", "rolled up"):
        expect = python_groups(store.series("water.volume", start, end, euis=zone, resolution=resolution))
        assert expect and sql_groups(store.group_series("water.volume", start, end, euis=zone,
                                                        resolution=resolution)) == expect, phase
        assert sql_groups(store.group_series("water.volume", start, end, zone="dma-1",
                                             resolution=resolution)) == expect
        assert store.group_series("water.volume", start, end, euis=[], resolution=resolution) == []
        settle(store)
    with pytest.raises(ValueError):
        store.group_series("water.volume", start, end, zone="dma-1", resolution="raw")


# DuckDB's days sorted by device -------------------------------------------------------------------------------
def rounded(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row with its floats rounded: a mean's last bits depend on the order rows are summed in."""
    return tuple(round(v, 9) if isinstance(v, float) else v for v in row.values())


def answers(store: Store) -> list[Any]:
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=4)
    out: list[Any] = [store.counts(), store.quantities_in_use()]
    for e in METERS[:4]:
        for res in ("raw", "1h", "1d"):
            out.append([rounded(r) for r in store.observations(e, "water.volume", start, end, res)])
    out.append([tuple(r.values()) for r in store.series("battery", start, end, euis=METERS[5:9])])
    out.append(store.latest_many(METERS))
    return out


def test_duckdb_compaction_keeps_every_answer_and_sorts_closed_days(tmp_path) -> None:
    from clapas.store.duckdb import DuckDBStore

    store = DuckDBStore(f"duckdb:///{tmp_path}/c.duckdb", compact_interval_s=None)
    try:
        small_city(store, days=3)
        before = answers(store)
        assert store.compact(settle_s=0) >= 3
        assert answers(store) == before
        days = [r["day"].astimezone(UTC) for r in store.sql("SELECT day FROM compacted_days ORDER BY day")]
        assert days[:3] == [T0, T0 + timedelta(days=1), T0 + timedelta(days=2)]
        # each rewritten day's rows are in (device, quantity, time) order
        for d in days[:3]:
            rows = store.sql("SELECT device_id, quantity_id, time FROM observations WHERE time >= ? AND time < ?",
                             [d, d + timedelta(days=1)])
            keys = [(r["device_id"], r["quantity_id"], r["time"]) for r in rows]
            assert keys == sorted(keys) and keys
        assert store.compact(settle_s=0) == 0  # nothing left to do
        # a late uplink into a rewritten day marks it to be rewritten again; the answers include it
        store.write(uplink(Batch(), METERS[0], T0 + timedelta(hours=2, minutes=30), {"water.volume": 1.5}))
        assert T0 not in {r["day"].astimezone(UTC) for r in store.sql("SELECT day FROM compacted_days")}
        after = answers(store)
        assert store.compact(settle_s=0) == 1 and answers(store) == after
    finally:
        store.close()


def test_duckdb_device_series_reads_few_row_groups_once_days_are_sorted(tmp_path) -> None:
    """The point of the layout: zone maps prune another device's row groups (several row groups of 122,880)."""
    from clapas.store.duckdb import DuckDBStore

    store = DuckDBStore(f"duckdb:///{tmp_path}/p.duckdb", compact_interval_s=None)
    try:
        con = store._con
        con.execute("INSERT INTO devices (id, eui) SELECT i, printf('%016x', i) FROM range(1, 1001) t(i)")
        con.execute("INSERT INTO observations SELECT d, 1, TIMESTAMPTZ '2026-03-02 00:00:00+00' + INTERVAL (m) "
                    "MINUTE, random() FROM range(0, 1440, 3) t(m), range(1, 1001) s(d) ORDER BY m, d")
        store.migrate()  # the device cache

        def groups_scanned() -> tuple[int, int]:
            plan = con.execute("EXPLAIN ANALYZE SELECT time, value FROM observations WHERE device_id = 500 "
                               "AND quantity_id = 1 AND time >= TIMESTAMPTZ '2026-03-01 00:00:00+00'").fetchall()
            m = re.search(r"Row Groups Scanned: (\d+) / (\d+)", plan[0][1])
            assert m, plan[0][1]
            return int(m[1]), int(m[2])

        scanned, total = groups_scanned()
        assert total >= 4 and scanned == total  # arrival order: every row group holds device 500
        series = store.observations(f"{500:016x}", QUANTITY_BY_ID[1].key, utc(2026, 3, 1), utc(2026, 3, 4))
        assert store.compact(settle_s=0) >= 1
        scanned, total = groups_scanned()
        assert scanned <= 2 < total
        assert store.observations(f"{500:016x}", QUANTITY_BY_ID[1].key, utc(2026, 3, 1), utc(2026, 3, 4)) == series
    finally:
        store.close()


# the per-zone hourly rollup (migration 14) ------------------------------------------------------------------
def zone_answers(store: Store, start: datetime, end: datetime) -> list[Any]:
    """Each zone's hourly roll-up from the rollup, and from the raw rows (`group_series`), for both zones."""
    out = []
    for zones in (["dma-1"], ["dma-2"], list(ZONES)):
        got = sql_groups(store.zone_series("water.volume", start, end, zones=zones, kind="water_meter"))
        out.append(got)
    return out


def reference_zones(store: Store, start: datetime, end: datetime) -> list[Any]:
    out = []
    for zones in (["dma-1"], ["dma-2"], list(ZONES)):
        euis = [d["eui"] for d in store.devices(limit=10_000) if d["zone"] in zones and d["kind"] == "water_meter"]
        out.append(sql_groups(store.group_series("water.volume", start, end, euis=euis, resolution="1h")))
    return out


def test_zone_series_equals_the_devices_rows_pending_and_rolled_up(store: Store) -> None:
    small_city(store)
    start, end = T0 + timedelta(hours=5), T0 + timedelta(days=2)
    expect = reference_zones(store, start, end)
    assert expect[0] and len(expect[0]) == 43
    assert zone_answers(store, start, end) == expect  # every hour pending: from the raw rows
    settle(store)
    assert store.sql("SELECT count(*) AS n FROM zone_rollup_pending")[0]["n"] == 0
    assert store.sql("SELECT count(*) AS n FROM zone_rollup_1h")[0]["n"] > 0
    assert zone_answers(store, start, end) == expect  # every hour rolled up
    # a late uplink into a rolled-up hour: pending again, and counted at once
    store.write(uplink(Batch(), METERS[0], T0 + timedelta(hours=6, minutes=30), {"water.volume": 1.5}))
    assert store.sql("SELECT count(*) AS n FROM zone_rollup_pending")[0]["n"] == 1
    expect = reference_zones(store, start, end)
    assert zone_answers(store, start, end) == expect
    settle(store)
    assert zone_answers(store, start, end) == expect
    assert store.zone_series("water.volume", start, end, zones=[], kind="water_meter") == []
    assert store.zone_series("water.volume", start, end, zones=["dma-1"], kind="weather_station") == []
    groups = store.device_groups(zones=["dma-1"], kind="water_meter")
    assert [(g["zone"], g["kind"], g["devices"]) for g in groups] == [("dma-1", "water_meter", 6)]


def test_zone_series_after_replay_retention_and_erasure(store: Store) -> None:
    small_city(store, days=1)
    settle(store)
    start, end = T0, T0 + timedelta(days=1)
    newest = store.sql("SELECT id, dev_eui, time FROM journal WHERE dev_eui = ? ORDER BY time DESC LIMIT 2"
                       .replace("?", "%s" if store.url.startswith("postgres") else "?"), [METERS[2]])
    replay = Batch()
    for r in newest:  # refused now: its rows of those hours go
        uplink(replay, r["dev_eui"], r["time"], status=QUARANTINED, error="now rejected", journal_id=r["id"])
    store.replace(replay)
    assert zone_answers(store, start, end) == reference_zones(store, start, end)
    settle(store)
    assert zone_answers(store, start, end) == reference_zones(store, start, end)
    before = zone_answers(store, start, end)
    run_erasure(store, request="r-z", eui=METERS[4], before=None)  # a dwelling of dma-1, whole
    after = reference_zones(store, start, end)
    assert after != before and max(r[1] for r in after[0]) == 5
    assert zone_answers(store, start, end) == after
    settle(store)
    assert zone_answers(store, start, end) == after


def test_zone_series_after_retention(store: Store) -> None:
    retention_city(store)
    settle(store)
    start, end = utc(2024, 1, 1), utc(2026, 3, 1)
    zones = sorted({d["zone"] for d in store.devices(limit=10_000)})

    def both() -> tuple[Any, Any]:
        """(the rollup's answer, the raw rows' hours: PostgreSQL's own hourly rollup forgets what retention keeps
        of a day, its last row)"""
        got = sql_groups(store.zone_series("water.volume", start, end, zones=zones))
        hours: dict[datetime, list[tuple[str, float]]] = defaultdict(list)
        for r in store.series("water.volume", start, end):
            t = r["time"].astimezone(UTC)
            hours[t.replace(minute=0, second=0, microsecond=0)].append((r["eui"], r["value"]))
        ref = [(t, len({e for e, _ in vs}), len(vs), round(sum(v for _, v in vs) / len(vs), 9),
                min(v for _, v in vs), max(v for _, v in vs)) for t, vs in sorted(hours.items())]
        return got, ref

    got, ref = both()
    assert got == ref and ref
    run_retention(store, retention_settings(), now=utc(2026, 2, 15))
    got, ref2 = both()
    assert got == ref2 and ref2 != ref
    settle(store)
    assert both()[0] == ref2
