"""The audit log in the store, for both stores: appended in batches, hash-chained, pruned behind an anchor.

Appending takes the chain's lock (PostgreSQL: an advisory lock, as several processes may write; DuckDB: the store's
lock), numbers the entries after the last one and chains their hashes (`clapas.charter.audit`), and writes them in
one COPY / Arrow insert, devices as keyed pseudonyms under the secret kept in `audit_secret` (made by migration 5,
never shown by the API). Nothing updates an entry; pruning deletes the oldest ones and keeps, in `audit_anchor`,
the id and hash of the last one deleted, then records itself as an entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from clapas.charter.audit import (
    AUDIT_PRUNED,
    COLUMNS,
    GENESIS,
    AuditEntry,
    Verification,
    chain_hash,
    new_secret,
    pseudonym,
    public,
    row_values,
    verify,
)
from clapas.store.tables import StoreTables
from clapas.store.where import where

_AUDIT_LOCK = 0x636C617061_03  # PostgreSQL advisory lock of the chain
ALL_COLS = (*COLUMNS, "prev_hash", "hash")
_COL_LIST = ", ".join(ALL_COLS)
_ARROW = {"id": pa.int64(), "time": pa.timestamp("us", tz="UTC"), "row_count": pa.int64(), "status": pa.int32()}


def _one(cur: Any) -> Any:
    """The first row of a result, read to its end (DuckDB refuses new work on a half-read result)."""
    rows = cur.fetchall()
    return rows[0] if rows else None


def ddl() -> list[str]:
    return [
        """CREATE TABLE audit_log (
            id BIGINT PRIMARY KEY, time TIMESTAMPTZ NOT NULL, event VARCHAR NOT NULL, actor VARCHAR NOT NULL,
            via VARCHAR NOT NULL, role VARCHAR NOT NULL, key_id VARCHAR, client VARCHAR NOT NULL,
            method VARCHAR NOT NULL, route VARCHAR NOT NULL, data_class VARCHAR NOT NULL, row_count BIGINT,
            subjects VARCHAR NOT NULL, status INTEGER, request_id VARCHAR NOT NULL, detail VARCHAR NOT NULL,
            prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL)""",
        "CREATE INDEX audit_log_time ON audit_log (time)",
        "CREATE INDEX audit_log_key ON audit_log (key_id, id)",
        """CREATE TABLE audit_anchor (through_id BIGINT NOT NULL, through_hash VARCHAR NOT NULL,
            pruned_at TIMESTAMPTZ NOT NULL, deleted BIGINT NOT NULL)""",
    ]


def secret_ddl() -> list[str]:
    """Version 5: the secret of the audit log's pseudonyms, one per store, made here (at migration time)."""
    return ["CREATE TABLE audit_secret (secret VARCHAR NOT NULL)",
            f"INSERT INTO audit_secret VALUES ('{new_secret()}')"]


