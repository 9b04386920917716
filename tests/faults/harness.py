"""The pieces a fault scenario is made of: a throwaway Mosquitto, `clapas run` as a subprocess, a publisher that
knows what the broker accepted, and the accounting of what the store holds afterwards.

Shared by the quick scenarios of tests/faults/ and by bench/faults.py. Nothing here touches the machine's own
services: the broker that is restarted or killed is started here (its own port and directory), PostgreSQL is
reached through a `Relay` when it must fail.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Any, timeout: float, step: float = 0.05, what: str = "condition") -> Any:
    """Poll `cond()` until it returns something true; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met after {timeout:.0f} s")
        time.sleep(step)


# ---------------------------------------------------------------------------------------------------- broker


class Mosquitto:
    """A broker of our own, with persistence, that a scenario may stop, kill and start again on the same port."""

    def __init__(self, directory: Path, *, persistence: bool = True, port: int | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.log = self.dir / "mosquitto.log"
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence {'true' if persistence else 'false'}\npersistence_location {self.dir}/\n"
            # no queue limit for an offline persistent session: the scenarios measure clapas, not the broker's cap
            "max_queued_messages 0\nautosave_interval 1\n"
            # as root it would switch to the `mosquitto` user, which cannot write here
            + ("user root\n" if os.geteuid() == 0 else "")
            + f"log_dest file {self.log}\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 10, what=f"mosquitto on port {self.port}")
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited ({self.proc.returncode}); see {self.log}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean stop (the persistence file is saved); SIGKILL: a crash."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------------- clapas


class Clapas:
    """`clapas run` in a subprocess, configured through CLAPAS_* variables, logging to a file."""

    def __init__(self, directory: Path, *, store: str, mqtt_url: str, app: str, qos: int,
                 extra_env: dict[str, str] | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "CLAPAS_STORE": store,
            "CLAPAS_CHIRPSTACK_MQTT_URL": mqtt_url,
            "CLAPAS_CHIRPSTACK_TOPIC": f"application/{app}/device/+/event/+",
            "CLAPAS_CHIRPSTACK_CLIENT_ID": f"clapas-faults-{app}",
            "CLAPAS_CHIRPSTACK_QOS": str(qos),
            "CLAPAS_HTTP_HOST": "127.0.0.1",
            "CLAPAS_HTTP_PORT": str(self.http_port),
            "CLAPAS_LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log = self.dir / "clapas.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60) -> Clapas:
        self.runs += 1
        out = open(self.log, "ab")  # noqa: SIM115 - the child keeps it
        out.write(f"\n===== run {self.runs} at {datetime.now(UTC).isoformat()} =====\n".encode())
        out.flush()
        self.proc = subprocess.Popen([sys.executable, "-m", "clapas.cli", "run"], env=self.env, cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        mark = self.runs
        wait_for(lambda: self._alive() and self.connections(run=mark) >= 1, timeout, 0.1,
                 what="clapas connected to the broker")
        return self

    def _alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"clapas exited ({self.proc and self.proc.returncode}); log: {self.tail()}")
        return True

    def log_text(self, run: int | None = None) -> str:
        """The log of every run, or of one (1-based)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        if run is None:
            return text
        parts = re.split(r"\n===== run \d+ at [^\n]* =====\n", text)
        return parts[run] if run < len(parts) else ""

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def connections(self, run: int | None = None) -> int:
        """How many times the subscriber connected (1 + reconnections), read from the log."""
        return len(re.findall(r"chirpstack: connected to", self.log_text(run)))

    def healthz(self, timeout: float = 1.0) -> tuple[int | None, float, dict[str, Any]]:
        """(status code or None when no answer in `timeout`, seconds taken, body)."""
        t0 = time.monotonic()
        try:
            r = httpx.get(self.base_url + "/healthz", timeout=timeout)
        except httpx.HTTPError as e:
            return None, time.monotonic() - t0, {"error": f"{type(e).__name__}"}
        try:
            body = r.json()
        except ValueError:
            body = {"text": r.text[:200]}
        return r.status_code, time.monotonic() - t0, body

    def received(self) -> int | None:
        """stored + quarantined + duplicates in the store, as /healthz says (None when it does not answer)."""
        code, _, body = self.healthz(timeout=3)
        if code != 200:
            return None
        c = body.get("counts", {})
        return int(c.get("stored", 0)) + int(c.get("quarantined", 0)) + int(c.get("duplicate", 0))

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait()

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM and wait; returns the exit status (None if it was not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def wait_caught_up(self, expected: int, timeout: float, idle_s: float = 5.0) -> int | None:
        """Wait until the store holds `expected` messages, or nothing new came for `idle_s`; return the count."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = self.received()
            if n is not None and n >= expected:
                return n
            if n != last:
                last, since = n if n is not None else last, time.monotonic()
            elif time.monotonic() - since > idle_s:
                return n
            time.sleep(0.2)
        return last


# ---------------------------------------------------------------------------------------------------- traffic


def uplink(app: str, i: int, devices: int) -> tuple[str, bytes, str]:
    """The i-th ChirpStack v4 `up` event of a run: (topic, JSON payload, deduplication id).

    Devices report in turn, one second apart, with a real Elsys frame of four quantities, so that every message
    has its own (device, time) and its own deduplication id: a lost or doubled one shows in the counts.
    """
    from clapas.simulator.encoders import ENCODERS

    dev = i % devices
    eui = f"70b3d5e75f{dev:06x}"
    f_port, payload = ENCODERS["elsys"]({"air.temperature": 18 + (i % 170) / 10, "air.humidity": 40 + i % 40,
                                         "light.illuminance": i % 900, "battery.voltage": 3.6})
    dedup = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{app}/{i}"))
    t = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(seconds=i)
    event = {
        "deduplicationId": dedup, "time": t.isoformat(),
        "deviceInfo": {"tenantId": "t", "tenantName": "Métropole", "applicationId": app,
                       "applicationName": "faults", "deviceProfileId": "p", "deviceProfileName": "Elsys ERS",
                       "deviceName": f"ers-{dev}", "devEui": eui,
                       "tags": {"decoder": "elsys", "kind": "weather_station", "zone": f"district-{dev % 8}"}},
        "devAddr": f"{dev:08x}", "adr": True, "dr": 5, "fCnt": i // devices, "fPort": f_port,
        "data": base64.b64encode(payload).decode(),
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": i, "rssi": -60 - dev % 50, "snr": 7.5,
                    "channel": 2, "location": {}, "context": "E3OWOQ=="}],
        "txInfo": {"frequency": 867100000,
                   "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}}},
    }
    topic = f"application/{app}/device/{eui}/event/up"
    return topic, json.dumps(event, separators=(",", ":")).encode(), dedup


