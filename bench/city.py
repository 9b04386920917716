"""clapas at the size of its city (issue 14): N devices, a month of data, the API timed on it. Prints one JSON object.

    python bench/city.py --devices 2000 --days 3                        # a quick look (DuckDB, temp file)
    python bench/city.py --devices 80000 --days 2 --store duckdb:///var/city.duckdb --keep var/
    python bench/city.py --devices 80000 --days 2 --store postgresql://postgres@127.0.0.1:5432/clapas_city

How the store is filled (the month ending now, so that the reports' "today" has data):
- through the real pipeline: the simulator's city (`build_city`, the demo's mix of kinds, each at its real uplink
  interval, with the default incidents) emits ChirpStack JSON `up`/`status`/`join` events for the first
  `--part-through-pipeline` of the period (at least two hours); they go through `Pipeline.submit_many`
  (journal, dedupe, decode, batch, writer thread) into the store, as `clapas run` does minus the MQTT socket;
- by the bulk path for the rest: the last simulated hour of `up` messages (journal rows with their real raw JSON,
  and the observations decoded from them) is copied forward hour by hour to the end of the period, each copy with
  its uplink time shifted (in the journal columns, in the observations and in the raw JSON's `time`, so that
  `clapas replay` decodes it back at the same time) and cumulative quantities (meter indexes, absolute counters)
  advanced by the device's hourly increase seen in the pipeline part. Copies are written with `store.write` in
  batches of `BULK_BATCH` uplinks, as the pipeline's writer would. The values do not follow the day's cycle:
  enough for timing and disk size, not for the rules' findings.

Then, each timed on the whole store:
- `rss_mb`: a fresh process builds `clapas run`'s `Service` on the store (registry of the N devices, pipeline,
  every detector, alert sink) without network listeners, and feeds the detectors the stored observations in time
  order (what `on_commit` hands them live), day by day; resident memory after start and after each day;
- `routes`: each API route the dashboard and the reports use, in-process through the FastAPI app (Starlette's test
  client), `--repeat` times over varied parameters (devices, zones); `p50_ms` and `p95_ms`;
  `zone_series`: a district's hourly roll-up over the period as `/api/v1/zones/{dma}/series` serves it (the
  per-zone rollup); `store_calls`: the same roll-up computed from the meters' rows (`Store.group_series` over a
  DMA's meters, one row an hour; and `district_hourly_per_device`, `Store.series`' one row per meter and hour);
- `replay_uplinks_per_s`: `clapas replay` (`pipeline.replay.replay`) of the journal received in the first
  `--replay-share` of the period;
- `disk`: the store's size on disk, and per million uplinks.
Progress goes to stderr. Figures depend on the machine: say whether it was shared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from store import fresh  # bench/store.py

from clapas.config import Settings
from clapas.model import QUANTITY_BY_KEY
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import build_city
from clapas.simulator.incidents import select
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store import Batch, open_store

BULK_BATCH = 20_000  # uplinks per store.write on the bulk path (the pipeline's default batch is 10,000)
HOUR = timedelta(hours=1)
MIN_PIPELINE = timedelta(hours=2)  # two hourly uplinks of each water meter: its hourly increase
CUMULATIVE = frozenset(QUANTITY_BY_KEY[k].id for k in ("water.volume", "water.reverse_volume", "counter.total"))
# Issue 14's goals on the reference 2-vCPU machine.
GOALS = {"device_series_ms": 20.0, "district_rollup_ms": 200.0, "route_p95_ms": 300.0, "rss_mb": 1024.0,
         "replay_uplinks_per_s": 30_000.0}
TIME_KEY = b'"time":"'


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


class Bar:
    """A progress bar on stderr."""

    def __init__(self, label: str, total: float) -> None:
        self.label, self.total, self.t0, self.last = label, max(total, 1), time.monotonic(), 0.0

    def __call__(self, done: float, extra: str = "") -> None:
        now = time.monotonic()
        if now - self.last < 0.5 and done < self.total:
            return
        self.last = now
        share = min(1.0, done / self.total)
        bar = "#" * int(30 * share)
        sys.stderr.write(f"\r{self.label:<10} [{bar:<30}] {100 * share:5.1f}% {extra} {now - self.t0:6.0f} s ")
        sys.stderr.flush()

    def end(self) -> None:
        sys.stderr.write("\n")


# --- filling the store ----------------------------------------------------------------------------------------
class Template:
    """The last simulated hour of `up` uplinks, captured from committed batches, and the cumulative quantities'
    hourly increase of each device over the whole pipeline part."""

    def __init__(self, since: datetime) -> None:
        self.since = since
        self.uplinks: list[tuple[Any, ...]] = []  # journal fields of one uplink, then its [(qid, value)]
        self.first: dict[tuple[str, int], tuple[float, float]] = {}
        self.last: dict[tuple[str, int], tuple[float, float]] = {}

    def on_commit(self, b: Batch) -> None:
        obs: dict[tuple[str, datetime], list[tuple[int, float]]] = {}
        first, last = self.first, self.last
        for t, e, q, v in zip(b.o_time, b.o_eui, b.o_quantity, b.o_value, strict=True):
            if q in CUMULATIVE:
                ts = t.timestamp()
                first.setdefault((e, q), (ts, v))
                last[(e, q)] = (ts, v)
            if t >= self.since:
                obs.setdefault((e, t), []).append((q, v))
        margin = QUANTITY_BY_KEY["radio.margin"].id
        for i, event in enumerate(b.j_event):  # a status event's rows (margin first) follow its uplink's
            rows = obs.get((b.j_eui[i], b.j_time[i])) if event == "status" else None
            if rows and margin in (q for q, _ in rows):
                del rows[max(k for k, (q, _) in enumerate(rows) if q == margin):]
        for i, status in enumerate(b.j_status):
            t = b.j_time[i]
            if status != "stored" or b.j_event[i] != "up" or t is None or t < self.since:
                continue
            self.uplinks.append((t, b.j_eui[i], b.j_topic[i], b.j_fport[i], b.j_fcnt[i], b.j_dedup[i], b.j_rssi[i],
                                 b.j_snr[i], b.j_sf[i], b.j_raw[i], obs.get((b.j_eui[i], t), [])))

    def hourly_increase(self, eui: str, q: int) -> float:
        a, z = self.first.get((eui, q)), self.last.get((eui, q))
        if a is None or z is None or z[0] <= a[0]:
            return 0.0
        return max(0.0, (z[1] - a[1]) / (z[0] - a[0]) * 3600)


def shifted_raw(raw: bytes, t: datetime) -> bytes:
    """The raw ChirpStack JSON with its top-level `time` set to `t` (what replay reads back)."""
    i = raw.find(TIME_KEY)
    if i < 0:
        return raw
    i += len(TIME_KEY)
    j = raw.index(b'"', i)
    return raw[:i] + t.isoformat().encode() + raw[j:]


def bulk_fill(store: Any, tpl: Template, start: datetime, end: datetime, bar: Bar, done0: int) -> tuple[int, int]:
    """Copy the template hour forward from `start` to `end`; returns (uplinks, observations) written."""
    ups = sorted(tpl.uplinks, key=lambda u: u[0])
    increase = {(u[1], q): tpl.hourly_increase(u[1], q) for u in ups for q, _ in u[10] if q in CUMULATIVE}
    n_up = n_obs = 0
    k = 1
    while True:
        shift = k * HOUR
        todo = [u for u in ups if u[0] + shift < end] if tpl.since + shift + HOUR > end else ups
        if not todo or tpl.since + shift >= end:
            break
        for c in range(0, len(todo), BULK_BATCH):
            b = Batch()
            for t0, eui, topic, fport, fcnt, dedup, rssi, snr, sf, raw, obs in todo[c:c + BULK_BATCH]:
                t = t0 + shift
                b.j_received.append(t)
                b.j_time.append(t)
                b.j_topic.append(topic)
                b.j_eui.append(eui)
                b.j_fport.append(fport)
                b.j_fcnt.append(fcnt)
                b.j_dedup.append(dedup)
                b.j_rssi.append(rssi)
                b.j_snr.append(snr)
                b.j_sf.append(sf)
                b.j_raw.append(shifted_raw(raw, t))
                for q, v in obs:
                    b.o_time.append(t)
                    b.o_eui.append(eui)
                    b.o_quantity.append(q)
                    b.o_value.append(v + k * increase[(eui, q)] if q in CUMULATIVE else v)
            n = len(b.j_time)
            b.j_id = [None] * n
            b.j_source = ["simulator"] * n
            b.j_event = ["up"] * n
            b.j_fmt = ["json"] * n
            b.j_status = ["stored"] * n
            b.j_error = [None] * n
            store.write(b)
            n_up += n
            n_obs += len(b.o_time)
            bar(done0 + n_up, f"{done0 + n_up:,} uplinks")
        k += 1
    return n_up, n_obs


def expected_uplinks(city: Any, seconds: float) -> int:
    return round(sum(seconds / (d.device.expected_interval_s or 3600) for d in city.devices))


def build(store: Any, city: Any, start: datetime, end: datetime, share: float, seed: int) -> dict[str, Any]:
    pipe_end = min(end, max(start + MIN_PIPELINE, start + (end - start) * share))
    pipe_end = pipe_end.replace(minute=0, second=0, microsecond=0) if pipe_end < end else end
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    tpl = Template(pipe_end - HOUR)
    total = expected_uplinks(city, (end - start).total_seconds())
    bar = Bar("store", total)
    pipeline = Pipeline(store, on_commit=tpl.on_commit)
    t0 = time.perf_counter()
    sim = Simulation(city, start, pipe_end, seed, select("default", city, start, pipe_end, seed))
    n_msg = feed(pipeline, sim.messages(), progress=lambda ts, n: bar(n, f"{n:,} messages (pipeline)"))
    pipeline.close()
    pipe_s = time.perf_counter() - t0
    counts = store.counts()
    t0 = time.perf_counter()
    n_up, n_obs = bulk_fill(store, tpl, pipe_end, end, bar, n_msg)
    bulk_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    maintain = getattr(store, "maintain", None) or getattr(store, "compact", None)
    if maintain is not None:
        # as the background step would: PostgreSQL's hourly/daily rollups of everything, DuckDB's closed days
        # rewritten sorted by device
        maintain(settle_s=0)
    rollup_s = time.perf_counter() - t0
    bar.end()
    return {"pipeline": {"until": pipe_end.isoformat(), "messages": n_msg, "stored": counts["stored"],
                         "observations": counts["observations"], "seconds": round(pipe_s, 1),
                         "messages_per_s": round(n_msg / pipe_s)},
            "bulk": {"uplinks": n_up, "observations": n_obs, "seconds": round(bulk_s, 1),
                     "uplinks_per_s": round(n_up / bulk_s) if bulk_s else None, "batch": BULK_BATCH},
            "rollup_s": round(rollup_s, 1)}


# --- clapas run's memory ----------------------------------------------------------------------------------------
def rss_child(url: str, start: datetime, end: datetime) -> dict[str, Any]:
    """In a fresh process: `clapas run`'s service on the store, its detectors fed the stored month."""
    from clapas.service import Service

    r0 = rss_mb()
    service = Service(Settings(store=url))
    assert service.alerting is not None
    runner, store = service.alerting.runner, service.store
    r1 = rss_mb()
    ph = "?" if url.startswith("duckdb:") else "%s"
    sql = (f"SELECT o.time, d.eui, o.quantity_id, o.value FROM observations o JOIN devices d ON d.id = o.device_id "
           f"WHERE o.time >= {ph} AND o.time < {ph} ORDER BY o.time, d.eui, o.quantity_id")
    per_day, rows_fed = [], 0
    day = start
    t0 = time.perf_counter()
    while day < end:
        nxt = min(end, day + timedelta(days=1))
        hour = day
        while hour < nxt:
            rows = [(r["time"], r["eui"], r["quantity_id"], r["value"]) for r in store.sql(sql, [hour, hour + HOUR])]
            runner.feed(rows)
            rows_fed += len(rows)
            hour += HOUR
        per_day.append(rss_mb())
        print(f"rss: day {len(per_day)}: {per_day[-1]} MB", file=sys.stderr, flush=True)
        day = nxt
    runner.finish(end.timestamp())
    seconds = time.perf_counter() - t0
    service.pipeline.close()
    store.close()
    return {"python_mb": r0, "started_mb": r1, "after_each_day_mb": per_day, "final_mb": per_day[-1] if per_day else r1,
            "growth_mb": round((per_day[-1] if per_day else r1) - r1, 1), "rows_fed": rows_fed,
            "uplinks_fed": runner.uplinks, "detectors_s": round(seconds, 1)}


