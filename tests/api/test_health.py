"""/api/v1/health and the maintenance CSV over a DuckDB store holding health alerts; Prometheus fleet gauges."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.api.health import maintenance_csv, summary
from clapas.charter import Caller
from clapas.config import Settings
from clapas.model import Device
from clapas.store.alerts import AlertChange
from clapas.store.base import open_store
from tests.helpers import as_local

T0 = datetime(2026, 8, 3, 12, tzinfo=UTC)
A, B, M = "70b3d50000000001", "70b3d50000000002", "70b3d50000000003"


def _store(path: Path):
    store = open_store(f"duckdb:///{path}")
    store.upsert_devices([
        Device(eui=A, name="Météo rue 1", kind="weather_station", zone="dma-01", lat=43.6, lon=3.87),
        Device(eui=B, name="Air 1", kind="air_quality", zone="dma-02"),
        Device(eui=M, name="Compteur 1", kind="water_meter", zone="dma-01", data_class="personal")])
    ch = [AlertChange("heat.heat_stress", A, "open", T0, "warning", {}, "hot", "device", "dma-01"),
          AlertChange("health.silent", A, "open", T0 + timedelta(hours=1), "warning", {}, "no uplink", "device",
                      "dma-01"),
          AlertChange("health.battery_low", B, "open", T0, "warning", {"forecast_date": "2026-09-01"}, "3.25 V",
                      "device", "dma-02"),
          AlertChange("health.radio", M, "open", T0, "critical", {}, "2 dB", "device", "dma-01"),
          AlertChange("health.gateway_offline", "gw-a", "open", T0, "major",
                      {"orphaned_count": 20, "lost_redundancy_count": 30}, "offline", "gateway", "")]
    store.apply_alert_changes(ch)
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    s = _store(tmp_path_factory.mktemp("health-api") / "h.duckdb")
    yield s
    s.close()


def test_fleet_summary(store) -> None:
    with TestClient(as_local(create_app(store, Settings()))) as c:
        r = c.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["problems"] == {"silent": 1, "low_battery": 1, "weak_radio": 1, "gateway_offline": 1}
    assert body["by_kind"]["weather_station"] == {"silent": 1} and body["by_zone"]["dma-01"] == {
        "silent": 1, "weak_radio": 1}
    assert body["gateways"][0]["gateway"] == "gw-a" and body["gateways"][0]["orphaned"] == 20
    assert {x["eui"] for x in body["listed"]} == {A, B, M}
    assert body["stale_alerts"] == 1  # the silent station's heat alert


def test_personal_devices_counted_not_listed_without_the_scope(store) -> None:
    network_team = Caller(actor="noc", role="operator", scopes=frozenset({"open:read", "restricted:read"}))
    body = summary(store, network_team)
    assert {x["eui"] for x in body["listed"]} == {A, B} and body["withheld"] == 1
    assert body["problems"]["weak_radio"] == 1
    assert M not in maintenance_csv(store, network_team)


def test_maintenance_csv(store) -> None:
    with TestClient(as_local(create_app(store, Settings()))) as c:
        r = c.get("/api/v1/health/maintenance.csv", headers={"Accept-Language": "en"})
        assert c.get("/api/v1/health", params={"format": "csv", "lang": "en"}).text == r.text
        fr = c.get("/api/v1/health/maintenance.csv")  # a French city's default
    # the same columns, the people's texts in French
    assert fr.headers["content-language"] == "fr" and fr.text.splitlines()[0] == r.text.splitlines()[0]
    assert {x["eui"]: x for x in csv.DictReader(io.StringIO(fr.text))}[A]["action"] == (
        "vérifier le capteur (alimentation, antenne, dégâts)")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 4 and [x["since"] for x in rows] == sorted(x["since"] for x in rows)
    by = {x["eui"]: x for x in rows}
    assert by[A]["zone"] == "dma-01" and by[A]["lat"] == "43.6" and by[A]["action"].startswith("check the device")
    assert by[B]["forecast_date"] == "2026-09-01" and by["gw-a"]["kind"] == "gateway"


def test_anonymous_callers_are_refused(store) -> None:
    with TestClient(create_app(store, Settings())) as c:
        assert c.get("/api/v1/health").status_code == 401


def test_fleet_gauges() -> None:
    from prometheus_client import REGISTRY, generate_latest

    from clapas.detectors.health import HealthDetector

    det = HealthDetector()
    det.silent = {"x": 1.0}
    det.publish()
    text = generate_latest(REGISTRY).decode()
    assert 'clapas_health_devices{problem="silent"} 1.0' in text
    assert 'clapas_health_gateways{state="offline"} 0.0' in text
