"""Tables and row shapes shared by both stores. SQL here uses `?` placeholders (psycopg's `%s` is derived).

Tables: devices, quantities, zones, journal (every message, raw), observations (narrow rows), device_events.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
import pyarrow as pa

from clapas.model import QUANTITY_BY_ID, Device, Zone
from clapas.store.base import Batch, DeviceSeen

_TS = pa.timestamp("us", tz="UTC")

DEVICE_FIELDS = (
    "name", "kind", "decoder", "profile", "zone", "lat", "lon", "data_class", "expected_interval_s",
    "subscriber", "premises_use",
)


def _ddl(json: str, ts: str) -> list[str]:
    return [
        f"""CREATE TABLE devices (
            id INTEGER PRIMARY KEY, eui VARCHAR NOT NULL UNIQUE, name VARCHAR DEFAULT '', kind VARCHAR DEFAULT '',
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
    return [(1, v1)]


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


DEVICE_INSERT = (
    "INSERT INTO devices (id, eui, name, kind, decoder, profile, zone, lat, lon, tags, first_seen) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def device_row(new_id: int, d: DeviceSeen) -> tuple[Any, ...]:
    return (new_id, d.eui, d.name, d.kind, d.decoder, d.profile, d.zone, d.lat, d.lon, _json(d.tags or {}),
            d.last_seen)


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


# Network-server facts (name, profile, tags) follow the network server; fields a city set by import stay.
DEVICE_STATE_UPDATE = """
UPDATE devices SET
  last_seen = greatest(coalesce(devices.last_seen, s.last_seen), s.last_seen),
  first_seen = least(coalesce(devices.first_seen, s.last_seen), s.last_seen),
  last_f_cnt = coalesce(s.f_cnt, devices.last_f_cnt),
  last_rssi = coalesce(s.rssi, devices.last_rssi),
  last_snr = coalesce(s.snr, devices.last_snr),
  name = CASE WHEN s.name <> '' THEN s.name ELSE devices.name END,
  profile = CASE WHEN s.profile <> '' THEN s.profile ELSE devices.profile END,
  kind = CASE WHEN coalesce(devices.kind, '') IN ('', 'generic') AND s.kind <> '' THEN s.kind ELSE devices.kind END,
  decoder = CASE WHEN s.decoder <> '' THEN s.decoder ELSE devices.decoder END,
  zone = CASE WHEN coalesce(devices.zone, '') = '' THEN s.zone ELSE devices.zone END,
  lat = coalesce(devices.lat, s.lat),
  lon = coalesce(devices.lon, s.lon),
  tags = coalesce(s.tags::JSON, devices.tags),
  attributes = coalesce(s.attributes::JSON, devices.attributes)
FROM seen s WHERE devices.id = s.id
"""

DEVICE_UPSERT = (
    "INSERT INTO devices (id, eui, name, kind, decoder, profile, zone, lat, lon, data_class, expected_interval_s, "
    "subscriber, premises_use, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (eui) DO UPDATE SET name = excluded.name, kind = excluded.kind, decoder = excluded.decoder, "
    "profile = excluded.profile, zone = excluded.zone, lat = excluded.lat, lon = excluded.lon, "
    "data_class = excluded.data_class, expected_interval_s = excluded.expected_interval_s, "
    "subscriber = excluded.subscriber, premises_use = excluded.premises_use, tags = excluded.tags"
)


def registry_row(new_id: int, d: Device) -> tuple[Any, ...]:
    return (new_id, d.eui, d.name, d.kind, d.decoder, d.profile, d.zone, d.lat, d.lon, d.data_class,
            d.expected_interval_s, d.subscriber, d.premises_use, _json(d.tags))


DEVICE_SELECT = (
    "SELECT d.id, d.eui, d.name, d.kind, d.decoder, d.profile, d.zone, d.lat, d.lon, d.data_class, "
    "d.expected_interval_s, d.subscriber, d.premises_use, d.tags, d.attributes, d.first_seen, d.last_seen, "
    "d.last_f_cnt, d.last_rssi, d.last_snr FROM devices d"
)


def device_filter(kind: str | None, zone: str | None) -> tuple[str, list[Any]]:
    clauses, params = ["TRUE"], []
    if kind:
        clauses.append("d.kind = ?")
        params.append(kind)
    if zone:
        clauses.append("d.zone = ?")
        params.append(zone)
    return " AND ".join(clauses), params


def _maybe_json(v: Any) -> Any:
    if isinstance(v, str | bytes):
        return msgspec.json.decode(v) if v else None
    return v


def device_out(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
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


def journal_filter(statuses: tuple[str | None, ...], dev_eui: str | None, since: datetime | None,
                   until: datetime | None) -> tuple[str, list[Any]]:
    clauses, params = ["TRUE"], []
    statuses = tuple(s for s in statuses if s)
    if statuses:
        clauses.append("status IN (" + ", ".join("?" for _ in statuses) + ")")
        params.extend(statuses)
    if dev_eui:
        clauses.append("dev_eui = ?")
        params.append(dev_eui)
    if since:
        clauses.append("received_at >= ?")
        params.append(since)
    if until:
        clauses.append("received_at < ?")
        params.append(until)
    return " AND ".join(clauses), params


def journal_out(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    raw = bytes(r.pop("raw") or b"")
    r["raw_size"] = len(raw)
    if r["fmt"] == "json":
        r["raw"] = raw[:4096].decode("utf-8", "replace")
    else:
        r["raw_hex"] = raw[:2048].hex()
    return r
