"""Streaming reads for the open-data exports, the same for both stores: observations in bounded chunks.

Why not one query: a month of a city is millions of rows, and an export must never hold them all (issue 11), nor
hold the store's connection lock for the minutes a slow client takes to download them (the writer waits on it).
So rows come in chunks of at most `chunk_rows`, each its own short query, in (time, EUI, quantity) order with a
keyset on that triple (no OFFSET: each chunk costs the same wherever it starts). Each query also bounds time to a
window after the keyset, so that DuckDB's zone maps (rows arrive in time order) and PostgreSQL's BRIN index on time
read only that window; the window grows while it holds few rows and shrinks when it holds many.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from clapas.store.tables import StoreTables

_TEXTS = "(SELECT unnest(CAST(? AS VARCHAR[])))"
_QIDS = "(SELECT unnest(CAST(? AS SMALLINT[])))"
MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=31)
FIRST_WINDOW = timedelta(hours=6)


class ExportTables(StoreTables):
    """`export_observations` of both stores."""

    url: str

    def _export_rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        """One chunk's rows; DuckDB hands times back in UTC (cheaper than the city's zone, the same instants)."""
        if self.url.startswith("duckdb"):
            return self._rows(sql, params, timezone="UTC")  # type: ignore[call-arg]
        return self._rows(self._q(sql), params)

    def export_observations(self, euis: Sequence[str], start: datetime, end: datetime, *,
                            quantity_ids: Sequence[int] | None = None,
                            chunk_rows: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """Observations of these devices (and quantities; None: all) in [start, end), in chunks of at most
        `chunk_rows` rows {time, eui, quantity_id, value}, ordered by time, device EUI, quantity (the same order in
        both stores). Each chunk is one query: nothing is held between chunks but the keyset, so a writer may commit
        between two of them."""
        if not euis or start >= end or chunk_rows < 1:
            return
        quantities = "" if quantity_ids is None else f" AND o.quantity_id IN {_QIDS}"
        base = ("SELECT o.time, d.eui, o.quantity_id, o.value FROM observations o "
                f"JOIN devices d ON d.id = o.device_id WHERE o.device_id IN (SELECT id FROM devices WHERE eui IN "
                f"{_TEXTS}){quantities} AND o.time < ? AND ")
        fixed: list[Any] = [list(euis), *([list(quantity_ids)] if quantity_ids is not None else [])]
        window, lo = FIRST_WINDOW, start
        while lo < end:
            hi = min(end, lo + window)
            key: tuple[Any, ...] | None = None
            in_window = 0
            while True:
                if key is None:
                    cond, params = "o.time >= ?", [lo]
                else:
                    cond, params = "(o.time, d.eui, o.quantity_id) > (?, ?, ?)", list(key)
                rows = self._export_rows(
                    f"{base}{cond} ORDER BY o.time, d.eui, o.quantity_id LIMIT ?",
                    [*fixed, hi, *params, chunk_rows])
                if rows:
                    last = rows[-1]
                    key = (last["time"], last["eui"], last["quantity_id"])
                    in_window += len(rows)
                    yield rows
                if len(rows) < chunk_rows:
                    break
            lo = hi
            # about two chunks per window: fewer queries over sparse data, bounded sorts over dense data
            if in_window < chunk_rows // 2:
                window = min(window * 2, MAX_WINDOW)
            elif in_window > 4 * chunk_rows:
                window = max(window / 2, MIN_WINDOW)

    def observation_extent(self) -> dict[str, tuple[datetime, datetime]]:
        """Per device kind, the first and last observation time: the catalogue's temporal coverage. DuckDB scans
        its time column (zone maps, fast); PostgreSQL probes its primary key for each device's quantity."""
        if self.url.startswith("duckdb"):
            sql = ("SELECT coalesce(d.kind, '') AS kind, min(o.time) AS first, max(o.time) AS last "
                   "FROM observations o JOIN devices d ON d.id = o.device_id GROUP BY 1")
            rows = self._rows(sql, [], timezone="UTC")  # type: ignore[call-arg]
        else:
            rows = self._rows(
                "SELECT coalesce(d.kind, '') AS kind, min(f.t) AS first, max(l.t) AS last FROM device_quantities dq "
                "JOIN devices d ON d.id = dq.device_id CROSS JOIN LATERAL (SELECT o.time AS t FROM observations o "
                "WHERE o.device_id = dq.device_id AND o.quantity_id = dq.quantity_id ORDER BY o.time LIMIT 1) f "
                "CROSS JOIN LATERAL (SELECT o.time AS t FROM observations o WHERE o.device_id = dq.device_id "
                "AND o.quantity_id = dq.quantity_id ORDER BY o.time DESC LIMIT 1) l GROUP BY 1", [])
        return {r["kind"]: (r["first"], r["last"]) for r in rows if r["first"] is not None}