@dataclass
class Published:
    dedup: str
    sent_at: float  # time.monotonic() when handed to the client
    acked_at: float | None = None  # when the broker acknowledged it (QoS 1), or the send completed (QoS 0)


class Publisher:
    """Publishes `n` uplinks at `rate` per second from a thread, like ChirpStack would; survives broker restarts.

    `published` counts what the broker accepted: a PUBACK at QoS 1; at QoS 0, a message written to the socket
    while connected (what the broker then does with it is the broker's business, and the scenario's finding).
    """

    def __init__(self, mqtt_url: str, app: str, n: int, *, rate: float, qos: int, devices: int = 200) -> None:
        import paho.mqtt.client as mqtt

        from clapas.connectors.mqtt import MqttUrl

        self.url = MqttUrl(mqtt_url)
        self.app, self.n, self.rate, self.qos, self.devices = app, n, rate, qos, devices
        self.messages: list[Published] = []
        self._by_mid: dict[int, Published] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"faults-pub-{app}",
                                  clean_session=False)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 2)
        self.client.on_publish = self._on_publish
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.on_disconnect = lambda *a: self._connected.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.done = threading.Event()
        self.sent = 0
        self.not_sent = 0  # QoS 0 messages the client could not write (broker away)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            m = self._by_mid.pop(mid, None)
            if m is None:
                self._early.add(mid)
            elif m.acked_at is None:
                m.acked_at = time.monotonic()

    def start(self) -> Publisher:
        self.client.connect(self.url.host, self.url.port, keepalive=10)
        self.client.loop_start()
        wait_for(self._connected.is_set, 10, what="publisher connected")
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        for i in range(self.n):
            due = t0 + i / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            topic, payload, dedup = uplink(self.app, i, self.devices)
            m = Published(dedup, time.monotonic())
            if self.qos == 0 and not self._connected.is_set():
                self.not_sent += 1
                continue
            # paho calls on_publish from its own thread, possibly before publish() returns: never hold our lock
            # around publish() (a deadlock with paho's), and remember acknowledgements that came first
            info = self.client.publish(topic, payload, qos=self.qos)
            with self._lock:
                self.messages.append(m)
                if self.qos == 1:
                    if info.mid in self._early:
                        self._early.discard(info.mid)
                        m.acked_at = time.monotonic()
                    else:
                        self._by_mid[info.mid] = m
            if self.qos == 0:
                m.acked_at = time.monotonic() if info.rc == 0 else None
            self.sent += 1
        self.done.set()

    def wait(self, timeout: float) -> None:
        """Until every message was handed over and (QoS 1) acknowledged by the broker."""
        self.done.wait(timeout)
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: not self._by_mid, timeout, 0.1, what="broker acknowledgements")

    @property
    def published(self) -> list[Published]:
        return [m for m in self.messages if m.acked_at is not None]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ---------------------------------------------------------------------------------------------------- accounting


