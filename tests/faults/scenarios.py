"""The fault scenarios of issue 9, each a function returning an `Outcome`: quick in tests/faults/, full size in
bench/faults.py. Each runs a real `clapas run` against a real broker and a real store, injects its fault in the
middle of a stream, and counts what the store holds afterwards against what the broker accepted.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.faults.harness import (
    Clapas,
    Mosquitto,
    Outcome,
    Publisher,
    account,
    lost_published_between,
    query,
    scratch_dir,
    uplink,
)
from tests.faults.relay import Relay

IN_FLIGHT_S = 0.1  # QoS 0: what was published this shortly before a kill counts as in flight (see kill9)


@dataclass
class Sizes:
    """How big a scenario is: messages, publication rate, devices, and the outage where there is one."""

    uplinks: int = 3000
    rate: float = 500.0
    devices: int = 200
    outage_s: float = 8.0


def _app() -> str:
    return f"faults-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def _workspace(name: str, keep: bool = False) -> Iterator[Path]:
    d = scratch_dir(name)
    try:
        yield d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


def _duckdb(d: Path) -> str:
    return f"duckdb://{d / 'city.duckdb'}"


def _after(pub: Publisher, fraction: float, timeout: float = 120) -> None:
    """Wait until `fraction` of the stream was handed to the broker."""
    deadline = time.monotonic() + timeout
    while pub.sent < pub.n * fraction and time.monotonic() < deadline and not pub.done.is_set():
        time.sleep(0.02)


def _finish(pub: Publisher, app: Clapas, timeout: float = 120) -> None:
    pub.wait(timeout)
    app.wait_caught_up(len(pub.published), timeout)


def _stopped_cleanly(app: Clapas, run: int) -> bool:
    return "stopped; everything received was written" in app.log_text(run)


# ---------------------------------------------------------------------------------------------------- kill -9


def kill9(qos: int, sizes: Sizes, down_s: float = 2.0, keep: bool = False) -> Outcome:
    """`kill -9` of clapas a third into the stream, restarted `down_s` later.

    At QoS 1 on a persistent session the broker keeps what clapas did not acknowledge: nothing may be lost. At
    QoS 0 the broker drops what it cannot deliver; the outcome says how many of the lost messages were published
    while clapas was down (the broker's loss) and how many before the kill (clapas's loss: received, not written).
    """
    with _workspace("kill9", keep) as d, Mosquitto(d / "broker") as broker:
        app_id = _app()
        app = Clapas(d / "clapas", store=_duckdb(d), mqtt_url=broker.url, app=app_id, qos=qos).start()
        pub = Publisher(broker.url, app_id, sizes.uplinks, rate=sizes.rate, qos=qos, devices=sizes.devices).start()
        try:
            _after(pub, 1 / 3)
            t_kill = time.monotonic()
            app.kill9()
            time.sleep(down_s)
            app.start()
            t_back = time.monotonic()
            _finish(pub, app)
            rc = app.stop()
        finally:
            pub.close()
            app.stop()
        o = account("kill -9 mid-stream, restart", qos, _duckdb(d), app_id, pub.published)
        o.extra.update(down_s=round(t_back - t_kill, 2), exit_after_restart=rc)
        if qos == 0:
            # a QoS 0 message handed to the socket in the last IN_FLIGHT_S before the kill may still be in the
            # broker's or the kernel's buffers: the broker's loss. One published earlier was clapas's to keep.
            o.extra["lost_while_down"] = lost_published_between(o, pub.published, t_kill - IN_FLIGHT_S, t_back)
            o.extra["lost_before_kill"] = lost_published_between(o, pub.published, 0, t_kill - IN_FLIGHT_S)
            o.survived = o.extra["lost_before_kill"] == 0 and o.doubled == 0 and o.observations_doubled == 0
        return o


# ---------------------------------------------------------------------------------------------------- SIGTERM


def sigterm_burst(sizes: Sizes, keep: bool = False) -> Outcome:
    """SIGTERM in the middle of a burst at QoS 1: exit 0, no WAL left, the log says everything was written, and
    after a restart (the broker redelivers what was not acknowledged) nothing is lost."""
    with _workspace("sigterm", keep) as d, Mosquitto(d / "broker") as broker:
        app_id = _app()
        app = Clapas(d / "clapas", store=_duckdb(d), mqtt_url=broker.url, app=app_id, qos=1).start()
        pub = Publisher(broker.url, app_id, sizes.uplinks, rate=sizes.rate * 4, qos=1,
                        devices=sizes.devices).start()
        try:
            _after(pub, 0.5)
            t0 = time.monotonic()
            app.signal(signal.SIGTERM)
            try:
                rc: int | None = app.wait(60)
            except subprocess.TimeoutExpired:
                rc = None
            stop_s = time.monotonic() - t0
            wal = (d / "city.duckdb.wal").exists()
            clean = _stopped_cleanly(app, 1)
            app.start()
            _finish(pub, app)
            app.stop()
        finally:
            pub.close()
            app.stop()
        o = account("SIGTERM during a burst", 1, _duckdb(d), app_id, pub.published)
        o.extra.update(exit_status=rc, wal_left=wal, log_says_written=clean, stop_s=round(stop_s, 2))
        o.survived = o.survived and rc == 0 and not wal and clean
        return o


# ---------------------------------------------------------------------------------------------------- broker


def broker_restart(sizes: Sizes, down_s: float = 2.0, keep: bool = False) -> Outcome:
    """The broker stops cleanly (persistence saved) a third into the stream and comes back `down_s` later:
    clapas reconnects once, resubscribes, and with QoS 1 nothing is lost."""
    with _workspace("broker", keep) as d, Mosquitto(d / "broker") as broker:
        app_id = _app()
        app = Clapas(d / "clapas", store=_duckdb(d), mqtt_url=broker.url, app=app_id, qos=1).start()
        pub = Publisher(broker.url, app_id, sizes.uplinks, rate=sizes.rate, qos=1, devices=sizes.devices).start()
        try:
            _after(pub, 1 / 3)
            broker.restart(down_s)
            _finish(pub, app)
            time.sleep(3)  # a flapping session shows up as more connections within seconds
            connections = app.connections(1)
            rc = app.stop()
        finally:
            pub.close()
            app.stop()
        o = account("broker restart mid-stream", 1, _duckdb(d), app_id, pub.published)
        o.extra.update(connections=connections, exit_status=rc)
        o.survived = o.survived and connections == 2
        return o


# ---------------------------------------------------------------------------------------------------- PostgreSQL


class _HealthProbe:
    """/healthz every 0.5 s from a thread: the slowest answer, the unanswered ones, what it said."""

    def __init__(self, app: Clapas) -> None:
        self.app = app
        self.stop = threading.Event()
        self.slowest = 0.0
        self.unanswered = 0
        self.statuses: dict[str, int] = {}
        self.reasons: set[str] = set()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            code, took, body = self.app.healthz(timeout=2.0)
            self.slowest = max(self.slowest, took)
            if code is None:
                self.unanswered += 1
            key = f"{code}:{body.get('status', '')}" if code is not None else "no answer"
            self.statuses[key] = self.statuses.get(key, 0) + 1
            for k in ("reason", "detail", "error"):
                if isinstance(body.get(k), str):
                    self.reasons.add(body[k][:120])
            self.stop.wait(0.5)

    def __enter__(self) -> _HealthProbe:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._t.join(5)


def pg_outage(pg_url: str, qos: int, sizes: Sizes, mode: str = "unreachable", keep: bool = False) -> Outcome:
    """PostgreSQL behind a relay goes away a third into the stream for `sizes.outage_s`, then comes back.

    mode "unreachable": the network hangs (nothing forwarded, nothing refused — timeouts); "restart": open
    connections are dropped and new ones refused for the outage (a server restart). clapas must stay up, answer
    /healthz fast (degraded, with a reason), keep its broker session and lose nothing once the database is back.
    """
    with _workspace("pg", keep) as d, Mosquitto(d / "broker") as broker, Relay.for_url(pg_url) as relay:
        app_id = _app()
        store = relay.url(pg_url)
        app = Clapas(d / "clapas", store=store, mqtt_url=broker.url, app=app_id, qos=qos).start()
        pub = Publisher(broker.url, app_id, sizes.uplinks, rate=sizes.rate, qos=qos, devices=sizes.devices).start()
        try:
            with _HealthProbe(app) as probe:
                _after(pub, 1 / 3)
                if mode == "unreachable":
                    relay.blackhole()
                else:
                    relay.cut()
                time.sleep(sizes.outage_s)
                during = dict(probe.statuses)
                alive_during = app.proc is not None and app.proc.poll() is None
                relay.restore()
                t_back = time.monotonic()
                received_back = app.wait_caught_up(len(pub.published) // 3, 60, idle_s=30)
                resumed_s = time.monotonic() - t_back
                _finish(pub, app)
            connections = app.connections(1)
            rc = app.stop()
        finally:
            pub.close()
            app.stop()
        o = account(f"PostgreSQL {mode} for {sizes.outage_s:g} s mid-stream", qos, pg_url, app_id, pub.published)
        o.extra.update(
            outage_s=sizes.outage_s, process_up_during=alive_during, healthz_during=during,
            healthz_slowest_s=round(probe.slowest, 3), healthz_unanswered=probe.unanswered,
            healthz_reasons=sorted(probe.reasons)[:3], mqtt_connections=connections,
            resumed_within_s=round(resumed_s, 1) if received_back else None, exit_status=rc,
        )
        degraded = any(not k.startswith("200:ok") for k in during)
        o.extra["healthz_said_degraded"] = degraded
        o.survived = o.survived and alive_during and probe.unanswered == 0 and degraded
        return o


def healthz_blackholed(pg_url: str, sizes: Sizes, calls: int = 50, keep: bool = False) -> dict[str, float]:
    """`/healthz` timed while PostgreSQL is blackholed (every write hangs) and uplinks keep coming at QoS 0: the
    answer must come from memory, never wait on the store nor on the writer. Returns the latencies' p50/p95/max (s)
    and how many answers said degraded, beside the same figures with the database answering."""
    import httpx

    with _workspace("healthz", keep) as d, Mosquitto(d / "broker") as broker, Relay.for_url(pg_url) as relay:
        app_id = _app()
        app = Clapas(d / "clapas", store=relay.url(pg_url), mqtt_url=broker.url, app=app_id, qos=0,
                     extra_env={"CLAPAS_AUTH_RATE_LIMITS": "false"}).start()  # a monitor is not rate-limited
        pub = Publisher(broker.url, app_id, sizes.uplinks, rate=sizes.rate, qos=0, devices=sizes.devices).start()

        def timed() -> tuple[list[float], int]:
            took: list[float] = []
            degraded = 0
            with httpx.Client(base_url=app.base_url, timeout=5) as client:  # one connection, as a monitor keeps
                for _ in range(calls):
                    t0 = time.monotonic()
                    code = client.get("/healthz").status_code
                    took.append(time.monotonic() - t0)
                    degraded += code == 503
                    time.sleep(0.05)
            return sorted(took), degraded

        try:
            _after(pub, 1 / 8)
            healthy, _ = timed()  # the same traffic, the database answering: what the machine itself costs
            relay.blackhole()
            deadline = time.monotonic() + 30
            while app.healthz(3)[0] != 503 and time.monotonic() < deadline:  # the hung write noticed (5 s)
                time.sleep(0.2)
            took, degraded = timed()
            relay.restore()
        finally:
            pub.close()
            app.stop()
        k = int(calls * 0.95) - 1
        return {"p50_s": took[calls // 2], "p95_s": took[k], "max_s": took[-1], "degraded": degraded,
                "calls": calls, "healthy_p50_s": healthy[calls // 2], "healthy_p95_s": healthy[k]}


# ---------------------------------------------------------------------------------------------------- HTTP ingest


def http_kill9(pg_url: str, uplinks: int = 300, keep: bool = False) -> Outcome:
    """ChirpStack's HTTP integration while PostgreSQL is unreachable (relay blackholed): every event answered 200
    is spooled, none committed; then `kill -9`, the database back and a restart: every one is stored, once."""
    import httpx

    with _workspace("http", keep) as d, Mosquitto(d / "broker") as broker, Relay.for_url(pg_url) as relay:
        app_id = _app()
        app = Clapas(d / "clapas", store=relay.url(pg_url), mqtt_url=broker.url, app=app_id, qos=1,
                     extra_env={"CLAPAS_AUTH_ENFORCE": "false"}).start()
        accepted: list[str] = []
        try:
            relay.blackhole()
            with httpx.Client(base_url=app.base_url, timeout=30) as client:
                for i in range(uplinks):
                    _, body, dedup = uplink(app_id, i, 50)
                    r = client.post("/api/v1/ingest/chirpstack?event=up", content=body,
                                    headers={"content-type": "application/json"})
                    if r.status_code == 200 and r.json().get("durable") == "spooled":
                        accepted.append(dedup)
            [(committed_at_kill,)] = query(pg_url, "SELECT count(*) FROM journal")  # the server itself, not the relay
            app.kill9()
            relay.restore()
            app.start()
            app.wait_caught_up(len(accepted), 120)
            rc = app.stop()
        finally:
            app.stop()
        rows = query(pg_url, "SELECT dedup_key, status, count(*) FROM journal GROUP BY dedup_key, status")
        stored = {k: n for k, status, n in rows if status == "stored"}
        o = Outcome("HTTP ingest, PostgreSQL unreachable, kill -9, restart", 1, published=len(accepted))
        o.stored = sum(stored.values())
        o.duplicates = sum(n for _, status, n in rows if status == "duplicate")
        o.quarantined = sum(n for _, status, n in rows if status not in ("stored", "duplicate"))
        o.lost_ids = [k for k in accepted if k not in stored]
        o.lost = len(o.lost_ids)
        o.doubled = sum(n - 1 for n in stored.values() if n > 1)
        o.survived = o.lost == 0 and o.doubled == 0
        o.extra.update(posted=uplinks, committed_at_kill=int(committed_at_kill), exit_after_restart=rc)
        return o


# ---------------------------------------------------------------------------------------------------- full disk


class Tmpfs:
    """A size-limited filesystem (tmpfs, as root) that a scenario fills and then grows."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=True,
                       capture_output=True)

    def resize(self, size_mb: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size_mb}m", str(self.path)], check=True, capture_output=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path).free

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)


