"""The environment reports the API serves, timed on a simulated city: ATMO, EAQI, heat status, islands, cool refuges,
rivers. Prints one JSON object. The bar: each well under a second for 1,000 environmental sensors.

    python bench/reports.py                          # 1,000 sensors, 10 days
    python bench/reports.py --sensors 200 --days 4   # a quick look

The city is bench/environment.py's (the simulator's, reduced to its environmental sensors, with its incidents);
its uplinks go once through the real `Pipeline` into a DuckDB file (off the clock). Each report is then run
`--repeat` times at the end of the simulated period; the median is reported (wall clock, the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).parent))

from environment import incidents_for, sized_city

from clapas.detectors.score import ENV_DEFAULT_START
from clapas.pipeline.ingest import Pipeline
from clapas.reports import air, flood, heat
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store import open_store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=1000)
    ap.add_argument("--days", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", default="", help="keep the city in this DuckDB file (reused when it exists)")
    args = ap.parse_args()
    city = sized_city(args.seed, args.sensors)
    start = ENV_DEFAULT_START
    end = start + timedelta(days=args.days)
    incidents = incidents_for(city, start, args.days, args.seed)
    with tempfile.TemporaryDirectory(prefix="clapas-bench-reports-") as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "env.duckdb"
        reuse = path.exists()
        store = open_store(f"duckdb:///{path}")
        try:
            if not reuse:
                store.upsert_zones(city.zones)
                store.upsert_devices(city.registry_devices())
                t = time.perf_counter()
                pipeline = Pipeline(store)
                feed(pipeline, Simulation(city, start, end, args.seed, incidents).messages())
                pipeline.close()
                print(f"stored the city in {time.perf_counter() - t:.0f} s (off the clock)", file=sys.stderr)
            now = end - timedelta(minutes=1)
            day = now.astimezone(ZoneInfo("Europe/Paris")).date()
            reports = {
                "air.atmo": lambda: air.atmo_report(store, day),
                "air.eaqi": lambda: air.eaqi_report(store, now),
                "heat.status": lambda: heat.heat_status(store, 7, now),
                "heat.islands": lambda: heat.islands_report(store, day - timedelta(days=1)),
                "heat.cool_refuges": lambda: heat.cool_refuges(store, now),
                "flood.rivers": lambda: flood.rivers_report(store, now),
            }
            seconds = {}
            for name, run in reports.items():
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    run()
                    times.append(time.perf_counter() - t0)
                seconds[name] = round(statistics.median(times), 3)
            counts = store.counts()
        finally:
            store.close()
    kinds: dict[str, int] = {}
    for d in city.devices:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    print(json.dumps({"sensors": len(city.devices), "kinds": kinds, "days": args.days,
                      "messages": counts["stored"], "observations": counts["observations"], "median_s": seconds},
                     indent=2))


if __name__ == "__main__":
    main()
