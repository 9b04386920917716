"""Partition leases (store.leases): ownership with epochs, takeover, and the fence that keeps a stale owner from
committing — against the real PostgreSQL store, in the batch's own transaction."""

from __future__ import annotations

import time

import pytest

from clapas.store.base import Batch, StoreError
from clapas.store.leases import LeaseLost, Leases, fence
from clapas.store.postgres import PostgresStore
from tests.store.batches import uplink, utc

LEASE_S = 1.0


def _batch(eui: str, minute: int) -> Batch:
    return uplink(Batch(), eui, utc(2026, 3, 1, 10, minute), {"air.temperature": 20.0 + minute}, kind="weather")


def _journal(store: PostgresStore) -> int:
    return store.sql("SELECT count(*) AS n FROM journal")[0]["n"]


@pytest.fixture
def store(pg_url):
    s = PostgresStore(pg_url, rollup_interval_s=None)
    yield s
    s.close()


def test_acquire_share_and_release(store, pg_url):
    a, b = Leases(pg_url, "a", 4, LEASE_S), Leases(pg_url, "b", 4, LEASE_S)
    assert a.heartbeat() == 1 and b.heartbeat() == 2
    assert a.share(2) == 2 and a.share(3) == 2 and a.share(1) == 4
    got_a = a.acquire(2)
    got_b = b.acquire(4)
    assert sorted(got_a) == [0, 1] and sorted(got_b) == [2, 3]  # nobody takes a live lease
    assert all(epoch == 1 and pos == -1 for epoch, pos in got_a.values())
    assert b.acquire(1) == {}
    a.release({p: e for p, (e, _) in got_a.items()})
    again = b.acquire(2)
    assert sorted(again) == [0, 1] and all(e == 2 for e, _ in again.values())  # a new epoch at each owner change
    for x in (a, b):
        x.close()


def test_the_partition_count_is_fixed(store, pg_url):
    Leases(pg_url, "a", 4, LEASE_S).close()
    with pytest.raises(StoreError, match="4 partitions"):
        Leases(pg_url, "a", 8, LEASE_S)


def test_a_stale_owner_cannot_commit_after_a_takeover(store, pg_url):
    """A worker frozen past its lease wakes up and tries to commit: the whole batch rolls back; the new owner
    starts from the position the last successful commit left."""
    stale, fresh = Leases(pg_url, "stale", 2, LEASE_S), Leases(pg_url, "fresh", 2, LEASE_S)
    (epoch, _), = stale.acquire(1).values()
    b = _batch("70b3d57ed0000001", 1)
    b.in_transaction = lambda cur: fence(cur, "stale", {0: (epoch, 41)}, LEASE_S)
    store.write(b)  # while the lease runs, rows and position commit together
    assert _journal(store) == 1 and stale.positions()[0] == 41

    assert stale.renew({0: epoch}) == {0}
    time.sleep(LEASE_S + 0.3)  # frozen past its lease
    assert stale.renew({0: epoch}) == set()  # it would find out at its next renewal …
    taken = fresh.acquire(2)
    assert taken[0] == (epoch + 1, 41)  # … but the other worker took over from the committed position

    late = _batch("70b3d57ed0000001", 2)
    late.in_transaction = lambda cur: fence(cur, "stale", {0: (epoch, 99)}, LEASE_S)
    with pytest.raises(LeaseLost):
        store.write(late)
    assert _journal(store) == 1  # nothing of the stale batch: journal, observations, position
    assert store.sql("SELECT count(*) AS n FROM observations")[0]["n"] == 1
    assert fresh.positions()[0] == 41

    ok = _batch("70b3d57ed0000001", 2)
    ok.in_transaction = lambda cur: fence(cur, "fresh", {0: (epoch + 1, 42)}, LEASE_S)
    store.write(ok)
    assert _journal(store) == 2 and fresh.positions()[0] == 42
    for x in (stale, fresh):
        x.close()


def test_an_expired_lease_cannot_commit_even_before_a_takeover(store, pg_url):
    w = Leases(pg_url, "w", 1, LEASE_S)
    (epoch, _), = w.acquire(1).values()
    time.sleep(LEASE_S + 0.3)
    b = _batch("70b3d57ed0000002", 3)
    b.in_transaction = lambda cur: fence(cur, "w", {0: (epoch, 5)}, LEASE_S)
    with pytest.raises(LeaseLost):
        store.write(b)
    assert _journal(store) == 0
    w.close()


def test_a_transaction_frozen_before_its_commit_does_not_hold_the_partition(store, pg_url):
    """Frozen between the fence and COMMIT, a worker holds the partition's row lock: the server ends its
    transaction after the lease, the lock goes, another worker takes over, and the frozen commit fails."""
    import psycopg

    w, other = Leases(pg_url, "w", 1, LEASE_S), Leases(pg_url, "other", 1, LEASE_S)
    (epoch, _), = w.acquire(1).values()
    con = psycopg.connect(pg_url)
    cur = con.cursor()
    fence(cur, "w", {0: (epoch, 7)}, LEASE_S)  # the position is written, not yet committed: the row is locked
    assert other.acquire(1) == {}
    time.sleep(LEASE_S + 1.0)  # frozen past its lease, idle in its transaction
    assert other.acquire(1) == {0: (epoch + 1, -1)}  # the server ended it: nothing of it remains
    with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
        con.commit()
    for x in (w, other):
        x.close()
