"""Cost of the Grafana dashboards' panels, as Grafana's role, over a city's hourly rollup.

    python bench/grafana.py --store postgresql://postgres@127.0.0.1/bench_grafana --meters 1500 --days 60

A city of `meters` household water meters (personal: the role never sees them, but their rows fill the rollup),
20 district meters, 100 weather stations, 50 air-quality stations, 30 bike counters and 10 bike stations, with an
hourly and a daily rollup row per device, quantity it sends and bucket over `days` days, written straight into
`rollup_1h` and `rollup_1d` (the rollup step is not what is measured). Then the views and
the role of `clapas grafana provision --create-role`, and every panel's SQL, Grafana's macros expanded for the last
7 days, run twice as the role (cold, then warm). Prints one JSON object: milliseconds and rows per panel. The
database of the URL is dropped and recreated.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store import fresh

from clapas.charter.classes import Classifier
from clapas.grafana.dashboards import Rules, dashboards
from clapas.grafana.views import create_role
from clapas.model import QUANTITY_BY_KEY, Device
from clapas.store.postgres import PostgresStore

ROLE = "clapas_grafana_bench"
KINDS = {"district_meter": 20, "weather_station": 100, "air_quality": 50, "bike_counter": 30, "bike_station": 10}
SENDS = {  # what each kind sends
    "water_meter": ("water.volume", "battery"), "district_meter": ("water.flow", "water.volume"),
    "weather_station": ("air.temperature", "air.humidity", "rain.amount", "battery"),
    "air_quality": ("air.pm2_5", "air.pm10", "air.no2", "air.o3"), "bike_counter": ("counter.count", "battery"),
    "bike_station": ("bikeshare.bikes_available",),
}


def expand(sql: str, start: datetime, end: datetime) -> str:
    """Grafana's PostgreSQL macros as Grafana expands them."""
    a, b = f"'{start.isoformat()}'", f"'{end.isoformat()}'"
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {a} AND {b}", sql)
    return sql.replace("$__timeFrom()", a).replace("$__timeTo()", b)


def main() -> None:
    import psycopg

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="postgresql://postgres@127.0.0.1:5432/bench_grafana")
    ap.add_argument("--meters", type=int, default=1500)
    ap.add_argument("--days", type=int, default=60)
    args = ap.parse_args()
    fresh(args.store)
    store = PostgresStore(args.store, rollup_interval_s=None)
    kinds = ["water_meter"] * args.meters + [k for k, n in KINDS.items() for _ in range(n)]
    store.upsert_devices([Device(eui=f"{i:016x}", kind=k, zone=f"z{i % 20}",
                                 premises_use="habitation" if k == "water_meter" else "")
                          for i, k in enumerate(kinds)])
    store.close()
    t0 = time.perf_counter()
    with psycopg.connect(args.store) as con:
        for kind, keys in SENDS.items():
            qs = [QUANTITY_BY_KEY[k].id for k in keys]
            for table, step, trunc in (("rollup_1h", "1 hour", "hour"), ("rollup_1d", "1 day", "day")):
                con.execute(f"INSERT INTO {table} SELECT d.id, q, b, 4, 40, 9, 11 FROM devices d "
                            "CROSS JOIN unnest(%s::smallint[]) q CROSS JOIN generate_series(date_trunc("
                            f"'{trunc}', now()) - %s * interval '1 day', now(), interval '{step}') b "
                            "WHERE d.kind = %s", [qs, args.days, kind])
        con.execute("ANALYZE")
        rows = con.execute("SELECT count(*) FROM rollup_1h").fetchone()[0]
    write_s = time.perf_counter() - t0
    create_role(args.store, Classifier(), "Europe/Paris", ROLE)
    end = datetime.now(UTC)
    start = end - timedelta(days=7)
    panels = []
    role_url = urlparse(args.store)._replace(netloc=f"{ROLE}@{urlparse(args.store).netloc.split('@')[-1]}").geturl()
    try:
        with psycopg.connect(role_url) as con:
            for board in dashboards(Rules()).values():
                for p in board["panels"]:
                    sql = expand(p["targets"][0]["rawSql"], start, end)
                    times = []
                    for _ in range(2):
                        t = time.perf_counter()
                        n = len(con.execute(sql).fetchall())
                        times.append(round(1000 * (time.perf_counter() - t), 1))
                    panels.append({"dashboard": board["uid"], "panel": p["title"], "rows": n, "cold_ms": times[0],
                                   "warm_ms": times[1]})
    finally:
        with psycopg.connect(args.store, autocommit=True) as con:
            con.execute(f"DROP OWNED BY {ROLE}")
            con.execute(f"DROP ROLE {ROLE}")
    print(json.dumps({"devices": len(kinds), "rollup_1h_rows": rows, "write_s": round(write_s, 1),
                      "range_days": 7, "slowest_warm_ms": max(p["warm_ms"] for p in panels), "panels": panels},
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
