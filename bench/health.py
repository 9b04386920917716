"""Health rules over a fleet: CPU per uplink and the memory they hold; or (`--routes`) the health routes over a
store. Prints one JSON object.

    python bench/health.py                                  # 80,000 devices, 1,000 gateways, 7 days
    python bench/health.py --devices 20000 --gateways 250 --days 1
    python bench/health.py --routes --devices 45000 --store duckdb:///tmp/health.duckdb [--keep]

A synthetic fleet (hourly uplinks, each heard by 1–3 of the gateways around it, with fCnt, SF, SNR, a temperature
and, once a day, a battery voltage; every gateway's stats every 30 s, as the Gateway Bridge sends them) goes, in
batches of 10,000 uplinks, through a `DetectorRunner` holding only the `HealthDetector` — what `clapas run` adds
for them, without the pipeline or the store. `cpu_us_per_uplink` is the process CPU inside the runner divided by
the uplinks (the gateway events it also handled are counted apart); `rss_mb_held` is the resident memory grown
while the rules took the fleet in, `state_bytes_per_device` the size of the state they save in the store.

`--routes` (issue 13: Montpellier's 45,000 devices): a fresh store (`--store`; the DuckDB file is removed, the
PostgreSQL database recreated) gets the fleet (a third without a registry interval, so that its T is learned;
`--uplinks` hourly uplinks each, the last within 100 minutes of `at`, one device in 20 stopped a day early, 1 % with
an open `health.silent` alert), written in batches of 10,000 messages (`write_s`: the time in `store.write`, the
heard times appended to the pending ones included; `fold_s` the maintenance step folding them all into the kept rows;
PostgreSQL's tables then compacted, `VACUUM (FULL, ANALYZE)`, as autovacuum would keep them).
Then, in process through the FastAPI app as the city's operator, `--repeat` times
each: the fleet summary (`GET /api/v1/health`), a page of 100 devices (`/health/devices?limit=100`) and of the late
ones (`&state=late`), one device's health; and the store's learned intervals read from the kept rows
(`learned_intervals`) against the journal read they replace (`learned_intervals_from_journal`). p50/p95 in ms.
`--keep` reuses a store a previous run filled with the same `--devices` and `--uplinks`.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from clapas.detectors.base import DetectorRunner, MemorySink, Registry
from clapas.detectors.health import HealthDetector
from clapas.detectors.state import StateKeeper
from clapas.store.base import Batch

START = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
BATCH = 10_000
STATS_S = 30.0
Q_TEMP, Q_VOLTS = 6, 29


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def run(devices: int, gateways: int, days: float, interval_s: float, seed: int) -> dict:
    rng = random.Random(seed)
    euis = [f"{0x70b3d50000000000 + i:016x}" for i in range(devices)]
    gws = [f"0016c001f1{i:06x}" for i in range(gateways)]
    heard = [tuple(gws[(i * gateways // devices + k) % gateways] for k in range(1 + i % 3)) for i in range(devices)]
    snr = [rng.uniform(-8.0, 10.0) for _ in range(devices)]
    registry = Registry(devices=[{"eui": e, "kind": "weather_station", "zone": "z", "expected_interval_s":
                                  int(interval_s)} for e in euis], zones=[{"id": "z"}])
    det = HealthDetector()
    runner = DetectorRunner([det], MemorySink(), registry)
    phase = [rng.random() * interval_s for _ in range(devices)]
    end = START + days * 86400
    gc.collect()
    rss0 = rss_mb()
    cpu = 0.0
    uplinks = gw_events = 0
    t_slot = START
    f_cnt = [0] * devices
    next_stats = START
    while t_slot < end:  # one interval at a time: every device once, in time order
        order = sorted(range(devices), key=phase.__getitem__)
        b = Batch()
        for n, i in enumerate(order):
            t = t_slot + phase[i]
            while next_stats <= t:
                b.gw_events.extend((next_stats + k * STATS_S / gateways, g, "stats", True)
                                   for k, g in enumerate(gws))
                gw_events += gateways
                next_stats += STATS_S
            dt = datetime.fromtimestamp(t, UTC)
            values = [(Q_TEMP, 15.0 + rng.random())]
            if f_cnt[i] % 24 == 0:
                values.append((Q_VOLTS, 3.6 - f_cnt[i] * 1e-5))
            for q, v in values:
                b.o_time.append(dt)
                b.o_eui.append(euis[i])
                b.o_quantity.append(q)
                b.o_value.append(v)
            b.links.append((t, euis[i], "up", f_cnt[i], 9, 125_000,
                            tuple((g, snr[i] + rng.gauss(0, 1)) for g in heard[i]), None, None))
            f_cnt[i] += 1
            uplinks += 1
            if len(b.links) >= BATCH or n == devices - 1:
                c0 = time.process_time()
                runner.on_commit(b)
                cpu += time.process_time() - c0
                b = Batch()
        t_slot += interval_s
    gc.collect()
    held = rss_mb() - rss0
    state = StateKeeper([det]).snapshot(runner.watermark, runner.uplinks)
    state_bytes = sum(len(r[3] or b"") for r in state)
    return {"bench": "health", "devices": devices, "gateways": gateways, "days": days, "interval_s": interval_s,
            "uplinks": uplinks, "gateway_events": gw_events, "cpu_s": round(cpu, 2),
            "cpu_us_per_uplink": round(cpu / uplinks * 1e6, 2) if uplinks else None,
            "rss_mb_held": round(held, 1), "rss_kb_per_device": round(held * 1024 / devices, 2),
            "state_bytes_per_device": round(state_bytes / devices), "alerts": len(runner.sink.transitions),
            "python": sys.version.split()[0]}


AT = datetime(2026, 8, 3, 12, tzinfo=UTC)
KINDS = ("weather_station", "air_quality", "water_meter", "water_level", "traffic_counter")


def fill(url: str, devices: int, uplinks: int, seed: int) -> tuple[float, float]:
    """A fresh store with the fleet and its journal; returns the seconds spent in `store.write`, and in the
    maintenance step's fold of the times heard into the kept rows."""
    import msgspec
    from store import eui, fresh, journal_row  # bench/store.py

    from clapas.model import Device
    from clapas.store import DeviceSeen, open_store
    from clapas.store.alerts import AlertChange

    fresh(url)
    rng = random.Random(seed)
    store = open_store(url)
    try:
        store.upsert_devices([Device(eui=eui(i), kind=KINDS[i % len(KINDS)], zone=f"z{i % 20:02d}",
                                     expected_interval_s=None if i % 3 == 0 else 3600) for i in range(devices)])
        raw = msgspec.json.encode({"object": {"air.temperature": 0.0}})
        # every device's uplinks, hour after hour, in time order across the fleet (as a network server sends them)
        last = [AT - timedelta(days=1 if i % 20 == 7 else 0, seconds=rng.uniform(0, 6000)) for i in range(devices)]
        times = sorted((last[i] - timedelta(seconds=3600 * k + rng.uniform(-30, 30) * (k > 0)), i)
                       for i in range(devices) for k in range(uplinks))
        spent = 0.0
        for k in range(0, len(times), 10_000):
            b = Batch()
            for t, i in times[k:k + 10_000]:
                e = eui(i)
                journal_row(b, e, t, 0, raw)
                prev = b.dev_by_eui.get(e)
                if prev is None or t >= prev.last_seen:
                    b.dev_by_eui[e] = DeviceSeen(eui=e, last_seen=t)
            t0 = time.perf_counter()
            store.write(b)
            spent += time.perf_counter() - t0
        store.apply_alert_changes([AlertChange("health.silent", eui(i), "open", AT - timedelta(hours=2), "warning",
                                               {}, "no uplink", "device", f"z{i % 20:02d}")
                                   for i in range(0, devices, 100)])
        t0 = time.perf_counter()
        fold = getattr(store, "fold_uplink_times", None)  # None: code from before migration 15, timed for comparison
        if fold is not None:
            fold()
        return spent, time.perf_counter() - t0
    finally:
        store.close()
        if url.startswith("postgresql"):
            compact(url)


