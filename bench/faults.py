"""Fault-injection report (issue 9): every fault scenario of tests/faults/ at a larger size, one JSON object.

    python bench/faults.py                       # all scenarios, about 4 minutes
    python bench/faults.py --uplinks 6000 --rate 500 --only kill9,pg
    python bench/faults.py --long-outage         # PostgreSQL unreachable for the full five minutes

Each scenario runs a real `clapas run` (a subprocess) against a throwaway Mosquitto with persistence (its own
port and directory: the broker that is restarted or killed is never the machine's) and a real store: DuckDB, or
PostgreSQL (CLAPAS_TEST_PG, a throwaway database) through a TCP relay the benchmark controls. `scenarios` holds,
per scenario: name, qos, published (accepted by the broker), stored, duplicates, quarantined, lost (published,
never stored), doubled (stored twice), observations_lost/doubled, survived, and what the scenario measured
besides (durations, /healthz during the outage, exit status…). The full-disk scenario needs root (tmpfs mount).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fault tools live in tests/faults/

from bench.ingest import PgDatabase  # the same throwaway database as the ingest benchmark
from tests.faults.scenarios import (
    Sizes,
    broker_restart,
    can_mount,
    full_disk,
    kill9,
    notifier_down,
    pg_outage,
    sigterm_burst,
)

ALL = ("kill9", "sigterm", "broker", "pg", "disk", "notifier")
LONG_OUTAGE_S = 300.0  # the five minutes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--uplinks", type=int, default=4000, help="uplinks per stream (default 4000)")
    p.add_argument("--rate", type=float, default=500, help="uplinks/s published (default 500)")
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--outage", type=float, default=10, help="PostgreSQL outage in seconds (default 10)")
    p.add_argument("--long-outage", action="store_true", help=f"PostgreSQL outage of {LONG_OUTAGE_S:.0f} s")
    p.add_argument("--disk-mb", type=int, default=24, help="size of the DuckDB filesystem that fills")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL server URL")
    p.add_argument("--pg-cases", default="unreachable:1,unreachable:0,restart:1,restart:0",
                   help="PostgreSQL outages to run, MODE:QOS (default all four)")
    p.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    args = p.parse_args()
    only = set(args.only.split(","))
    outage = LONG_OUTAGE_S if args.long_outage else args.outage
    sizes = Sizes(uplinks=args.uplinks, rate=args.rate, devices=args.devices, outage_s=outage)
    # a stream long enough to cover the outage, so that the outage is in its middle
    pg_sizes = Sizes(uplinks=max(args.uplinks, int(args.rate * 0.6 * (outage * 1.6 + 6))), rate=args.rate * 0.6,
                     devices=args.devices, outage_s=outage)
    rows: list[dict] = []
    t0 = time.monotonic()

    def run(key: str, fn, *a, **kw) -> None:
        if key not in only:
            return
        started = time.monotonic()
        try:
            row = fn(*a, **kw).as_dict()
        except Exception as e:  # a scenario that cannot run is reported, the others still run
            row = {"name": f"{fn.__name__}{a}", "survived": False, "error": f"{type(e).__name__}: {e}"[:300]}
        row["duration_s"] = round(time.monotonic() - started, 1)
        rows.append(row)
        print(f"faults: {row['name']} (qos {row.get('qos')}): survived={row['survived']} in {row['duration_s']} s",
              file=sys.stderr, flush=True)

    run("kill9", kill9, 1, sizes)
    run("kill9", kill9, 0, sizes)
    run("sigterm", sigterm_burst, sizes)
    run("broker", broker_restart, sizes)
    if "pg" in only:
        for case in args.pg_cases.split(","):
            mode, qos = case.split(":")[0], int(case.split(":")[1])
            db = PgDatabase(args.pg)
            try:
                run("pg", pg_outage, db.url, qos, pg_sizes, mode=mode)
            finally:
                db.drop()
    if "disk" in only:
        if can_mount():
            run("disk", full_disk, Sizes(uplinks=max(args.uplinks, 30000), rate=max(args.rate, 1500),
                                         devices=args.devices), size_mb=args.disk_mb)
        else:
            rows.append({"name": "DuckDB on a full disk", "survived": None, "skipped": "needs root (tmpfs mount)"})
    run("notifier", notifier_down)
    run("notifier", notifier_down, max_attempts=8)
    print(json.dumps({
        "benchmark": "faults", "machine": "shared, loaded (figures vary from run to run)",
        "sizes": {"uplinks": args.uplinks, "rate": args.rate, "devices": args.devices, "pg_outage_s": outage},
        "duration_s": round(time.monotonic() - t0, 1),
        "survived": sum(1 for r in rows if r.get("survived")), "scenarios": rows,
    }, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
