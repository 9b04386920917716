"""The production store: PostgreSQL through psycopg 3.

Batches go in by binary COPY into temporary staging tables, then one `INSERT … SELECT … ON CONFLICT DO NOTHING`
(executemany is ~50x slower). Observations are partitioned by month (created on demand) with the primary key
(device, quantity, time), so a repeated row is ignored. PostgreSQL takes seconds to average millions of rows, so
history at 1h/1d reads hourly (UTC) and daily (city time zone) rollup tables.

Rollups are rebuilt asynchronously, not per batch. Measured on 2 vCPUs, a 5,000-uplink batch (20,000 rows) cost
≈ 450 ms when each batch also upserted its hourly and daily rollup rows: 90–135 ms for the primary-key insert and
≈ 100 ms for each rollup upsert (one conflict probe and one row per (device, quantity, bucket)). Now a batch only
records the buckets it touched in `rollup_pending` (2–4 rows); the rollup step (`maintain`, run by a background
thread on its own connection, or called directly) rebuilds, in bulk, each pending bucket that has been quiet for
`rollup_settle_s`: every device's rows of that hour (or city day) read through a BRIN index on time. History
queries read rollups for the buckets that are not pending and raw rows for those that are, in one statement (one
snapshot), so answers are exact before and after the rollup step runs.

Ingest transactions commit with `synchronous_commit = off`: a server crash (not a client crash) may lose the last
few hundred milliseconds of acknowledged batches (at most 3 × wal_writer_delay), never corrupt anything; MQTT QoS 0
already has that exposure between broker and clapas. Registry, replay and migration transactions stay synchronous.

One connection writes (the pipeline's writer thread); another, behind its own lock, serves the API's reads, which
MVCC lets run while a batch is being written. Both are reopened if the server went away.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import psycopg
from psycopg.rows import dict_row

from clapas.config import PostgresSettings
from clapas.model import QUANTITIES, QUANTITY_BY_ID, QUANTITY_BY_KEY, Device, Zone
from clapas.store import health, schema, zone_rollup
from clapas.store.alerts import AlertTables
from clapas.store.audit import AuditTables
from clapas.store.base import DUPLICATE, QUARANTINED, STORED, Batch, DeviceSeen, JournalRow, Store
from clapas.store.charter import CharterTables
from clapas.store.detector_state import StateTables, is_delta
from clapas.store.exports import ExportTables
from clapas.store.health import HealthTables
from clapas.store.keys import KeyTables
from clapas.store.ngsi_sandbox import NgsiSandboxTables
from clapas.store.ngsi_subscriptions import SubscriptionTables
from clapas.store.overrides import OverrideTables
from clapas.store.zone_rollup import ZoneRollupTables

log = logging.getLogger("clapas.store")

# advisory lock keys: schema migrations, partition creation (two processes may start or write at once)
_MIGRATE_LOCK = 0x636C617061_01
_PARTITION_LOCK = 0x636C617061_02
_PARTITION_NAME = re.compile(r"^observations_(\d{4})_(\d{2})$")

_JOURNAL_TYPES = ("timestamptz", "timestamptz", "text", "text", "text", "text", "text", "int4", "int8", "text",
                  "text", "text", "float8", "float8", "int2", "bytea")
_OBS_TYPES = ("int4", "int2", "timestamptz", "float8")
_SEEN_COLS = "eui, last_seen, f_cnt, rssi, snr, name, profile, kind, decoder, zone, lat, lon, tags, attributes"

# per-connection staging tables, emptied at each commit
_STAGING = [
    "CREATE TEMP TABLE obs_stage (device_id INTEGER, quantity_id SMALLINT, time TIMESTAMPTZ, value DOUBLE PRECISION)"
    " ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE seen (eui VARCHAR, last_seen TIMESTAMPTZ, f_cnt BIGINT, rssi DOUBLE PRECISION, "
    "snr DOUBLE PRECISION, name VARCHAR, profile VARCHAR, kind VARCHAR, decoder VARCHAR, zone VARCHAR, "
    "lat DOUBLE PRECISION, lon DOUBLE PRECISION, tags VARCHAR, attributes VARCHAR) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE reg_stage (eui VARCHAR, name VARCHAR, kind VARCHAR, decoder VARCHAR, profile VARCHAR, "
    "zone VARCHAR, lat DOUBLE PRECISION, lon DOUBLE PRECISION, data_class VARCHAR, expected_interval_s INTEGER, "
    "subscriber VARCHAR, premises_use VARCHAR, tags VARCHAR) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE j_replay (id BIGINT, dev_eui VARCHAR, time TIMESTAMPTZ, status VARCHAR, error VARCHAR) "
    "ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE replay_keys (device_id INTEGER, time TIMESTAMPTZ) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE touched (device_id INTEGER, quantity_id SMALLINT, time TIMESTAMPTZ) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE heard (eui VARCHAR, t TIMESTAMPTZ, f_cnt BIGINT, rssi DOUBLE PRECISION, snr DOUBLE PRECISION) "
    "ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE state_stage (detector VARCHAR, subject VARCHAR, version VARCHAR, state BYTEA, delta BOOLEAN) "
    "ON COMMIT DELETE ROWS",
]
_HEARD_TYPES = ("text", "timestamptz", "int8", "float8", "float8")
# schema.DEVICE_HEARD_UPDATE's rule, from the per-device rows `_heard_rows` computes
_HEARD_UPDATE = schema.device_heard_update("heard")

_INSERT_OBS = ("INSERT INTO observations (device_id, quantity_id, time, value) "
               "SELECT device_id, quantity_id, time, value FROM obs_stage ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING")
_ROLLUP_COLS = "device_id, quantity_id, bucket, count, sum, min, max"
# longest bucket: an hour, or a local day (25 h when clocks go back), with margin; bounds the index range scanned
_SPAN = {"1h": "1 hour", "1d": "26 hours"}


class PostgresStore(AlertTables, HealthTables, KeyTables, AuditTables, CharterTables, StateTables, ExportTables,
                    NgsiSandboxTables, SubscriptionTables, OverrideTables, ZoneRollupTables, Store):
    _json_type = "JSONB"
    _lock_rows = " FOR UPDATE"
    _audit_lock_sql = "SELECT pg_advisory_xact_lock(%s)"

    def __init__(self, url: str, timezone: str = "Europe/Paris", *, rollup_settle_s: float = 5.0,
                 rollup_interval_s: float | None = 1.0, connection: PostgresSettings | None = None) -> None:
        """`rollup_settle_s`: a bucket is rolled up once no batch touched it for that long (the current hour keeps
        being written, so it is rebuilt once it is over, not after every batch). `rollup_interval_s`: how often the
        background rollup step runs (None: never; call `maintain()` yourself)."""
        ZoneInfo(timezone)  # an unknown zone fails here, not in the first rollup
        self.url = url
        self.timezone = timezone
        self.connection = connection or PostgresSettings()  # timeouts and keepalives (issue 9)
        self.rollup_settle_s = rollup_settle_s
        self.rollup_interval_s = rollup_interval_s
        self._wlock = threading.Lock()  # the writer connection: batches, registry, migrations
        self._rlock = threading.Lock()  # the reader connection: everything the API asks
        self._mlock = threading.Lock()  # the rollup connection
        self._w: psycopg.Connection | None = None
        self._r: psycopg.Connection[dict[str, Any]] | None = None
        self._m: psycopg.Connection | None = None
        self._maintainer: threading.Thread | None = None
        self._closing = threading.Event()
        self._ids: dict[str, int] = {}  # device EUI → id, to build observation rows without a join
        self._months: set[tuple[int, int]] = set()  # observation partitions known to exist
        # (device id, quantity id) pairs known to be in device_quantities: a batch inserts only new ones (a
        # `SELECT DISTINCT … ON CONFLICT DO NOTHING` of every batch cost ≈ 30 ms per 20,000 rows)
        self._pairs: set[tuple[int, int]] = set()
        self._new_pairs: list[tuple[int, int]] = []  # added by the transaction in progress
        self.migrate()

    # connections -------------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        con = psycopg.connect(self.url, autocommit=True, **self.connection.libpq())
        con.execute("SELECT set_config('TimeZone', %s, false)", [self.timezone])  # times come back in city time
        return con

    def _writer(self) -> psycopg.Connection:
        """The writer connection (call with `_wlock` held), reopened with its staging tables if it broke."""
        if self._w is None or self._w.closed or self._w.broken:
            if self._w is not None:
                self._w.close()
            self._w = self._connect()
            for stmt in _STAGING:
                self._w.execute(stmt)
        return self._w

    @contextmanager
    def _tx(self, limit_s: float | None = None) -> Iterator[psycopg.Cursor]:
        """One writer transaction: committed on success, rolled back on any error. With `limit_s`, a transaction
        still running after that long has its connection cut (see `_cut`), so it fails instead of hanging."""
        with self._wlock:
            con = self._writer()
            watchdog = threading.Timer(limit_s, _cut, [con]) if limit_s else None
            if watchdog is not None:
                watchdog.daemon = True
                watchdog.start()
            try:
                with con.transaction(), con.cursor() as cur:
                    yield cur
            finally:
                if watchdog is not None:
                    watchdog.cancel()

    def _alert_tx(self) -> Any:
        """Alert changes go through the writer connection, committed synchronously (unlike ingest batches)."""
        return self._tx()

    def _q(self, sql: str) -> str:
        return schema.to_psycopg(sql)

    def _reader(self) -> psycopg.Connection[dict[str, Any]]:
        """The reader connection (call with `_rlock` held), reopened if it broke."""
        if self._r is None or self._r.closed or self._r.broken:
            if self._r is not None:
                self._r.close()
            self._r = self._connect()
            self._r.row_factory = dict_row  # type: ignore[assignment]
        return self._r

    def _rows(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self._rlock:
            try:
                return self._reader().execute(sql, params).fetchall()
            except psycopg.OperationalError:
                if self._r is not None and not (self._r.broken or self._r.closed):
                    raise
                # the server dropped the connection (a restart): a read is safe to run again on a new one
                return self._reader().execute(sql, params).fetchall()

    def sql(self, query: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Read-only access for tools and tests (psycopg `%s` placeholders)."""
        return self._rows(query, params)

    # schema ------------------------------------------------------------------------------------------
    def migrate(self) -> None:
        with self._tx() as cur:
            cur.execute("SET LOCAL statement_timeout = 0")  # a migration may take long: never cancelled
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATE_LOCK])  # a second process waits here
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                        "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            current = cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            for version, statements in schema.postgres_migrations():
                if version > current:
                    for stmt in statements:
                        cur.execute(stmt)
                    cur.execute("INSERT INTO schema_version (version) VALUES (%s)", [version])
            cur.executemany(  # the catalogue: 40 rows, not batch data
                "INSERT INTO quantities VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET key = excluded.key, "
                "unit = excluded.unit, label = excluded.label",
                [(q.id, q.key, q.unit, q.label) for q in QUANTITIES],
            )
            self._check_timezone(cur)
            self._ids = dict(cur.execute("SELECT eui, id FROM devices").fetchall())
            self._months = self._known_months(cur)
            self._pairs = set(cur.execute("SELECT device_id, quantity_id FROM device_quantities").fetchall())

    def _check_timezone(self, cur: psycopg.Cursor) -> None:
        """Daily buckets are days of one time zone: if the city's zone changed, rebuild the daily rollup."""
        row = cur.execute("SELECT value FROM store_settings WHERE key = 'timezone'").fetchone()
        if row and row[0] == self.timezone:
            return
        if row:
            log.warning("time zone changed from %s to %s: rebuilding daily rollups", row[0], self.timezone)
            cur.execute("TRUNCATE rollup_1d")
            cur.execute("DELETE FROM rollup_pending WHERE resolution = '1d'")  # days of the old zone
            cur.execute(f"INSERT INTO rollup_1d ({_ROLLUP_COLS}) SELECT device_id, quantity_id, "
                        f"{schema.bucket_sql('1d', self.timezone)}, count(*), sum(value), min(value), max(value) "
                        "FROM observations GROUP BY 1, 2, 3")
        cur.execute("INSERT INTO store_settings VALUES ('timezone', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", [self.timezone])

    @staticmethod
    def _known_months(cur: psycopg.Cursor) -> set[tuple[int, int]]:
        names = cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                            "WHERE i.inhparent = 'observations'::regclass").fetchall()
        return {(int(m[1]), int(m[2])) for (n,) in names if (m := _PARTITION_NAME.match(n))}

    # partitions --------------------------------------------------------------------------------------
    @staticmethod
    def _months_of(times: list[datetime]) -> set[tuple[int, int]]:
        """UTC months of a batch's rows; min/max settles the usual batch that lies in one month."""
        lo, hi = min(times).astimezone(UTC), max(times).astimezone(UTC)
        if (lo.year, lo.month) == (hi.year, hi.month):
            return {(lo.year, lo.month)}
        return {(u.year, u.month) for u in (t.astimezone(UTC) for t in set(times))}

    def _ensure_partitions(self, times: list[datetime]) -> None:
        """Create the monthly partitions a batch needs, each in its own short transaction before the batch's."""
        for year, month in sorted(self._months_of(times) - self._months):
            with self._tx() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK])
                # creating a partition locks the parent table: rather fail (the batch is retried) than queue
                # every reader behind a long query
                cur.execute("SET LOCAL lock_timeout = '10s'")
                name = f"observations_{year:04d}_{month:02d}"
                if cur.execute("SELECT to_regclass(%s)", [name]).fetchone()[0] is None:
                    self._create_partition(cur, name, year, month)
            self._months.add((year, month))

    @staticmethod
    def _create_partition(cur: psycopg.Cursor, name: str, year: int, month: int) -> None:
        """A month's partition; rows the default partition caught for that month move into it."""
        start = f"{year:04d}-{month:02d}-01 00:00:00+00"
        end = f"{year + month // 12:04d}-{month % 12 + 1:02d}-01 00:00:00+00"
        cur.execute("CREATE TEMP TABLE moved (LIKE observations) ON COMMIT DROP")
        cur.execute(f"WITH d AS (DELETE FROM observations_default WHERE time >= '{start}' AND time < '{end}' "
                    "RETURNING *) INSERT INTO moved SELECT * FROM d")
        cur.execute(f"CREATE TABLE {name} PARTITION OF observations FOR VALUES FROM ('{start}') TO ('{end}')")
        cur.execute("INSERT INTO observations SELECT * FROM moved")

    # writing -----------------------------------------------------------------------------------------
    def _device_ids(self, cur: psycopg.Cursor, batch: Batch) -> list[str]:
        """Register the batch's unknown devices and refresh the last state of every device seen.

        Returns the EUIs added to the id cache, to forget if the transaction fails.
        """
        if batch.dev_by_eui:
            with cur.copy(f"COPY seen ({_SEEN_COLS}) FROM STDIN") as copy:
                for d in batch.dev_by_eui.values():
                    copy.write_row(_seen_row(d))
        new = [e for e in set(batch.dev_by_eui).union(batch.o_eui, batch.ev_eui) if e not in self._ids]
        if new:
            cur.execute("INSERT INTO devices (eui, name, kind, decoder, profile, zone, lat, lon, tags, first_seen) "
                        "SELECT eui, name, kind, decoder, profile, zone, lat, lon, "
                        "coalesce(tags::jsonb, '{}'::jsonb), last_seen FROM seen WHERE eui = ANY(%s) "
                        "ON CONFLICT (eui) DO NOTHING", [new])
            # observation/event rows of devices not in dev_by_eui (should not happen) are registered bare
            cur.execute("INSERT INTO devices (eui) SELECT unnest(%s::varchar[]) ON CONFLICT (eui) DO NOTHING", [new])
            self._ids.update(cur.execute("SELECT eui, id FROM devices WHERE eui = ANY(%s)", [new]).fetchall())
        if batch.dev_by_eui:
            cur.execute(schema.device_state_update("JSONB", "eui"))
        return new

    def _update_heard(self, cur: psycopg.Cursor, batch: Batch) -> None:
        """When each device of the batch was last heard, and its radio state then, from the journal rows."""
        rows = _heard_rows(batch)
        if rows:
            with cur.copy("COPY heard (eui, t, f_cnt, rssi, snr) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_HEARD_TYPES)
                for row in rows:
                    copy.write_row(row)
            cur.execute(_HEARD_UPDATE)

    def _stage_observations(self, cur: psycopg.Cursor, batch: Batch) -> list[int]:
        """COPY the batch's observations into `obs_stage`; returns their device ids."""
        ids = self._ids
        device_ids = [ids[e] for e in batch.o_eui]
        with cur.copy("COPY obs_stage (device_id, quantity_id, time, value) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_OBS_TYPES)
            for row in zip(device_ids, batch.o_quantity, batch.o_time, batch.o_value, strict=True):
                copy.write_row(row)
        return device_ids

    def _insert_events(self, cur: psycopg.Cursor, batch: Batch) -> None:
        ids = self._ids
        with cur.copy("COPY device_events (time, device_id, event, data) FROM STDIN") as copy:
            for t, eui, event, data in zip(batch.ev_time, batch.ev_eui, batch.ev_event, batch.ev_data, strict=True):
                copy.write_row((t, ids[eui], event, data))

    def _insert_journal(self, cur: psycopg.Cursor, batch: Batch) -> None:
        with cur.copy(f"COPY journal ({schema.JOURNAL_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_JOURNAL_TYPES)
            b = batch
            for row in zip(b.j_received, b.j_time, b.j_source, b.j_event, b.j_fmt, b.j_topic, b.j_eui, b.j_fport,
                           b.j_fcnt, b.j_dedup, b.j_status, b.j_error, b.j_rssi, b.j_snr, b.j_sf, b.j_raw,
                           strict=True):
                copy.write_row(row)

    def _mark_pending(self, cur: psycopg.Cursor, source: str) -> None:
        """Record the hourly and daily buckets of the `source` rows as to be rolled up (a few rows per batch)."""
        cur.execute(
            f"WITH t AS MATERIALIZED (SELECT DISTINCT time FROM {source}) "  # one bucket per distinct time, not row
            "INSERT INTO rollup_pending (resolution, bucket, touched_at) SELECT r, b, now() FROM ("
            f"SELECT DISTINCT '1h'::varchar AS r, {schema.bucket_sql('1h', self.timezone)} AS b FROM t UNION ALL "
            f"SELECT DISTINCT '1d'::varchar, {schema.bucket_sql('1d', self.timezone)} FROM t) x "
            "ON CONFLICT (resolution, bucket) DO UPDATE SET touched_at = excluded.touched_at")
        cur.execute(zone_rollup.mark_pending(source))  # and the per-zone rollup's hours

    def _add_device_quantities(self, cur: psycopg.Cursor, device_ids: list[int], batch: Batch) -> None:
        """Record the batch's new (device, quantity) pairs (forgotten again if the transaction fails)."""
        new = set(zip(device_ids, batch.o_quantity, strict=True)) - self._pairs
        if new:
            cur.execute("INSERT INTO device_quantities SELECT * FROM unnest(%s::int4[], %s::int2[]) "
                        "ON CONFLICT DO NOTHING", [[d for d, _ in new], [q for _, q in new]])
            self._pairs |= new
            self._new_pairs.extend(new)

    def _write_batch(self, batch: Batch, replay: bool) -> None:
        if batch.o_time:
            self._ensure_partitions(batch.o_time)
        new: list[str] = []
        self._new_pairs = []
        try:
            with self._tx(self.connection.write_timeout_s) as cur:
                if not replay:
                    # see the module docstring: a server crash may lose the last few hundred ms of batches
                    cur.execute("SET LOCAL synchronous_commit = off")
                new = self._device_ids(cur, batch)
                if replay:
                    self._replace_in(cur, batch)
                else:
                    self._write_in(cur, batch)
                self._put_health(cur, batch)
                self._write_detector_state(cur, batch.detector_state)
                if batch.in_transaction is not None:
                    batch.in_transaction(cur)
        except BaseException:
            for eui in new:  # ids given in a rolled-back transaction do not exist
                self._ids.pop(eui, None)
            self._pairs.difference_update(self._new_pairs)
            raise
        self._start_maintainer()

    @staticmethod
    def _tally_journal(cur: psycopg.Cursor, delta: dict[str, int]) -> None:
        """Journal rows added (or removed) by status, for `counts` (migration 7: never a scan of the journal)."""
        rows = schema.journal_tally_rows(delta)
        if rows:
            cur.execute("INSERT INTO journal_tally SELECT * FROM unnest(%s::varchar[], %s::int8[])",
                        [[s for s, _ in rows], [n for _, n in rows]])

    def _write_in(self, cur: psycopg.Cursor, batch: Batch) -> None:
        self._insert_journal(cur, batch)
        self._tally_journal(cur, batch.status_counts())
        self._update_heard(cur, batch)
        if batch.o_time:
            device_ids = self._stage_observations(cur, batch)
            cur.execute(_INSERT_OBS)
            inserted = cur.rowcount  # a repeated row is not inserted, and not counted
            if inserted:
                cur.execute("INSERT INTO observation_tally VALUES (%s)", [inserted])
            self._mark_pending(cur, "obs_stage")
            self._add_device_quantities(cur, device_ids, batch)
        if batch.ev_time:
            self._insert_events(cur, batch)

    def _stage_state(self, cur: psycopg.Cursor, rows: list[tuple[str, str, str, bytes | None]]) -> None:
        with cur.copy("COPY state_stage (detector, subject, version, state, delta) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(("text", "text", "text", "bytea", "bool"))
            for row in rows:
                copy.write_row((*row, is_delta(row[3])))

    def write(self, batch: Batch) -> None:
        if len(batch) or batch.in_transaction is not None:  # a worker's batch of ticks: its detectors and position
            self._write_batch(batch, replay=False)

    def replace(self, batch: Batch) -> None:
        if len(batch):
            self._write_batch(batch, replay=True)

    def _replace_in(self, cur: psycopg.Cursor, batch: Batch) -> None:
        """Replay: drop what the uplinks stored before (at their old and new (device, time)), store them anew,
        and mark every rollup bucket either touched as pending."""
        with cur.copy("COPY j_replay (id, dev_eui, time, status, error) FROM STDIN") as copy:
            for row in zip(batch.j_id, batch.j_eui, batch.j_time, batch.j_status, batch.j_error, strict=True):
                copy.write_row(row)
        cur.execute("INSERT INTO replay_keys SELECT DISTINCT d.id, k.time FROM ("
                    "SELECT dev_eui, time FROM j_replay UNION "
                    "SELECT j.dev_eui, j.time FROM journal j JOIN j_replay r ON r.id = j.id) k "
                    "JOIN devices d ON d.eui = k.dev_eui WHERE k.time IS NOT NULL")
        # quantity_id = ANY(catalogue) lets each key be found through the primary key
        cur.execute("WITH d AS (DELETE FROM observations o USING replay_keys k WHERE o.device_id = k.device_id "
                    "AND o.quantity_id = ANY(%s) AND o.time = k.time RETURNING o.device_id, o.quantity_id, o.time) "
                    "INSERT INTO touched SELECT * FROM d", [[q.id for q in QUANTITIES]])
        delta = -cur.rowcount
        cur.execute("DELETE FROM device_events e USING replay_keys k WHERE e.device_id = k.device_id "
                    "AND e.time = k.time")
        # the statuses replay changes (a quarantined message a fixed decoder now reads: stored), in the tally
        moved = cur.execute("SELECT j.status, r.status FROM journal j JOIN j_replay r ON r.id = j.id "
                            "WHERE j.status <> r.status").fetchall()
        self._tally_journal(cur, schema.replay_status_delta(moved))
        cur.execute("UPDATE journal SET status = j.status, error = j.error, dev_eui = j.dev_eui, time = j.time "
                    "FROM j_replay j WHERE journal.id = j.id")
        if batch.o_time:
            device_ids = self._stage_observations(cur, batch)
            cur.execute(_INSERT_OBS)
            delta += cur.rowcount
            self._mark_pending(cur, "obs_stage")
            self._add_device_quantities(cur, device_ids, batch)
        if batch.ev_time:
            self._insert_events(cur, batch)
        if delta:
            cur.execute("INSERT INTO observation_tally VALUES (%s)", [delta])
        self._mark_pending(cur, "touched")
        # a device whose replayed uplinks were its only rows of a quantity no longer reports it
        gone = cur.execute(
            "DELETE FROM device_quantities dq USING (SELECT DISTINCT device_id, quantity_id FROM touched) t "
            "WHERE dq.device_id = t.device_id AND dq.quantity_id = t.quantity_id AND NOT EXISTS (SELECT 1 FROM "
            "observations o WHERE o.device_id = t.device_id AND o.quantity_id = t.quantity_id) "
            "RETURNING dq.device_id, dq.quantity_id").fetchall()
        # forgotten now (a failed transaction only leaves them to be inserted again, a no-op)
        self._pairs.difference_update(gone)

    # rollups -----------------------------------------------------------------------------------------
    def _maintainer_con(self) -> psycopg.Connection:
        """The rollup connection (call with `_mlock` held), reopened if it broke."""
        if self._m is None or self._m.closed or self._m.broken:
            if self._m is not None:
                self._m.close()
            self._m = self._connect()
        return self._m

    def maintain(self, settle_s: float | None = None, max_buckets: int | None = None) -> int:
        """The rollup step: rebuild from raw rows the pending buckets no batch touched for `settle_s` seconds
        (default `rollup_settle_s`; 0: all of them), at most `max_buckets` (None: all). Returns how many were rebuilt;
        the per-zone rollup's settled hours (`zone_rollup.py`) follow within what is left of `max_buckets`.

        Each bucket is rebuilt whole (every device's rows of that hour, or city day) and leaves `rollup_pending` in
        the same transaction, so a reader sees either the raw rows or the rollup of a bucket, never a mix. A bucket
        a writer is touching right now is skipped (its row is locked), and rolled up on a later call.
        """
        settle = self.rollup_settle_s if settle_s is None else settle_s
        done = 0
        with self._mlock:
            con = self._maintainer_con()
            with con.transaction(), con.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit = off")  # a lost rollup is rebuilt: it stays pending
                total = cur.execute("WITH d AS (DELETE FROM observation_tally RETURNING n) SELECT sum(n) FROM d"
                                    ).fetchone()[0]
                if total is not None:
                    cur.execute("INSERT INTO observation_tally VALUES (%s)", [total])
                cur.execute("WITH d AS (DELETE FROM journal_tally RETURNING status, n) INSERT INTO journal_tally "
                            "SELECT status, sum(n) FROM d GROUP BY 1 HAVING sum(n) <> 0")
            self._fold_pg(con)
            while max_buckets is None or done < max_buckets:
                with con.transaction(), con.cursor() as cur:
                    row = cur.execute(
                        "SELECT resolution, bucket FROM rollup_pending WHERE touched_at <= clock_timestamp() - %s "
                        "* interval '1 second' ORDER BY bucket, resolution DESC LIMIT 1 FOR UPDATE SKIP LOCKED",
                        [settle]).fetchone()
                    if row is None:
                        break
                    resolution, bucket = row
                    cur.execute("SET LOCAL synchronous_commit = off")
                    self._rebuild(cur, resolution, bucket)
                    cur.execute("DELETE FROM rollup_pending WHERE resolution = %s AND bucket = %s",
                                [resolution, bucket])
                done += 1
            # then the per-zone rollup's hours (not counted: `done` is the per-device buckets), within the same budget
            self._roll_zones(con, settle, None if max_buckets is None else max_buckets - done)
        return done

    def _put_pending(self, cur: psycopg.Cursor, euis: list[str], times: list[datetime]) -> None:
        """COPY, not an array parameter (10 ms for 10,000 rows, not 65): `datetime.timestamp()` is the correctly
        rounded epoch, the double PostgreSQL's `extract(epoch …)` casts to (the journal read's), bit for bit."""
        with cur.copy("COPY device_uplink_pending (dev_eui, t) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(("text", "float8"))
            for e, t in zip(euis, times, strict=True):
                copy.write_row((e, t.timestamp()))

    def fold_uplink_times(self) -> None:
        """The times heard since the last step merged into each device's kept times (`health.py`)."""
        with self._mlock:
            self._fold_pg(self._maintainer_con())

    def _fold_pg(self, con: psycopg.Connection) -> None:
        with con.transaction(), con.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")  # a lost fold leaves its rows pending
            self._fold_uplink_times(cur, health.POSTGRES_FOLD)

    def _roll_zones(self, con: psycopg.Connection, settle_s: float, limit: int | None) -> int:
        """The per-zone hourly rollup's settled pending hours, each rebuilt from the raw rows in its own transaction
        (a batch touching it meanwhile waits on its locked row, then marks it pending again)."""
        done = 0
        while limit is None or done < limit:
            with con.transaction(), con.cursor() as cur:
                row = cur.execute("SELECT bucket FROM zone_rollup_pending WHERE touched_at <= clock_timestamp() - %s "
                                  "* interval '1 second' ORDER BY bucket LIMIT 1 FOR UPDATE SKIP LOCKED",
                                  [settle_s]).fetchone()
                if row is None:
                    break
                cur.execute("SET LOCAL synchronous_commit = off")  # a lost rebuild stays pending
                zone_rollup.rebuild(cur, schema.to_psycopg, row[0])
            done += 1
        return done

    def _rebuild(self, cur: psycopg.Cursor, resolution: str, bucket: datetime) -> None:
        """One bucket of a rollup, every device, from the raw rows (a bucket left empty disappears)."""
        cur.execute(f"DELETE FROM rollup_{resolution} WHERE bucket = %s", [bucket])
        cur.execute(
            f"INSERT INTO rollup_{resolution} ({_ROLLUP_COLS}) SELECT device_id, quantity_id, %s, count(*), "
            "sum(value), min(value), max(value) FROM observations WHERE time >= %s "
            f"AND time < %s + interval '{_SPAN[resolution]}' "
            f"AND {schema.bucket_sql(resolution, self.timezone)} = %s GROUP BY 1, 2 ORDER BY 1, 2",
            [bucket, bucket, bucket, bucket])

    def _start_maintainer(self) -> None:
        if self.rollup_interval_s is None or self._maintainer is not None:
            return
        self._maintainer = threading.Thread(target=self._maintain_loop, name="clapas-rollup", daemon=True)
        self._maintainer.start()

    def _maintain_loop(self) -> None:
        """Background rollup step: runs every `rollup_interval_s`, a bucket at a time while buckets remain, resting
        3x as long as each bucket took: at most a quarter of one CPU, so that a burst of ingest (which touches many
        buckets at once) is not slowed by rollups; they catch up when ingest is quieter (answers stay exact)."""
        interval = self.rollup_interval_s or 1.0
        while not self._closing.wait(interval):
            try:
                t0 = time.monotonic()
                while self.maintain(max_buckets=1) and not self._closing.wait(3 * (time.monotonic() - t0)):
                    t0 = time.monotonic()
            except Exception:  # the server went away: pending buckets stay pending, answers stay exact
                log.exception("rollup step failed; retrying in %.0f s", interval)
                time.sleep(interval)

    def iter_journal(self, *, statuses: tuple[str, ...] = (STORED, QUARANTINED), dev_eui: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     batch_size: int = 5000) -> Iterator[list[JournalRow]]:
        where, params = schema.journal_filter(statuses, dev_eui, since, until)
        sql = schema.to_psycopg(f"SELECT id, received_at, source, event, fmt, topic, raw, status FROM journal "
                                f"WHERE id > ? AND {where} ORDER BY id LIMIT ?")
        last = 0
        while rows := self._rows(sql, [last, *params, batch_size]):
            last = rows[-1]["id"]
            yield [JournalRow(r["id"], r["received_at"], r["source"], r["event"], r["fmt"], r["topic"],
                              bytes(r["raw"]), r["status"]) for r in rows]

    def recent_dedup_keys(self, limit: int) -> list[str]:
        rows = self._rows("SELECT dedup_key FROM journal WHERE dedup_key IS NOT NULL ORDER BY id DESC LIMIT %s",
                          [limit])
        return [r["dedup_key"] for r in rows]

    # registry ----------------------------------------------------------------------------------------
    def upsert_devices(self, devices: list[Device]) -> int:
        unique = list({d.eui: d for d in devices}.values())  # the last entry of an EUI wins, as in a file
        if not unique:
            return 0
        with self._tx() as cur:
            with cur.copy(f"COPY reg_stage ({', '.join(schema.REGISTRY_COLS)}) FROM STDIN") as copy:
                for d in unique:
                    copy.write_row(schema.registry_row(0, d)[1:])
            cols = ", ".join(schema.REGISTRY_COLS)
            cur.execute(f"INSERT INTO devices ({cols}) SELECT {cols.replace('tags', 'tags::jsonb')} FROM reg_stage "
                        + schema.DEVICE_UPSERT_SET)
            ids = cur.execute("SELECT eui, id FROM devices WHERE eui = ANY(%s)", [[d.eui for d in unique]]).fetchall()
        self._ids.update(ids)
        return len(unique)

    def devices(self, *, kind: str | None = None, zone: str | None = None, limit: int = 1000,
                offset: int = 0, euis: Sequence[str] | None = None,
                groups: Sequence[tuple[str, str, str]] | None = None) -> list[dict[str, Any]]:
        where, params = schema.device_filter(kind, zone, tuple(euis) if euis is not None else None, groups)
        rows = self._rows(schema.to_psycopg(f"{schema.DEVICE_SELECT} WHERE {where} ORDER BY d.eui LIMIT ? OFFSET ?"),
                          [*params, limit, offset])
        return [schema.device_out(r) for r in rows]

    def device(self, eui: str) -> dict[str, Any] | None:
        rows = self._rows(schema.to_psycopg(f"{schema.DEVICE_SELECT} WHERE d.eui = ?"), [eui])
        return schema.device_out(rows[0]) if rows else None

    def upsert_zones(self, zones: list[Zone]) -> int:
        if zones:
            with self._tx() as cur:  # zones are a few hundred at most
                cur.executemany(schema.to_psycopg(schema.ZONE_UPSERT), [schema.zone_row(z) for z in zones])
        return len(zones)

    def zones(self) -> list[dict[str, Any]]:
        return [schema.zone_out(r) for r in self._rows(schema.ZONE_SELECT)]

    # observations ------------------------------------------------------------------------------------
    def latest_many(self, euis: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        if not euis:
            return {}
        # one index probe (per monthly partition) for each quantity each device reports
        return schema.latest_by_eui(self._rows(
            "SELECT d.eui, q.quantity_id, l.time, l.value FROM devices d JOIN device_quantities q "
            "ON q.device_id = d.id CROSS JOIN LATERAL (SELECT o.time, o.value FROM observations o "
            "WHERE o.device_id = d.id AND o.quantity_id = q.quantity_id ORDER BY o.time DESC LIMIT 1) l "
            "WHERE d.eui = ANY(%s) ORDER BY d.eui, q.quantity_id", [list(euis)]))

    def observations(self, eui: str, quantity: str, start: datetime, end: datetime, resolution: str = "raw",
                     limit: int = 100_000) -> list[dict[str, Any]]:
        q = QUANTITY_BY_KEY[quantity]
        params = [eui, q.id, start, end, limit]
        device = "device_id = (SELECT id FROM devices WHERE eui = %s) AND quantity_id = %s"
        if resolution == "raw":
            return self._rows(f"SELECT time, value FROM observations WHERE {device} AND time >= %s AND time < %s "
                              "ORDER BY time LIMIT %s", params)
        if resolution not in _SPAN:
            raise ValueError(f"unknown resolution {resolution!r}")
        # buckets whose start is in [start, end), whole (the rule both stores follow): from the rollup when the
        # bucket is rolled up, from the raw rows while it is pending; one statement, so one snapshot
        bucket = schema.bucket_sql(resolution, self.timezone, "o.time")
        return self._rows(
            "WITH d AS (SELECT id FROM devices WHERE eui = %(eui)s), p AS (SELECT bucket FROM rollup_pending "
            "WHERE resolution = %(res)s AND bucket >= %(start)s AND bucket < %(end)s) "
            f"SELECT bucket AS time, sum / count AS mean, min, max, count FROM rollup_{resolution} "
            "WHERE device_id = (SELECT id FROM d) AND quantity_id = %(q)s AND bucket >= %(start)s "
            "AND bucket < %(end)s AND bucket NOT IN (SELECT bucket FROM p) "
            "UNION ALL SELECT p.bucket, r.sum / r.count, r.min, r.max, r.count FROM p CROSS JOIN LATERAL ("
            "SELECT sum(o.value) AS sum, min(o.value) AS min, max(o.value) AS max, count(*) AS count "
            "FROM observations o WHERE o.device_id = (SELECT id FROM d) AND o.quantity_id = %(q)s "
            f"AND o.time >= p.bucket AND o.time < p.bucket + interval '{_SPAN[resolution]}' "
            f"AND {bucket} = p.bucket) r WHERE r.count > 0 ORDER BY 1 LIMIT %(limit)s",
            {"eui": eui, "res": resolution, "start": start, "end": end, "q": q.id, "limit": limit})

    @staticmethod
    def _devices_sql(euis: Sequence[str] | None, kind: str | None, zone: str | None = None) -> str:
        """The devices of a bulk read, with `%(euis)s`, `%(kind)s`, `%(zone)s` parameters."""
        return ("SELECT id, eui FROM devices WHERE "
                + (" AND ".join([*(["eui = ANY(%(euis)s)"] if euis else []), *(["kind = %(kind)s"] if kind else []),
                                 *(["zone = %(zone)s"] if zone else [])]) or "TRUE"))

    def _bucket_rows_sql(self, resolution: str) -> str:
        """(device_id, bucket, count, sum, min, max) of the devices `d` in [start, end): rolled-up buckets from the
        rollup, pending ones (`p`) from the raw rows (as `observations`), for one statement's snapshot."""
        bucket = schema.bucket_sql(resolution, self.timezone, "o.time")
        return (f"SELECT r.device_id, r.bucket, r.count, r.sum, r.min, r.max FROM rollup_{resolution} r "
                "WHERE r.device_id IN (SELECT id FROM d) AND r.quantity_id = %(q)s AND r.bucket >= %(start)s "
                "AND r.bucket < %(end)s AND r.bucket NOT IN (SELECT bucket FROM p) "
                "UNION ALL SELECT r.device_id, p.bucket, r.count, r.sum, r.min, r.max FROM p CROSS JOIN LATERAL ("
                "SELECT o.device_id, count(*) AS count, sum(o.value) AS sum, min(o.value) AS min, max(o.value) AS max "
                "FROM observations o WHERE o.device_id IN (SELECT id FROM d) AND o.quantity_id = %(q)s "
                f"AND o.time >= p.bucket AND o.time < p.bucket + interval '{_SPAN[resolution]}' "
                f"AND {bucket} = p.bucket GROUP BY o.device_id) r")

    def group_series(self, quantity: str, start: datetime, end: datetime, *, euis: Sequence[str] | None = None,
                     kind: str | None = None, zone: str | None = None,
                     resolution: str = "1h") -> list[dict[str, Any]]:
        if euis is not None and not euis:
            return []
        if resolution not in _SPAN:
            raise ValueError(f"unknown resolution {resolution!r}")
        args = {"q": QUANTITY_BY_KEY[quantity].id, "start": start, "end": end, "euis": list(euis or []),
                "kind": kind, "zone": zone, "res": resolution}
        return self._rows(
            f"WITH d AS ({self._devices_sql(euis, kind, zone)}), p AS (SELECT bucket FROM rollup_pending "
            "WHERE resolution = %(res)s AND bucket >= %(start)s AND bucket < %(end)s) "
            "SELECT b.bucket AS time, count(DISTINCT b.device_id) AS devices, sum(b.count)::bigint AS count, "
            "sum(b.sum) / sum(b.count) AS mean, min(b.min) AS min, max(b.max) AS max "
            f"FROM ({self._bucket_rows_sql(resolution)}) b GROUP BY 1 ORDER BY 1", args)

    def series(self, quantity: str, start: datetime, end: datetime, *, euis: Sequence[str] | None = None,
               kind: str | None = None, resolution: str = "raw") -> list[dict[str, Any]]:
        if euis is not None and not euis:
            return []
        q = QUANTITY_BY_KEY[quantity]
        args = {"q": q.id, "start": start, "end": end, "euis": list(euis or []), "kind": kind, "res": resolution}
        devices = self._devices_sql(euis, kind)
        if resolution == "raw":
            return self._rows(
                f"WITH d AS ({devices}) SELECT d.eui, o.time, o.value FROM observations o JOIN d ON d.id = o.device_id "
                "WHERE o.quantity_id = %(q)s AND o.time >= %(start)s AND o.time < %(end)s ORDER BY d.eui, o.time",
                args)
        if resolution not in _SPAN:
            raise ValueError(f"unknown resolution {resolution!r}")
        # as `observations`: rolled-up buckets from the rollup, pending ones from the raw rows, in one statement
        return self._rows(
            f"WITH d AS ({devices}), p AS (SELECT bucket FROM rollup_pending "
            "WHERE resolution = %(res)s AND bucket >= %(start)s AND bucket < %(end)s) "
            "SELECT d.eui, b.bucket AS time, b.sum / b.count AS mean, b.min, b.max, b.count "
            f"FROM ({self._bucket_rows_sql(resolution)}) b JOIN d ON d.id = b.device_id ORDER BY 1, 2", args)

    def quantities_in_use(self) -> dict[str, int]:
        rows = self._rows("SELECT quantity_id, count(*) AS n FROM device_quantities GROUP BY 1")
        return {QUANTITY_BY_ID[r["quantity_id"]].key: r["n"] for r in rows}

    # journal -----------------------------------------------------------------------------------------
    def uplinks(self, *, status: str | None = None, dev_eui: str | None = None, limit: int = 100,
                offset: int = 0) -> list[dict[str, Any]]:
        where, params = schema.journal_filter((status,) if status else (), dev_eui, None, None)
        rows = self._rows(schema.to_psycopg(
            f"SELECT {schema.JOURNAL_OUT_COLS} FROM journal WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?"),
            [*params, limit, offset])
        return [schema.journal_out(r) for r in rows]

    def counts(self) -> dict[str, int]:
        out = {"stored": 0, "quarantined": 0, "duplicate": 0}
        # every transaction tallies the journal rows it added, re-labelled or removed: no scan of the journal
        out.update({r["status"]: r["n"] for r in self._rows(schema.JOURNAL_COUNTS)})
        # every transaction tallies the rows it added or removed: no scan of the rows themselves
        out["observations"] = self._rows("SELECT coalesce(sum(n), 0)::bigint AS n FROM observation_tally")[0]["n"]
        out["devices"] = self._rows("SELECT count(*) AS n FROM devices")[0]["n"]
        return out

    def device_events(self, eui: str, limit: int = 100) -> list[dict[str, Any]]:
        return self._rows("SELECT time, event, data FROM device_events WHERE device_id = "
                          "(SELECT id FROM devices WHERE eui = %s) ORDER BY time DESC LIMIT %s", [eui, limit])

    def close(self) -> None:
        self._closing.set()
        if self._maintainer is not None:
            self._maintainer.join()
        with self._mlock:
            if self._m is not None:
                self._m.close()
        with self._wlock:
            if self._w is not None:
                self._w.close()
        with self._rlock:
            if self._r is not None:
                self._r.close()


def _json(v: Any) -> str | None:
    return None if v is None else msgspec.json.encode(v).decode()


def _heard_rows(b: Batch) -> list[tuple[Any, ...]]:
    """Per device, as `schema.DEVICE_HEARD_UPDATE` computes it in DuckDB: the latest time of its messages (but
    duplicates), and the f_cnt (of `up` events), RSSI and SNR of its latest message that has one."""
    heard: dict[str, list[Any]] = {}  # eui → [t, f_cnt, f_cnt time, rssi, rssi time, snr, snr time]
    for eui, t, status, event, f_cnt, rssi, snr in zip(b.j_eui, b.j_time, b.j_status, b.j_event, b.j_fcnt, b.j_rssi,
                                                         b.j_snr, strict=True):
        if status == DUPLICATE or eui is None or t is None:
            continue
        h = heard.get(eui)
        if h is None:
            h = heard[eui] = [t, None, None, None, None, None, None]
        elif t > h[0]:
            h[0] = t
        if f_cnt is not None and event == "up" and (h[2] is None or t >= h[2]):
            h[1], h[2] = f_cnt, t
        if rssi is not None and (h[4] is None or t >= h[4]):
            h[3], h[4] = rssi, t
        if snr is not None and (h[6] is None or t >= h[6]):
            h[5], h[6] = snr, t
    return [(eui, h[0], h[1], h[3], h[5]) for eui, h in heard.items()]


def _seen_row(d: DeviceSeen) -> tuple[Any, ...]:
    return (d.eui, d.last_seen, d.f_cnt, d.rssi, d.snr, d.name, d.profile, d.kind, d.decoder, d.zone, d.lat, d.lon,
            _json(d.tags), _json(d.attributes))


def _cut(con: psycopg.Connection) -> None:
    """Shut the connection's socket down (from the watchdog's thread): the hung call in the writer's thread then
    fails at once ("server closed the connection"), where a database that stopped answering (a half-open
    connection, a blackholed network) would give neither an answer nor an error."""
    import os
    import socket

    try:
        fd = os.dup(con.pgconn.socket)
    except (OSError, psycopg.Error):
        return  # already closed
    log.error("a write has waited more than its limit (postgres.write_timeout_s): cutting its connection")
    with socket.socket(fileno=fd) as sock, contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
