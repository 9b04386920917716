"""The issue's bar, end to end and without a restart: `clapas run`'s service (pipeline with its detectors, the
store, the API over the same settings holder) ingests a river gauge's uplinks; the environment department lowers
the gauge's yellow height through the API; the next reading above it opens `flood.river_level`, with the new
height in its evidence; the audit log has the change. Switching the rule off through the API stops it opening."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter.keys import new_key
from clapas.config import AuthSettings, ChirpstackSettings, Settings
from clapas.service import Service
from clapas.simulator.encoders import decentlab_mbx_frame
from tests.helpers import T0 as RECEIVED
from tests.helpers import as_message, up_event

GAUGE = "0004a30b001c2f3a"
DATUM_M = 10.0  # the ranging sensor hangs 10 m above the level's datum: level = 10 − distance
TAGS = {"kind": "water_level", "decoder": "decentlab_mbx", "zone": "lez", "river": "Lez",
        "level_datum": f"{DATUM_M}", "threshold_yellow": "3.00", "threshold_orange": "4.00",
        "threshold_red": "5.00"}
STEP = timedelta(minutes=15)  # readings at T0 − 2 h …, before the time the messages say they were received
YELLOW = f"flood.gauges.{GAUGE}.yellow_m"


class Run:
    """The service as `clapas run` wires it, fed one uplink at a time."""

    start = RECEIVED - timedelta(hours=3)

    def __init__(self, samples: Path, tmp_path: Path, gauge: str = GAUGE) -> None:
        settings = Settings(store=f"duckdb:///{tmp_path / 'city.duckdb'}", auth=AuthSettings(key_cache_s=0),
                            chirpstack=ChirpstackSettings(http_ingest=False))
        self.samples, self.gauge = samples, gauge
        self.service = Service(settings)
        self.store = self.service.store
        self.app = create_app(self.store, settings, self.service.pipeline, holder=self.service.holder)
        self.client = TestClient(self.app)
        k = new_key()
        self.store.create_key(key_id=k.key_id, name="service des crues", secret_hash=k.hash,
                              role="operator-environment")
        self.token = k.token
        self.headers = {"Authorization": f"Bearer {k.token}"}
        self.n = 0

    def reading(self, level_m: float) -> None:
        _, payload = decentlab_mbx_frame({"distance": DATUM_M - level_m, "battery.voltage": 3.6})
        ev = up_event(self.samples, eui=self.gauge, payload=payload, f_cnt=self.n, tags=TAGS,
                      time=self.start + self.n * STEP)
        self.n += 1
        self.service.pipeline.submit(as_message(ev))
        assert self.service.pipeline.drain(timeout=20)

    def alerts(self) -> list[dict]:
        return self.store.alerts(rule="flood.river_level", device=self.gauge)

    def close(self) -> None:
        self.app.state.access.close()
        self.service.pipeline.close()
        self.store.close()


def test_a_threshold_changed_through_the_api_opens_the_alert_at_the_next_reading(samples: Path,
                                                                                 tmp_path: Path) -> None:
    run = Run(samples, tmp_path)
    try:
        runner = run.service.alerting.runner
        for _ in range(4):
            run.reading(2.0)
        assert run.store.latest(GAUGE) and run.alerts() == []  # 2 m: below the tagged yellow height (3 m)
        r = run.client.put("/api/v1/settings", headers=run.headers, json={"path": YELLOW, "value": 1.5})
        assert r.status_code == 200, r.text
        assert run.alerts() == []  # nothing happens until a reading comes
        run.reading(2.0)
        [alert] = run.alerts()
        assert alert["state"] == "open" and alert["severity"] == "warning"
        assert alert["opened_at"] == run.start + 4 * STEP  # the first reading after the change
        assert alert["evidence"]["threshold_yellow_m"] == 1.5 and alert["evidence"]["level_m"] == 2.0
        assert run.service.alerting.runner is runner  # the same detectors, no restart
        run.app.state.access.audit.flush()
        [entry] = run.store.audit_entries(event="settings.changed")
        assert entry["actor"] == "service des crues" and entry["detail"]["path"] == YELLOW
        assert entry["detail"]["value"] == 1.5
    finally:
        run.close()


def test_a_rule_switched_off_through_the_api_opens_nothing(samples: Path, tmp_path: Path) -> None:
    run = Run(samples, tmp_path)
    try:
        for _ in range(3):
            run.reading(2.0)
        r = run.client.put("/api/v1/settings", headers=run.headers,
                           json={"path": 'alerts.rule_enabled."flood.river_level"', "value": False})
        assert r.status_code == 200, r.text
        for _ in range(3):
            run.reading(3.5)  # above the tagged yellow height
        assert run.alerts() == []
        r = run.client.delete("/api/v1/settings", headers=run.headers,
                              params={"path": 'alerts.rule_enabled."flood.river_level"'})
        assert r.status_code == 200
        # on again: the rule kept its state while off, so the yellow crossing it made then stays unopened; its next
        # opening (here the escalation to orange, once the median of three readings is above 4 m) is an alert
        run.reading(4.5)
        assert run.alerts() == []
        run.reading(4.5)
        [alert] = run.alerts()
        assert alert["state"] == "open" and alert["severity"] == "major"
    finally:
        run.close()
