"""The embedded store: one DuckDB file. Batches go in as Arrow tables (millions of rows/s, never executemany).

DuckDB aggregates millions of rows in tens of milliseconds, so hourly and daily histories are computed from the
raw rows; there are no per-device rollup tables here (PostgreSQL needs them, see `postgres.py`). A zone's hourly
roll-up reads the per-zone rollup (`zone_rollup.py`), rebuilt an hour at a time by the same background step.

`observations` has no index (an ART index would cost most of the insert speed): a query finds its rows through
the zone maps (min/max per row group of 122,880 rows). Rows arrive in time order, so a time range prunes well, but
every row group holds every device: one device's month was a scan of the whole month (82 of 82 row groups of a
9 M-row store, 123 ms; seconds at the city-month). The compaction step (`compact`, a background thread, or called
directly) rewrites each closed UTC day sorted by (device, quantity, time): a device's rows of a day then lie in one
or two row groups, and its 30-day series reads ≈ 30–60 of them (measured on 5.8 M rows: 3 of 48 row groups,
63–74 ms → 2–15 ms). Rows written later into a rewritten day (late uplinks, replay) mark it to be rewritten again.
A device's latest values are kept in `latest_values`, upserted by each batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow as pa

from clapas.model import QUANTITIES, QUANTITY_BY_ID, QUANTITY_BY_KEY, Device, Zone
from clapas.store import health, schema, zone_rollup
from clapas.store.alerts import AlertTables
from clapas.store.audit import AuditTables
from clapas.store.base import Batch, JournalRow, Store
from clapas.store.charter import CharterTables
from clapas.store.detector_state import StateTables, is_delta
from clapas.store.exports import ExportTables
from clapas.store.health import HealthTables
from clapas.store.keys import KeyTables
from clapas.store.ngsi_sandbox import NgsiSandboxTables
from clapas.store.ngsi_subscriptions import SubscriptionTables
from clapas.store.overrides import OverrideTables
from clapas.store.zone_rollup import ZoneRollupTables

_TS = pa.timestamp("us", tz="UTC")
# DuckDB folds its write-ahead log into the file (a checkpoint) when the log reaches this size. Its default, 16 MB,
# is a few seconds of a busy city's journal: checkpoints that often stall the writer long enough for the broker to
# drop messages. Larger means fewer, longer checkpoints and a longer replay of the log after a crash.
CHECKPOINT_THRESHOLD = "256MB"
# the longest bucket (an hour; a local day is 25 h when clocks go back): rows of a bucket starting before `end`
_SPAN = {"1h": timedelta(hours=1), "1d": timedelta(hours=25)}
_DAY = timedelta(days=1)
# a UTC day is rewritten sorted this long after it ended (the uplinks of its last minutes have arrived by then)
COMPACT_AFTER = timedelta(hours=1)
# upsert the latest value of each (device, quantity) of `obs_batch`; an older row never replaces a newer one
_LATEST_UPSERT = ("INSERT INTO latest_values SELECT device_id, quantity_id, max(time), arg_max(value, time) "
                  "FROM {src} GROUP BY 1, 2 ON CONFLICT (device_id, quantity_id) DO UPDATE SET time = excluded.time, "
                  "value = excluded.value WHERE excluded.time >= latest_values.time")
log = logging.getLogger("clapas.store")


class DuckDBStore(AlertTables, HealthTables, KeyTables, AuditTables, CharterTables, StateTables, ExportTables,
                  NgsiSandboxTables, SubscriptionTables, OverrideTables, ZoneRollupTables, Store):
    def __init__(self, url: str, timezone: str = "Europe/Paris", *, compact_interval_s: float | None = 60.0) -> None:
        """`compact_interval_s`: how often the background maintenance step looks for closed days to rewrite sorted
        (None: never; call `compact()` yourself)."""
        self.url = url
        self.timezone = timezone
        path = url.removeprefix("duckdb://")
        path = path.removeprefix("/") if path.startswith("//") else path
        if path not in ("", ":memory:", "/:memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            path = ":memory:"
        self.path = path
        self._con = duckdb.connect(path)
        self._con.execute(f"SET TimeZone = '{timezone}'")
        self._con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        self._lock = threading.Lock()  # one writer or reader at a time on the shared connection
        self._ids: dict[str, int] = {}
        self._compacted: set[datetime] = set()  # UTC day starts rewritten sorted (`compacted_days`)
        self.compact_interval_s = compact_interval_s
        self._maintainer: threading.Thread | None = None
        self._closing = threading.Event()
        self.migrate()

    # plumbing ----------------------------------------------------------------------------------------
    def _cursor(self, timezone: str | None = None) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
        cur.execute(f"SET TimeZone = '{timezone or self.timezone}'")
        return cur

    def _rows(self, sql: str, params: list[Any] | None = None, timezone: str | None = None) -> list[dict[str, Any]]:
        """Rows as dicts; times come back in the city's zone, or in `timezone` (UTC is cheaper to convert)."""
        with self._lock:
            cur = self._cursor(timezone)
            cur.execute(sql, params or [])
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    @contextmanager
    def _alert_tx(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One alert transaction; the store's lock keeps DuckDB's one-active-alert rule (no partial index)."""
        with self._lock:
            cur = self._cursor()
            cur.execute("BEGIN")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def migrate(self) -> None:
        with self._lock:
            con = self._con
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
            current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            for version, statements in schema.duckdb_migrations():
                if version <= current:
                    continue
                con.execute("BEGIN")
                for stmt in statements:
                    con.execute(stmt)
                con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
                con.execute("COMMIT")
            con.executemany(
                "INSERT INTO quantities VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET key = excluded.key, "
                "unit = excluded.unit, label = excluded.label",
                [(q.id, q.key, q.unit, q.label) for q in QUANTITIES],
            )
            self._ids = dict(con.execute("SELECT eui, id FROM devices").fetchall())
            self._compacted = {r[0].astimezone(UTC) for r in con.execute("SELECT day FROM compacted_days").fetchall()}

    # writing -----------------------------------------------------------------------------------------
    def _device_ids(self, cur: duckdb.DuckDBPyConnection, batch: Batch) -> None:
        """Register the batch's unknown devices and refresh the last state of every device seen."""
        # devices of observation/event rows absent from dev_by_eui (should not happen) are registered bare
        new = [e for e in dict.fromkeys(chain(batch.dev_by_eui, batch.o_eui, batch.ev_eui)) if e not in self._ids]
        if new:
            start = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM devices").fetchall()[0][0]
            cur.register("new_devices", pa.table({"id": pa.array(range(start, start + len(new)), pa.int32()),
                                                  "eui": pa.array(new, pa.string())}))
            cur.execute("INSERT INTO devices (id, eui) SELECT id, eui FROM new_devices")
            cur.unregister("new_devices")
            self._ids.update(zip(new, range(start, start + len(new)), strict=True))
        if batch.dev_by_eui:
            seen = pa.table(schema.device_state_columns(batch.dev_by_eui.values(), self._ids))
            cur.register("seen", seen)
            cur.execute(schema.DEVICE_STATE_UPDATE)
            cur.unregister("seen")

    def _insert_rows(self, cur: duckdb.DuckDBPyConnection, batch: Batch) -> None:
        ids = self._ids
        if batch.o_time:
            obs = pa.table({
                "device_id": pa.array([ids[e] for e in batch.o_eui], pa.int32()),
                "quantity_id": pa.array(batch.o_quantity, pa.int16()),
                "time": pa.array(batch.o_time, _TS),
                "value": pa.array(batch.o_value, pa.float64()),
            })
            cur.register("obs_batch", obs)
            cur.execute("INSERT INTO observations SELECT device_id, quantity_id, time, value FROM obs_batch")
            cur.execute(_LATEST_UPSERT.format(src="obs_batch"))
            cur.execute(zone_rollup.mark_pending("obs_batch"))
            cur.unregister("obs_batch")
            self._reopen_days(cur, batch.o_time)
        if batch.ev_time:
            ev = pa.table({
                "time": pa.array(batch.ev_time, _TS),
                "device_id": pa.array([ids[e] for e in batch.ev_eui], pa.int32()),
                "event": pa.array(batch.ev_event, pa.string()),
                "data": pa.array(batch.ev_data, pa.string()),
            })
            cur.register("ev_batch", ev)
            cur.execute("INSERT INTO device_events SELECT time, device_id, event, data::JSON FROM ev_batch")
            cur.unregister("ev_batch")

    def _reload_caches(self) -> None:
        """What a rolled-back batch may have left wrong in memory: device ids, days already compacted."""
        self._ids = dict(self._con.execute("SELECT eui, id FROM devices").fetchall())
        self._compacted = {r[0].astimezone(UTC) for r in self._con.execute("SELECT day FROM compacted_days").fetchall()}

    @contextmanager
    def _batch_transaction(self, batch: Batch) -> Iterator[duckdb.DuckDBPyConnection]:
        """One batch, all or nothing: the caller's rows, then the detectors' state and the caller's extra rows
        (`batch.in_transaction`: a partition's position), in one transaction."""
        cur = self._con.cursor()
        cur.execute("BEGIN")
        try:
            yield cur
            self._put_health(cur, batch)
            self._write_detector_state(cur, batch.detector_state)
            if batch.in_transaction is not None:
                batch.in_transaction(cur)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            self._reload_caches()
            raise

    def write(self, batch: Batch) -> None:
        if not len(batch):
            return
        with self._lock, self._batch_transaction(batch) as cur:
            self._device_ids(cur, batch)
            cur.register("j_batch", pa.table(schema.journal_columns(batch)))
            cur.execute(f"INSERT INTO journal ({schema.JOURNAL_COLS}) SELECT {schema.JOURNAL_COLS} FROM j_batch")
            self._tally_journal(cur, batch.status_counts())
            cur.execute(schema.DEVICE_HEARD_UPDATE)
            cur.unregister("j_batch")
            self._insert_rows(cur, batch)
        self._start_maintainer()

    def replace(self, batch: Batch) -> None:
        if not len(batch):
            return
        with self._lock, self._batch_transaction(batch) as cur:
            self._device_ids(cur, batch)
            j = pa.table({**schema.journal_columns(batch), "id": pa.array(batch.j_id, pa.int64())})
            cur.register("j_batch", j)
            # the rows of a replayed uplink are those of its device at its time, the new one and the one
            # journaled before (a fixed parser may read another time); its events too, or they would double
            keys = ("(SELECT DISTINCT d.id AS device_id, k.time FROM (SELECT dev_eui, time FROM j_batch UNION "
                    "SELECT j.dev_eui, j.time FROM journal j JOIN j_batch b ON b.id = j.id) k "
                    "JOIN devices d ON d.eui = k.dev_eui WHERE k.time IS NOT NULL)")
            cur.execute(f"CREATE OR REPLACE TEMP TABLE replay_keys AS {keys}")
            cur.execute(zone_rollup.mark_pending("replay_keys"))  # the hours of the rows deleted below
            cur.execute("DELETE FROM observations o USING replay_keys r "
                        "WHERE o.device_id = r.device_id AND o.time = r.time")
            cur.execute("DELETE FROM device_events e USING replay_keys r "
                        "WHERE e.device_id = r.device_id AND e.time = r.time")
            # latest values that were among the rows deleted: recomputed below if the batch does not restore them
            cur.execute("CREATE OR REPLACE TEMP TABLE lost_latest AS SELECT l.device_id, l.quantity_id "
                        "FROM latest_values l SEMI JOIN replay_keys r ON l.device_id = r.device_id "
                        "AND l.time = r.time")
            cur.execute("DELETE FROM latest_values l USING replay_keys r "
                        "WHERE l.device_id = r.device_id AND l.time = r.time")
            moved = cur.execute("SELECT j.status, b.status FROM journal j JOIN j_batch b ON b.id = j.id "
                                "WHERE j.status <> b.status").fetchall()
            self._tally_journal(cur, schema.replay_status_delta(moved))
            cur.execute(
                "UPDATE journal SET status = j.status, error = j.error, dev_eui = j.dev_eui, time = j.time "
                "FROM j_batch j WHERE journal.id = j.id"
            )
            cur.unregister("j_batch")
            self._insert_rows(cur, batch)
            self._restore_latest(cur, "lost_latest")  # (deleting rows keeps a rewritten day sorted)
            cur.execute("DROP TABLE replay_keys")
            cur.execute("DROP TABLE lost_latest")

    @staticmethod
    def _tally_journal(cur: duckdb.DuckDBPyConnection, delta: dict[str, int]) -> None:
        """Journal rows added (or re-labelled) by status, for `counts` (migration 7: never a scan of the journal)."""
        rows = schema.journal_tally_rows(delta)
        if rows:
            cur.executemany("INSERT INTO journal_tally VALUES (?, ?)", rows)  # at most three rows

    @staticmethod
    def _restore_latest(cur: duckdb.DuckDBPyConnection, pairs: str) -> None:
        """Latest values of the (device_id, quantity_id) `pairs` that have none now, from the rows left (a scan of
        those devices' rows: only after a deletion reached a device's newest row)."""
        cur.execute(_LATEST_UPSERT.format(
            src=f"(SELECT o.* FROM observations o SEMI JOIN (SELECT p.device_id, p.quantity_id FROM {pairs} p "
                "ANTI JOIN latest_values l ON l.device_id = p.device_id AND l.quantity_id = p.quantity_id) m "
                "ON o.device_id = m.device_id AND o.quantity_id = m.quantity_id)"))

    def _reopen_days(self, cur: duckdb.DuckDBPyConnection, times: Sequence[datetime]) -> None:
        """Rows written into days already rewritten sorted: those days are rewritten again by the next step."""
        if not self._compacted or not times:
            return
        last = max(self._compacted)
        if min(times).astimezone(UTC) >= last + _DAY:  # the usual batch: today's rows
            return
        days = {_utc_day(t) for t in times} & self._compacted
        if days:
            cur.execute("DELETE FROM compacted_days WHERE day IN (SELECT unnest(CAST(? AS TIMESTAMPTZ[])))",
                        [sorted(days)])
            self._compacted -= days

    # maintenance -------------------------------------------------------------------------------------
    def compact(self, settle_s: float | None = None, max_days: int | None = None) -> int:
        """Rewrite each closed UTC day not yet rewritten, sorted by (device, quantity, time); returns how many
        days were. A day is closed `settle_s` seconds after it ended (default `COMPACT_AFTER`; 0: as soon as it
        ended). Each day is one transaction holding the store (≈ 15 M rows, a few seconds, at 80,000 devices): reads
        and the writer wait for it, the pipeline spools meanwhile. Deleted row groups are freed at the next
        checkpoint and their blocks reused, so the file grows by at most the day being rewritten. The per-zone
        hourly rollup's pending hours are rebuilt first (`roll_zones`, with the same `settle_s`)."""
        settle = COMPACT_AFTER if settle_s is None else timedelta(seconds=settle_s)
        self.roll_zones(settle_s)
        self.fold_uplink_times()
        done = 0
        with self._lock:
            self._fold_tally()
            first = self._con.execute("SELECT min(time) FROM observations").fetchone()[0]
        if first is None:
            return 0
        day, limit = _utc_day(first), datetime.now(UTC) - settle
        while day + _DAY <= limit and (max_days is None or done < max_days):
            if day not in self._compacted and not self._closing.is_set():
                self._compact_day(day)
                done += 1
            day += _DAY
        return done

    def fold_uplink_times(self) -> None:
        """The times heard since the last step merged into each device's kept times (`health.py`), one
        transaction (≈ 0.2 s for 10,000 devices)."""
        with self._lock:
            cur = self._cursor("UTC")
            cur.execute("BEGIN")
            try:
                self._fold_uplink_times(cur, health.DUCKDB_FOLD)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def roll_zones(self, settle_s: float | None = None) -> int:
        """Rebuild the per-zone hourly rollup of each pending hour no batch touched for `settle_s` seconds (default
        `zone_rollup.SETTLE`), an hour per transaction (tens of ms at 80,000 devices); returns how many."""
        settle = zone_rollup.SETTLE if settle_s is None else timedelta(seconds=settle_s)
        with self._lock:
            hours = [r[0] for r in self._con.execute(zone_rollup.SETTLED,
                                                     [datetime.now(UTC) - settle]).fetchall()]
        for bucket in hours:
            if self._closing.is_set():
                break
            with self._lock:
                cur = self._cursor("UTC")
                cur.execute("BEGIN")
                try:
                    zone_rollup.rebuild(cur, str, bucket)
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
        return len(hours)

    def _fold_tally(self) -> None:
        """The journal tally's rows (up to three a batch) summed into one per status (call with `_lock` held)."""
        con = self._con
        con.execute("BEGIN")
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE tally AS SELECT status, sum(n) AS n FROM journal_tally "
                        "GROUP BY 1")
            con.execute("DELETE FROM journal_tally")
            con.execute("INSERT INTO journal_tally SELECT status, n FROM tally WHERE n <> 0")
            con.execute("DROP TABLE tally")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _compact_day(self, day: datetime) -> None:
        with self._lock:
            cur = self._cursor("UTC")
            cur.execute("BEGIN")
            try:
                cond, args = "time >= ? AND time < ?", [day, day + _DAY]
                n = cur.execute(f"SELECT count(*) FROM observations WHERE {cond}", args).fetchone()[0]
                if n:
                    cur.execute(f"CREATE OR REPLACE TEMP TABLE day_rows AS SELECT * FROM observations WHERE {cond} "
                                "ORDER BY device_id, quantity_id, time", args)
                    cur.execute(f"DELETE FROM observations WHERE {cond}", args)
                    cur.execute("INSERT INTO observations SELECT * FROM day_rows")
                    cur.execute("DROP TABLE day_rows")
                cur.execute("INSERT INTO compacted_days VALUES (?) ON CONFLICT DO NOTHING", [day])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._compacted.add(day)
            if n:
                # until a checkpoint, the deleted row groups keep their zone maps and are scanned still
                try:
                    self._con.execute("CHECKPOINT")
                except duckdb.Error as e:  # another transaction is open: the next automatic checkpoint does it
                    log.info("no checkpoint after rewriting %s: %s", day.date(), e)

    def _start_maintainer(self) -> None:
        if self.compact_interval_s is None or self._maintainer is not None or self.path == ":memory:":
            return
        self._maintainer = threading.Thread(target=self._maintain_loop, name="clapas-compact", daemon=True)
        self._maintainer.start()

    def _maintain_loop(self) -> None:
        """A day at a time, resting 3x as long as each took, so that ingest keeps most of the machine."""
        interval = self.compact_interval_s or 60.0
        while not self._closing.wait(interval):
            try:
                t0 = time.monotonic()
                while self.compact(max_days=1) and not self._closing.wait(3 * (time.monotonic() - t0)):
                    t0 = time.monotonic()
            except Exception:
                log.exception("compaction step failed; retrying in %.0f s", interval)

    def _stage_state(self, cur: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str, bytes | None]]) -> None:
        det, subj, ver, state = zip(*rows, strict=True)
        cur.register("state_stage", pa.table({"detector": pa.array(det, pa.string()),
                                              "subject": pa.array(subj, pa.string()),
                                              "version": pa.array(ver, pa.string()),
                                              "state": pa.array(state, pa.binary()),
                                              "delta": pa.array([is_delta(x) for x in state], pa.bool_())}))

    def _unstage_state(self, cur: duckdb.DuckDBPyConnection) -> None:
        cur.unregister("state_stage")

    def iter_journal(self, *, statuses=("stored", "quarantined"), dev_eui=None, since=None, until=None,
                     batch_size=5000) -> Iterator[list[JournalRow]]:
        where, params = schema.journal_filter(statuses, dev_eui, since, until)
        last = 0
        while True:
            with self._lock:
                rows = self._cursor().execute(
                    f"SELECT id, received_at, source, event, fmt, topic, raw, status FROM journal "
                    f"WHERE id > ? AND {where} ORDER BY id LIMIT ?", [last, *params, batch_size]
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [JournalRow(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]), r[7]) for r in rows]

    def recent_dedup_keys(self, limit: int) -> list[str]:
        with self._lock:
            rows = self._con.execute(
                "SELECT dedup_key FROM journal WHERE dedup_key IS NOT NULL ORDER BY id DESC LIMIT ?", [limit]
            ).fetchall()
        return [r[0] for r in rows]

    # registry ----------------------------------------------------------------------------------------
    def upsert_devices(self, devices: list[Device]) -> int:
        unique = list({d.eui: d for d in devices}.values())  # the last entry of an EUI wins, as in a file
        if not unique:
            return 0
        with self._lock:
            cur = self._con.cursor()
            cur.execute("BEGIN")
            try:
                start = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM devices").fetchall()[0][0]
                rows = [schema.registry_row(start + i, d) for i, d in enumerate(unique)]
                cur.register("reg", _registry_table(rows))  # executemany would take a minute for 80 k devices
                cols = ", ".join(schema.REGISTRY_COLS)
                cur.execute(f"INSERT INTO devices (id, {cols}) SELECT id, {cols.replace('tags', 'tags::JSON')} "
                            f"FROM reg {schema.DEVICE_UPSERT_SET}")
                cur.unregister("reg")
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                self._ids = dict(self._con.execute("SELECT eui, id FROM devices").fetchall())
        return len(unique)

    def devices(self, *, kind=None, zone=None, limit=1000, offset=0, euis=None, groups=None) -> list[dict[str, Any]]:
        where, params = schema.device_filter(kind, zone, tuple(euis) if euis is not None else None, groups)
        # times in UTC: the same instants, converted faster than in the city's zone (the API serves UTC anyway)
        rows = self._rows(f"{schema.DEVICE_SELECT} WHERE {where} ORDER BY d.eui LIMIT ? OFFSET ?",
                          [*params, limit, offset], timezone="UTC")
        return [schema.device_out(r) for r in rows]

    def device(self, eui: str) -> dict[str, Any] | None:
        rows = self._rows(f"{schema.DEVICE_SELECT} WHERE d.eui = ?", [eui])
        return schema.device_out(rows[0]) if rows else None

    def upsert_zones(self, zones: list[Zone]) -> int:
        with self._lock:
            self._con.executemany(schema.ZONE_UPSERT, [schema.zone_row(z) for z in zones])
        return len(zones)

    def zones(self) -> list[dict[str, Any]]:
        return [schema.zone_out(r) for r in self._rows(schema.ZONE_SELECT)]

    # observations ------------------------------------------------------------------------------------
    def latest_many(self, euis: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        if not euis:
            return {}
        return schema.latest_by_eui(self._rows(
            "SELECT d.eui, l.quantity_id, l.time, l.value FROM latest_values l JOIN devices d ON d.id = l.device_id "
            "WHERE d.eui IN (SELECT unnest(CAST(? AS VARCHAR[]))) ORDER BY d.eui, l.quantity_id", [list(euis)]))

    def observations(self, eui, quantity, start, end, resolution="raw", limit=100_000) -> list[dict[str, Any]]:
        q = QUANTITY_BY_KEY[quantity]
        # the device's id as a constant, not a join: zone maps then prune the row groups of other devices
        found = self._rows("SELECT id FROM devices WHERE eui = ?", [eui])
        if not found:
            return []
        device_id = found[0]["id"]
        base = "FROM observations o WHERE o.device_id = ? AND o.quantity_id = ? AND o.time >= ? AND o.time < ?"
        if resolution == "raw":
            return self._rows(f"SELECT o.time, o.value {base} ORDER BY o.time LIMIT ?",
                              [device_id, q.id, start, end, limit])
        if resolution not in _SPAN:
            raise ValueError(f"unknown resolution {resolution!r}")
        # the rule both stores follow: the buckets whose start is in [start, end), whole (PostgreSQL reads
        # them from its rollups); hours are UTC hours, days the city's days
        bucket = schema.bucket_sql(resolution, self.timezone, "o.time")
        return self._rows(
            f"SELECT time, mean, min, max, count FROM (SELECT {bucket} AS time, avg(o.value) AS mean, "
            f"min(o.value) AS min, max(o.value) AS max, count(*) AS count {base} GROUP BY 1) "
            "WHERE time >= ? AND time < ? ORDER BY time LIMIT ?",
            [device_id, q.id, start, end + _SPAN[resolution], start, end, limit],
        )

    def series(self, quantity, start, end, *, euis=None, kind=None, resolution="raw") -> list[dict[str, Any]]:
        # reports read tens of thousands of rows: times in UTC (the same instants) convert faster than in the city's
        # zone; buckets are still the city's (`bucket_sql` names its zone)
        if euis is not None and not euis:
            return []
        q = QUANTITY_BY_KEY[quantity]
        cond, params = schema.series_filter(tuple(euis) if euis is not None else None, kind)
        base = (f"FROM observations o JOIN devices d ON d.id = o.device_id "
                f"WHERE o.quantity_id = ? AND o.time >= ? AND o.time < ? AND {cond}")
        if resolution == "raw":
            return self._rows(f"SELECT d.eui, o.time, o.value {base} ORDER BY d.eui, o.time",
                              [q.id, start, end, *params], timezone="UTC")
        if resolution not in _SPAN:
            raise ValueError(f"unknown resolution {resolution!r}")
        bucket = schema.bucket_sql(resolution, self.timezone, "o.time")
        return self._rows(
            f"SELECT eui, time, mean, min, max, count FROM (SELECT d.eui, {bucket} AS time, avg(o.value) AS mean, "
            f"min(o.value) AS min, max(o.value) AS max, count(*) AS count {base} GROUP BY 1, 2) "
            "WHERE time >= ? AND time < ? ORDER BY eui, time",
            [q.id, start, end + _SPAN[resolution], *params, start, end], timezone="UTC",
        )

    def group_series(self, quantity, start, end, *, euis=None, kind=None, zone=None,
                     resolution="1h") -> list[dict[str, Any]]:
        if euis is not None and not euis:
            return []
        if resolution not in _SPAN:
            raise ValueError(f"unknown resolution {resolution!r}")
        q = QUANTITY_BY_KEY[quantity]
        cond, params = schema.series_filter(tuple(euis) if euis is not None else None, kind, zone)
        bucket = schema.bucket_sql(resolution, self.timezone, "o.time")
        return self._rows(
            f"SELECT time, devices, count, mean, min, max FROM (SELECT {bucket} AS time, "
            "count(DISTINCT o.device_id) AS devices, count(*) AS count, avg(o.value) AS mean, min(o.value) AS min, "
            "max(o.value) AS max FROM observations o WHERE o.quantity_id = ? AND o.time >= ? AND o.time < ? "
            f"AND o.device_id IN (SELECT d.id FROM devices d WHERE {cond}) GROUP BY 1) "
            "WHERE time >= ? AND time < ? ORDER BY time",
            [q.id, start, end + _SPAN[resolution], *params, start, end], timezone="UTC")

    def quantities_in_use(self) -> dict[str, int]:
        rows = self._rows("SELECT quantity_id, count(*) AS n FROM latest_values GROUP BY 1")
        return {QUANTITY_BY_ID[r["quantity_id"]].key: r["n"] for r in rows}

    # journal -----------------------------------------------------------------------------------------
    def uplinks(self, *, status=None, dev_eui=None, limit=100, offset=0) -> list[dict[str, Any]]:
        where, params = schema.journal_filter((status,) if status else (), dev_eui, None, None)
        rows = self._rows(
            f"SELECT {schema.JOURNAL_OUT_COLS} FROM journal WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [schema.journal_out(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._rows(schema.JOURNAL_COUNTS)  # the tally: never a scan of the journal
        out = {"stored": 0, "quarantined": 0, "duplicate": 0}
        out.update({r["status"]: r["n"] for r in rows})
        out["observations"] = self._rows("SELECT count(*) AS n FROM observations")[0]["n"]
        out["devices"] = self._rows("SELECT count(*) AS n FROM devices")[0]["n"]
        return out

    def device_events(self, eui: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT e.time, e.event, e.data::VARCHAR AS data FROM device_events e JOIN devices d "
            "ON d.id = e.device_id WHERE d.eui = ? ORDER BY e.time DESC LIMIT ?", [eui, limit]
        )
        return [{**r, "data": msgspec.json.decode(r["data"]) if r["data"] else None} for r in rows]

    def close(self) -> None:
        self._closing.set()
        if self._maintainer is not None:
            self._maintainer.join()
        with self._lock:
            self._con.close()

    def sql(self, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        """Read-only access for tools and tests."""
        return self._rows(query, params)


def _utc_day(t: datetime) -> datetime:
    u = t.astimezone(UTC)
    return u.replace(hour=0, minute=0, second=0, microsecond=0)


def _registry_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    """Registry devices (`schema.registry_row` tuples) as an Arrow table."""
    cols = list(zip(*rows, strict=True))
    names = ("id", *schema.REGISTRY_COLS)
    types = (pa.int32(), *[pa.string()] * 6, pa.float64(), pa.float64(), pa.string(), pa.int32(), pa.string(),
             pa.string(), pa.string())
    return pa.table({n: pa.array(c, t) for n, c, t in zip(names, cols, types, strict=True)})


__all__ = ["DuckDBStore", "datetime"]