def can_mount() -> bool:
    probe = scratch_dir("mount")
    try:
        Tmpfs(probe / "m", 1).close()
        return True
    except (subprocess.CalledProcessError, OSError):
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def full_disk(sizes: Sizes, size_mb: int = 24, keep: bool = False) -> Outcome:
    """The DuckDB file on a small tmpfs that fills mid-stream (QoS 1); after a while the filesystem is grown
    ("space returns"). A clear error in the log, the file still opens and checks after the stop, ingestion
    resumes, nothing lost."""
    with _workspace("disk", keep) as d, Mosquitto(d / "broker") as broker:
        fs = Tmpfs(d / "disk", size_mb)
        try:
            app_id = _app()
            store = f"duckdb://{fs.path / 'city.duckdb'}"
            app = Clapas(d / "clapas", store=store, mqtt_url=broker.url, app=app_id, qos=1).start()
            pub = Publisher(broker.url, app_id, sizes.uplinks, rate=sizes.rate, qos=1,
                            devices=sizes.devices).start()
            try:
                full_at = None
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not pub.done.is_set():
                    if "No space left" in app.log_text() or "disk is full" in app.log_text().lower():
                        full_at = time.monotonic()
                        break
                    time.sleep(0.2)
                time.sleep(3 if full_at else 0)  # full for a while
                alive_full = app.proc is not None and app.proc.poll() is None
                fs.resize(size_mb * 20)
                _finish(pub, app)
                rc = app.stop()
            finally:
                pub.close()
                app.stop()
            log = app.log_text()
            error_line = next((ln for ln in log.splitlines() if "No space left" in ln or "disk is full" in
                               ln.lower()), "")
            integrity = _duckdb_checks(store)
            o = account("DuckDB on a full disk, space returns", 1, store, app_id, pub.published)
            o.extra.update(disk_mb=size_mb, filled=full_at is not None, process_up_while_full=alive_full,
                           error=error_line[-160:], file_checks=integrity, exit_status=rc,
                           filesystem="tmpfs (mount -t tmpfs -o size=…), grown with remount")
            o.survived = o.survived and full_at is not None and alive_full and integrity == "ok"
            return o
        finally:
            fs.close()


