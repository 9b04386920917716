"""Small builders shared by tests: ChirpStack events from the reference samples, with the fields a test needs."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chirpstack_api import integration
from google.protobuf import json_format

from clapas.connectors import chirpstack
from clapas.model import Message

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def sample(samples: Path, event: str) -> dict[str, Any]:
    return json.loads((samples / "chirpstack" / f"{event}.json").read_text())


def up_event(samples: Path, *, eui: str = "0101010101010101", payload: bytes = b"\xaa", f_cnt: int = 1,
             dedup: str | None = None, tags: dict[str, str] | None = None, time: datetime = T0,
             obj: dict[str, Any] | None = None, profile: str | None = None) -> dict[str, Any]:
    """The sample `up` event, changed where a test says so."""
    ev = sample(samples, "up")
    ev["deviceInfo"]["devEui"] = eui
    if tags is not None:
        ev["deviceInfo"]["tags"] = tags
    if profile is not None:
        ev["deviceInfo"]["deviceProfileName"] = profile
    ev["data"] = base64.b64encode(payload).decode()
    ev["fCnt"] = f_cnt
    ev["deduplicationId"] = dedup or f"{eui}-{f_cnt}-{time.isoformat()}"
    ev["time"] = time.isoformat()
    if obj is not None:
        ev["object"] = obj
    return ev


def as_message(ev: dict[str, Any], event: str = "up", fmt: str = "json", source: str = "chirpstack") -> Message:
    eui = ev["deviceInfo"]["devEui"]
    topic = f"application/17c82e96-be03-4f38-aef3-f83d48582d97/device/{eui}/event/{event}"
    raw = json.dumps(ev).encode() if fmt == "json" else to_protobuf(ev, event)
    return chirpstack.message(raw, T0, topic=topic, source=source)


_PB = {"up": integration.UplinkEvent, "status": integration.StatusEvent, "join": integration.JoinEvent,
       "ack": integration.AckEvent, "txack": integration.TxAckEvent, "log": integration.LogEvent,
       "location": integration.LocationEvent}


def to_protobuf(ev: dict[str, Any], event: str) -> bytes:
    """The binary form ChirpStack publishes when its MQTT integration has json=false."""
    return json_format.ParseDict(ev, _PB[event](), ignore_unknown_fields=True).SerializeToString()


def detect_simulated(city: Any, detectors: list[Any], start: datetime, end: datetime, seed: int,
                     incidents: list[Any], directory: Path, finish_after_s: float | None = None) -> Any:
    """A simulated city's messages through the whole chain (ChirpStack JSON → Pipeline → DuckDB under `directory` →
    on_commit → `detectors`); the `MemorySink` holding their transitions. `finish_after_s`: let period rules decide
    up to that long after `end`, as the end of a replay does."""
    from clapas.detectors.score import detection_chain
    from clapas.simulator.run import feed
    from clapas.simulator.simulation import Simulation

    with detection_chain(city, detectors, workdir=directory) as (pipeline, runner, sink):
        feed(pipeline, Simulation(city, start, end, seed, incidents).messages())
    if finish_after_s is not None:
        runner.finish(end.timestamp() + finish_after_s)
    return sink


def as_local(app: Any) -> Any:
    """An app whose every caller holds every scope (the LOCAL caller): for tests of what routes do, not of who may
    call them (those are in tests/api/test_access.py and test_charter_routes.py)."""
    from clapas.charter import LOCAL

    app.state.identify = lambda request: LOCAL
    return app


def progress_lines(caplog: Any) -> list[str]:
    """The progress lines `caplog` captured: only clapas.progress's, as another test's leftover thread (an audit
    writer retrying on a dropped database) may log meanwhile."""
    return [r.getMessage() for r in caplog.records if r.name == "clapas.progress"]


class PrivateNats:
    """A nats-server of this machine with JetStream, on a free port, its store in `store_dir`; `restart` stops
    and starts it on the same port and store (a broker restart, as a city's machine would see one)."""

    def __init__(self, store_dir: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.store_dir = store_dir
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: Any = None
        self.start()

    @staticmethod
    def executable() -> str | None:
        import shutil

        return shutil.which("nats-server") or next(
            (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if Path(p).exists()), None)

    def start(self) -> None:
        import socket
        import subprocess
        import time

        exe = self.executable()
        assert exe is not None, "nats-server is not installed"
        self.proc = subprocess.Popen([exe, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nats-server did not answer on port {self.port}")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        self.close()
        self.start()
