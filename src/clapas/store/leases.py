"""Partition leases and consumed positions (partitioned mode, issue 15), in PostgreSQL.

One row per partition: its owner, the lease's `epoch` (incremented at every takeover), when the lease expires,
and the partition's committed `position` (the broker offset of the last event whose rows are committed). A worker
commits a batch's position with the batch, in its transaction (`fence_sql`), only if it still owns the partition
under the same epoch and the lease has not expired; otherwise the whole transaction rolls back (`LeaseLost`). The
row lock taken by that UPDATE serialises a commit with a takeover: whichever comes second sees the other's effect,
so a worker that was paused (SIGSTOP, a VM freeze, a network partition) past its lease can never commit again, and
the new owner starts from the position the last successful commit left. `workers` holds each worker's heartbeat:
the live count sets each one's fair share (rebalancing).
"""

from __future__ import annotations

import math
from typing import Any

import psycopg

from clapas.store.base import StoreError


def ddl(ts: str = "TIMESTAMPTZ") -> list[str]:
    """Migration step (partitioned mode): the same in both stores (DuckDB only ever has the tables)."""
    return [
        f"""CREATE TABLE partition_leases (partition INTEGER PRIMARY KEY, owner VARCHAR, epoch BIGINT NOT NULL
            DEFAULT 0, expires_at {ts}, position BIGINT NOT NULL DEFAULT -1, committed_at {ts})""",
        f"CREATE TABLE workers (id VARCHAR PRIMARY KEY, heartbeat {ts} NOT NULL, started_at {ts} NOT NULL)",
    ]


class LeaseLost(StoreError):
    """This worker no longer owns a partition it tried to commit (it was taken over): nothing was committed."""


# a batch's positions, committed only under the epochs this worker holds and while its leases run
_FENCE = ("UPDATE partition_leases l SET position = v.pos, committed_at = clock_timestamp() "
          "FROM unnest(%s::int4[], %s::int8[], %s::int8[]) AS v(p, epoch, pos) "
          "WHERE l.partition = v.p AND l.owner = %s AND l.epoch = v.epoch AND l.expires_at > clock_timestamp()")


def fence(cur: Any, owner: str, positions: dict[int, tuple[int, int]], lease_s: float) -> None:
    """Inside a batch's transaction: commit `positions` ({partition: (epoch, position)}) or raise LeaseLost.
    A transaction left idle (its worker frozen before COMMIT) is ended by the server after the lease, so that it
    cannot hold the partition's row lock (and its takeover) for ever."""
    parts = sorted(positions)
    cur.execute(_FENCE, [parts, [positions[p][0] for p in parts], [positions[p][1] for p in parts], owner])
    if cur.rowcount != len(parts):
        raise LeaseLost(f"worker {owner} lost the lease of a partition among {parts}: batch not committed")
    cur.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{max(1, int(lease_s * 1000))}ms'")


class Leases:
    """A worker's view of the lease table, on its own autocommit connection (never the batch writer's)."""

    def __init__(self, url: str, owner: str, partitions: int, lease_s: float) -> None:
        self.owner = owner
        self.partitions = partitions
        self.lease_s = lease_s
        self.con = psycopg.connect(url, autocommit=True)
        self._ensure_rows()

    def _ensure_rows(self) -> None:
        n = self.con.execute("SELECT count(*), coalesce(max(partition) + 1, 0) FROM partition_leases").fetchone()
        if n[0] and (n[0] != self.partitions or n[1] != self.partitions):
            raise StoreError(f"the store was partitioned into {n[0]} partitions, the settings say "
                             f"{self.partitions}: changing the count would move devices between partitions "
                             "(see README, partitioned mode)")
        self.con.execute("INSERT INTO partition_leases (partition) SELECT generate_series(0, %s - 1) "
                         "ON CONFLICT DO NOTHING", [self.partitions])

    def heartbeat(self) -> int:
        """Say this worker is alive; returns the number of live workers (heartbeat within a lease)."""
        self.con.execute("INSERT INTO workers VALUES (%s, now(), now()) ON CONFLICT (id) DO UPDATE "
                         "SET heartbeat = now()", [self.owner])
        return self.con.execute("SELECT count(*) FROM workers WHERE heartbeat > now() - %s * interval '1 second'",
                                [self.lease_s]).fetchone()[0]

    def share(self, live: int) -> int:
        """The most partitions one of `live` workers should hold."""
        return math.ceil(self.partitions / max(1, live))

    def renew(self, held: dict[int, int]) -> set[int]:
        """Extend the leases of `held` ({partition: epoch}); returns those still held (the others were lost)."""
        if not held:
            return set()
        parts = sorted(held)
        rows = self.con.execute(
            "UPDATE partition_leases l SET expires_at = now() + %s * interval '1 second' FROM unnest(%s::int4[], "
            "%s::int8[]) AS v(p, epoch) WHERE l.partition = v.p AND l.epoch = v.epoch AND l.owner = %s "
            "AND l.expires_at > now() RETURNING l.partition",
            [self.lease_s, parts, [held[p] for p in parts], self.owner]).fetchall()
        return {r[0] for r in rows}

    def acquire(self, n: int) -> dict[int, tuple[int, int]]:
        """Take up to `n` free or expired partitions: {partition: (new epoch, committed position)}."""
        if n <= 0:
            return {}
        rows = self.con.execute(
            "UPDATE partition_leases l SET owner = %s, epoch = l.epoch + 1, expires_at = now() + %s * "
            "interval '1 second' WHERE l.partition IN (SELECT partition FROM partition_leases WHERE owner IS NULL "
            "OR expires_at <= now() ORDER BY partition LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING l.partition, l.epoch, l.position", [self.owner, self.lease_s, n]).fetchall()
        return {p: (e, pos) for p, e, pos in rows}

    def release(self, held: dict[int, int]) -> None:
        """Give partitions back (after their last batch committed), for another worker to take at once."""
        if held:
            parts = sorted(held)
            self.con.execute(
                "UPDATE partition_leases l SET owner = NULL, expires_at = NULL FROM unnest(%s::int4[], %s::int8[]) "
                "AS v(p, epoch) WHERE l.partition = v.p AND l.epoch = v.epoch AND l.owner = %s",
                [parts, [held[p] for p in parts], self.owner])

    def leave(self) -> None:
        self.con.execute("DELETE FROM workers WHERE id = %s", [self.owner])

    def positions(self) -> dict[int, int]:
        return dict(self.con.execute("SELECT partition, position FROM partition_leases").fetchall())

    def close(self) -> None:
        self.con.close()
