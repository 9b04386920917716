"""The alert routes with TestClient over a real DuckDB store: filters, history, actions, errors, the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from clapas.alerts.routing import Router
from clapas.api.app import create_app
from clapas.config import AlertSettings, Settings, WebhookSettings
from clapas.store.alerts import AlertChange
from clapas.store.duckdb import DuckDBStore
from tests.helpers import as_local

T0 = datetime(2026, 6, 3, 4, tzinfo=UTC)
DEV = "e4403dac812d9fc5"


@pytest.fixture
def client(tmp_path) -> Iterator[tuple[TestClient, DuckDBStore]]:
    store = DuckDBStore(f"duckdb:///{tmp_path}/api.duckdb")
    settings = Settings(alerts=AlertSettings(webhook=WebhookSettings(url="http://127.0.0.1:9/h")))
    store.apply_alert_changes([
        AlertChange("water.continuous_flow", DEV, "open", T0, "major", {"min_hourly_flow_lph": 18.0}, "leak",
                    "device", "dma-01"),
        AlertChange("water.district_night_flow", "dma-02", "open", T0.replace(hour=5), "warning", {"rise": 1.0},
                    "rise", "zone", "dma-02"),
    ], Router.from_settings(settings.alerts))
    with TestClient(as_local(create_app(store, settings))) as c:
        yield c, store
    store.close()


def test_list_and_filter(client) -> None:
    c, _ = client
    body = c.get("/api/v1/alerts").json()
    assert [a["subject"] for a in body["alerts"]] == ["dma-02", DEV]  # newest first among open alerts
    assert [a["id"] for a in c.get("/api/v1/alerts", params={"device": DEV.upper()}).json()["alerts"]] == [1]
    assert [a["id"] for a in c.get("/api/v1/alerts", params={"zone": "dma-02"}).json()["alerts"]] == [2]
    assert [a["id"] for a in c.get("/api/v1/alerts", params={"rule": "water.continuous_flow"}).json()["alerts"]] == [1]
    assert [a["id"] for a in c.get("/api/v1/alerts", params={"from": "2026-06-03T04:30:00Z"}).json()["alerts"]] == [2]
    assert [a["id"] for a in c.get("/api/v1/alerts", params={"to": "2026-06-03T04:30:00"}).json()["alerts"]] == [1]
    assert c.get("/api/v1/alerts", params={"state": "resolved"}).json()["alerts"] == []
    assert len(c.get("/api/v1/alerts", params={"state": "active", "limit": 1}).json()["alerts"]) == 1


def test_lifecycle_over_http_with_history_and_notifications(client) -> None:
    c, _ = client
    r = c.post("/api/v1/alerts/1/ack", json={"author": "ana", "text": "on my way"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert c.post("/api/v1/alerts/1/ack").status_code == 409
    r = c.post("/api/v1/alerts/1/comments", json={"author": "ana", "text": "cistern valve replaced"})
    assert r.status_code == 201
    r = c.post("/api/v1/alerts/1/resolve", json={"author": "ana"})
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    assert c.post("/api/v1/alerts/1/resolve").json() == {
        "error": {"status": 409, "message": "alert 1 is already resolved"}}
    a = c.get("/api/v1/alerts/1").json()
    assert [(e["kind"], e["author"]) for e in a["events"]] == [
        ("opened", "clapas"), ("acknowledged", "ana"), ("commented", "ana"), ("resolved", "ana")]
    assert a["events"][-1]["data"] == {"how": "manual"}
    assert [a["state"] for a in c.get("/api/v1/alerts").json()["alerts"]] == ["open", "resolved"]
    # opened (both alerts), acknowledged and resolved went to the webhook's outbox; comments are not notified
    events = sorted(n["event"] for n in c.get("/api/v1/notifications").json()["notifications"])
    assert events == ["acknowledged", "opened", "opened", "resolved"]
    pending = c.get("/api/v1/notifications", params={"status": "pending", "alert": 1}).json()["notifications"]
    assert {n["event"] for n in pending} == {"opened", "acknowledged", "resolved"}
    assert c.get("/api/v1/notifications", params={"status": "dead"}).json()["notifications"] == []


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("get", "/api/v1/alerts/99", None, 404),
    ("post", "/api/v1/alerts/99/ack", None, 404),
    ("post", "/api/v1/alerts/99/resolve", None, 404),
    ("post", "/api/v1/alerts/99/comments", {"author": "a", "text": "t"}, 404),
    ("get", "/api/v1/alerts/abc", None, 422),
    ("get", "/api/v1/alerts?state=closed", None, 422),
    ("get", "/api/v1/alerts?from=yesterday", None, 422),
    ("get", "/api/v1/alerts?limit=0", None, 422),
    ("post", "/api/v1/alerts/1/comments", {"author": "a"}, 422),
    ("post", "/api/v1/alerts/1/comments", {"author": 3, "text": "t"}, 422),
    ("get", "/api/v1/notifications?status=lost", None, 422),
])
def test_errors_are_json(client, method, path, body, status) -> None:
    c, _ = client
    r = getattr(c, method)(path, **({"json": body} if body is not None else {}))
    assert r.status_code == status, r.text
    assert r.json()["error"]["status"] == status and r.json()["error"]["message"]
