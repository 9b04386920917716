"""Tables and row shapes shared by both stores. SQL here uses `?` placeholders (psycopg's `%s` is derived).

Tables: devices, quantities, zones, journal (every message, raw), observations (narrow rows), device_events.
Steps, in the order they apply (`duckdb_migrations`, `postgres_migrations`): 2 the alerts, their history and the
outbox of their notifications (`alerts.py`); 3 the data charter's keys and audit log; 4 occupancy periods; 5 the
audit secret; 6 the detectors' saved state (`detector_state.py`); 7 city scale (journal tally; DuckDB's latest
values and compacted days); 8 device health (stale marks, data-quality flags); 9 the NGSI-LD sandbox tenant;
10 NGSI-LD subscriptions; 11 the partitioned mode's leases (`leases.py`); 12 the gateways each device is heard by
(`health.py`); 13 the departments' settings overrides (`overrides.py`); 14 the per-zone hourly rollup
(`zone_rollup.py`); 15 each device's heard times (`health.py`); 16 delta rows of the detectors' state.
PostgreSQL adds the hourly and daily rollups (`rollup_1h`, `rollup_1d`) its history queries read, with the buckets
still to roll up (`rollup_pending`), the quantities of each device and a tally of the observation rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
import pyarrow as pa

from clapas.model import QUANTITY_BY_ID, Device, Zone
from clapas.store import alerts, audit, detector_state, keys, leases, ngsi_sandbox, overrides, zone_rollup
from clapas.store import charter as charter_tables
from clapas.store import health as health_tables
from clapas.store import ngsi_subscriptions as ngsi_subscription_tables
from clapas.store.base import Batch, DeviceSeen
from clapas.store.where import where

_TS = pa.timestamp("us", tz="UTC")

DEVICE_FIELDS = (
    "name", "kind", "decoder", "profile", "zone", "lat", "lon", "data_class", "expected_interval_s",
    "subscriber", "premises_use",
)


def _ddl(json: str, ts: str, device_id: str = "INTEGER PRIMARY KEY") -> list[str]:
    """Tables both stores share; `device_id` lets PostgreSQL number devices itself (safe with several writers)."""
    return [
        f"""CREATE TABLE devices (
            id {device_id}, eui VARCHAR NOT NULL UNIQUE, name VARCHAR DEFAULT '', kind VARCHAR DEFAULT '',
            decoder VARCHAR DEFAULT '', profile VARCHAR DEFAULT '', zone VARCHAR DEFAULT '', lat DOUBLE PRECISION,
            lon DOUBLE PRECISION, data_class VARCHAR DEFAULT 'open', expected_interval_s INTEGER,
            subscriber VARCHAR DEFAULT '', premises_use VARCHAR DEFAULT '', tags {json}, attributes {json},
            first_seen {ts}, last_seen {ts}, last_f_cnt BIGINT, last_rssi DOUBLE PRECISION,
            last_snr DOUBLE PRECISION)""",
        "CREATE TABLE quantities (id SMALLINT PRIMARY KEY, key VARCHAR NOT NULL UNIQUE, unit VARCHAR, label VARCHAR)",
        f"""CREATE TABLE zones (id VARCHAR PRIMARY KEY, name VARCHAR DEFAULT '', kind VARCHAR DEFAULT '',
            parent VARCHAR DEFAULT '', geometry {json}, properties {json})""",
        f"""CREATE TABLE device_events (time {ts} NOT NULL, device_id INTEGER NOT NULL, event VARCHAR NOT NULL,
            data {json})""",
        "CREATE INDEX device_events_device ON device_events (device_id, time)",
    ]


JOURNAL_COLS = ("received_at, time, source, event, fmt, topic, dev_eui, f_port, f_cnt, dedup_key, status, error, "
                "rssi, snr, sf, raw")
JOURNAL_OUT_COLS = ("id, received_at, time, source, event, fmt, topic, dev_eui, f_port, f_cnt, dedup_key, status, "
                    "error, rssi, snr, sf, raw")


def charter_ddl() -> list[str]:
    """Version 3, the data charter's tables (issue 10): API keys and the audit log, the same in both stores."""
    return [*keys.ddl(), *audit.ddl()]