class AuditTables(StoreTables):
    """The audit methods of `Store`, shared by both stores (mixed in before `Store`)."""

    _audit_lock_sql = ""  # PostgreSQL: the advisory lock that serializes the chain across processes
    _audit_key: str | None = None  # the pseudonym secret, read once

    def audit_pseudonym(self, eui: str) -> str:
        """How the audit log names a device (its `subjects`): what to look for when searching it by EUI."""
        if self._audit_key is None:
            self._audit_key = self._rows("SELECT secret FROM audit_secret")[0]["secret"]
        return pseudonym(self._audit_key, eui)

    # writing -----------------------------------------------------------------------------------------
    def append_audit(self, entries: list[AuditEntry]) -> int:
        """Chain and write entries in one transaction; returns the id of the last one (0: nothing written)."""
        if not entries:
            return 0
        with self._alert_tx() as cur:
            return self._append(cur, entries)

    def _append(self, cur: Any, entries: list[AuditEntry]) -> int:
        if self._audit_lock_sql:
            cur.execute(self._audit_lock_sql, [_AUDIT_LOCK])
        last_id, prev = self._chain_end(cur)
        if self._audit_key is None:
            cur.execute("SELECT secret FROM audit_secret")
            self._audit_key = _one(cur)[0]
        rows = []
        for i, e in enumerate(entries, start=last_id + 1):
            r = row_values(i, e, self._audit_key)
            r["prev_hash"] = prev
            r["hash"] = prev = chain_hash(prev, r)
            rows.append(r)
        if hasattr(cur, "copy"):  # psycopg: COPY
            with cur.copy(f"COPY audit_log ({_COL_LIST}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row([r[c] for c in ALL_COLS])
        else:  # DuckDB: one Arrow insert (executemany manages ~1,500 rows/s)
            cur.register("audit_batch", pa.table({c: pa.array([r[c] for r in rows], _ARROW.get(c, pa.string()))
                                                  for c in ALL_COLS}))
            cur.execute(f"INSERT INTO audit_log ({_COL_LIST}) SELECT {_COL_LIST} FROM audit_batch")
            cur.unregister("audit_batch")
        return rows[-1]["id"]

    def _chain_end(self, cur: Any) -> tuple[int, str]:
        cur.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
        r = _one(cur)
        if r is not None:
            return int(r[0]), r[1]
        cur.execute("SELECT through_id, through_hash FROM audit_anchor")
        a = _one(cur)
        return (int(a[0]), a[1]) if a else (0, GENESIS)

    def prune_audit(self, before: datetime, now: datetime | None = None) -> int:
        """Delete the entries older than `before` (up to the first one that is not), keep the chain's anchor,
        and record the pruning as an entry. Returns how many were deleted."""
        now = now or datetime.now(UTC)
        with self._alert_tx() as cur:
            if self._audit_lock_sql:
                cur.execute(self._audit_lock_sql, [_AUDIT_LOCK])
            cur.execute(self._q("SELECT min(id) FROM audit_log WHERE time >= ?"), [before])
            first_kept = _one(cur)[0]
            cur.execute("SELECT max(id) FROM audit_log")
            last = _one(cur)[0]
            if last is None:
                return 0
            through = int(first_kept) - 1 if first_kept is not None else int(last)
            cur.execute(self._q("SELECT hash FROM audit_log WHERE id = ?"), [through])
            r = _one(cur)
            if r is None:  # nothing older than `before`
                return 0
            cur.execute(self._q("SELECT count(*) FROM audit_log WHERE id <= ?"), [through])
            deleted = int(_one(cur)[0])
            cur.execute(self._q("DELETE FROM audit_log WHERE id <= ?"), [through])
            cur.execute("DELETE FROM audit_anchor")
            cur.execute(self._q("INSERT INTO audit_anchor VALUES (?, ?, ?, ?)"), [through, r[0], now, deleted])
            self._append(cur, [AuditEntry(AUDIT_PRUNED, "clapas", time=now, detail={
                "before": before.astimezone(UTC).isoformat(), "through_id": through, "deleted": deleted})])
        return deleted

    # reading -----------------------------------------------------------------------------------------
    def audit_anchor(self) -> tuple[int, str] | None:
        rows = self._rows("SELECT through_id, through_hash FROM audit_anchor")
        return (int(rows[0]["through_id"]), rows[0]["through_hash"]) if rows else None

    def iter_audit(self, *, since: datetime | None = None, until: datetime | None = None,
                   batch_size: int = 5000) -> Iterator[list[dict[str, Any]]]:
        """Stored entries (with their hashes, JSON columns as text) in id order, in chunks."""
        after = 0
        while True:
            cond, params = where(("id > ?", after), ("time >= ?", since), ("time < ?", until))
            chunk = self._rows(self._q(f"SELECT {_COL_LIST} FROM audit_log WHERE {cond} ORDER BY id LIMIT ?"),
                               [*params, batch_size])
            if not chunk:
                return
            yield chunk
            after = chunk[-1]["id"]

    def verify_audit(self) -> Verification:
        """Check the whole chain from its anchor; the first broken entry if any."""
        return verify((r for chunk in self.iter_audit() for r in chunk), self.audit_anchor())

    def audit_entries(self, *, event: str | None = None, actor: str | None = None, key_id: str | None = None,
                      route: str | None = None, status: int | None = None, subject: str | None = None,
                      since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                      offset: int = 0) -> list[dict[str, Any]]:
        """Entries newest first, JSON columns decoded, times in UTC; `subject`: an EUI (searched by its pseudonym)."""
        cond, params = where(("event = ?", event), ("actor = ?", actor), ("key_id = ?", key_id),
                             ("route = ?", route), ("status = ?", status),
                             ("subjects LIKE ?", f'%"{self.audit_pseudonym(subject)}"%' if subject else None),
                             ("time >= ?", since), ("time < ?", until))
        rows = self._rows(self._q(f"SELECT {_COL_LIST} FROM audit_log WHERE {cond} ORDER BY id DESC "
                                  f"LIMIT ? OFFSET ?"), [*params, limit, offset])
        return [public(r) for r in rows]

    def audit_readers(self, eui: str) -> list[dict[str, Any]]:
        """Who read a device (for an erasure's answer): per key (or actor), how many reads, first and last — found
        by the device's pseudonym, as the log keeps no EUI."""
        rows = self._rows(self._q(
            "SELECT key_id, actor, via, count(*) AS reads, min(time) AS first, max(time) AS last FROM audit_log "
            "WHERE event = 'read' AND subjects LIKE ? GROUP BY key_id, actor, via ORDER BY min(time)"),
            [f'%"{self.audit_pseudonym(eui)}"%'])
        return [{**r, "reads": int(r["reads"]), "first": r["first"].astimezone(UTC),
                 "last": r["last"].astimezone(UTC)} for r in rows]