def measure_rss(url: str, start: datetime, end: datetime) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), "src") if p)}
    out = subprocess.run([sys.executable, __file__, "--rss-child", url, "--start", start.isoformat(),
                          "--end", end.isoformat()], env=env, stdout=subprocess.PIPE, check=True)
    return json.loads(out.stdout)


# --- routes -------------------------------------------------------------------------------------------------
def timed(fn: Any, params: list[Any], repeat: int) -> dict[str, float]:
    fn(params[0])  # warm caches and plans
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(params[i % len(params)])
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)], 1), "n": len(times)}


def measure_routes(store: Any, url: str, city: Any, start: datetime, end: datetime, repeat: int,
                   seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    from fastapi.testclient import TestClient

    from clapas.api.app import create_app
    from clapas.api.rest import MAX_LATEST_DEVICES
    from clapas.charter import LOCAL

    app = create_app(store, Settings(store=url))
    # timed as a caller who may read everything (the city's operator): the access layer's own cost is
    # bench/charter.py's measure
    app.state.identify = lambda request: LOCAL
    client = TestClient(app)
    rnd = random.Random(seed)
    quantity = {"water_meter": "water.volume", "weather_station": "air.temperature", "air_quality": "air.no2",
                "indoor_climate": "air.humidity", "water_level": "water.level", "traffic_counter": "counter.count"}
    picks = [d for d in city.devices if d.kind in quantity]
    devices = rnd.sample(picks, min(len(picks), 20))
    euis = [d.eui for d in city.devices]

    def get(path: str) -> Any:
        r = client.get(path)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
        return r

    def history(resolution: str) -> Any:
        return lambda d: get(f"/api/v1/devices/{d.eui}/observations?quantity={quantity[d.kind]}"
                             f"&from={start.isoformat().replace('+', '%2B')}&to={end.isoformat().replace('+', '%2B')}"
                             f"&resolution={resolution}")

    pages = [",".join(euis[i:i + MAX_LATEST_DEVICES]) for i in range(0, len(euis), len(euis) // 10 or 1)][:10]
    month = datetime.now(UTC).strftime("%Y-%m")
    fixed = {
        "healthz": "/healthz", "metrics": "/metrics", "counts": "/api/v1/counts",
        "devices_10000": "/api/v1/devices?limit=10000", "zones": "/api/v1/zones?format=json",
        "quantities": "/api/v1/quantities", "quarantine": "/api/v1/uplinks?status=quarantined&limit=20",
        "alerts": "/api/v1/alerts?limit=100", "air_atmo": "/api/v1/air/atmo", "air_eaqi": "/api/v1/air/eaqi",
        "heat_status": "/api/v1/heat/status?days=5", "heat_islands": "/api/v1/heat/islands",
        "heat_cool_refuges": "/api/v1/heat/cool-refuges", "flood_rivers": "/api/v1/flood/rivers",
        "museum_rooms": "/api/v1/museum/rooms", "museum_report": f"/api/v1/museum/report?month={month}",
    }
    cases: dict[str, tuple[Any, list[Any], int]] = {
        "device_raw_30d": (history("raw"), devices, repeat), "device_hourly_30d": (history("1h"), devices, repeat),
        "device_one": (lambda d: get(f"/api/v1/devices/{d.eui}"), devices, repeat),
        "latest_page_200": (lambda p: get(f"/api/v1/latest?device={p}"), pages, max(3, repeat // 4)),
    }
    slow = {"devices_10000", "museum_report", "heat_islands", "heat_cool_refuges", "air_atmo", "heat_status"}
    for name, path in fixed.items():
        cases[name] = (lambda p: get(p), [path], max(3, repeat // 4) if name in slow else repeat)
    # a district's hourly roll-up over the period as the API serves it: the per-zone rollup (migration 14)
    dmas = [z.id for z in city.zones if z.kind == "dma"]
    window = f"&from={start.isoformat().replace('+', '%2B')}&to={end.isoformat().replace('+', '%2B')}"
    cases["zone_series"] = (lambda z: get(f"/api/v1/zones/{z}/series?quantity=water.volume&kind=water_meter"
                                          f"{window}"), dmas or [city.zones[0].id], repeat)
    routes: dict[str, Any] = {}
    bar = Bar("routes", len(cases))
    for i, (name, (fn, params, n)) in enumerate(cases.items()):
        bar(i, name)
        routes[name] = timed(fn, params, n)
    bar(len(cases))
    bar.end()
    members = {z: [d.eui for d in city.devices if d.device.zone == z and d.kind == "water_meter"] for z in dmas}
    zones = rnd.sample(dmas, min(3, len(dmas)))
    # the roll-up aggregated in the store (`group_series`, one row an hour), and the per-device rows it replaces
    calls = {"district_hourly_rollup": timed(
        lambda z: store.group_series("water.volume", start, end, euis=members[z], resolution="1h"), zones, 3),
             "district_hourly_per_device": timed(
        lambda z: store.series("water.volume", start, end, euis=members[z], resolution="1h"), zones, 3)}
    for name, fn in (("district_hourly_rollup", store.group_series), ("district_hourly_per_device", store.series)):
        calls[name]["devices"] = round(statistics.mean(len(members[z]) for z in zones))
        calls[name]["rows"] = len(fn("water.volume", start, end, euis=members[zones[0]], resolution="1h"))
    return routes, calls


# --- replay and disk ----------------------------------------------------------------------------------------
def measure_replay(store: Any, url: str, start: datetime, end: datetime, share: float) -> dict[str, Any]:
    from clapas.pipeline.replay import replay

    until = start + (end - start) * share
    t0 = time.perf_counter()
    r = replay(store, Settings(store=url), since=start, until=until)
    seconds = time.perf_counter() - t0
    return {"replayed": r["replayed"], "seconds": round(seconds, 1), "share": share, "until": until.isoformat(),
            "uplinks_per_s": round(r["replayed"] / seconds) if seconds else None,
            "observations_before": r["observations_before"], "observations_after": r["observations_after"]}


def disk_bytes(store: Any, url: str) -> int:
    if url.startswith("duckdb://"):
        store._con.execute("CHECKPOINT")
        path = Path(store.url.removeprefix("duckdb://").removeprefix("/")) if False else Path(duck_path(url))
        return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".wal")) if p.exists())
    return int(store.sql("SELECT pg_database_size(current_database()) AS n")[0]["n"])


def duck_path(url: str) -> str:
    path = url.removeprefix("duckdb://")
    return path[1:] if path.startswith("//") else path


# --- main -----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=80_000)
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--store", default="", help="duckdb:///path.duckdb or postgresql://… (emptied first); "
                   "default: a DuckDB file in --keep or a temporary folder")
    p.add_argument("--part-through-pipeline", type=float, default=0.05, metavar="FRACTION",
                   help="share of the period that goes through the real pipeline (at least two hours)")
    p.add_argument("--replay-share", type=float, default=0.05, metavar="FRACTION",
                   help="share of the period (from its start) whose journal is replayed")
    p.add_argument("--keep", metavar="DIR", help="keep the DuckDB store in this folder")
    p.add_argument("--repeat", type=int, default=20, help="requests per route (cheap ones; heavy ones a quarter)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-rss", action="store_true", help="skip the clapas-run memory measurement")
    p.add_argument("--rss-child", metavar="URL", help=argparse.SUPPRESS)
    p.add_argument("--start", type=datetime.fromisoformat, help=argparse.SUPPRESS)
    p.add_argument("--end", type=datetime.fromisoformat, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child, args.start, args.end)))
        return 0
    with tempfile.TemporaryDirectory(prefix="clapas-bench-city-") as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        url = args.store or f"duckdb:///{folder.resolve() / 'city.duckdb'}"
        fresh(url)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=args.days)
        t0 = time.perf_counter()
        city = build_city(args.seed, args.devices)
        print(f"city of {len(city.devices):,} devices in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        store = open_store(url)
        try:
            built = build(store, city, start, end, args.part_through_pipeline, args.seed)
            counts = store.counts()
            size = disk_bytes(store, url)
        finally:
            store.close()
        rss = None if args.no_rss else measure_rss(url, start, end)
        store = open_store(url)
        try:
            routes, calls = measure_routes(store, url, city, start, end, args.repeat, args.seed)
            print("replay…", file=sys.stderr, flush=True)
            rep = measure_replay(store, url, start, end, args.replay_share)
        finally:
            store.close()
    uplinks = counts["stored"] + counts["quarantined"] + counts["duplicate"]
    kinds: dict[str, int] = {}
    for d in city.devices:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    series_ms = max(routes["device_raw_30d"]["p95_ms"], routes["device_hourly_30d"]["p95_ms"])
    dashboard_p95 = max(v["p95_ms"] for k, v in routes.items() if k != "museum_report")
    goals = {
        "device_series_ms": series_ms, "district_rollup_ms": routes["zone_series"]["p95_ms"],
        "route_p95_ms": dashboard_p95, "rss_mb": rss["final_mb"] if rss else None,
        "replay_uplinks_per_s": rep["uplinks_per_s"],
    }
    print(json.dumps({
        "store": url.split(":", 1)[0], "devices": len(city.devices), "kinds": kinds, "days": args.days,
        "period": [start.isoformat(), end.isoformat()], "uplinks": uplinks, "observations": counts["observations"],
        "build": built, "routes": routes, "store_calls": calls, "rss_mb": rss,
        "replay_uplinks_per_s": rep["uplinks_per_s"], "replay": rep,
        "disk": {"bytes": size, "mb_per_million_uplinks": round(size / 1e6 / (uplinks / 1e6), 1) if uplinks else None},
        "goals": {k: {"goal": GOALS[k], "measured": v,
                      "met": None if v is None else (v >= GOALS[k] if k == "replay_uplinks_per_s" else v <= GOALS[k])}
                  for k, v in goals.items()},
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
