"""What only the PostgreSQL store has: monthly partitions, rollup tables (rebuilt by the rollup step), concurrent
readers and writers."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from clapas.model import QUANTITY_BY_KEY
from clapas.store import schema
from clapas.store.base import Batch
from clapas.store.postgres import PostgresStore
from tests.store.batches import series, uplink, utc

A, B = "a000000000000001", "b000000000000002"
QUANTITIES = ("air.temperature", "air.humidity", "battery")


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(pg_url, rollup_interval_s=None)  # the tests run the rollup step themselves
    yield s
    s.close()


def partitions(store: PostgresStore) -> list[str]:
    rows = store.sql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                     "WHERE i.inhparent = 'observations'::regclass ORDER BY 1")
    return [r["relname"] for r in rows]


def test_a_row_in_a_new_month_creates_its_partition(store: PostgresStore, pg_url: str) -> None:
    assert partitions(store) == ["observations_default"]
    store.write(uplink(Batch(), A, utc(2026, 3, 31, 23, 30), {"battery": 90}))
    b = Batch()
    uplink(b, A, utc(2026, 4, 1, 0, 30), {"battery": 89})
    uplink(b, A, utc(2026, 12, 31, 23), {"battery": 80})
    uplink(b, A, utc(2027, 1, 1, 0), {"battery": 79})
    store.write(b)
    assert partitions(store) == ["observations_2026_03", "observations_2026_04", "observations_2026_12",
                                 "observations_2027_01", "observations_default"]
    assert store.sql("SELECT count(*) AS n FROM observations_default")[0]["n"] == 0
    assert store.sql("SELECT count(*) AS n FROM observations_2026_04")[0]["n"] == 1
    again = PostgresStore(pg_url)  # a restarted store knows the partitions that exist
    assert (2027, 1) in again._months
    again.close()


def test_rows_the_default_partition_caught_move_into_their_month(store: PostgresStore, pg_url: str) -> None:
    store.write(uplink(Batch(), A, utc(2026, 3, 1), {"battery": 90}))
    with psycopg.connect(pg_url, autocommit=True) as con:  # e.g. written while the month's partition was detached
        con.execute("INSERT INTO observations VALUES (1, 28, '2026-07-14 12:00+00', 50)")
    store.write(uplink(Batch(), A, utc(2026, 7, 20), {"battery": 40}))
    assert store.sql("SELECT count(*) AS n FROM observations_default")[0]["n"] == 0
    assert store.sql("SELECT count(*) AS n FROM observations_2026_07")[0]["n"] == 2


def test_a_repeated_row_is_ignored_and_counted_once(store: PostgresStore) -> None:
    b = uplink(Batch(), A, utc(2026, 3, 1, 10), {"air.temperature": 10.0})
    store.write(b)
    store.write(b)  # delivered again (e.g. a retried batch): journaled twice, observed once
    assert store.counts()["observations"] == 1
    assert store.counts()["stored"] == 2
    [hour] = store.observations(A, "air.temperature", utc(2026, 3, 1), utc(2026, 3, 2), "1h")
    assert (hour["count"], hour["mean"]) == (1, 10.0)


def random_batch(rng: random.Random, n: int) -> Batch:
    """Uplinks of two devices over a month and a local-day boundary; values on a half grid so sums are exact."""
    b = Batch()
    start = utc(2026, 3, 30, 20)
    for _ in range(n):
        t = start + timedelta(minutes=10 * rng.randrange(6 * 60))  # 60 h, repeats across batches
        keys = rng.sample(QUANTITIES, rng.randint(1, 3))
        uplink(b, rng.choice((A, B)), t, {k: rng.randrange(-200, 200) / 2 for k in keys})
    return b


ROLLUP = "SELECT device_id, quantity_id, bucket, count, sum, min, max FROM rollup_{r} ORDER BY 1, 2, 3"
FROM_RAW = ("SELECT device_id, quantity_id, {bucket} AS bucket, count(*) AS count, sum(value) AS sum, "
            "min(value) AS min, max(value) AS max FROM observations GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


BUCKETS = {"1h": "date_trunc('hour', time, 'UTC')", "1d": "date_trunc('day', time, 'Europe/Paris')"}
HISTORY_FROM_RAW = ("SELECT {bucket} AS time, sum(value) / count(*) AS mean, min(value) AS min, max(value) AS max, "
                    "count(*) AS count FROM observations WHERE device_id = (SELECT id FROM devices WHERE eui = %s) "
                    "AND quantity_id = %s GROUP BY 1 ORDER BY 1")


def assert_history_exact(store: PostgresStore) -> None:
    """Every history the API can ask for equals a GROUP BY over the raw rows, whatever is rolled up yet."""
    for eui in (A, B):
        for key in QUANTITIES:
            for r, bucket in BUCKETS.items():
                expected = store.sql(HISTORY_FROM_RAW.format(bucket=bucket), [eui, QUANTITY_BY_KEY[key].id])
                assert store.observations(eui, key, utc(2026, 2, 1), utc(2026, 5, 1), r) == expected, (eui, key, r)


def assert_rollups_match_raw(store: PostgresStore) -> None:
    """History is exact before the rollup step, the rollup tables equal the raw rows after it, and still exact."""
    assert_history_exact(store)
    store.maintain(settle_s=0)
    assert store.sql("SELECT count(*) AS n FROM rollup_pending")[0]["n"] == 0
    for r, bucket in BUCKETS.items():
        rollup = store.sql(ROLLUP.format(r=r))
        assert rollup == store.sql(FROM_RAW.format(bucket=bucket)), r
        assert rollup
    assert_history_exact(store)
    assert store.counts()["observations"] == store.sql("SELECT count(*) AS n FROM observations")[0]["n"]


def test_rollups_equal_a_group_by_over_raw_rows_after_batches_and_replays(store: PostgresStore) -> None:
    rng = random.Random(7)
    for _ in range(6):
        store.write(random_batch(rng, 200))
    assert_rollups_match_raw(store)

    journal = [r for c in store.iter_journal() for r in c]
    replay = Batch()
    for row in rng.sample(journal, 50):  # re-decoded with other values, some quantities gone, some new
        t = store.sql("SELECT time, dev_eui FROM journal WHERE id = %s", [row.id])[0]
        keys = rng.sample(QUANTITIES, rng.randint(1, 3))
        uplink(replay, t["dev_eui"], t["time"], {k: rng.randrange(-200, 200) / 2 for k in keys}, journal_id=row.id)
    store.replace(replay)
    assert_rollups_match_raw(store)
    assert store.counts()["observations"] == store.sql("SELECT count(*) AS n FROM observations")[0]["n"]


def test_migrations_from_two_processes_at_once(pg_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[PostgresStore] = []

    def start() -> None:
        try:
            stores.append(PostgresStore(pg_url))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert stores[0].sql("SELECT count(*) AS n FROM schema_version")[0]["n"] == len(schema.postgres_migrations())
    for s in stores:
        s.close()


def test_the_api_reads_while_a_batch_is_being_written(store: PostgresStore, pg_url: str) -> None:
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 10), {"battery": 90}))
    batch = Batch()
    for i in range(100):
        uplink(batch, B, utc(2026, 3, 1, 11) + timedelta(minutes=i), {"battery": 80})
        batch.ev_time.append(utc(2026, 3, 1, 11))  # its event rows are written last in the transaction
    batch.ev_eui.extend([B] * 100)
    batch.ev_event.extend(["log"] * 100)
    batch.ev_data.extend(["{}"] * 100)
    blocker = psycopg.connect(pg_url)
    blocker.execute("LOCK TABLE device_events IN EXCLUSIVE MODE")  # holds the writer mid-transaction
    writer = threading.Thread(target=store.write, args=(batch,))
    writer.start()
    try:
        writer.join(1.0)
        assert writer.is_alive()  # the batch is half written, in its open transaction
        assert store.counts()["observations"] == 1  # reads answer at once and see only what is committed
        assert store.latest(A)[0]["value"] == 90
        assert store.device(B) is None
    finally:
        blocker.rollback()
        blocker.close()
    writer.join(10)
    assert not writer.is_alive()
    assert store.counts()["observations"] == 101
    assert len(store.device_events(B)) == 100


def test_reads_interleave_with_a_stream_of_writes(store: PostgresStore) -> None:
    rng = random.Random(3)
    batches = [random_batch(rng, 300) for _ in range(10)]
    seen: list[int] = []
    writer = threading.Thread(target=lambda: [store.write(b) for b in batches])
    writer.start()
    while writer.is_alive():
        seen.append(store.counts()["stored"])
        store.observations(A, "battery", utc(2026, 3, 30), utc(2026, 4, 3), "1h")
    writer.join()
    assert seen == sorted(seen)  # each read sees whole batches, never a batch half-written
    assert all(n % 300 == 0 for n in seen)
    assert store.counts()["stored"] == 3000
    assert_rollups_match_raw(store)


def test_an_unknown_time_zone_fails_at_once(pg_url: str) -> None:
    with pytest.raises(Exception, match="Mars/Olympus"):
        PostgresStore(pg_url, timezone="Mars/Olympus")


def test_a_new_city_time_zone_rebuilds_the_daily_rollup(store: PostgresStore, pg_url: str) -> None:
    store.write(uplink(Batch(), A, utc(2026, 3, 31, 23), {"battery": 90}))  # 1 April in Paris, 31 March in UTC
    day = (utc(2026, 3, 30), utc(2026, 4, 2))
    assert [r["time"] for r in store.observations(A, "battery", *day, "1d")] == [utc(2026, 3, 31, 22)]
    utc_store = PostgresStore(pg_url, timezone="UTC")
    assert [r["time"] for r in utc_store.observations(A, "battery", *day, "1d")] == [utc(2026, 3, 31)]
    utc_store.close()


def test_the_store_reconnects_after_the_server_dropped_its_connections(store: PostgresStore, pg_url: str) -> None:
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 10), {"battery": 90}))
    assert store.counts()["observations"] == 1
    with psycopg.connect(pg_url, autocommit=True) as con:  # what a server restart does to the store
        con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    batch = uplink(Batch(), A, utc(2026, 3, 1, 11), {"battery": 89})
    with pytest.raises(psycopg.OperationalError):
        store.write(batch)  # the pipeline keeps the batch and retries it
    store.write(batch)
    assert store.counts()["observations"] == 2  # reads retry once on a new connection


def test_the_rollup_step_waits_for_a_bucket_to_settle(store: PostgresStore) -> None:
    store.write(series(A, utc(2026, 3, 1, 10), timedelta(minutes=20), "battery", [90, 89, 88, 87]))
    assert store.maintain() == 0  # just written: still being touched, read from raw rows
    hours = store.observations(A, "battery", utc(2026, 3, 1), utc(2026, 3, 2), "1h")
    assert [(h["count"], h["mean"]) for h in hours] == [(3, 89.0), (1, 87.0)]
    assert store.maintain(settle_s=0) == 3  # two hours, one day
    assert store.observations(A, "battery", utc(2026, 3, 1), utc(2026, 3, 2), "1h") == hours
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 10, 30), {"battery": 95}))  # late: the hour is pending again
    hours = store.observations(A, "battery", utc(2026, 3, 1), utc(2026, 3, 2), "1h")
    assert [(h["count"], h["max"]) for h in hours] == [(4, 95.0), (1, 87.0)]
    assert_rollups_match_raw(store)


def test_the_background_rollup_step_rolls_up_settled_buckets(pg_url: str) -> None:
    s = PostgresStore(pg_url, rollup_settle_s=0, rollup_interval_s=0.1)
    try:
        s.write(series(A, utc(2026, 3, 1, 10), timedelta(minutes=20), "battery", [90, 89, 88, 87]))
        deadline = time.monotonic() + 10
        while s.sql("SELECT count(*) AS n FROM rollup_pending")[0]["n"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.sql("SELECT count(*) AS n FROM rollup_1h")[0]["n"] == 2
        assert s.sql("SELECT count(*) AS n FROM rollup_pending")[0]["n"] == 0
    finally:
        s.close()


def test_a_replay_that_drops_a_quantity_updates_latest_and_quantities_in_use(store: PostgresStore) -> None:
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 10), {"battery": 90, "air.temperature": 20.0}))
    store.maintain(settle_s=0)
    assert store.quantities_in_use() == {"battery": 1, "air.temperature": 1}
    [row] = [r for c in store.iter_journal() for r in c]
    store.replace(uplink(Batch(), A, utc(2026, 3, 1, 10), {"battery": 91}, journal_id=row.id))
    assert store.quantities_in_use() == {"battery": 1}
    assert [(r["quantity"], r["value"]) for r in store.latest(A)] == [("battery", 91)]
    assert store.counts()["observations"] == 1
    assert_rollups_match_raw(store)


def test_a_write_on_a_connection_that_stopped_answering_fails_within_its_limit(pg_url: str) -> None:
    """A blackholed network (the relay forwards nothing and refuses nothing: no error, only a wait) must not block
    the writer forever (issue 9): the write fails after `postgres.write_timeout_s`, the next one uses a new
    connection once the database answers again, and the failed one left nothing behind."""
    from clapas.config import PostgresSettings
    from tests.faults.relay import Relay

    with Relay.for_url(pg_url) as relay:
        limits = PostgresSettings(write_timeout_s=1.5, connect_timeout_s=2, statement_timeout_s=5)
        s = PostgresStore(relay.url(pg_url), rollup_interval_s=None, connection=limits)
        try:
            s.write(uplink(Batch(), A, utc(2026, 3, 1, 12), {"battery": 90}))
            assert s.sql("SHOW statement_timeout")[0]["statement_timeout"] == "5s"
            relay.blackhole()
            t0 = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                s.write(uplink(Batch(), A, utc(2026, 3, 1, 13), {"battery": 89}))
            assert time.monotonic() - t0 < 1.5 + 2.5  # the limit, and slack for a loaded machine
            relay.restore()
            s.write(uplink(Batch(), A, utc(2026, 3, 1, 13), {"battery": 89}))  # the retry, on a new connection
            assert s.counts()["stored"] == 2  # the cut transaction was rolled back, not committed twice
        finally:
            s.close()