def query(store: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the store directly (after clapas stopped, for DuckDB), bypassing clapas."""
    if store.startswith("duckdb://"):
        import duckdb

        con = duckdb.connect(store.removeprefix("duckdb://"), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    import psycopg

    with psycopg.connect(store, connect_timeout=10) as con:
        return con.execute(sql).fetchall()  # type: ignore[arg-type]


@dataclass
class Outcome:
    """One scenario's accounting, the row bench/faults.py prints."""

    name: str
    qos: int
    published: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    lost: int = 0
    doubled: int = 0
    observations_lost: int = 0
    observations_doubled: int = 0
    survived: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    lost_ids: list[str] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("extra", "lost_ids")}
        return {**d, **self.extra}


def account(name: str, qos: int, store: str, app: str, published: list[Published]) -> Outcome:
    """Published vs stored + duplicates + quarantined, lost and doubled, for one run's application id."""
    rows = query(store, "SELECT dedup_key, status, count(*) FROM journal "
                        f"WHERE topic LIKE 'application/{app}/%' GROUP BY dedup_key, status")
    stored: dict[str, int] = {}
    o = Outcome(name, qos, published=len(published))
    for key, status, n in rows:
        if status == "stored":
            stored[key] = n
        elif status == "duplicate":
            o.duplicates += n
        else:
            o.quarantined += n
    o.stored = sum(stored.values())
    o.lost_ids = [m.dedup for m in published if m.dedup not in stored]
    o.lost = len(o.lost_ids)
    o.doubled = sum(n - 1 for n in stored.values() if n > 1)
    # observations: four per uplink, one (device, time) per uplink
    [(distinct,)] = query(store, "SELECT count(*) FROM (SELECT DISTINCT device_id, time FROM observations) t")
    [(excess,)] = query(store, "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM observations "
                               "GROUP BY device_id, quantity_id, time HAVING count(*) > 1) t")
    o.observations_lost = max(0, len(published) - int(distinct))
    o.observations_doubled = int(excess)
    o.survived = o.lost == 0 and o.doubled == 0 and o.observations_doubled == 0 and o.observations_lost == 0
    return o


def lost_published_between(o: Outcome, published: list[Published], start: float, end: float) -> int:
    """How many of the lost messages were published in [start, end] (monotonic clock)."""
    lost = set(o.lost_ids)
    return sum(1 for m in published if m.dedup in lost and start <= m.sent_at <= end)


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"clapas-faults-{prefix}-"))