def duckdb_migrations() -> list[tuple[int, list[str]]]:
    """Versioned schema steps for DuckDB. Append new steps; never edit a released one."""
    v1 = [
        *_ddl("JSON", "TIMESTAMPTZ"),
        "CREATE SEQUENCE journal_id START 1",
        """CREATE TABLE journal (
            id BIGINT PRIMARY KEY DEFAULT nextval('journal_id'), received_at TIMESTAMPTZ NOT NULL, time TIMESTAMPTZ,
            source VARCHAR NOT NULL, event VARCHAR NOT NULL, fmt VARCHAR NOT NULL, topic VARCHAR, dev_eui VARCHAR,
            f_port INTEGER, f_cnt BIGINT, dedup_key VARCHAR, status VARCHAR NOT NULL, error VARCHAR,
            rssi DOUBLE, snr DOUBLE, sf SMALLINT, raw BLOB NOT NULL)""",
        # no index on observations: DuckDB's zone maps on insertion-ordered time serve range scans, and an ART
        # index would cost most of the insert speed
        """CREATE TABLE observations (device_id INTEGER NOT NULL, quantity_id SMALLINT NOT NULL,
            time TIMESTAMPTZ NOT NULL, value DOUBLE NOT NULL)""",
    ]
    return [(1, v1), (2, alerts.duckdb_ddl()), (3, charter_ddl()), (4, charter_tables.occupancy_ddl()),
            (5, audit.secret_ddl()),
            (6, detector_state.ddl("BLOB")),
            (7, DUCKDB_CITY_SCALE),  # city scale (issue 14)
            (8, alerts.health_ddl()),  # device and network health (issue 13)
            (9, ngsi_sandbox.ddl()),  # NGSI-LD sandbox tenant (issue 11)
            (10, ngsi_subscription_tables.duckdb_ddl()),  # NGSI-LD subscriptions (issue 11)
            (11, leases.ddl()),  # partitioned mode (issue 15)
            (12, health_tables.ddl()),  # which gateways hear which device (issue 13)
            (13, overrides.ddl()),  # settings changed at run time by the departments (issue 16)
            (14, zone_rollup.ddl(zone_rollup.DUCKDB_FILL)),  # per-zone hourly rollup (issue 14)
            (15, health_tables.times_ddl()),  # each device's last heard times, its learned interval (issue 13)
            (16, detector_state.delta_ddl())]  # detector state saved as deltas (issue 9)


# Version 7, both stores: `/healthz` and `/metrics` of a process that only serves counted the journal by status, a
# scan of the whole journal (PostgreSQL: 1.2 s at 820 k uplinks); `journal_tally` holds the counts, added to by each
# batch, replay and deletion, folded into one row per status by the background step (`JOURNAL_TALLY_FOLD`).
JOURNAL_TALLY = [
    "CREATE TABLE journal_tally (status VARCHAR NOT NULL, n BIGINT NOT NULL)",
    "INSERT INTO journal_tally SELECT status, count(*) FROM journal GROUP BY 1",
]
JOURNAL_COUNTS = "SELECT status, CAST(sum(n) AS BIGINT) AS n FROM journal_tally GROUP BY 1 HAVING sum(n) <> 0"


def journal_tally_rows(delta: dict[str, int]) -> list[tuple[str, int]]:
    return [(s, n) for s, n in delta.items() if n]


def replay_status_delta(moved: Iterable[tuple[str, str]]) -> dict[str, int]:
    """The tally's change when replay re-labels journal rows: (old status, new status) pairs."""
    delta: dict[str, int] = {}
    for old, new in moved:
        delta[old] = delta.get(old, 0) - 1
        delta[new] = delta.get(new, 0) + 1
    return delta


# Version 7 (issue 14, city scale), DuckDB. `observations` has no index (an ART index would cost most of the insert
# speed), so a device's latest values were a scan of the whole table: `latest_values` keeps them, upserted by each
# batch (≈ 30 ms per 20,000 rows) and kept exact by replay, retention and erasure. `compacted_days`: the UTC days
# whose rows the compaction step rewrote sorted by (device, quantity, time), so that zone maps prune a device's
# series to a few row groups a day (`DuckDBStore.maintain`).
DUCKDB_CITY_SCALE = [
    """CREATE TABLE latest_values (device_id INTEGER NOT NULL, quantity_id SMALLINT NOT NULL,
        time TIMESTAMPTZ NOT NULL, value DOUBLE NOT NULL, PRIMARY KEY (device_id, quantity_id))""",
    "INSERT INTO latest_values SELECT device_id, quantity_id, max(time), arg_max(value, time) FROM observations "
    "GROUP BY 1, 2",
    "CREATE TABLE compacted_days (day TIMESTAMPTZ PRIMARY KEY)",
    *JOURNAL_TALLY,
]


