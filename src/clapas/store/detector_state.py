"""Detector state in the store (`clapas.detectors.state`), for both stores.

A batch's rows are written in the batch's own transaction (`_write_detector_state`, called by each store's
`write`), with the alert changes the batch caused, so that a restart finds the detectors exactly where the alert
table is. The table is a log: each batch appends the subjects it changed under the runner's batch number (`seq`)
and a subject's state is its newest row (a NULL state: forgotten). Appending costs ≈ 1 µs a row where an upsert
on a primary key cost ≈ 20 µs in DuckDB — a busy city changes every meter it hears, every batch. Every
`COMPACT_EVERY` batches the same transaction deletes the rows that newer ones replace. Each store stages the rows
its fastest way (`_stage_state`: an Arrow table in DuckDB, COPY in PostgreSQL).

Version 16: a row may be a delta (`delta`, its state starts with `state_codec.DELTA`: what a subject's windows
gained and lost since its previous row, see `clapas.detectors.state`). A subject's state is then its newest whole
row and the deltas after it, which `detector_state` returns in batch order for the keeper to fold; compaction
deletes the rows before each subject's newest whole row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clapas.detectors.state import Row, StateWrite
    from clapas.store.alerts import AlertChange, Route

# design choice: superseded rows are deleted every this many batches (the log then holds at most this many
# versions of a meter heard once a batch; a compaction reads the table once)
COMPACT_EVERY = 200

DELTA = b"\xc1"  # `clapas.detectors.state_codec.DELTA`: the first byte of a delta row's state

_APPEND = ("INSERT INTO detector_state (detector, subject, seq, version, state, delta) "
           "SELECT detector, subject, ?, version, state, delta FROM state_stage")
# rows before a newer whole row of the same subject, then the forgotten subjects' last rows (no delta follows a
# forgotten subject: its next row is whole)
_COMPACT = ["DELETE FROM detector_state WHERE EXISTS (SELECT 1 FROM detector_state n WHERE "
            "n.detector = detector_state.detector AND n.subject = detector_state.subject "
            "AND n.seq > detector_state.seq AND NOT n.delta)",
            "DELETE FROM detector_state WHERE state IS NULL"]
# each subject's newest whole row and the deltas after it, in batch order
_LATEST = ("SELECT detector, subject, version, state FROM (SELECT detector, subject, seq, version, state, "
           "max(CASE WHEN delta THEN NULL ELSE seq END) OVER (PARTITION BY detector, subject) AS whole "
           "FROM detector_state) t WHERE seq >= whole AND state IS NOT NULL "
           "ORDER BY detector, subject, seq")


def ddl(blob: str) -> list[str]:
    return [f"""CREATE TABLE detector_state (detector VARCHAR NOT NULL, subject VARCHAR NOT NULL, seq BIGINT NOT NULL,
            version VARCHAR NOT NULL, state {blob})"""]


def delta_ddl() -> list[str]:
    """Version 16 (issue 9): delta rows (every row saved before is whole)."""
    return ["ALTER TABLE detector_state ADD COLUMN delta BOOLEAN DEFAULT false",
            "UPDATE detector_state SET delta = false"]


def is_delta(state: bytes | None) -> bool:
    return state is not None and state[:1] == DELTA


class StateTables:
    """The detector-state methods of `Store` (mixed in with `AlertTables`)."""

    def _stage_state(self, cur: Any, rows: list[Row]) -> None:  # pragma: no cover - abstract
        """Put `rows` into the transaction's `state_stage` table, with their `delta` flag (`is_delta`)."""
        raise NotImplementedError

    def _unstage_state(self, cur: Any) -> None:
        """Empty `state_stage` (PostgreSQL's empties itself at commit)."""

    def _put_state(self, cur: Any, rows: list[Row], seq: int) -> None:
        if rows:
            self._stage_state(cur, rows)
            self._x(cur, _APPEND, [seq])  # type: ignore[attr-defined]
            self._unstage_state(cur)
        if seq % COMPACT_EVERY == 0:
            for stmt in _COMPACT:
                cur.execute(stmt)

    def _write_detector_state(self, cur: Any, w: StateWrite | None) -> None:
        """A batch's detector state and alert changes, inside the batch's transaction."""
        if w is None:
            return
        if w.alerts:
            self._apply_alert_changes_in(cur, w.alerts, w.route, datetime.now(UTC))  # type: ignore[attr-defined]
        if w.flags:
            self._put_flags(cur, w.flags)
        self._put_state(cur, w.rows, w.seq)

    def _put_flags(self, cur: Any, flags: list[tuple[float, str, int, str]]) -> None:
        """The batch's data-quality flags (few: only flagged readings), beside the observations."""
        cur.executemany(self._q("INSERT INTO observation_flags (dev_eui, quantity_id, time, flag) "  # type: ignore[attr-defined]
                                "VALUES (?, ?, ?, ?)"),
                        [(eui, qid, datetime.fromtimestamp(t, UTC), flag) for t, eui, qid, flag in flags])

    def observation_flags(self, eui: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Flagged readings, newest first: {eui, quantity_id, time, flag}."""
        cond, params = ("WHERE dev_eui = ?", [eui]) if eui else ("", [])
        rows = self._rows(self._q(f"SELECT dev_eui AS eui, quantity_id, time, flag FROM observation_flags {cond} "  # type: ignore[attr-defined]
                                  "ORDER BY time DESC LIMIT ?"), [*params, limit])
        return [{**r, "time": r["time"].astimezone(UTC)} for r in rows]

    def journaled(self, key: str, recent: int = 1_000_000) -> bool:
        """Whether a message of this dedupe key is among the last `recent` journal rows. For the writer, after a
        write whose outcome it could not hear (the connection dropped around the COMMIT): committed or not?"""
        return bool(self._rows(self._q(  # type: ignore[attr-defined]
            "SELECT 1 AS x FROM journal WHERE id > (SELECT coalesce(max(id), 0) FROM journal) - ? "
            "AND dedup_key = ? LIMIT 1"), [recent, key]))

    def detector_state(self) -> list[tuple[str, str, str, bytes]]:
        """Each subject's newest state."""
        rows = self._rows(_LATEST)  # type: ignore[attr-defined]
        return [(r["detector"], r["subject"], r["version"], bytes(r["state"])) for r in rows]

    def replace_detector_state(self, rows: list[Row], alerts: list[AlertChange] = (),  # type: ignore[assignment]
                               route: Route | None = None) -> None:
        with self._alert_tx() as cur:  # type: ignore[attr-defined]
            cur.execute("DELETE FROM detector_state")
            if alerts:
                self._apply_alert_changes_in(cur, list(alerts), route, datetime.now(UTC))  # type: ignore[attr-defined]
            self._put_state(cur, [r for r in rows if r[3] is not None], 1)
