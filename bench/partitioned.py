"""Partitioned mode end to end (issue 15): ChirpStack-shaped AMQP events → RabbitMQ → `clapas route` → partition
streams → `clapas worker` × n → PostgreSQL, with faults, checked against a single-process run of the same uplinks.

Prints ONE JSON object: published, stored, lost, doubled, order_violations, alerts_equal (and the alerts of both
runs), the faults injected and what became of them, throughput per number of workers, CPU seconds per 1,000
uplinks per role (worker, router, broker, PostgreSQL) and the cores projected for a city of 1 M sensors.

    python bench/partitioned.py --uplinks 20000 --workers 3 --faults --scaling 1,2,3

The run makes its own PostgreSQL databases (dropped at the end) and its own RabbitMQ: a private node on a free
port (`--private-broker`, the default where rabbitmq-server is installed: its CPU is then this run's alone, and
the broker restart fault restarts it) or a throwaway virtual host of the machine's broker (`--amqp`).
Faults (`--faults`): one worker killed with SIGKILL at a third of the run; one frozen with SIGSTOP past its lease
at half, then resumed (it must find it lost its partitions and exit 75 without committing; its supervisor — here
this script — starts it again); the broker restarted at two thirds (private broker only).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pika
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from clapas.config import RegistrySettings, load_settings  # noqa: E402
from clapas.connectors import chirpstack  # noqa: E402
from clapas.connectors.broker.node import PrivateNode  # noqa: E402
from clapas.registry.importing import import_registry_files  # noqa: E402
from clapas.simulator.city import build_city  # noqa: E402
from clapas.simulator.incidents import select  # noqa: E402
from clapas.simulator.simulation import Simulation  # noqa: E402
from clapas.store.base import open_store  # noqa: E402

# a city of 1 M sensors, one uplink each per 15 min (design assumption [U]: water meters send fewer, air and
# weather stations more) — the projection's load; cores are sized for a 50 % busy machine (headroom)
PROJECTED_SENSORS = 1_000_000
UPLINK_INTERVAL_S = 900
TARGET_UTILISATION = 0.5
WEBHOOK_REF = "http://127.0.0.1:9/never-called"  # the reference only writes its outbox rows, never sends them
THINGSBOARD_1M_MSG_S = 5000  # ThingsBoard's published 1 M-device test load (domain-rules §9.4)
PUBLISH_TX = 1000


# --- services ---------------------------------------------------------------------------------------------
class Vhost:
    """A throwaway virtual host of a running broker (rabbitmqctl)."""

    def __init__(self, base: str) -> None:
        self.name = f"clapas-bench-{uuid.uuid4().hex[:8]}"
        subprocess.run(["rabbitmqctl", "add_vhost", self.name], capture_output=True, check=True, timeout=60)
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"],
                       capture_output=True, check=True, timeout=60)
        self.url = urlparse(base)._replace(path=f"/{self.name}").geturl()

    def restart(self) -> float:
        raise RuntimeError("a broker restart needs --private-broker (the machine's broker is shared)")

    def pid(self) -> int | None:
        return None  # the machine's broker serves others: its CPU is not this run's

    def close(self) -> None:
        subprocess.run(["rabbitmqctl", "delete_vhost", self.name], capture_output=True, timeout=60)


def _database(server: str, tag: str) -> str:
    name = f"clapas_bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return urlparse(server)._replace(path=f"/{name}").geturl()


def _drop(url: str, server: str) -> None:
    with psycopg.connect(server, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{urlparse(url).path[1:]}" WITH (FORCE)')


# --- CPU accounting ---------------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a live process and its reaped children (0 if it is gone)."""
    if pid is None:
        return 0.0
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(x) for x in f[11:15]) / _TICK


def pg_cpu_s(url: str) -> float:
    """CPU seconds of the PostgreSQL backends serving this database now (sampled before they disconnect)."""
    name = urlparse(url).path[1:]
    with psycopg.connect(url, autocommit=True) as con:
        pids = [r[0] for r in con.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                          "pg_backend_pid()", [name]).fetchall()]
    return sum(cpu_s(p) for p in pids)


