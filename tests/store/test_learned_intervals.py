"""Learned uplink intervals kept per device (migration 15) on both stores: the same answer as the journal read they
replace, batch after batch, out of order, duplicates left out, after a restart and after the migration fills them
from an existing journal (fixtures of test_store)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from clapas.store.base import DUPLICATE, QUARANTINED, Batch, Store
from tests.store import test_store as suite
from tests.store.batches import uplink

make_store = suite.make_store
store = suite.store
AT = datetime(2026, 8, 3, 12, tzinfo=UTC)
WINDOW = timedelta(days=30)
DEVICES = 40


def _journal(seed: int) -> list[tuple[str, datetime, str, str]]:
    """(eui, time, event, status) of a fleet of 40 devices over 45 days before AT: intervals from 5 min to 3 days
    with jitter, a few duplicates, status events, quarantined frames, repeated times, and devices heard too
    rarely to learn anything."""
    rng = random.Random(seed)
    rows = []
    for i in range(DEVICES):
        eui = f"70b3d5000000{i:04x}"
        interval = rng.choice([300.0, 600.0, 3600.0, 6 * 3600.0, 86400.0, 3 * 86400.0])
        n = rng.choice([2, 4, 6, 30, 60]) if i % 5 else 3
        t = AT - timedelta(days=45) + timedelta(seconds=rng.uniform(0, 45 * 86400 - n * interval))
        for _ in range(n):
            t += timedelta(seconds=interval * rng.uniform(0.9, 1.1))
            if t > AT:
                break
            status = rng.choices(["stored", DUPLICATE, QUARANTINED], [0.85, 0.1, 0.05])[0]
            rows.append((eui, t, "status" if rng.random() < 0.05 else "up", status))
            if rng.random() < 0.03:
                rows.append((eui, t, "up", "stored"))  # the same time again: one time heard
    rng.shuffle(rows)  # batches arrive out of order, late uplinks included
    return rows


def _write(store: Store, rows: list[tuple[str, datetime, str, str]], batch: int) -> None:
    for k in range(0, len(rows), batch):
        b = Batch()
        for eui, t, event, status in rows[k:k + batch]:
            uplink(b, eui, t, status=status, event=event)
        store.write(b)


def _same(store: Store, at: datetime, uplinks: int = 20, min_uplinks: int = 5) -> dict[str, float]:
    kept = store.learned_intervals(at - WINDOW, at, uplinks, min_uplinks)
    full = store.learned_intervals_from_journal(at - WINDOW, at, uplinks, min_uplinks)
    assert kept == pytest.approx(full, rel=1e-12) and kept.keys() == full.keys()
    return kept


def test_the_kept_intervals_equal_a_full_recompute_of_the_journal(store: Store) -> None:
    rows = _journal(seed=13)
    third = len(rows) // 3
    _write(store, rows[:third], batch=97)
    _same(store, AT)  # every time still pending
    store.fold_uplink_times()
    _same(store, AT)  # every time kept
    _write(store, rows[third:2 * third], batch=97)
    store.fold_uplink_times()
    _write(store, rows[2 * third:], batch=97)
    learned = _same(store, AT)  # kept and pending
    assert store.sql("SELECT count(*) AS n FROM device_uplink_pending")[0]["n"] > 0
    store.fold_uplink_times()
    assert store.sql("SELECT count(*) AS n FROM device_uplink_pending")[0]["n"] == 0
    assert _same(store, AT) == pytest.approx(learned, rel=1e-12)
    assert 10 <= len(learned) < DEVICES  # some learned, some too rarely heard (or not within the window)
    for at in (AT + timedelta(days=1), AT + timedelta(days=20)):  # the window slides past older uplinks
        _same(store, at)
    _same(store, AT, uplinks=7, min_uplinks=3)
    _same(store, AT, uplinks=20, min_uplinks=1)
    one = sorted(learned)[0]
    assert store.learned_intervals(AT - WINDOW, AT, euis=[one]) == {one: learned[one]}
    with pytest.raises(ValueError, match="between 1 and 20"):
        store.learned_intervals(AT - WINDOW, AT, 21)


def test_a_device_with_a_registry_interval_learns_nothing(store: Store) -> None:
    from clapas.model import Device

    eui = "70b3d50000000fff"
    store.upsert_devices([Device(eui=eui, kind="weather_station", expected_interval_s=600)])
    b = Batch()
    for k in range(10):
        uplink(b, eui, AT - timedelta(seconds=300 * k))
    store.write(b)
    assert store.learned_intervals(AT - WINDOW, AT) == {} == store.learned_intervals_from_journal(AT - WINDOW, AT)


def test_the_kept_intervals_survive_a_restart_and_the_migration_fills_them(make_store) -> None:
    rows = _journal(seed=5)
    first = make_store()
    _write(first, rows[:len(rows) // 3], batch=50)
    first.fold_uplink_times()
    _write(first, rows[len(rows) // 3:len(rows) // 2], batch=50)  # some still pending at the restart
    before = _same(first, AT)
    first.close()
    second = make_store()  # the same database, reopened
    assert second.learned_intervals(AT - WINDOW, AT) == pytest.approx(before, rel=1e-12)
    _write(second, rows[len(rows) // 2:], batch=50)
    after = _same(second, AT)
    # a store of version 14, its journal written before the table existed: migration 15 fills it from the journal
    # (and the later migrations are undone, so that they run again after it)
    with second._alert_tx() as cur:
        cur.execute("DROP TABLE device_uplink_times")
        cur.execute("DROP TABLE device_uplink_pending")
        cur.execute("ALTER TABLE detector_state DROP COLUMN delta")  # migration 16
        cur.execute("DELETE FROM schema_version WHERE version >= 15")
    second.close()
    third = make_store()
    assert third.learned_intervals(AT - WINDOW, AT) == pytest.approx(after, rel=1e-12)
    _same(third, AT + timedelta(days=3))
