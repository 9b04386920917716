"""Clock skew served per device (domain-rules.md §7.2), on both stores: a Dragino LHT65 in datalog mode carries its
own Unix time (the only built-in decoder whose payload does); the pipeline keeps device time − network time beside
it, the health rules flag an uplink more than 120 s off, and the device health route serves both."""

from __future__ import annotations

import struct
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from clapas.alerts.wiring import build_alerting
from clapas.api.app import create_app
from clapas.config import PipelineSettings, Settings
from clapas.model import Device
from clapas.pipeline import Pipeline
from clapas.store.base import Store
from tests.helpers import T0, as_local, as_message, up_event
from tests.store import test_store as suite

make_store = suite.make_store
store = suite.store
LHT, PLAIN = "a840410000000001", "a840410000000002"


def lht65_datalog(device_time: int, probe_c: float = 21.5) -> bytes:
    """An LHT65 frame with external type 9 (datalog): the probe in the first two bytes, the Unix time last."""
    hi, lo = device_time >> 16, device_time & 0xFFFF
    return struct.pack(">hhHBhH", round(probe_c * 100), 2150, 550, 9, hi, lo)


def lht65_plain() -> bytes:
    return struct.pack(">HhHBhH", 0xC000 | 3000, 2150, 550, 0, 0x7FFF, 0)


def _feed(store: Store, samples: Path, ups: list[tuple[str, bytes, int]]) -> None:
    settings = Settings()
    alerting = build_alerting(settings, store)
    p = Pipeline(store, PipelineSettings(batch_size=2), detectors=alerting.runner)
    msgs = []
    for k, (eui, payload, minute) in enumerate(ups):
        ev = up_event(samples, eui=eui, payload=payload, f_cnt=k + 1, time=T0 + timedelta(minutes=minute),
                      tags={"decoder": "dragino_lht65", "kind": "weather_station"})
        ev["fPort"] = 2
        msgs.append(as_message(ev))
    p.submit_many(msgs)
    p.close()


def test_a_device_clock_against_the_network(store: Store, samples: Path) -> None:
    store.upsert_devices([Device(eui=LHT, kind="weather_station"), Device(eui=PLAIN, kind="weather_station")])
    t = int(T0.timestamp())
    _feed(store, samples, [(LHT, lht65_datalog(t + 5), 0),  # 5 s ahead: fine
                  (LHT, lht65_datalog(t + 600 - 300), 10),  # 300 s behind the network: flagged
                  (LHT, lht65_datalog(t + 1200 - 200), 20),  # 200 s behind: flagged, and the last
                  (PLAIN, lht65_plain(), 20)])
    with TestClient(as_local(create_app(store, Settings()))) as c:
        at = (T0 + timedelta(hours=1)).isoformat()
        lht = c.get(f"/api/v1/health/devices/{LHT}", params={"at": at}).json()
        plain = c.get(f"/api/v1/health/devices/{PLAIN}", params={"at": at}).json()
    clock = lht["clock"]
    assert clock["skew_s"] == -200.0 and clock["suspect"] and clock["limit_s"] == 120
    assert clock["device_time"] == t + 1000
    assert clock["checked_at"].startswith((T0 + timedelta(minutes=20)).isoformat()[:19])
    assert clock["flagged_uplinks"] == 2
    assert plain["clock"] is None  # its payload carries no time: nothing is invented
