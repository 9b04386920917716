"""Cost of the charter's stored-data work: the open aggregate query, a retention run, one erasure.

    python bench/retention.py --store duckdb:///tmp/retention.duckdb --meters 2000 --days 40
    python bench/retention.py --store postgresql://postgres@127.0.0.1/bench_retention --meters 1000 --days 30

A city of `meters` personal water meters (hourly `water.volume` and `battery`) in 20 districts, plus 200 open
weather stations, over `days` days that lie 25 months back: a retention run then thins every meter's index to one
row per local day and deletes their battery rows and raw frames, and leaves the stations alone. Measured: the write
of the city, the aggregate (the consumption groups of every day, then suppression over the zone tree), a dry run,
the real run, and the erasure of one meter. Prints one JSON object. The store is started afresh (PostgreSQL: the
database of the URL is dropped and recreated).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store import fresh, journal_row

from clapas.charter.aggregates import AggregateSettings, Group, ZoneTree, aggregate
from clapas.charter.jobs import retention_plan, run_erasure
from clapas.config import Settings
from clapas.model import QUANTITY_BY_KEY, Device, Zone
from clapas.store.base import Batch, DeviceSeen, Store, open_store

DISTRICTS = 20
STATIONS = 200
Q_VOLUME, Q_BATTERY, Q_TEMP = (QUANTITY_BY_KEY[k].id for k in ("water.volume", "battery", "air.temperature"))


def meter(i: int) -> str:
    return f"a{i:015x}"


def station(i: int) -> str:
    return f"b{i:015x}"


def city_batches(meters: int, start: datetime, days: int, hours_per_batch: int = 6):
    """Hourly uplinks of every device, a few hours per batch (each journaled like a real frame)."""
    for h0 in range(0, days * 24, hours_per_batch):
        b = Batch()
        for h in range(h0, h0 + hours_per_batch):
            t = start + timedelta(hours=h)
            for kind, n, name in (("water_meter", meters, meter), ("weather_station", STATIONS, station)):
                for i in range(n):
                    e = name(i)
                    values = ((Q_VOLUME, 100 + h * 0.01 * (1 + i % 7)), (Q_BATTERY, 90.0)) if kind == "water_meter" \
                        else ((Q_TEMP, 10.0 + h % 9),)
                    journal_row(b, e, t, h, b'{"devEui":"' + e.encode() + b'","object":{}}',
                                f"application/1/device/{e}/event/up")
                    for q, v in values:
                        b.o_time.append(t)
                        b.o_eui.append(e)
                        b.o_quantity.append(q)
                        b.o_value.append(v)
                    if h == h0:
                        b.dev_by_eui[e] = DeviceSeen(eui=e, last_seen=t, kind=kind)
        yield b


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default="duckdb:///tmp/clapas-bench-retention.duckdb")
    p.add_argument("--meters", type=int, default=2000)
    p.add_argument("--days", type=int, default=40)
    args = p.parse_args(argv)
    fresh(args.store)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = (now - timedelta(days=25 * 31)).replace(hour=0)
    store: Store = open_store(args.store)
    try:
        store.upsert_zones([Zone(id=f"d{k:02d}", kind="district") for k in range(DISTRICTS)])
        store.upsert_devices([Device(eui=meter(i), kind="water_meter", zone=f"d{i % DISTRICTS:02d}",
                                     data_class="personal", subscriber=f"S-{i:06d}") for i in range(args.meters)]
                             + [Device(eui=station(i), kind="weather_station") for i in range(STATIONS)])
        rows = 0

        def write() -> None:
            nonlocal rows
            for b in city_batches(args.meters, start, args.days):
                store.write(b)
                rows += len(b.o_time)
            if hasattr(store, "maintain"):
                store.maintain(settle_s=0)

        _, t_write = timed(write)
        s = AggregateSettings()

        def aggregate_month() -> int:
            a, z = start + timedelta(days=1), start + timedelta(days=min(args.days, 31))
            days: dict = defaultdict(dict)
            for r in store.consumption_groups("water.volume", a, z, kinds=s.kinds):
                days[r["day"].date()][r["zone"]] = Group(r["meters"], r["total"], r["top"])
            tree = ZoneTree((zz["id"], zz["parent"] or "") for zz in store.zones())
            return len(aggregate(tree, days, "1d", s))

        cells, t_agg = timed(aggregate_month)
        settings = Settings()
        plan = retention_plan(store, settings, now)
        dry, t_dry = timed(lambda: store.apply_retention(plan, dry_run=True))
        done, t_run = timed(lambda: store.apply_retention(plan))
        erased, t_erase = timed(lambda: run_erasure(store, request="bench", eui=meter(1)).deleted)
        print(json.dumps({
            "benchmark": "retention", "store": args.store.split(":", 1)[0], "meters": args.meters,
            "stations": STATIONS, "days": args.days, "observation_rows": rows, "write_s": round(t_write, 2),
            "aggregate_cells": cells, "aggregate_days": min(args.days, 31) - 1, "aggregate_s": round(t_agg, 3),
            "retention_dry_run_s": round(t_dry, 2), "retention_s": round(t_run, 2), "retention_deleted": done,
            "dry_run_equals_run": dry == done, "erase_one_meter_s": round(t_erase, 3), "erased": erased,
        }))
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