# --- the uplinks ------------------------------------------------------------------------------------------
def uplinks(n: int, devices: int, seed: int, registry_dir: Path) -> tuple[list[tuple[str, bytes, float]], Path,
                                                                           Path]:
    """n ChirpStack events (topic, JSON body, time) of a simulated city with its incidents, in time order."""
    city = build_city(seed=seed, devices=devices)
    zones, devs = city.export_registry(registry_dir)
    start = datetime(2026, 2, 2, tzinfo=UTC)
    # how long the city takes to send n uplinks, then its incidents placed within that span
    first = Simulation(city, start, start + timedelta(days=365), seed, [])
    span = [ts for ts, _, _ in itertools.islice(first.messages(), n)][-1] - start.timestamp()
    end = start + timedelta(seconds=span + 1)
    sim = Simulation(city, start, end, seed, select("default", city, start, end, seed))
    out = [(topic, raw, ts) for ts, topic, raw in itertools.islice(sim.messages(), n)]
    return out, zones, devs


def key_of(raw: bytes) -> str:
    """What identifies a published event in the journal (its raw bytes are journaled as received)."""
    return hashlib.md5(raw).hexdigest()


def publish(url: str, events: list[tuple[str, bytes, float]], prefix: str) -> float:
    """As ChirpStack's AMQP integration does: to amq.topic, routing key application.….device.….event.…"""
    con = pika.BlockingConnection(pika.URLParameters(url))
    ch = con.channel()
    ch.tx_select()
    t = time.monotonic()
    for i, (topic, raw, _) in enumerate(events, 1):
        ch.basic_publish("amq.topic", topic.replace("/", "."), raw,
                         pika.BasicProperties(content_type="application/json"))
        if i % PUBLISH_TX == 0:
            ch.tx_commit()
    ch.tx_commit()
    con.close()
    return time.monotonic() - t


