"""Health rules over a fleet: CPU per uplink and the memory they hold. Prints one JSON object.

    python bench/health.py                                  # 80,000 devices, 1,000 gateways, 7 days
    python bench/health.py --devices 20000 --gateways 250 --days 1

A synthetic fleet (hourly uplinks, each heard by 1–3 of the gateways around it, with fCnt, SF, SNR, a temperature
and, once a day, a battery voltage; every gateway's stats every 30 s, as the Gateway Bridge sends them) goes, in
batches of 10,000 uplinks, through a `DetectorRunner` holding only the `HealthDetector` — what `clapas run` adds
for them, without the pipeline or the store. `cpu_us_per_uplink` is the process CPU inside the runner divided by
the uplinks (the gateway events it also handled are counted apart); `rss_mb_held` is the resident memory grown
while the rules took the fleet in, `state_bytes_per_device` the size of the state they save in the store.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import sys
import time
from datetime import UTC, datetime

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=80_000)
    p.add_argument("--gateways", type=int, default=1_000)
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--interval-s", type=float, default=3600.0, help="every device's uplink interval")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.devices < 1 or a.gateways < 1 or a.days <= 0 or a.interval_s <= 0:
        p.error("devices, gateways, days and interval must be positive")
    print(json.dumps(run(a.devices, a.gateways, a.days, a.interval_s, a.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
