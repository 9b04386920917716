"""Every failure answers JSON `{"error": {"status", "message"}}` with the right status and a useful message."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.config import Settings
from clapas.store.duckdb import DuckDBStore
from tests.helpers import as_local

from .city import ROOM, STATION


def error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    return body["error"]["message"]


@pytest.mark.parametrize("url", [
    "/api/v1/devices/ffffffffffffffff",
    "/api/v1/devices/not-a-device",
    "/api/v1/devices/ffffffffffffffff/observations?quantity=air.temperature",
])
def test_unknown_device_is_404(client: TestClient, url: str) -> None:
    assert "unknown device" in error(client.get(url), 404)


def test_unknown_quantity_is_404(client: TestClient) -> None:
    msg = error(client.get(f"/api/v1/devices/{STATION}/observations?quantity=air.nonsense"), 404)
    assert "unknown quantity 'air.nonsense'" in msg
    msg = error(client.get(f"/api/v1/devices/{ROOM}/observations?quantity=water.volume"), 404)
    assert "no water.volume" in msg and "air.temperature" in msg


@pytest.mark.parametrize(("url", "param"), [
    (f"/api/v1/devices/{STATION}/observations", "quantity"),  # several quantities: must choose
    (f"/api/v1/devices/{STATION}/observations?quantity=air.temperature&from=yesterday", "from"),
    (f"/api/v1/devices/{STATION}/observations?quantity=air.temperature&to=2024-13-45", "to"),
    (f"/api/v1/devices/{STATION}/observations?quantity=air.temperature&resolution=5min", "resolution"),
    (f"/api/v1/devices/{STATION}/observations?quantity=air.temperature"
     "&from=2024-02-02T00:00:00Z&to=2024-02-01T00:00:00Z", "from"),
    ("/api/v1/devices?limit=0", "limit"),
    ("/api/v1/devices?limit=many", "limit"),
    ("/api/v1/devices?offset=-1", "offset"),
    ("/api/v1/devices?latest=true&limit=1000", "limit"),
    ("/api/v1/uplinks?status=lost", "status"),
    ("/api/v1/uplinks?limit=100000", "limit"),
    ("/api/v1/zones?format=kml", "format"),
    ("/api/v1/latest", "device"),
    ("/api/v1/latest?device=,", "device"),
])
def test_bad_parameters_are_422_naming_the_parameter(client: TestClient, url: str, param: str) -> None:
    assert f"'{param}'" in error(client.get(url), 422)


def test_missing_quantity_lists_what_the_device_reports(client: TestClient) -> None:
    msg = error(client.get(f"/api/v1/devices/{STATION}/observations"), 422)
    assert "air.humidity" in msg and "battery" in msg


def test_unknown_route_and_method(client: TestClient) -> None:
    assert "/api/v1/nothing" in error(client.get("/api/v1/nothing"), 404)
    assert "nothing at" in error(client.get("/no/such/page.html"), 404)
    assert "DELETE" in error(client.delete("/api/v1/devices"), 405)


def test_unreachable_store_is_503(tmp_path: Path) -> None:
    store = DuckDBStore(f"duckdb:///{tmp_path / 'gone.duckdb'}")
    store.close()
    with TestClient(as_local(create_app(store, Settings()))) as client:
        assert "store unreachable" in error(client.get("/healthz"), 503)
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "clapas_store_up 0.0" in metrics.text