# --- processes --------------------------------------------------------------------------------------------
class Fleet:
    """The router and the workers, as `clapas` subprocesses with this run's settings in their environment."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.workers: dict[str, subprocess.Popen] = {}
        self.exits: list[tuple[str, int]] = []
        self.router: subprocess.Popen | None = None
        self.reaped_cpu = {"worker": 0.0, "router": 0.0}
        self.killed = ""
        self.frozen: tuple[str, threading.Timer] | None = None  # the SIGSTOPped worker and its SIGCONT timer

    def _spawn(self, args: list[str], name: str, cpu: int | None = None) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "clapas", *args]
        if cpu is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(cpu), *cmd]
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_router(self) -> None:
        self.router = self._spawn(["route"], "router")

    def start_worker(self, name: str, cpu: int | None = None) -> None:
        self.workers[name] = self._spawn(["worker", "--id", name], name, cpu)

    def supervise(self) -> None:
        """Restart workers that exited (what systemd's Restart=always does), noting their exit status."""
        for name, p in list(self.workers.items()):
            code = p.poll()
            if code is not None:
                self.exits.append((name, code))
                self.start_worker(name)

    def cpu(self) -> dict[str, float]:
        return {"worker": sum(cpu_s(p.pid) for p in self.workers.values()) + self.reaped_cpu["worker"],
                "router": cpu_s(self.router.pid if self.router else None)}

    def kill(self, name: str, sig: int) -> None:
        p = self.workers[name]
        if sig == signal.SIGKILL:
            self.reaped_cpu["worker"] += cpu_s(p.pid)
            self.killed = name
        os.kill(p.pid, sig)

    def await_frozen(self, lease_s: float) -> None:
        """Wait until the frozen worker was resumed and has exited (it lost its leases), supervising meanwhile:
        a short stream may end while it is still stopped, and its exit must be seen before the fleet stops."""
        if self.frozen is None:
            return
        name, timer = self.frozen
        timer.join()
        before = sum(1 for n, _ in self.exits if n == name)
        deadline = time.monotonic() + 5 * lease_s
        while time.monotonic() < deadline and sum(1 for n, _ in self.exits if n == name) == before:
            self.supervise()
            time.sleep(0.1)

    def stop(self) -> None:
        for p in [*self.workers.values(), *([self.router] if self.router else [])]:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.terminate()
        for p in [*self.workers.values(), *([self.router] if self.router else [])]:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()


class Receiver:
    """A webhook receiver counting each notification delivered (by its X-Clapas-Delivery id)."""

    def __init__(self) -> None:
        import http.server

        self.deliveries: list[str] = []
        received = self.deliveries

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(self.headers.get("X-Clapas-Delivery", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def journal_count(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute("SELECT count(*) FROM journal").fetchone()[0]


def wait_stored(url: str, target: int, fleet: Fleet, timeout_s: float, on_progress: Any = None,
                pending: dict[str, int] | None = None) -> list[tuple[float, int]]:
    """Poll the journal until it holds `target` rows and no fault is `pending` (on a slow machine the stream may
    end before the last faults are due: they are then injected after it); the (time, count) samples."""
    samples = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = journal_count(url)
        samples.append((time.monotonic(), n))
        if on_progress is not None:
            on_progress(n)
        fleet.supervise()
        if n >= target and not pending:
            break
        time.sleep(0.2)
    return samples


# --- checks -----------------------------------------------------------------------------------------------
def check(url: str, events: list[tuple[str, bytes, float]]) -> dict[str, Any]:
    """lost, doubled and order violations of the journal against what was published (by deduplicationId)."""
    with psycopg.connect(url, autocommit=True) as con:
        rows = con.execute("SELECT md5(raw), dev_eui FROM journal ORDER BY id").fetchall()
        obs = con.execute("SELECT count(*) FROM observations").fetchone()[0]
    published = [key_of(raw) for _, raw, _ in events]
    seen: dict[str, int] = {}
    for key, _ in rows:
        seen[key] = seen.get(key, 0) + 1
    lost = sum(1 for k in set(published) if k not in seen)
    doubled = sum(c - 1 for c in seen.values() if c > 1)
    # each device's rows must be in the order they were published
    order_pub: dict[str, list[str]] = {}
    for (topic, _, _), k in zip(events, published, strict=True):
        order_pub.setdefault(topic.split("/")[3], []).append(k)
    order_got: dict[str, list[str]] = {}
    for key, eui in rows:
        order_got.setdefault(eui or "", []).append(key)
    rank = {k: i for ks in order_pub.values() for i, k in enumerate(ks)}
    violations = 0
    for ks in order_got.values():
        r = [rank.get(k, -1) for k in ks]
        violations += sum(1 for a, b in itertools.pairwise(r) if b < a)
    return {"stored": len(rows), "lost": lost, "doubled": doubled, "order_violations": violations,
            "observations": obs}


def alerts_of(url: str) -> list[tuple[str, str, str, str]]:
    with psycopg.connect(url, autocommit=True) as con:
        return sorted((r, s, st, o.isoformat()) for r, s, st, o in con.execute(
            "SELECT rule, subject, state, opened_at FROM alerts").fetchall())


def notifications_of(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute("SELECT count(*) FROM notifications").fetchone()[0]


def deliveries(url: str, receiver: Receiver, timeout_s: float = 30) -> dict[str, int]:
    """Wait for the outbox to be empty; then compare, by notification id, what the receiver got with the table.

    `unreceived`: rows never received (only those a killed or frozen worker had claimed, to be sent again after
    the outbox lease, may be); `marked_unreceived`: rows marked delivered that never arrived (must be 0);
    `unknown`: deliveries of no row (must be 0)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as con:
        while time.monotonic() < deadline:
            left = con.execute("SELECT count(*) FROM notifications WHERE status <> 'delivered'").fetchone()[0]
            if left == 0:
                break
            time.sleep(0.3)
        rows = dict(con.execute("SELECT id::text, status FROM notifications").fetchall())
    got = list(receiver.deliveries)
    seen = set(got)
    return {"rows": len(rows), "received": len(got), "distinct": len(seen),
            "undelivered": sum(1 for st in rows.values() if st != "delivered"),
            "unreceived": sum(1 for i, st in rows.items() if i not in seen and st != "delivered"),
            "marked_unreceived": sum(1 for i, st in rows.items() if i not in seen and st == "delivered"),
            "unknown": len(seen - set(rows))}


def single_process(url: str, events: list[tuple[str, bytes, float]], zones: Path, devs: Path) -> None:
    """The same uplinks through one `clapas run`-like pipeline (the reference)."""
    from clapas.alerts.wiring import build_alerting
    from clapas.pipeline.ingest import Pipeline
    settings = load_settings(env={"CLAPAS_STORE": url, "CLAPAS_ALERTS_WEBHOOK_URL": WEBHOOK_REF})
    store = open_store(url, timezone=settings.timezone)
    import_registry_files(store, RegistrySettings(devices_csv=str(devs), zones_geojson=str(zones)))
    alerting = build_alerting(settings, store)
    p = Pipeline(store, settings.pipeline, settings.profiles, detectors=alerting.runner)
    now = datetime.now(UTC)
    for i in range(0, len(events), 5000):
        p.submit_batch([chirpstack.message(raw, now, topic=topic) for topic, raw, _ in events[i:i + 5000]],
                       lambda cur: None)
    p.close()
    store.close()


# --- runs -------------------------------------------------------------------------------------------------
def run_partitioned(args: argparse.Namespace, broker: Any, pg_server: str, events: list, zones: Path,
                    devs: Path, workers: int, faults: bool, work: Path) -> dict[str, Any]:
    url = _database(pg_server, f"w{workers}")
    prefix = f"b{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CLAPAS_STORE": url,
           "CLAPAS_PARTITIONED_BROKER_URL": broker.url, "CLAPAS_PARTITIONED_PREFIX": prefix,
           "CLAPAS_PARTITIONED_PARTITIONS": str(args.partitions), "CLAPAS_PARTITIONED_LEASE_S": str(args.lease_s),
           "CLAPAS_PARTITIONED_BATCH_SIZE": str(args.batch_size), "CLAPAS_LOG_LEVEL": "INFO"}
    receiver = Receiver()
    env["CLAPAS_ALERTS_WEBHOOK_URL"] = receiver.url
    store = open_store(url)
    import_registry_files(store, RegistrySettings(devices_csv=str(devs), zones_geojson=str(zones)))
    store.close()
    fleet = Fleet(env, work)
    out: dict[str, Any] = {"workers": workers}
    try:
        fleet.start_router()
        from clapas.connectors.broker.rabbitmq import RabbitStreams

        RabbitStreams(broker.url, args.partitions, prefix).declare()  # the ingress exists before publishing
        bp, rp = cpu_s(broker.pid()), fleet.cpu()["router"]
        if not faults:  # throughput: the whole backlog in the partitions first, then the workers start
            publish(broker.url, events, prefix)
            wait_partitioned(broker.url, args.partitions, prefix, len(events))
        f0 = fleet.cpu()
        pg0 = 0.0
        for i in range(workers):
            fleet.start_worker(f"w{i}", cpu=i % max(1, os.cpu_count() or 1) if workers == 1 else None)
        fault_log: list[dict[str, Any]] = []
        if faults:
            threading.Thread(target=publish, args=(broker.url, events, prefix), daemon=True).start()
        pending = {"kill": len(events) // 4, "stop": len(events) // 2,
                   "restart": 3 * len(events) // 4} if faults else {}
        if faults and not hasattr(broker, "node"):
            pending.pop("restart")
        pg_samples: list[float] = []

        def on_progress(n: int) -> None:
            pg_samples.append(pg_cpu_s(url))
            for what, at in list(pending.items()):
                if n >= at:  # one fault per look at the journal
                    del pending[what]
                    fault_log.append(inject(what, fleet, broker, args.lease_s, n, url))
                    break

        samples = wait_stored(url, len(events), fleet, args.timeout_s, on_progress, pending)
        b1, f1 = cpu_s(broker.pid()), fleet.cpu()
        pg1 = max(pg_samples or [0.0])
        fleet.await_frozen(args.lease_s)
        fleet.supervise()
        first = next(((t, n) for t, n in samples if n > 0), samples[-1])
        t_end, n_end = samples[-1]
        rate = (n_end - first[1]) / (t_end - first[0]) if t_end > first[0] else 0.0
        out.update(check(url, events))
        out["uplinks_per_s"] = round(rate)
        n_k = max(1, out["stored"]) / 1000
        # router and broker: from the first publish (the broker takes each event in, routes it, stores and
        # delivers it); worker and PostgreSQL: while the workers ran
        out["cpu_s_per_1000"] = {"worker": round((f1["worker"] - f0["worker"]) / n_k, 4),
                                 "router": round((f1["router"] - rp) / n_k, 4),
                                 "broker": round((b1 - bp) / n_k, 4) if broker.pid() else None,
                                 "postgresql": round((pg1 - pg0) / n_k, 4)}
        out["faults"] = fault_log
        out["worker_exits"] = [{"worker": w, "status": c} for w, c in fleet.exits]
        out["alerts"] = alerts_of(url)
        out["notifications"] = deliveries(url, receiver)
        out["owners_at_end"], out["rebalanced_s"] = settle(url, fleet, workers, args.lease_s)
        with psycopg.connect(url, autocommit=True) as con:
            out["lease_epochs"] = sum(r[0] for r in con.execute("SELECT epoch FROM partition_leases").fetchall())
    finally:
        fleet.stop()
        receiver.close()
        if not args.keep:
            _drop(url, pg_server)
    return out


def settle(url: str, fleet: Fleet, workers: int, lease_s: float) -> tuple[dict[str, int], float | None]:
    """Wait until every worker holds its fair share (a restarted one rejoined): the owners then, and how long it
    took (None: not within 10 leases)."""
    t = time.monotonic()
    owners: dict[str, int] = {}
    while time.monotonic() - t < 10 * lease_s:
        fleet.supervise()
        with psycopg.connect(url, autocommit=True) as con:
            owners = dict(con.execute("SELECT owner, count(*) FROM partition_leases WHERE owner IS NOT NULL "
                                      "AND expires_at > now() "
                                      "GROUP BY owner").fetchall())
        if len(owners) == workers and max(owners.values()) - min(owners.values()) <= 1:
            return owners, round(time.monotonic() - t, 1)
        time.sleep(0.5)
    return owners, None


def wait_partitioned(url: str, partitions: int, prefix: str, n: int, timeout_s: float = 600) -> None:
    """Wait until the router has moved all n events into the partitions (the ingress queue is empty)."""
    con = pika.BlockingConnection(pika.URLParameters(url))
    ch = con.channel()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = ch.queue_declare(f"{prefix}.ingress", passive=True).method.message_count
        if left == 0:
            time.sleep(1.0)  # the last batch's acknowledgement
            break
        time.sleep(0.2)
    con.close()


def busiest(url: str, fleet: Fleet, but: str = "") -> str:
    """The running worker holding the most partitions (the one whose loss hurts most)."""
    with psycopg.connect(url, autocommit=True) as con:
        owners = con.execute("SELECT owner, count(*) FROM partition_leases WHERE owner IS NOT NULL AND owner <> %s "
                             "AND expires_at > now() GROUP BY owner ORDER BY 2 DESC", [but]).fetchall()
    for name, _ in owners:
        if name in fleet.workers and fleet.workers[name].poll() is None:
            return name
    return next(n for n in fleet.workers if n != but)


def epochs(url: str, owner: str | None = None) -> dict[int, int]:
    with psycopg.connect(url, autocommit=True) as con:
        return dict(con.execute("SELECT partition, epoch FROM partition_leases WHERE %s::text IS NULL OR owner = %s",
                                [owner, owner]).fetchall())


def inject(what: str, fleet: Fleet, broker: Any, lease_s: float, at: int, url: str) -> dict[str, Any]:
    if what == "kill":
        name = busiest(url, fleet)
        held = epochs(url, name)
        fleet.kill(name, signal.SIGKILL)
        t = time.monotonic()
        while time.monotonic() - t < 10 * lease_s:  # until another owner (a new epoch) has each of its partitions
            now = epochs(url)
            if all(now[p] > e for p, e in held.items()):
                break
            time.sleep(0.1)
        return {"fault": f"SIGKILL {name}", "at_stored": at, "partitions": len(held),
                "taken_over_s": round(time.monotonic() - t, 1)}
    if what == "stop":
        name = busiest(url, fleet, but=fleet.killed)
        pid = fleet.workers[name].pid
        fleet.kill(name, signal.SIGSTOP)
        # past its lease: another worker takes its partitions over meanwhile; then it runs again
        timer = threading.Timer(lease_s * 2.5, os.kill, (pid, signal.SIGCONT))
        timer.start()
        fleet.frozen = (name, timer)
        return {"fault": f"SIGSTOP {name} for {lease_s * 2.5:.0f} s (lease {lease_s:.0f} s), then SIGCONT",
                "at_stored": at, "stopped": name}
    took = broker.restart()
    return {"fault": "broker restart (rabbitmqctl stop_app, start_app)", "at_stored": at, "took_s": round(took, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uplinks", type=int, default=20_000)
    ap.add_argument("--devices", type=int, default=400)
    ap.add_argument("--workers", type=int, default=3, help="workers of the fault run")
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--lease-s", type=float, default=4.0)
    ap.add_argument("--batch-size", type=int, default=2000)
    ap.add_argument("--faults", action="store_true", help="kill -9, SIGSTOP past the lease, broker restart")
    ap.add_argument("--scaling", default="", help="worker counts for the throughput runs, e.g. 1,2,3")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pg", default=os.environ.get("CLAPAS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--amqp", default="", help="use a virtual host of this broker instead of a private node")
    ap.add_argument("--timeout-s", type=float, default=900)
    ap.add_argument("--keep", action="store_true", help="keep the databases")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="clapas-partitioned-"))
    t0 = time.monotonic()
    events, zones, devs = uplinks(args.uplinks, args.devices, args.seed, work)
    broker: Any = Vhost(args.amqp) if args.amqp or not shutil.which("rabbitmq-server") else PrivateNode()
    result: dict[str, Any] = {"published": len(events), "devices": args.devices, "partitions": args.partitions,
                              "lease_s": args.lease_s, "broker": "private node" if hasattr(broker, "node") else
                              "virtual host of the machine's broker", "machine": f"{os.cpu_count()} cores"}
    try:
        ref = _database(args.pg, "ref")
        try:
            t = time.monotonic()
            single_process(ref, events, zones, devs)
            result["single_process"] = {"uplinks_per_s": round(len(events) / (time.monotonic() - t)),
                                        **check(ref, events)}
            ref_alerts = alerts_of(ref)
            result["single_process"]["notifications"] = notifications_of(ref)
        finally:
            if not args.keep:
                _drop(ref, args.pg)
        if args.faults:
            r = run_partitioned(args, broker, args.pg, events, zones, devs, args.workers, True, work)
            alerts = r.pop("alerts")
            result.update({k: r[k] for k in ("stored", "lost", "doubled", "order_violations")})
            result["alerts_equal"] = alerts == ref_alerts
            # the same alerts opened at the same times; a state may differ only at the end of the finite stream
            # (a zone's period closes on its own partition's next event, README "Partitioned mode")
            result["alerts_opened_equal"] = [(r, s, o) for r, s, _, o in alerts] == [(r, s, o) for r, s, _, o in
                                                                                     ref_alerts]
            result["alerts"] = {"partitioned": len(alerts), "single_process": len(ref_alerts),
                                "only_partitioned": [a for a in alerts if a not in ref_alerts][:10],
                                "only_single": [a for a in ref_alerts if a not in alerts][:10]}
            result["observations_equal"] = r["observations"] == result["single_process"]["observations"]
            n = r["notifications"]
            # one delivery per notification, whichever worker's outbox claimed it; as many as one process writes
            # (a row claimed by a worker killed mid-delivery is sent again after the outbox lease, 120 s: it is
            # counted as undelivered here, not lost)
            result["notifications_once"] = (n["received"] == n["distinct"] and n["marked_unreceived"] == 0
                                            and n["unknown"] == 0 and n["distinct"] + n["unreceived"] == n["rows"])
            result["notifications_equal"] = n["rows"] == result["single_process"]["notifications"]
            result["fault_run"] = r
        if args.scaling:
            result["throughput"] = {}
            for k in [int(x) for x in args.scaling.split(",") if x]:
                r = run_partitioned(args, broker, args.pg, events, zones, devs, k, False, work)
                result["throughput"][str(k)] = {"uplinks_per_s": r["uplinks_per_s"],
                                                "cpu_s_per_1000": r["cpu_s_per_1000"], "lost": r["lost"],
                                                "doubled": r["doubled"], "order_violations": r["order_violations"]}
            result["projection_1M_sensors"] = project(result["throughput"])
    finally:
        broker.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(result))
    return 0


def project(throughput: dict[str, Any]) -> dict[str, Any]:
    """Cores for PROJECTED_SENSORS at one uplink per UPLINK_INTERVAL_S (and at ThingsBoard's 1 M-device test load),
    from the 1-worker run's CPU per 1,000 uplinks."""
    one = throughput.get("1") or next(iter(throughput.values()))

    def at(rate: float) -> dict[str, Any]:
        cores = {role: round(rate / 1000 * c / TARGET_UTILISATION, 2) for role, c in one["cpu_s_per_1000"].items()
                 if c is not None}
        return {"uplinks_per_s": round(rate), "cores": cores, "total_cores": round(sum(cores.values()), 1)}

    return {**at(PROJECTED_SENSORS / UPLINK_INTERVAL_S),
            "assumption": f"one uplink per sensor every {UPLINK_INTERVAL_S} s, cores at {TARGET_UTILISATION:.0%} busy",
            "at_thingsboard_1M_load": at(THINGSBOARD_1M_MSG_S)}


if __name__ == "__main__":
    sys.exit(main())
