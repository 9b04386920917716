"""A small real city for the API, ingest and dashboard tests: ChirpStack messages built from the shared samples
(EUIs, tags and Cayenne LPP payloads changed), fed through the real pipeline into a real store."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clapas.connectors import chirpstack
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.encoders import cayenne_lpp

STATION = "a0a0a0a0a0a0a001"  # weather station: temperature, humidity, pressure (+ battery from status)
ROOM = "b0b0b0b0b0b0b002"  # museum room sensor: temperature only
BROKEN = "c0c0c0c0c0c0c003"  # sends a truncated Cayenne frame
NOW = datetime.now(UTC).replace(microsecond=0)


def sample(samples: Path, event: str) -> dict[str, Any]:
    return json.loads((samples / "chirpstack" / f"{event}.json").read_text())


def up_json(samples: Path, eui: str, payload: bytes, time: datetime, *, f_cnt: int = 1, name: str = "",
            tags: dict[str, str] | None = None, dedup: str | None = None) -> bytes:
    """A ChirpStack v4 `up` event (JSON) from the sample, for another device and payload."""
    m = sample(samples, "up")
    m["deduplicationId"] = dedup or str(uuid.uuid4())
    m["time"] = time.isoformat()
    m["deviceInfo"].update(devEui=eui, deviceName=name or f"device {eui[-3:]}",
                           tags={"decoder": "cayenne_lpp", **(tags or {})})
    m["fCnt"] = f_cnt
    m["fPort"] = 1
    m["data"] = base64.b64encode(payload).decode()
    return json.dumps(m).encode()


def event_json(samples: Path, event: str, eui: str, time: datetime, *, name: str = "",
               tags: dict[str, str] | None = None, **fields: Any) -> bytes:
    """Another ChirpStack event from its sample; the network server sends a device's same name and tags."""
    m = sample(samples, event)
    m["deduplicationId"] = str(uuid.uuid4())
    m["time"] = time.isoformat()
    m["deviceInfo"].update(devEui=eui, deviceName=name or f"device {eui[-3:]}",
                           tags={"decoder": "cayenne_lpp", **(tags or {})})
    m.update(fields)
    return json.dumps(m).encode()


def submit(pipeline: Pipeline, raw: bytes, event: str = "up") -> None:
    pipeline.submit(chirpstack.message(raw, datetime.now(UTC), event=event))


STATION_TAGS = {"kind": "weather_station", "zone": "ecusson"}
ROOM_TAGS = {"kind": "indoor_climate", "zone": "musee-fabre"}


def fill_city(samples: Path, pipeline: Pipeline) -> dict[str, Any]:
    """12 hourly uplinks from the station, 3 from the room, a status, a join, a duplicate and two bad messages."""
    first = None
    for i in range(12):
        t = NOW - timedelta(hours=11 - i, minutes=30)
        readings = {"air.temperature": 20 + i * 0.5, "air.humidity": 50 + i, "air.pressure": 1013.2}
        _, payload = cayenne_lpp(readings)
        raw = up_json(samples, STATION, payload, t, f_cnt=i, name="Station Comédie", tags=STATION_TAGS)
        first = first or raw
        submit(pipeline, raw)
    for i in range(3):
        _, payload = cayenne_lpp({"air.temperature": 19.0 + i})
        submit(pipeline, up_json(samples, ROOM, payload, NOW - timedelta(minutes=50 - 10 * i), f_cnt=i,
                                 name="Salle 12", tags=ROOM_TAGS))
    submit(pipeline, first)  # the same deduplicationId again: a duplicate
    station = {"name": "Station Comédie", "tags": STATION_TAGS}
    submit(pipeline, event_json(samples, "status", STATION, NOW - timedelta(minutes=5), batteryLevel=87.0,
                                **station), "status")
    submit(pipeline, event_json(samples, "join", STATION, NOW - timedelta(hours=12), **station), "join")
    submit(pipeline, up_json(samples, BROKEN, b"\x01\x67\x00", NOW - timedelta(minutes=3), name="Broken"))
    submit(pipeline, b"this is not a chirpstack event")
    assert pipeline.drain(timeout=10)
    return {"stored": 12 + 3 + 2, "quarantined": 2, "duplicate": 1}