def compact(url: str) -> None:
    """PostgreSQL: the tables the fill rewrote batch after batch (`devices.last_seen`, the kept times) compacted
    and analysed, near what autovacuum keeps a city's server at (the test server here runs without it)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute("VACUUM (FULL, ANALYZE)")


def routes(url: str, devices: int, uplinks: int, repeat: int, keep: bool, seed: int) -> dict:
    from city import timed  # bench/city.py
    from fastapi.testclient import TestClient

    from clapas.api.app import create_app
    from clapas.charter import LOCAL
    from clapas.config import Settings
    from clapas.store import open_store

    write_s, fold_s = (None, None) if keep else (round(x, 2) for x in fill(url, devices, uplinks, seed))
    store = open_store(url)
    try:
        app = create_app(store, Settings(store=url))
        app.state.identify = lambda request: LOCAL  # the operator: the access layer's cost is bench/charter.py's
        client = TestClient(app)
        at = AT.isoformat().replace("+", "%2B")
        seen: dict[str, Any] = {}

        def get(path: str) -> Any:
            r = client.get(path)
            if r.status_code != 200:
                raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
            seen[path.split("?")[0] + ("late" if "state=late" in path else "")] = r.json()
            return r

        window = (AT - timedelta(seconds=Settings().health.learn_window_s), AT)
        out: dict[str, Any] = {}
        for name, fn in {
            "fleet_summary": lambda _: get(f"/api/v1/health?at={at}&limit=100"),
            "devices_page_100": lambda _: get(f"/api/v1/health/devices?at={at}&limit=100"),
            "late_page_100": lambda _: get(f"/api/v1/health/devices?at={at}&limit=100&state=late"),
            "one_device": lambda _: get(f"/api/v1/health/devices/{'70b3d50000000003'}?at={at}"),
            "learned_intervals": lambda _: store.learned_intervals(*window),
            "learned_intervals_from_journal": lambda _: store.learned_intervals_from_journal(*window),
        }.items():
            out[name] = timed(fn, [None], repeat)
        learned = store.learned_intervals(*window)
        same = learned == store.learned_intervals_from_journal(*window)
        return {"bench": "health_routes", "store": url.split(":")[0], "devices": devices,
                "journal_rows": devices * uplinks, "write_s": write_s, "fold_s": fold_s, "learned": len(learned),
                "learned_equal_journal_read": same, "device_states": seen["/api/v1/health/devices"]["counts"],
                **out, "python": sys.version.split()[0]}
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=80_000)
    p.add_argument("--gateways", type=int, default=1_000)
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--interval-s", type=float, default=3600.0, help="every device's uplink interval")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--routes", action="store_true", help="time the health routes over a store instead")
    p.add_argument("--store", default="duckdb:///tmp/clapas-bench-health.duckdb", help="--routes: the store's URL")
    p.add_argument("--uplinks", type=int, default=24, help="--routes: hourly uplinks per device")
    p.add_argument("--repeat", type=int, default=5, help="--routes: calls of each")
    p.add_argument("--keep", action="store_true", help="--routes: reuse the store a previous run filled")
    a = p.parse_args(argv)
    if a.routes:
        if a.devices < 1 or a.uplinks < 2 or a.repeat < 1:
            p.error("devices, uplinks (≥ 2) and repeat must be positive")
        print(json.dumps(run_routes := routes(a.store, a.devices, a.uplinks, a.repeat, a.keep, a.seed)))
        return 0 if run_routes["learned_equal_journal_read"] else 1
    if a.devices < 1 or a.gateways < 1 or a.days <= 0 or a.interval_s <= 0:
        p.error("devices, gateways, days and interval must be positive")
    print(json.dumps(run(a.devices, a.gateways, a.days, a.interval_s, a.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
