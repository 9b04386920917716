"""`clapas run` as an operator runs it (a subprocess, a Mosquitto of the test's own with persistence, QoS 1): killed
with SIGKILL mid-stream and restarted, every uplink stored exactly once; SIGTERM during a burst or idle, everything
written, exit 0, no DuckDB WAL left (issue 9)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import duckdb
import httpx
import paho.mqtt.client as paho
import pytest

from tests.helpers import as_message, up_event

ROOT = Path(__file__).resolve().parents[1]
LPP_TH = bytes.fromhex("0167011002682A")
STOPPED = "stopped; everything received was written"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Broker:
    """A Mosquitto of this test's own with persistence (the machine's broker is never stopped)."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            pytest.skip("mosquitto is not installed")
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"persistence_location {directory}/\nmax_queued_messages 0\nautosave_interval 1\n"
                             + ("user root\n" if os.geteuid() == 0 else ""))
        self.cmd = [binary, "-c", str(self.conf)]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(answers, 10, "mosquitto")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Clapas:
    """`clapas run` in a subprocess, QoS 1, DuckDB, logging to a file."""

    def __init__(self, directory: Path, broker: Broker, app: str, **env: str) -> None:
        self.dir = directory
        self.db = directory / "city.duckdb"
        self.http = free_port()
        self.log = directory / "clapas.log"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CLAPAS_STORE": f"duckdb:///{self.db}",
                    "CLAPAS_CHIRPSTACK_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
                    "CLAPAS_CHIRPSTACK_TOPIC": f"application/{app}/device/+/event/+",
                    "CLAPAS_CHIRPSTACK_CLIENT_ID": f"clapas-{app}", "CLAPAS_CHIRPSTACK_QOS": "1",
                    "CLAPAS_HTTP_HOST": "127.0.0.1", "CLAPAS_HTTP_PORT": str(self.http),
                    "CLAPAS_ALERTS_ENABLED": "false", "CLAPAS_LOG_LEVEL": "INFO", **env}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        before = self.connections()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "clapas.cli", "run"], env=self.env, cwd=self.dir,
                                         stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: self.connections() > before or self.proc.poll() is not None, 60, "clapas connected")
        assert self.proc.poll() is None, self.log.read_text()[-3000:]

    def connections(self) -> int:
        return self.log.read_text().count("chirpstack: connected to") if self.log.exists() else 0

    def healthz(self) -> dict:
        return httpx.get(f"http://127.0.0.1:{self.http}/healthz", timeout=5).json()

    def stored(self) -> int:
        try:
            return self.healthz()["counts"]["stored"]
        except (httpx.HTTPError, KeyError, json.JSONDecodeError):
            return -1

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def uplinks(samples, app: str, n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        eui = f"{i % 50:016x}"
        ev = up_event(samples, eui=eui, payload=LPP_TH, f_cnt=i, dedup=f"{app}-{i}", tags={"decoder": "cayenne_lpp"})
        out.append((f"application/{app}/device/{eui}/event/up", as_message(ev).raw))
    return out


def publish(port: int, messages: list[tuple[str, bytes]], rate: float) -> threading.Thread:
    """QoS 1 publishing at `rate` messages/s, in a thread (the broker keeps what clapas does not take yet)."""

    def run() -> None:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        client.max_inflight_messages_set(100)
        client.connect("127.0.0.1", port)
        client.loop_start()
        t0 = time.monotonic()
        infos = []
        for i, (topic, payload) in enumerate(messages):
            infos.append(client.publish(topic, payload, qos=1))
            ahead = t0 + i / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        for info in infos:
            info.wait_for_publish(30)
        client.loop_stop()
        client.disconnect()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def stored_in(db: Path) -> tuple[int, int]:
    """(stored journal rows, distinct deduplication ids among them), read after clapas has stopped."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT count(*), count(DISTINCT dedup_key) FROM journal WHERE status = 'stored'"
                           ).fetchone()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def test_kill_9_mid_stream_then_restart_stores_every_uplink_once(tmp_path, samples, broker):
    app = uuid.uuid4().hex[:12]
    messages = uplinks(samples, app, 3000)
    clapas = Clapas(tmp_path, broker, app)
    clapas.start()
    pub = publish(broker.port, messages, rate=1500)
    wait_for(lambda: clapas.stored() >= 500, 30, "a first part stored")
    clapas.proc.kill()  # SIGKILL: batches in memory, acknowledgements in flight, the spool mid-group
    clapas.proc.wait(10)
    time.sleep(0.5)
    clapas.start()
    pub.join(60)
    wait_for(lambda: clapas.stored() >= 3000, 60, "every uplink stored")
    time.sleep(1)  # nothing more arrives: a redelivery would show as a second stored row
    assert clapas.stop() == 0
    assert stored_in(clapas.db) == (3000, 3000)
    assert not Path(str(clapas.db) + ".wal").exists()


def test_sigterm_during_a_burst_writes_everything_and_exits_0(tmp_path, samples, broker):
    app = uuid.uuid4().hex[:12]
    clapas = Clapas(tmp_path, broker, app)
    clapas.start()
    pub = publish(broker.port, uplinks(samples, app, 4000), rate=4000)
    wait_for(lambda: clapas.stored() >= 300, 30, "the burst under way")
    assert clapas.stop(signal.SIGTERM) == 0
    log = clapas.log.read_text()
    assert STOPPED in log
    assert not Path(str(clapas.db) + ".wal").exists()
    stored_first, _ = stored_in(clapas.db)
    assert stored_first > 0
    # what the broker had not handed over is there for the next start, and nothing is stored twice
    clapas.start()
    pub.join(60)
    wait_for(lambda: clapas.stored() >= 4000, 60, "the rest of the burst")
    assert clapas.stop(signal.SIGINT) == 0
    assert stored_in(clapas.db) == (4000, 4000)


def test_sigterm_when_idle_exits_0_cleanly(tmp_path, broker):
    clapas = Clapas(tmp_path, broker, uuid.uuid4().hex[:12])
    clapas.start()
    assert clapas.stop(signal.SIGTERM) == 0
    assert STOPPED in clapas.log.read_text()
    assert not Path(str(clapas.db) + ".wal").exists()
