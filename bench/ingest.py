"""End-to-end ingest benchmark: broker → clapas → committed rows, beside the broker's own ceiling.

    python bench/ingest.py --store duckdb:///tmp/bench.duckdb --uplinks 200000
    python bench/ingest.py --store postgresql://postgres@127.0.0.1/test --uplinks 200000

The same N ChirpStack v4 `up` events (JSON, ~0.9 KB, Elsys payloads of 4 values, as a city's weather sensors
send) are published twice with `mosquitto_pub -l` to the broker of CLAPAS_CHIRPSTACK_MQTT_URL
(default mqtt://127.0.0.1:1883): first to `mosquitto_sub` (the broker's ceiling: C publisher → broker → C
subscriber), then to clapas (MQTT subscriber → parse → decode → batch → store, committed). Prints one JSON object.

For PostgreSQL a throwaway database is created beside the one in the URL and dropped at the end; for DuckDB the
file is created afresh.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from clapas.config import Settings
from clapas.connectors.mqtt import MqttUrl
from clapas.service import Service, run_loop
from clapas.simulator.encoders import ENCODERS
from clapas.store.base import Batch

TOPIC = "application/{app}/device/{eui}/event/up"


def make_messages(n: int, devices: int) -> list[bytes]:
    """N uplink events in ChirpStack's JSON, devices reporting in turn, each payload a real Elsys frame."""
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        dev = i % devices
        eui = f"70b3d5e75e{dev:06x}"
        f_port, payload = ENCODERS["elsys"]({
            "air.temperature": 18 + (i % 170) / 10, "air.humidity": 40 + i % 40, "light.illuminance": i % 900,
            "battery.voltage": 3.6,
        })
        event = {
            "deduplicationId": str(uuid.UUID(int=i + 1)),
            "time": (t0 + timedelta(seconds=i)).isoformat(),
            "deviceInfo": {
                "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Métropole",
                "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "Climat",
                "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad", "deviceProfileName": "Elsys ERS",
                "deviceName": f"ers-{dev}", "devEui": eui,
                "tags": {"decoder": "elsys", "kind": "weather_station", "zone": f"district-{dev % 8}"},
            },
            "devAddr": f"{dev:08x}", "adr": True, "dr": 5, "fCnt": i // devices, "fPort": f_port,
            "data": base64.b64encode(payload).decode(),
            "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": i, "rssi": -60 - dev % 50,
                        "snr": 7.5, "channel": 2, "location": {}, "context": "E3OWOQ==",
                        "metadata": {"region_name": "eu868", "region_common_name": "EU868"}}],
            "txInfo": {"frequency": 867100000, "modulation": {"lora": {"bandwidth": 125000,
                                                                       "spreadingFactor": 7, "codeRate": "CR_4_5"}}},
        }
        out.append(json.dumps(event, separators=(",", ":")).encode())
    return out