def postgres_migrations() -> list[tuple[int, list[str]]]:
    """Versioned schema steps for PostgreSQL. Append new steps; never edit a released one."""
    v1 = [
        *_ddl("JSONB", "TIMESTAMPTZ", "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
        # every batch rewrites the last state of its devices: room on each page keeps those updates HOT
        "ALTER TABLE devices SET (fillfactor = 70)",
        "CREATE INDEX devices_zone ON devices (zone)",
        "CREATE INDEX devices_kind ON devices (kind)",
        """CREATE TABLE journal (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, received_at TIMESTAMPTZ NOT NULL,
            time TIMESTAMPTZ, source VARCHAR NOT NULL, event VARCHAR NOT NULL, fmt VARCHAR NOT NULL, topic VARCHAR,
            dev_eui VARCHAR, f_port INTEGER, f_cnt BIGINT, dedup_key VARCHAR, status VARCHAR NOT NULL,
            error VARCHAR, rssi DOUBLE PRECISION, snr DOUBLE PRECISION, sf SMALLINT, raw BYTEA NOT NULL)""",
        # the API lists quarantined/duplicate messages and a device's messages newest first; replay filters by time.
        # Stored messages (nearly all) are listed newest first through the primary key, so the status index leaves
        # them out: one index entry less per message journaled
        "CREATE INDEX journal_status ON journal (status, id) WHERE status <> 'stored'",
        "CREATE INDEX journal_dev_eui ON journal (dev_eui, id)",
        # rows arrive in time order: a BRIN index serves replay's time ranges for almost no write cost
        "CREATE INDEX journal_received ON journal USING brin (received_at)",
        # monthly partitions are created on demand by the store; the default one only catches what slips past
        """CREATE TABLE observations (device_id INTEGER NOT NULL, quantity_id SMALLINT NOT NULL,
            time TIMESTAMPTZ NOT NULL, value DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (device_id, quantity_id, time)) PARTITION BY RANGE (time)""",
        "CREATE TABLE observations_default PARTITION OF observations DEFAULT",
        # rows arrive roughly in time order: a BRIN index lets the rollup step read one hour or day of every device
        # for almost no write cost
        "CREATE INDEX observations_time ON observations USING brin (time) WITH (autosummarize = on)",
        # rollups are rebuilt a bucket at a time by the rollup step (`PostgresStore.maintain`), never per batch
        *(f"""CREATE TABLE rollup_{r} (device_id INTEGER NOT NULL, quantity_id SMALLINT NOT NULL,
            bucket TIMESTAMPTZ NOT NULL, count BIGINT NOT NULL, sum DOUBLE PRECISION NOT NULL,
            min DOUBLE PRECISION NOT NULL, max DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (device_id, quantity_id, bucket))""" for r in ("1h", "1d")),
        # buckets written since they were last rolled up: history reads them from raw rows until the rollup step
        # rebuilds them (a few rows per batch, upserted in the batch's transaction)
        """CREATE TABLE rollup_pending (resolution VARCHAR NOT NULL, bucket TIMESTAMPTZ NOT NULL,
            touched_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (resolution, bucket))""",
        # the quantities each device reports (latest values, quantities in use), kept exact with every batch
        """CREATE TABLE device_quantities (device_id INTEGER NOT NULL, quantity_id SMALLINT NOT NULL,
            PRIMARY KEY (device_id, quantity_id))""",
        # observation rows added (or removed, by replay) per transaction; the rollup step sums them into one row
        "CREATE TABLE observation_tally (n BIGINT NOT NULL)",
        # the time zone the daily rollup was computed in: a change of city time zone rebuilds it
        "CREATE TABLE store_settings (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    ]
    return [(1, v1), (2, alerts.postgres_ddl()), (3, charter_ddl()), (4, charter_tables.occupancy_ddl()),
            (5, audit.secret_ddl()),
            (6, detector_state.ddl("BYTEA")),
            (7, POSTGRES_CITY_SCALE),  # city scale (issue 14)
            (8, alerts.health_ddl()),  # device and network health (issue 13)
            (9, ngsi_sandbox.ddl()),  # NGSI-LD sandbox tenant (issue 11)
            (10, ngsi_subscription_tables.postgres_ddl()),  # NGSI-LD subscriptions (issue 11)
            (11, leases.ddl()),  # partitioned mode (issue 15)
            (12, health_tables.ddl()),  # which gateways hear which device (issue 13)
            (13, overrides.ddl()),  # settings changed at run time by the departments (issue 16)
            (14, zone_rollup.ddl(zone_rollup.POSTGRES_FILL)),  # per-zone hourly rollup (issue 14)
            (15, health_tables.times_ddl()),  # each device's last heard times, its learned interval (issue 13)
            (16, detector_state.delta_ddl())]  # detector state saved as deltas (issue 9)


# Version 7 (issue 14, city scale), PostgreSQL: the journal tally only. Latest values need no table here: the primary
# key (device, quantity, time) gives each in one index probe, and an upserted table would cost each batch ≈ 100 ms
# (as the per-batch rollup upserts did, see `postgres.py`).
POSTGRES_CITY_SCALE = JOURNAL_TALLY


def bucket_sql(resolution: str, timezone: str, col: str = "time") -> str:
    """The start of a row's bucket, the same SQL in both stores: UTC hours, and days of the city's time zone."""
    tz = "UTC" if resolution == "1h" else timezone
    unit = {"1h": "hour", "1d": "day"}[resolution]
    tz_lit = "'" + tz.replace("'", "''") + "'"
    return f"(date_trunc('{unit}', {col} AT TIME ZONE {tz_lit}) AT TIME ZONE {tz_lit})"


def to_psycopg(sql: str) -> str:
    """The shared `?` SQL with psycopg's placeholders (no shared statement contains a literal `?` or `%`)."""
    return sql.replace("?", "%s")


def journal_columns(batch: Batch) -> dict[str, pa.Array]:
    return {
        "received_at": pa.array(batch.j_received, _TS),
        "time": pa.array(batch.j_time, _TS),
        "source": pa.array(batch.j_source, pa.string()),
        "event": pa.array(batch.j_event, pa.string()),
        "fmt": pa.array(batch.j_fmt, pa.string()),
        "topic": pa.array(batch.j_topic, pa.string()),
        "dev_eui": pa.array(batch.j_eui, pa.string()),
        "f_port": pa.array(batch.j_fport, pa.int32()),
        "f_cnt": pa.array(batch.j_fcnt, pa.int64()),
        "dedup_key": pa.array(batch.j_dedup, pa.string()),
        "status": pa.array(batch.j_status, pa.string()),
        "error": pa.array(batch.j_error, pa.string()),
        "rssi": pa.array(batch.j_rssi, pa.float64()),
        "snr": pa.array(batch.j_snr, pa.float64()),
        "sf": pa.array(batch.j_sf, pa.int16()),
        "raw": pa.array(batch.j_raw, pa.binary()),
    }


def _json(v: Any) -> str | None:
    return None if v is None else msgspec.json.encode(v).decode()


def device_state_columns(seen: Iterable[DeviceSeen], ids: dict[str, int]) -> dict[str, pa.Array]:
    """Last state of the devices of a batch; registry fields only fill what the registry left empty."""
    seen = list(seen)
    return {
        "id": pa.array([ids[d.eui] for d in seen], pa.int32()),
        "last_seen": pa.array([d.last_seen for d in seen], _TS),
        "f_cnt": pa.array([d.f_cnt for d in seen], pa.int64()),
        "rssi": pa.array([d.rssi for d in seen], pa.float64()),
        "snr": pa.array([d.snr for d in seen], pa.float64()),
        "name": pa.array([d.name for d in seen], pa.string()),
        "profile": pa.array([d.profile for d in seen], pa.string()),
        "kind": pa.array([d.kind for d in seen], pa.string()),
        "decoder": pa.array([d.decoder for d in seen], pa.string()),
        "zone": pa.array([d.zone for d in seen], pa.string()),
        "lat": pa.array([d.lat for d in seen], pa.float64()),
        "lon": pa.array([d.lon for d in seen], pa.float64()),
        "tags": pa.array([_json(d.tags) for d in seen], pa.string()),
        "attributes": pa.array([_json(d.attributes) for d in seen], pa.string()),
    }


def device_state_update(json: str = "JSON", key: str = "id") -> str:
    """Refresh devices from the `seen` rows of a batch, matched on `key` (id in DuckDB, eui in PostgreSQL).

    Network-server facts (name, profile, tags) follow the network server; fields a city set by import stay, and so
    do tags the city changed at run time (a `devices.<eui>.tags` row of the settings history, `selfservice.tags`).
    The last radio state moves only forward in time, so a late or replayed uplink does not roll it back.
    """
    newer = "s.last_seen >= coalesce(devices.last_seen, s.last_seen)"
    return f"""
UPDATE devices SET
  last_seen = greatest(coalesce(devices.last_seen, s.last_seen), s.last_seen),
  first_seen = least(coalesce(devices.first_seen, s.last_seen), s.last_seen),
  last_f_cnt = CASE WHEN {newer} THEN coalesce(s.f_cnt, devices.last_f_cnt) ELSE devices.last_f_cnt END,
  last_rssi = CASE WHEN {newer} THEN coalesce(s.rssi, devices.last_rssi) ELSE devices.last_rssi END,
  last_snr = CASE WHEN {newer} THEN coalesce(s.snr, devices.last_snr) ELSE devices.last_snr END,
  name = CASE WHEN s.name <> '' THEN s.name ELSE devices.name END,
  profile = CASE WHEN s.profile <> '' THEN s.profile ELSE devices.profile END,
  kind = CASE WHEN coalesce(devices.kind, '') IN ('', 'generic') AND s.kind <> '' THEN s.kind ELSE devices.kind END,
  decoder = CASE WHEN s.decoder <> '' THEN s.decoder ELSE devices.decoder END,
  zone = CASE WHEN coalesce(devices.zone, '') = '' THEN s.zone ELSE devices.zone END,
  lat = coalesce(devices.lat, s.lat),
  lon = coalesce(devices.lon, s.lon),
  tags = CASE WHEN s.tags IS NULL OR EXISTS (SELECT 1 FROM settings_overrides o
                                           WHERE o.path = 'devices.' || devices.eui || '.tags')
              THEN devices.tags ELSE s.tags::{json} END,
  attributes = coalesce(s.attributes::{json}, devices.attributes)
FROM seen s WHERE devices.{key} = s.{key}
"""


DEVICE_STATE_UPDATE = device_state_update()

# The last time a device was heard and its radio state; it moves only forward in time, so a late or replayed
# uplink does not roll it back. `source` gives one row per device: eui, t, f_cnt, rssi, snr.
def device_heard_update(source: str) -> str:
    return f"""
UPDATE devices SET
  last_seen = greatest(coalesce(devices.last_seen, r.t), r.t),
  first_seen = least(coalesce(devices.first_seen, r.t), r.t),
  last_f_cnt = CASE WHEN r.t >= coalesce(devices.last_seen, r.t) THEN coalesce(r.f_cnt, devices.last_f_cnt)
                    ELSE devices.last_f_cnt END,
  last_rssi = CASE WHEN r.t >= coalesce(devices.last_seen, r.t) THEN coalesce(r.rssi, devices.last_rssi)
                   ELSE devices.last_rssi END,
  last_snr = CASE WHEN r.t >= coalesce(devices.last_seen, r.t) THEN coalesce(r.snr, devices.last_snr)
                  ELSE devices.last_snr END
FROM {source} r WHERE devices.eui = r.eui
"""


# DuckDB: from a batch's journal rows (`j_batch`); every message of a device counts except duplicates.
DEVICE_HEARD_UPDATE = device_heard_update("""(
  SELECT dev_eui AS eui, max(time) AS t,
         arg_max(f_cnt, time) FILTER (WHERE event = 'up' AND f_cnt IS NOT NULL) AS f_cnt,
         arg_max(rssi, time) FILTER (WHERE rssi IS NOT NULL) AS rssi,
         arg_max(snr, time) FILTER (WHERE snr IS NOT NULL) AS snr
  FROM j_batch WHERE status <> 'duplicate' AND dev_eui IS NOT NULL AND time IS NOT NULL
  GROUP BY dev_eui)""")

# registry fields, in `registry_row` order after the id; an import rewrites them and never the last state
REGISTRY_COLS = ("eui", "name", "kind", "decoder", "profile", "zone", "lat", "lon", "data_class",
                 "expected_interval_s", "subscriber", "premises_use", "tags")
DEVICE_UPSERT_SET = "ON CONFLICT (eui) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in REGISTRY_COLS if c != "eui")
DEVICE_UPSERT = (
    f"INSERT INTO devices (id, {', '.join(REGISTRY_COLS)}) VALUES ({', '.join('?' * (len(REGISTRY_COLS) + 1))}) "
    + DEVICE_UPSERT_SET
)


def registry_row(new_id: int, d: Device) -> tuple[Any, ...]:
    return (new_id, d.eui, d.name, d.kind, d.decoder, d.profile, d.zone, d.lat, d.lon, d.data_class,
            d.expected_interval_s, d.subscriber, d.premises_use, _json(d.tags))


DEVICE_SELECT = (
    "SELECT d.id, d.eui, d.name, d.kind, d.decoder, d.profile, d.zone, d.lat, d.lon, d.data_class, "
    "d.expected_interval_s, d.subscriber, d.premises_use, d.tags, d.attributes, d.first_seen, d.last_seen, "
    "d.last_f_cnt, d.last_rssi, d.last_snr FROM devices d"
)


# what a device's class depends on (`Classifier.device`), as one text: a group of `device_groups`
DEVICE_GROUP_KEY = ("concat_ws(chr(31), coalesce(d.data_class, ''), coalesce(d.kind, ''), "
                    "coalesce(d.premises_use, ''))")


def device_group_key(data_class: str, kind: str, premises_use: str) -> str:
    return "\x1f".join((data_class, kind, premises_use))


def device_filter(kind: str | None, zone: str | None, euis: tuple[str, ...] | None = None,
                  groups: Sequence[tuple[str, str, str]] | None = None) -> tuple[str, list[Any]]:
    """`euis`: only these devices; `groups`: only devices of these (data_class, kind, premises_use) (an empty
    tuple or list: none)."""
    if (euis is not None and not euis) or (groups is not None and not groups):
        return "FALSE", []
    keys = tuple(device_group_key(*g) for g in groups) if groups is not None else None
    return where(("d.kind = ?", kind), ("d.zone = ?", zone), ("d.eui IN (?)", euis),
                 (f"{DEVICE_GROUP_KEY} IN (?)", keys))


def series_filter(euis: tuple[str, ...] | None, kind: str | None,
                  zone: str | None = None) -> tuple[str, list[Any]]:
    """Devices of a bulk history read (`Store.series`, `Store.group_series`): by EUI list, kind and/or zone."""
    return where(("d.eui IN (?)", euis), ("d.kind = ?", kind), ("d.zone = ?", zone))


GROUP_COLS = ("time", "devices", "count", "mean", "min", "max")


def _maybe_json(v: Any) -> Any:
    if isinstance(v, str | bytes):
        return msgspec.json.decode(v) if v else None
    return v


def device_out(r: dict[str, Any]) -> dict[str, Any]:
    """A `DEVICE_SELECT` row (a fresh dict, changed in place: 10,000 of them for a page of the dashboard)."""
    r.pop("id", None)
    r["tags"] = _maybe_json(r.get("tags")) or {}
    r["attributes"] = _maybe_json(r.get("attributes")) or {}
    return r


ZONE_UPSERT = (
    "INSERT INTO zones (id, name, kind, parent, geometry, properties) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, parent = excluded.parent, "
    "geometry = excluded.geometry, properties = excluded.properties"
)
ZONE_SELECT = (
    "SELECT z.id, z.name, z.kind, z.parent, z.geometry, z.properties, "
    "(SELECT count(*) FROM devices d WHERE d.zone = z.id) AS devices FROM zones z ORDER BY z.id"
)


def zone_row(z: Zone) -> tuple[Any, ...]:
    return (z.id, z.name, z.kind, z.parent, _json(z.geometry), _json(z.properties))


def zone_out(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "geometry": _maybe_json(r["geometry"]), "properties": _maybe_json(r["properties"]) or {}}


def latest_out(r: dict[str, Any]) -> dict[str, Any]:
    q = QUANTITY_BY_ID[r["quantity_id"]]
    return {"quantity": q.key, "unit": q.unit, "time": r["time"], "value": r["value"]}


def latest_by_eui(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """(eui, quantity_id, time, value) rows, ordered by EUI then quantity id, as `Store.latest_many` returns them."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["eui"], []).append(latest_out(r))
    return out


def journal_filter(statuses: tuple[str | None, ...], dev_eui: str | None, since: datetime | None,
                   until: datetime | None) -> tuple[str, list[Any]]:
    return where(("status IN (?)", tuple(s for s in statuses if s)), ("dev_eui = ?", dev_eui),
                 ("received_at >= ?", since), ("received_at < ?", until))


def journal_out(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    raw = bytes(r.pop("raw") or b"")
    r["raw_size"] = len(raw)
    if r["fmt"] == "json":
        r["raw"] = raw[:4096].decode("utf-8", "replace")
    else:
        r["raw_hex"] = raw[:2048].hex()
    return r
