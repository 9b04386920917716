"""Erasure, then a full `clapas replay`: nothing of the erased device (or subscriber) in any text column of any
table of either store (the audit log included: it names devices by keyed pseudonyms), nothing of any other device
touched (§8.6: erasure reaches every table, the raw-frame journal included). And a change of occupant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clapas.charter.audit import AuditEntry
from clapas.charter.jobs import run_erasure
from clapas.config import Settings
from clapas.connectors import chirpstack
from clapas.pipeline.ingest import Pipeline
from clapas.pipeline.replay import replay
from clapas.simulator.city import build_city
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store.alerts import AlertChange
from clapas.store.base import Store
from tests.store.test_store import make_store  # noqa: F401 - the fixture that opens both stores

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 2


@pytest.fixture
def city_store(make_store) -> tuple[Store, Any]:  # noqa: F811 - the imported fixture, by name
    city = build_city(seed=7, devices=24).only("water_meter", "district_meter", "weather_station")
    store = make_store()
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    pipeline = Pipeline(store)
    feed(pipeline, Simulation(city, T0, T0 + timedelta(days=DAYS), seed=7).messages())
    homes = [d.device for d in city.devices if d.device.data_class == "personal"]
    # a frame that never parsed, naming the device (quarantined with no EUI), and alerts with notifications
    pipeline.submit(chirpstack.message(b'{"deviceInfo": {"devEui": "' + homes[0].eui.encode() + b'"', T0,
                                       topic="application/x/device/unknown/event/up"))
    pipeline.close()
    at = T0 + timedelta(hours=3)
    store.apply_alert_changes([AlertChange("water.continuous_flow", h.eui, "open", at, message=f"leak {h.eui}")
                               for h in homes[:2]], route=lambda rule, kind: ["webhook"], now=at)
    if hasattr(store, "maintain"):
        store.maintain(settle_s=0)
    return store, homes


def text_columns(store: Store) -> list[tuple[str, str, str]]:
    if store.url.startswith("duckdb"):
        rows = store.sql("SELECT table_name AS t, column_name AS c, data_type AS k FROM information_schema.columns "
                         "WHERE table_schema = 'main'")
        return [(r["t"], r["c"], r["k"]) for r in rows if r["k"] in ("VARCHAR", "JSON", "BLOB")]
    rows = store.sql("SELECT c.table_name AS t, c.column_name AS c, c.data_type AS k FROM information_schema.columns c "
                     "JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = "
                     "c.table_schema WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'")
    return [(r["t"], r["c"], r["k"]) for r in rows if r["k"] in ("character varying", "text", "jsonb", "bytea")]


def mentions(store: Store, needle: str) -> dict[str, int]:
    """Rows of every table whose text (JSON, raw bytes) holds `needle`, lower or upper case."""
    found: dict[str, int] = {}
    pg = not store.url.startswith("duckdb")
    for table, col, kind in text_columns(store):
        if pg and kind == "bytea":
            cond = f"position(convert_to(%s, 'UTF8') in {col}) > 0 OR position(convert_to(%s, 'UTF8') in {col}) > 0"
        elif pg:
            cond = f"{col}::text LIKE %s OR {col}::text LIKE %s"
        else:
            cond = f"CAST({col} AS VARCHAR) LIKE ? OR CAST({col} AS VARCHAR) LIKE ?"
        args = [needle.lower(), needle.upper()] if pg and kind == "bytea" else [f"%{needle.lower()}%",
                                                                                 f"%{needle.upper()}%"]
        n = store.sql(f"SELECT count(*) AS n FROM {table} WHERE {cond}", args)[0]["n"]
        if n:
            found[f"{table}.{col}"] = n
    return found


def others(store: Store, erased: set[str]) -> dict[str, Any]:
    """What every other device has, table by table."""
    obs = store.sql("SELECT d.eui, count(*) AS n, sum(o.value) AS s FROM observations o JOIN devices d "
                    "ON d.id = o.device_id GROUP BY d.eui")
    jour = store.sql("SELECT dev_eui, status, count(*) AS n FROM journal WHERE dev_eui IS NOT NULL "
                     "GROUP BY dev_eui, status")
    reg = store.sql("SELECT eui, subscriber, premises_use, lat, lon, zone FROM devices")
    return {
        "observations": {r["eui"]: (r["n"], round(r["s"], 6)) for r in obs if r["eui"] not in erased},
        "journal": {(r["dev_eui"], r["status"]): r["n"] for r in jour if r["dev_eui"] not in erased},
        "devices": sorted(tuple(r.values()) for r in reg if r["eui"] not in erased),
        "alerts": sorted((a["rule"], a["subject"]) for a in store.alerts(limit=1000) if a["subject"] not in erased),
        "notifications": len([n for n in store.notifications(limit=1000) if n["payload"]["alert"]["subject"]
                              not in erased]),
    }


def same_rows(after: dict[str, Any], before: dict[str, Any]) -> bool:
    """The same rows after a replay: values may differ where a device sent two readings of one time (PostgreSQL
    keeps the first one inserted, and a replay inserts them anew), so observations compare by count."""
    counts = {k: {e: v[0] for e, v in d["observations"].items()} for k, d in (("a", after), ("b", before))}
    return counts["a"] == counts["b"] and {k: v for k, v in after.items() if k != "observations"} == {
        k: v for k, v in before.items() if k != "observations"}


def test_an_erased_device_is_nowhere_even_after_a_full_replay(city_store) -> None:
    store, homes = city_store
    target, neighbour = homes[0], homes[1]
    assert mentions(store, target.eui) and mentions(store, target.subscriber)
    before = others(store, {target.eui})
    # an API key read it (the audit layer writes this on a read): the audit log names it, by its pseudonym only
    store.append_audit([AuditEntry("read", "partner-key", via="key", key_id="k-partner", route="/api/v1/devices/{eui}",
                                        data_class="personal", row_count=1, subjects=[target.eui.upper()],
                                        status=200)])
    assert "audit_log.subjects" not in mentions(store, target.eui)
    assert mentions(store, store.audit_pseudonym(target.eui)) == {"audit_log.subjects": 1}
    dry = run_erasure(store, request="DPO-2026-001", eui=target.eui, dry_run=True)
    assert dry.deleted["observations"] > 0 and dry.deleted["journal"] > 0 and mentions(store, target.eui)
    report = run_erasure(store, request="DPO-2026-001", eui=target.eui)
    assert report.deleted == dry.deleted
    assert {t: report.deleted[t] for t in ("devices", "alerts", "notifications")} == {
        "devices": 1, "alerts": 1, "notifications": 1}
    assert [r["key_id"] for r in report.readers] == ["k-partner"]
    assert mentions(store, target.eui) == {} and mentions(store, target.subscriber) == {}
    assert others(store, {target.eui}) == before  # nothing else touched, to the value
    result = replay(store, Settings())
    assert result["replayed"] > 0
    if hasattr(store, "maintain"):
        store.maintain(settle_s=0)
    assert mentions(store, target.eui) == {} and mentions(store, target.subscriber) == {}
    assert same_rows(others(store, {target.eui}), before)
    assert store.device(neighbour.eui)["subscriber"] == neighbour.subscriber
    # the erasure is in the audit log, without values: what request, which tables, how many rows
    entry = store.audit_entries(event="erasure")[0]
    assert entry["detail"]["request"] == "DPO-2026-001" and entry["detail"]["deleted"] == report.deleted
    assert target.subscriber not in str(entry) and store.verify_audit().ok
    assert store.counts()["observations"] == store.sql("SELECT count(*) AS n FROM observations")[0]["n"]


def test_a_change_of_occupant_then_the_previous_occupant_erased(city_store) -> None:
    store, homes = city_store
    home = homes[2]
    moved = T0 + timedelta(days=1)
    store.reassign(home.eui, "AB-NEW-000001", moved)
    assert store.occupant_since(home.eui) == moved
    assert [(p["subscriber"], p["since"], p["until"]) for p in store.occupancy(home.eui)] == [
        (home.subscriber, None, moved), ("AB-NEW-000001", moved, None)]
    before = others(store, {home.eui})
    kept_before = store.observations(home.eui, "water.volume", moved, T0 + timedelta(days=DAYS + 1))
    report = run_erasure(store, request="DPO-2026-002", subscriber=home.subscriber)
    assert [(t["eui"], t["hi"]) for t in report.targets] == [(home.eui, moved)]
    assert mentions(store, home.subscriber) == {}
    assert store.observations(home.eui, "water.volume", T0 - timedelta(days=1), moved) == []
    assert store.observations(home.eui, "water.volume", moved, T0 + timedelta(days=DAYS + 1)) == kept_before
    assert others(store, {home.eui}) == before
    replay(store, Settings())
    assert store.observations(home.eui, "water.volume", T0 - timedelta(days=1), moved) == []
    assert mentions(store, home.subscriber) == {}
    assert store.device(home.eui)["subscriber"] == "AB-NEW-000001"
    assert same_rows(others(store, {home.eui}), before)
    with pytest.raises(ValueError, match="after"):
        store.reassign(home.eui, "AB-LATER", moved - timedelta(hours=1))


def test_a_device_erased_before_a_date_keeps_its_later_history(city_store) -> None:
    store, homes = city_store
    home, cut = homes[3], T0 + timedelta(days=1, hours=5, minutes=30)  # mid-hour: its buckets are rebuilt
    end = T0 + timedelta(days=DAYS + 1)
    later = store.observations(home.eui, "water.volume", cut, end)
    before = others(store, {home.eui})
    report = run_erasure(store, request="DPO-2026-003", eui=home.eui, before=cut)
    assert "devices" not in report.deleted and store.device(home.eui)["subscriber"] == home.subscriber
    assert store.observations(home.eui, "water.volume", T0 - timedelta(days=1), cut) == []
    assert store.observations(home.eui, "water.volume", cut, end) == later
    assert all((u["time"] or u["received_at"]) >= cut for u in store.uplinks(dev_eui=home.eui, limit=1000))
    replay(store, Settings())
    if hasattr(store, "maintain"):
        store.maintain(settle_s=0)
    assert store.observations(home.eui, "water.volume", T0 - timedelta(days=1), cut) == []
    assert store.observations(home.eui, "water.volume", cut, end) == later
    # hourly and daily buckets agree with the rows left (PostgreSQL rebuilt the ones the cut went through)
    for res in ("1h", "1d"):
        buckets = store.observations(home.eui, "water.volume", T0 - timedelta(days=1), end, resolution=res)
        assert sum(b["count"] for b in buckets) == len(later)
        assert min(b["min"] for b in buckets) == min(p["value"] for p in later)
    assert same_rows(others(store, {home.eui}), before)