def broker_ceiling(url: MqttUrl, lines_file: Path, n: int, idle_s: float) -> tuple[float, int]:
    """Messages/s delivered from mosquitto_pub to mosquitto_sub through the broker, and how many never arrived.

    Mosquitto drops QoS 0 messages for a subscriber that falls behind (beyond max_queued_messages), so the rate
    is what was delivered over the time to the last delivery, read from the subscriber's own timestamps.
    """
    topic = f"bench/ceiling/{uuid.uuid4().hex}"
    auth = _auth_args(url)
    with tempfile.NamedTemporaryFile(prefix="clapas-ceiling-") as out:
        # the subscriber writes to a file: reading a pipe from Python would make it the slow one
        sub = subprocess.Popen(["mosquitto_sub", "-h", url.host, "-p", str(url.port), *auth, "-t", topic,
                                "-C", str(n), "-q", "0", "-F", "%U"], stdout=out, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # let it subscribe
        t0 = time.time()
        with open(lines_file, "rb") as f:
            subprocess.run(["mosquitto_pub", "-h", url.host, "-p", str(url.port), *auth, "-t", topic, "-l",
                            "-q", "0"], stdin=f, check=True)
        _wait_until_idle(sub, Path(out.name), idle_s)
        stamps = Path(out.name).read_bytes().split()
    received = len(stamps)
    last = float(stamps[-1]) if stamps else time.time()
    return received / (last - t0), n - received


def _wait_until_idle(proc: subprocess.Popen, out: Path, idle_s: float) -> None:
    """Wait until the subscriber exits (it got all N) or its output stops growing for idle_s."""
    size, since = -1, time.monotonic()
    while proc.poll() is None and time.monotonic() - since < idle_s:
        time.sleep(0.1)
        if out.stat().st_size != size:
            size, since = out.stat().st_size, time.monotonic()
    proc.kill()
    proc.wait()


def _auth_args(url: MqttUrl) -> list[str]:
    return (["-u", url.username] + (["-P", url.password] if url.password else [])) if url.username else []


class PgDatabase:
    """A throwaway database on the server of a PostgreSQL URL."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.server = url
        self.name = f"clapas_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{self.name}"')
        self.url = urlparse(url)._replace(path=f"/{self.name}").geturl()

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.server, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def publish_paced(url: MqttUrl, topic: str, lines_file: Path, rate: float | None) -> None:
    """Publish every line with mosquitto_pub -l, fed through its stdin at `rate` lines/s (None: at full speed).

    Mosquitto drops QoS 0 messages for a subscriber more than max_queued_messages (1000) behind, so a
    throughput is only meaningful at a rate the subscriber sustains: the publisher is paced in small slices.
    Runs in a process of its own (`--publish`), so that the pacing never competes with clapas for the GIL.
    """
    pub = subprocess.Popen(["mosquitto_pub", "-h", url.host, "-p", str(url.port), *_auth_args(url), "-t", topic,
                            "-l", "-q", "0"], stdin=subprocess.PIPE)
    data = lines_file.read_bytes()
    lines = data.splitlines(keepends=True)
    print(f"start {time.time()}", flush=True)  # the parent times from here, not from this process's start-up
    if rate is None:
        pub.stdin.write(data)
    else:
        step = max(1, int(rate / 200))  # 200 slices a second
        start = time.monotonic()
        for i in range(0, len(lines), step):
            pub.stdin.write(b"".join(lines[i:i + step]))
            pub.stdin.flush()
            delay = start + (i + step) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    pub.stdin.close()
    pub.wait()


async def publish_in_subprocess(url: str, topic: str, lines_file: Path, rate: float | None) -> float:
    """Run the paced publisher in its own process; returns the wall-clock time it started publishing."""
    args = [sys.executable, __file__, "--publish", str(lines_file), "--topic", topic, "--mqtt", url]
    proc = await asyncio.create_subprocess_exec(*args, *(["--rate", str(rate)] if rate else []),
                                                stdout=asyncio.subprocess.PIPE)
    first = await proc.stdout.readline()
    if await proc.wait() or not first.startswith(b"start "):
        raise RuntimeError("the benchmark's publisher failed")
    return float(first.split()[1])


async def clapas_rate(settings: Settings, url: MqttUrl, lines_file: Path, n: int, stall_s: float,
                      rate: float | None = None) -> dict:
    service = Service(settings)
    committed = {"n": 0, "at": 0.0}

    def on_commit(batch: Batch) -> None:
        committed["n"] += len(batch)
        committed["at"] = time.monotonic()

    service.pipeline.on_commit = on_commit
    stop = asyncio.Event()
    task = asyncio.create_task(service.serve(http=False, stop=stop))
    await asyncio.wait_for(service.subscribers[0].connected.wait(), 10)
    await asyncio.sleep(0.3)
    started = await publish_in_subprocess(settings.chirpstack.mqtt_url,
                                          settings.chirpstack.topic.replace("+", "0" * 16), lines_file, rate)
    t0 = time.monotonic() - (time.time() - started)  # the publisher's start, on this process's monotonic clock
    sub = service.subscribers[0]
    last, last_change = (-1, -1), time.monotonic()
    while True:  # until everything received is committed and nothing more arrives, or no progress at all
        await asyncio.sleep(0.05)
        now = (sub.received, committed["n"])
        if now != last:
            last, last_change = now, time.monotonic()
        idle = time.monotonic() - last_change
        if (now[1] == now[0] and now[0] > 0 and idle > 1.0) or idle > stall_s:
            break
    elapsed = (committed["at"] or time.monotonic()) - t0
    counts = service.store.counts()
    stop.set()
    await task
    received = service.subscribers[0].received
    accounted = counts["stored"] + counts["duplicate"] + counts["quarantined"]
    return {"elapsed_s": round(elapsed, 3), "uplinks_per_s": round(accounted / elapsed) if elapsed else 0,
            "received": received, **counts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="duckdb:///var/bench/ingest.duckdb", help="duckdb:///file or postgresql://…")
    ap.add_argument("--uplinks", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=None, help="pipeline batch size (default: the setting's)")
    ap.add_argument("--stall", type=float, default=15.0, help="give up after this many seconds without progress")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark's store")
    ap.add_argument("--rate", type=float, default=None, help="publish at this many uplinks/s (default: full speed)")
    ap.add_argument("--ceiling-runs", type=int, default=3, help="broker ceiling: median of this many runs")
    ap.add_argument("--publish", metavar="FILE", help=argparse.SUPPRESS)  # internal: the paced publisher
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--mqtt", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        publish_paced(MqttUrl(args.mqtt), args.topic, Path(args.publish), args.rate)
        return 0
    for tool in ("mosquitto_pub", "mosquitto_sub"):
        if not shutil.which(tool):
            print(f"bench/ingest.py needs {tool} (apt-get install mosquitto-clients)", file=sys.stderr)
            return 2
    mqtt = os.environ.get("CLAPAS_CHIRPSTACK_MQTT_URL", "mqtt://127.0.0.1:1883")
    url = MqttUrl(mqtt)

    messages = make_messages(args.uplinks, args.devices)
    work = Path(tempfile.mkdtemp(prefix="clapas-bench-"))
    lines = work / "uplinks.jsonl"
    lines.write_bytes(b"\n".join(messages) + b"\n")
    size = sum(map(len, messages)) / len(messages)

    # the ceiling varies from run to run (the C subscriber itself falls behind an unpaced publisher): the median
    ceilings = sorted(broker_ceiling(url, lines, args.uplinks, idle_s=3.0) for _ in range(args.ceiling_runs))
    ceiling, ceiling_lost = ceilings[len(ceilings) // 2]

    pg = None
    store = args.store
    if store.startswith(("postgresql://", "postgres://")):
        pg = PgDatabase(store)
        store = pg.url
    else:
        path = Path(store.removeprefix("duckdb://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        for p in (path, Path(f"{path}.wal")):
            p.unlink(missing_ok=True)
    settings = Settings(store=store)
    settings.chirpstack.mqtt_url = mqtt
    run_id = uuid.uuid4().hex[:8]
    settings.chirpstack.client_id = f"clapas-bench-{run_id}"
    settings.chirpstack.topic = TOPIC.format(app=f"bench-{run_id}", eui="+")
    if args.batch_size:
        settings.pipeline.batch_size = args.batch_size
    try:
        result = run_loop(clapas_rate(settings, url, lines, args.uplinks, args.stall, args.rate))
    finally:
        if pg and not args.keep:
            pg.drop()
        shutil.rmtree(work, ignore_errors=True)
    accounted = result["stored"] + result["duplicate"] + result["quarantined"]
    print(json.dumps({
        "store": args.store.split("://")[0],
        "uplinks": args.uplinks,
        "devices": args.devices,
        "message_bytes": round(size),
        "uplinks_per_s": result["uplinks_per_s"],
        "broker_ceiling_per_s": round(ceiling),
        "broker_ceiling_runs_per_s": [round(c) for c, _ in ceilings],
        "ratio": round(result["uplinks_per_s"] / ceiling, 3),
        "lost": result["received"] - accounted,
        "broker_dropped": args.uplinks - result["received"],
        "stored": result["stored"],
        "duplicates": result["duplicate"],
        "quarantined": result["quarantined"],
        "observations": result["observations"],
        "received_by_subscriber": result["received"],
        "ceiling_lost": ceiling_lost,
        "elapsed_s": result["elapsed_s"],
        "batch_size": settings.pipeline.batch_size,
        "rate": args.rate,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
