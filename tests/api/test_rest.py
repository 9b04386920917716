"""The REST API over a real DuckDB store filled through the real pipeline (see conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from clapas.model import QUANTITIES

from .city import BROKEN, NOW, ROOM, STATION


def test_healthz_counts_everything_received(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["store"] == "duckdb"
    assert body["counts"] == {"stored": 17, "quarantined": 2, "duplicate": 1, "devices": 3,
                              "observations": 12 * 3 + 3 + 2}
    assert body["ingest"]["chirpstack_http"] is True and body["ingest"]["pending"] == 0
    assert client.get("/api/v1/counts").json() == body["counts"]


def test_devices_list_and_filters(client: TestClient) -> None:
    r = client.get("/api/v1/devices")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    devices = r.json()["devices"]
    assert [d["eui"] for d in devices] == [STATION, ROOM, BROKEN]
    station = devices[0]
    assert station["name"] == "Station Comédie" and station["kind"] == "weather_station"
    assert station["zone"] == "ecusson" and station["last_rssi"] == -36.0
    assert station["last_seen"].endswith("Z")

    assert [d["eui"] for d in client.get("/api/v1/devices?kind=indoor_climate").json()["devices"]] == [ROOM]
    assert [d["eui"] for d in client.get("/api/v1/devices?zone=ecusson").json()["devices"]] == [STATION]
    assert client.get("/api/v1/devices?kind=nothing").json()["devices"] == []
    page = client.get("/api/v1/devices?limit=1&offset=1").json()
    assert [d["eui"] for d in page["devices"]] == [ROOM] and page["limit"] == 1 and page["offset"] == 1


def test_devices_with_latest_values(client: TestClient) -> None:
    devices = client.get("/api/v1/devices?latest=true&limit=10").json()["devices"]
    latest = {d["eui"]: {v["quantity"]: (v["value"], v["unit"]) for v in d["latest"]} for d in devices}
    assert latest[ROOM] == {"air.temperature": (21.0, "Cel")}
    assert latest[STATION]["air.humidity"] == (61.0, "%")
    assert latest[BROKEN] == {}
    bulk = client.get(f"/api/v1/latest?device={STATION.upper()},{ROOM},ffffffffffffffff").json()["latest"]
    assert set(bulk) == {STATION, ROOM, "ffffffffffffffff"} and bulk["ffffffffffffffff"] == []
    assert {v["quantity"] for v in bulk[STATION]} == {"air.temperature", "air.humidity", "air.pressure",
                                                      "battery", "radio.margin"}


def test_device_detail_has_latest_values_and_events(client: TestClient) -> None:
    r = client.get(f"/api/v1/devices/{STATION.upper()}")  # any usual EUI spelling
    assert r.status_code == 200
    d = r.json()
    assert d["eui"] == STATION
    latest = {v["quantity"]: v for v in d["latest"]}
    assert latest["air.temperature"]["value"] == 25.5 and latest["air.temperature"]["unit"] == "Cel"
    assert latest["air.pressure"]["value"] == pytest.approx(1013.2)
    assert latest["battery"]["value"] == 87.0 and latest["battery"]["unit"] == "%"
    assert [e["event"] for e in d["events"]] == ["join"]
    assert client.get(f"/api/v1/devices/{STATION}?events=0").json()["events"] == []


def test_raw_observations_default_to_the_last_24_hours(client: TestClient) -> None:
    r = client.get(f"/api/v1/devices/{STATION}/observations?quantity=air.temperature")
    assert r.status_code == 200
    h = r.json()
    assert (h["device"], h["quantity"], h["unit"], h["resolution"]) == (STATION, "air.temperature", "Cel", "raw")
    assert [p["value"] for p in h["points"]] == [20 + i * 0.5 for i in range(12)]
    times = [datetime.fromisoformat(p["time"]) for p in h["points"]]
    assert times == sorted(times) and times[-1] == NOW - timedelta(minutes=30)
    span = datetime.fromisoformat(h["to"]) - datetime.fromisoformat(h["from"])
    assert span == timedelta(hours=24) and h["truncated"] is False


def test_a_single_quantity_device_needs_no_quantity(client: TestClient) -> None:
    h = client.get(f"/api/v1/devices/{ROOM}/observations").json()
    assert h["quantity"] == "air.temperature" and [p["value"] for p in h["points"]] == [19.0, 20.0, 21.0]


def test_hourly_and_daily_aggregates(client: TestClient) -> None:
    # a range returns whole buckets whose start is in it: begin on an hour so that no bucket is cut
    start = (NOW - timedelta(hours=12)).replace(minute=0, second=0, microsecond=0).isoformat()
    hourly = client.get(f"/api/v1/devices/{STATION}/observations",
                        params={"quantity": "air.humidity", "from": start, "resolution": "1h"}).json()
    assert hourly["resolution"] == "1h"
    assert sum(p["count"] for p in hourly["points"]) == 12
    assert all(p["min"] <= p["mean"] <= p["max"] for p in hourly["points"])
    daily = client.get(f"/api/v1/devices/{STATION}/observations",
                       params={"quantity": "air.humidity", "resolution": "1d",
                               "from": (NOW - timedelta(days=3)).isoformat(), "to": NOW.isoformat()}).json()
    assert sum(p["count"] for p in daily["points"]) == 12
    assert min(p["min"] for p in daily["points"]) == 50 and max(p["max"] for p in daily["points"]) == 61
    total = sum(p["mean"] * p["count"] for p in daily["points"])
    assert total == pytest.approx(sum(50 + i for i in range(12)))


def test_time_window_and_offsets(client: TestClient) -> None:
    # the last three uplinks only; an offset written with an unencoded '+' (a space) still parses
    start = (NOW - timedelta(hours=3)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    r = client.get(f"/api/v1/devices/{STATION}/observations?quantity=air.temperature&from={start}")
    assert r.status_code == 200, r.text
    assert [p["value"] for p in r.json()["points"]] == [24.5, 25.0, 25.5]
    naive = (NOW - timedelta(hours=3)).replace(tzinfo=None).isoformat()  # no offset: UTC
    r2 = client.get(f"/api/v1/devices/{STATION}/observations",
                    params={"quantity": "air.temperature", "from": naive})
    assert r2.json()["points"] == r.json()["points"]
    old = client.get(f"/api/v1/devices/{STATION}/observations",
                     params={"quantity": "air.temperature", "to": (NOW - timedelta(days=2)).isoformat()})
    assert old.json()["points"] == []


def test_quantities_catalogue_counts_devices(client: TestClient) -> None:
    rows = client.get("/api/v1/quantities").json()["quantities"]
    assert len(rows) == len(QUANTITIES)
    by_key = {r["key"]: r for r in rows}
    assert by_key["air.temperature"] == {"key": "air.temperature", "unit": "Cel", "label": "air temperature",
                                         "devices": 2}
    assert by_key["water.volume"]["devices"] == 0 and by_key["water.volume"]["unit"] == "m3"
    used = client.get("/api/v1/quantities?in_use=true").json()["quantities"]
    assert {r["key"] for r in used} == {"air.temperature", "air.humidity", "air.pressure", "battery",
                                         "radio.margin"}


def test_zones_geojson_and_plain(client: TestClient) -> None:
    r = client.get("/api/v1/zones")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    feats = {f["id"]: f for f in fc["features"]}
    assert feats["ecusson"]["type"] == "Feature" and feats["ecusson"]["geometry"]["type"] == "Polygon"
    assert feats["ecusson"]["properties"]["devices"] == 1
    assert feats["musee-fabre"]["geometry"] is None and feats["musee-fabre"]["properties"]["kind"] == "museum_room"
    plain = client.get("/api/v1/zones?format=json").json()["zones"]
    assert {z["id"]: z["devices"] for z in plain} == {"ecusson": 1, "musee-fabre": 1}


def test_uplinks_journal_and_quarantine(client: TestClient) -> None:
    q = client.get("/api/v1/uplinks?status=quarantined").json()["uplinks"]
    assert len(q) == 2 and all(u["status"] == "quarantined" and u["error"] for u in q)
    broken = next(u for u in q if u["dev_eui"] == BROKEN)
    assert "truncated Cayenne LPP" in broken["error"] and broken["fmt"] == "json"
    garbage = next(u for u in q if u["dev_eui"] is None)
    assert garbage["raw_hex"] == b"this is not a chirpstack event".hex()
    dup = client.get("/api/v1/uplinks?status=duplicate").json()["uplinks"]
    assert len(dup) == 1 and dup[0]["dev_eui"] == STATION
    mine = client.get(f"/api/v1/uplinks?device={ROOM}").json()["uplinks"]
    assert [u["f_cnt"] for u in mine] == [2, 1, 0]  # newest first
    assert len(client.get("/api/v1/uplinks?limit=5").json()["uplinks"]) == 5
    everything = client.get("/api/v1/uplinks?limit=1000").json()["uplinks"]
    assert len(everything) == 17 + 2 + 1


def test_read_only_app_serves_the_same(readonly_client: TestClient) -> None:
    assert readonly_client.get("/healthz").json()["ingest"] == {"chirpstack_http": False}
    assert len(readonly_client.get("/api/v1/devices").json()["devices"]) == 3


def test_openapi_lists_every_path(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    paths = set(doc["paths"])
    assert {"/healthz", "/metrics", "/api/v1/devices", "/api/v1/devices/{eui}",
            "/api/v1/devices/{eui}/observations", "/api/v1/quantities", "/api/v1/zones", "/api/v1/uplinks",
            "/api/v1/ingest/chirpstack", "/api/v1/latest", "/api/v1/counts"} <= paths
    obs = doc["paths"]["/api/v1/devices/{eui}/observations"]["get"]
    assert {p["name"] for p in obs["parameters"]} >= {"eui", "quantity", "from", "to", "resolution"}
    assert "404" in obs["responses"]
    ingest = doc["paths"]["/api/v1/ingest/chirpstack"]["post"]
    assert set(ingest["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert client.get("/docs").status_code == 200
