"""Detector state in the store (`clapas.detectors.state`), for both stores: one row per (detector, subject).

A batch's rows are written in the batch's own transaction (`_write_detector_state`, called by each store's
`write`), with the alert changes the batch caused, so that a restart finds the detectors exactly where the alert
table is. Each store stages the rows its fastest way (`_stage_state`: an Arrow table in DuckDB, COPY in
PostgreSQL); the upsert and the delete are shared.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clapas.detectors.state import Row, StateWrite
    from clapas.store.alerts import AlertChange, Route

_UPSERT = ("INSERT INTO detector_state (detector, subject, version, state) SELECT detector, subject, version, state "
           "FROM state_stage WHERE state IS NOT NULL ON CONFLICT (detector, subject) DO UPDATE SET "
           "version = excluded.version, state = excluded.state")
_DELETE = ("DELETE FROM detector_state WHERE EXISTS (SELECT 1 FROM state_stage s WHERE s.state IS NULL AND "
           "s.detector = detector_state.detector AND s.subject = detector_state.subject)")


def ddl(blob: str) -> list[str]:
    return [f"""CREATE TABLE detector_state (detector VARCHAR NOT NULL, subject VARCHAR NOT NULL,
            version VARCHAR NOT NULL, state {blob} NOT NULL, PRIMARY KEY (detector, subject))"""]


class StateTables:
    """The detector-state methods of `Store` (mixed in with `AlertTables`)."""

    def _stage_state(self, cur: Any, rows: list[Row]) -> None:  # pragma: no cover - abstract
        """Put `rows` into the transaction's `state_stage` table."""
        raise NotImplementedError

    def _unstage_state(self, cur: Any) -> None:
        """Empty `state_stage` (PostgreSQL's empties itself at commit)."""

    def _put_state(self, cur: Any, rows: list[Row]) -> None:
        if not rows:
            return
        self._stage_state(cur, rows)
        cur.execute(_UPSERT)
        if any(r[3] is None for r in rows):
            cur.execute(_DELETE)
        self._unstage_state(cur)

    def _write_detector_state(self, cur: Any, w: StateWrite | None) -> None:
        """A batch's detector state and alert changes, inside the batch's transaction."""
        if w is None:
            return
        if w.alerts:
            self._apply_alert_changes_in(cur, w.alerts, w.route, datetime.now(UTC))  # type: ignore[attr-defined]
        self._put_state(cur, w.rows)

    def detector_state(self) -> list[tuple[str, str, str, bytes]]:
        rows = self._rows("SELECT detector, subject, version, state FROM detector_state")  # type: ignore[attr-defined]
        return [(r["detector"], r["subject"], r["version"], bytes(r["state"])) for r in rows]

    def replace_detector_state(self, rows: list[Row], alerts: list[AlertChange] = (),  # type: ignore[assignment]
                               route: Route | None = None) -> None:
        with self._alert_tx() as cur:  # type: ignore[attr-defined]
            cur.execute("DELETE FROM detector_state")
            if alerts:
                self._apply_alert_changes_in(cur, list(alerts), route, datetime.now(UTC))  # type: ignore[attr-defined]
            self._put_state(cur, [r for r in rows if r[3] is not None])
