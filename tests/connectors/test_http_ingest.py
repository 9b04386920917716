"""The ChirpStack HTTP integration endpoint, end to end: POST → pipeline → store → REST API."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chirpstack_api import integration
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from clapas.api.app import create_app
from clapas.config import ChirpstackSettings, Settings
from clapas.connectors.http_ingest import MAX_BODY_BYTES
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.encoders import cayenne_lpp
from clapas.store.duckdb import DuckDBStore
from tests.helpers import as_local

URL = "/api/v1/ingest/chirpstack"
JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/octet-stream"}
NOW = datetime.now(UTC).replace(microsecond=0)


def event_json(samples: Path, event: str, eui: str, time: datetime, **fields: object) -> bytes:
    """A ChirpStack v4 event from the shared sample, for another device."""
    m = json.loads((samples / "chirpstack" / f"{event}.json").read_text())
    m["deduplicationId"] = str(uuid.uuid4())
    m["time"] = time.isoformat()
    m["deviceInfo"].update(devEui=eui, tags={"decoder": "cayenne_lpp"})
    m.update(fields)
    return json.dumps(m).encode()


def up_json(samples: Path, eui: str, payload: bytes, time: datetime) -> bytes:
    return event_json(samples, "up", eui, time, fPort=1, data=base64.b64encode(payload).decode())


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, Pipeline]]:
    store = DuckDBStore(f"duckdb:///{tmp_path / 'ingest.duckdb'}")
    pipeline = Pipeline(store)
    with TestClient(as_local(create_app(store, Settings(), pipeline))) as client:
        yield client, pipeline
    pipeline.close()
    store.close()


def test_json_uplink_is_accepted_and_stored(setup: tuple[TestClient, Pipeline], samples: Path) -> None:
    client, pipeline = setup
    _, payload = cayenne_lpp({"air.temperature": 23.4, "air.humidity": 41.0})
    body = up_json(samples, "d1d1d1d1d1d1d1d1", payload, NOW - timedelta(minutes=1))
    r = client.post(f"{URL}?event=up", content=body, headers=JSON)
    assert r.status_code == 200
    assert r.json() == {"accepted": True, "durable": "committed", "event": "up", "format": "json",
                        "bytes": len(body)}
    # answered once committed (issue 9): the store holds it already, nothing to wait for
    assert pipeline.pending == 0 and pipeline.counts["stored"] == 1
    latest = {v["quantity"]: v["value"] for v in client.get("/api/v1/devices/d1d1d1d1d1d1d1d1").json()["latest"]}
    assert latest == {"air.temperature": 23.4, "air.humidity": 41.0}
    journal = client.get("/api/v1/uplinks?device=d1d1d1d1d1d1d1d1").json()["uplinks"]
    assert [(u["source"], u["status"], u["fmt"]) for u in journal] == [("chirpstack-http", "stored", "json")]


def test_protobuf_uplink_is_accepted_and_stored(setup: tuple[TestClient, Pipeline]) -> None:
    client, pipeline = setup
    _, payload = cayenne_lpp({"air.temperature": -3.5})
    ev = integration.UplinkEvent(deduplication_id="6f6b7c1e-0000-4000-8000-000000000001", f_port=1, f_cnt=7,
                                 data=payload)
    ev.time.FromDatetime(NOW - timedelta(minutes=2))
    ev.device_info.dev_eui = "d2d2d2d2d2d2d2d2"
    ev.device_info.device_name = "protobuf sensor"
    ev.device_info.tags["decoder"] = "cayenne_lpp"
    ev.rx_info.add(rssi=-101, snr=-4.5)
    body = ev.SerializeToString()
    r = client.post(f"{URL}?event=up", content=body, headers=PROTOBUF)
    assert r.status_code == 200 and r.json()["format"] == "protobuf"
    assert pipeline.drain(timeout=10)
    device = client.get("/api/v1/devices/d2d2d2d2d2d2d2d2").json()
    assert device["name"] == "protobuf sensor" and device["last_rssi"] == -101
    assert device["latest"][0]["quantity"] == "air.temperature" and device["latest"][0]["value"] == -3.5
    history = client.get("/api/v1/devices/d2d2d2d2d2d2d2d2/observations").json()
    assert [p["value"] for p in history["points"]] == [-3.5]


def test_status_event(setup: tuple[TestClient, Pipeline], samples: Path) -> None:
    client, pipeline = setup
    body = event_json(samples, "status", "d3d3d3d3d3d3d3d3", NOW, batteryLevel=64.0, margin=7)
    assert client.post(f"{URL}?event=status", content=body, headers=JSON).status_code == 200
    assert pipeline.drain(timeout=10)
    latest = {v["quantity"]: v["value"] for v in client.get("/api/v1/devices/d3d3d3d3d3d3d3d3").json()["latest"]}
    assert latest == {"battery": 64.0, "radio.margin": 7.0}


def test_garbage_is_accepted_and_quarantined(setup: tuple[TestClient, Pipeline]) -> None:
    client, pipeline = setup
    for body, ctype in ((b'{"deviceInfo": {"devEui": "nope"}}', JSON), (b"\xff\x00garbage", PROTOBUF), (b"", JSON)):
        assert client.post(f"{URL}?event=up", content=body, headers={**ctype}).status_code == 200
    assert pipeline.drain(timeout=10)
    q = client.get("/api/v1/uplinks?status=quarantined").json()["uplinks"]
    assert len(q) == 3 and all(u["source"] == "chirpstack-http" and u["error"] for u in q)
    assert any("DevEUI" in u["error"] for u in q)
    assert client.get("/api/v1/counts").json()["quarantined"] == 3

    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    http = [s for s in families["clapas_messages"].samples
            if s.name == "clapas_messages_total" and s.labels["source"] == "chirpstack-http"
            and s.labels["status"] == "quarantined"]
    assert http and http[0].value >= 3


def test_hostile_bodies_are_quarantined_with_what_is_wrong(setup: tuple[TestClient, Pipeline],
                                                          samples: Path) -> None:
    """Issue 9's measured failures over HTTP: an empty body and a JSON array said to be a protobuf error, a null time
    and a 100 KB device name stored; each now quarantined with a reason naming what is wrong."""
    client, pipeline = setup
    good = json.loads(up_json(samples, "d2d2d2d2d2d2d2d2", b"\x01\x67\x01\x10", NOW - timedelta(minutes=1)))
    name = json.loads(json.dumps(good))
    name["deviceInfo"]["deviceName"] = "n" * 100_000
    cases = [(b"", "empty message (0 bytes)"), (b"[]", "a JSON array where a ChirpStack up event"),
             (json.dumps(good | {"time": None}).encode(), "time: null"),
             (json.dumps(name).encode(), "deviceInfo.deviceName: 100000 characters")]
    for body, _ in cases:
        r = client.post(f"{URL}?event=up", content=body, headers=JSON)
        assert r.status_code == 200 and r.json()["format"] == "json"
    assert pipeline.drain(timeout=10)
    errors = [u["error"] for u in client.get("/api/v1/uplinks?status=quarantined").json()["uplinks"]]
    assert len(errors) == len(cases)
    for _, reason in cases:
        assert any(reason in e for e in errors), (reason, errors)
    assert not any("protobuf" in e for e in errors)
    assert client.get("/api/v1/counts").json()["stored"] == 0


def test_unknown_event_is_400(setup: tuple[TestClient, Pipeline]) -> None:
    client, _ = setup
    r = client.post(f"{URL}?event=uplink", content=b"{}", headers=JSON)
    assert r.status_code == 400
    assert "'uplink'" in r.json()["error"]["message"] and r.json()["error"]["status"] == 400
    missing = client.post(URL, content=b"{}", headers=JSON)
    assert missing.status_code == 422 and "'event'" in missing.json()["error"]["message"]


def test_body_over_the_limit_is_413(setup: tuple[TestClient, Pipeline]) -> None:
    client, pipeline = setup
    big = b"{" + b" " * MAX_BODY_BYTES + b"}"
    r = client.post(f"{URL}?event=up", content=big, headers=JSON)
    assert r.status_code == 413 and r.json()["error"]["status"] == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b" " * 65536

    r = client.post(f"{URL}?event=up", content=chunks(), headers=JSON)
    assert r.status_code == 413
    assert pipeline.drain(timeout=10)
    assert client.get("/api/v1/counts").json()["stored"] == 0


def test_disabled_ingest_is_503(tmp_path: Path) -> None:
    store = DuckDBStore(f"duckdb:///{tmp_path / 'off.duckdb'}")
    pipeline = Pipeline(store)
    try:
        off = Settings(chirpstack=ChirpstackSettings(http_ingest=False))
        for app in (as_local(create_app(store, off, pipeline)), as_local(create_app(store, Settings()))):
            with TestClient(app) as client:
                r = client.post(f"{URL}?event=up", content=b"{}", headers=JSON)
                assert r.status_code == 503
                assert "disabled" in r.json()["error"]["message"]
    finally:
        pipeline.close()
        store.close()