def _duckdb_checks(store: str) -> str:
    """Open the file as clapas left it and read every table through: 'ok' or the error."""
    import duckdb

    try:
        con = duckdb.connect(store.removeprefix("duckdb://"))
        try:
            for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
                con.execute(f'SELECT count(*) FROM "{table}"').fetchall()
            con.execute("CHECKPOINT")
        finally:
            con.close()
        return "ok"
    except Exception as e:  # a corrupted file is the finding, not a crash of the scenario
        return f"{type(e).__name__}: {e}"[:200]


# ---------------------------------------------------------------------------------------------------- notifier


def notifier_down(alerts: int = 10, hour_s: float = 6.0, max_attempts: int | None = None,
                  until_exhausted: bool = False, keep: bool = False) -> Outcome:
    """A webhook receiver down for "an hour" while alerts open and resolve, on a clock scaled so that an hour
    lasts `hour_s` seconds: every duration of the retry schedule (retry_base_s, retry_max_s, poll_interval_s)
    is the default × hour_s / 3600. Counts notifications delivered, in order per alert, and dead letters —
    which may only come after `max_attempts` attempts (default: the configured default). With `until_exhausted`
    the receiver stays down past the hour until no notification is pending (bounded): the attempts' own pace, not
    the machine's load, then decides whether the outage outlasted them."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from clapas.alerts.notifiers import build_notifiers
    from clapas.alerts.outbox import OutboxWorker
    from clapas.alerts.routing import Router
    from clapas.config import AlertSettings, WebhookSettings
    from clapas.store.alerts import AlertChange
    from clapas.store.duckdb import DuckDBStore
    from tests.faults.receiver import Receiver

    scale = hour_s / 3600
    base = AlertSettings()
    attempts = max_attempts or base.max_attempts
    with _workspace("notifier", keep) as d, Receiver() as hook:
        hook.down()
        a = AlertSettings(retry_base_s=base.retry_base_s * scale, retry_max_s=base.retry_max_s * scale,
                          poll_interval_s=max(0.02, base.poll_interval_s * scale), max_attempts=attempts,
                          webhook=WebhookSettings(url=hook.url, timeout_s=2))
        store = DuckDBStore(f"duckdb://{d / 'alerts.duckdb'}")
        try:
            route = Router.from_settings(a)
            t0 = datetime(2026, 6, 3, 4, tzinfo=UTC)
            for i in range(alerts):
                subject = f"70b3d5e75f{i:06x}"
                store.apply_alert_changes([AlertChange("water.continuous_flow", subject, "open", t0)], route)
                store.apply_alert_changes([AlertChange("water.continuous_flow", subject, "clear",
                                                       t0 + timedelta(hours=1))], route)
            worker = OutboxWorker(store, build_notifiers(a), a)

            async def run() -> None:
                stop = asyncio.Event()
                task = asyncio.create_task(worker.run(stop))
                await asyncio.sleep(hour_s)  # the receiver's hour down
                clock = asyncio.get_running_loop().time
                deadline = clock() + max(30.0, hour_s * 4)
                while until_exhausted and store.notifications(status="pending") and clock() < deadline:
                    await asyncio.sleep(0.1)
                hook.up()
                deadline = clock() + max(30.0, hour_s * 4)
                while store.notifications(status="pending") and clock() < deadline:
                    await asyncio.sleep(0.1)
                stop.set()
                await task

            asyncio.run(run())
            rows = store.notifications(limit=10_000)
        finally:
            store.close()
    by_status = {s: [r for r in rows if r["status"] == s] for s in ("delivered", "dead", "pending")}
    order = hook.order_ok()
    early_dead = [r for r in by_status["dead"] if r["attempts"] < attempts]
    o = Outcome(f"webhook receiver down for an hour (retry schedule scaled ×{scale:.5f})", 1,
                published=len(rows), stored=len(by_status["delivered"]))
    o.lost = len(by_status["pending"])  # neither delivered nor kept as dead: what the outage cost for good
    o.doubled = hook.repeats
    o.extra.update(notifications=len(rows), delivered=len(by_status["delivered"]), dead=len(by_status["dead"]),
                   dead_before_max_attempts=len(early_dead), max_attempts=attempts, in_order=order,
                   failed_attempts_while_down=hook.refused)
    o.survived = o.lost == 0 and not early_dead and order and not by_status["dead"]
    return o
