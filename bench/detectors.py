"""Water detectors on a city-week: ingest speed with and without them. Prints one JSON object.

    python bench/detectors.py                       # 10,000 meters, 7 days
    python bench/detectors.py --meters 2000 --days 2

The simulated city's water side (10,000 meters and their district inflow meters) sends a week of ChirpStack JSON
uplinks; each run replays the same events through the real `Pipeline` into a fresh DuckDB file, once without
detectors and once with the water detectors on `on_commit` (the writer thread, as in `clapas run`). Events are
generated in chunks outside the clock; each chunk is submitted and drained on the clock, so both runs pay exactly
the same work except the detectors. `detector_cpu_s` is the time spent inside `on_commit`; the bar is
`ratio` = with / without ≥ 1/3.

A third run is `clapas run`'s way (issue 9): the detectors run before each batch's transaction
(`Pipeline(detectors=…)`) and the state of every meter they changed is committed with the batch
(`detector_cpu_s` then counts `prepare` and `committed`: detection and encoding the state). Its bar is
`state_ratio` = with state / with detectors in memory ≥ 0.9.

On a busy machine wall-clock speeds move by ±30 % between runs: each run also says the CPU time of the process
over the clocked parts (`cpu_s`, every thread) and `uplinks_per_cpu_s`; `state_cpu_ratio` compares those, which
other processes disturb much less. `--runs with,state` runs only those two (what `state_ratio` needs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from clapas.config import WaterSettings
from clapas.detectors import DetectorRunner, MemorySink, Registry
from clapas.detectors.water import WaterDetector
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.city import City, build_city, plan_counts
from clapas.simulator.incidents import select
from clapas.simulator.run import to_messages
from clapas.simulator.simulation import Simulation
from clapas.store import open_store

START = datetime(2026, 6, 1, tzinfo=UTC)
CHUNK = 100_000


def water_city(seed: int, meters: int) -> City:
    """A city big enough to hold `meters` water meters, reduced to its water side."""
    n = meters
    while plan_counts(n)["water_meter"] < meters:
        n += max(1, meters - plan_counts(n)["water_meter"])
    return build_city(seed, n).only("water_meter", "district_meter")


class _Timed:
    """The runner's batch protocol, timed."""

    def __init__(self, runner: DetectorRunner, spent: list[float]) -> None:
        self.runner, self.spent = runner, spent

    def prepare(self, batch) -> None:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        self.runner.prepare(batch)
        self.spent[0] += time.perf_counter() - t

    def committed(self, batch) -> None:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        self.runner.committed(batch)
        self.spent[0] += time.perf_counter() - t

    def rolled_back(self, batch) -> None:  # type: ignore[no-untyped-def]
        self.runner.rolled_back(batch)


def one_run(city: City, days: float, seed: int, detectors: bool, workdir: Path, state: bool = False) -> dict:
    end = START + timedelta(days=days)
    name = "state" if state else "with" if detectors else "without"
    store = open_store(f"duckdb:///{workdir / (name + '.duckdb')}")
    store.upsert_zones(city.zones)
    store.upsert_devices(city.registry_devices())
    sink = MemorySink()
    runner = None
    spent = [0.0]
    hook = None
    if detectors:
        runner = DetectorRunner([WaterDetector(WaterSettings())], sink, Registry(store))

        def hook(batch) -> None:  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            runner.on_commit(batch)
            spent[0] += time.perf_counter() - t

    if state:
        runner.load_state(store)  # type: ignore[union-attr]
        pipeline = Pipeline(store, detectors=_Timed(runner, spent))  # type: ignore[arg-type]
    else:
        pipeline = Pipeline(store, on_commit=hook)
    incidents = select("default", city, START, end, seed)
    messages = to_messages(Simulation(city, START, end, seed, incidents).messages())
    elapsed = cpu = 0.0
    n = 0
    while True:
        chunk = list(islice(messages, CHUNK))  # generated off the clock
        if not chunk:
            break
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, len(chunk), 2000):
            pipeline.submit_many(chunk[i:i + 2000])
        pipeline.drain()
        elapsed += time.perf_counter() - t
        cpu += time.process_time() - c
        n += len(chunk)
    pipeline.close()
    counts = store.counts()
    state_rows = len(store.detector_state()) if state else None
    store.close()
    out = {"messages": n, "stored": counts.get("stored", 0), "seconds": round(elapsed, 2),
           "uplinks_per_s": round(n / elapsed), "cpu_s": round(cpu, 2), "uplinks_per_cpu_s": round(n / cpu)}
    if runner is not None:
        out |= {"detector_uplinks": runner.uplinks, "detector_cpu_s": round(spent[0], 2),
                "detector_uplinks_per_s": round(runner.uplinks / spent[0]) if spent[0] else None,
                "alerts_opened": len(sink.opened())}
    if state:
        out["state_rows"] = state_rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", type=int, default=10_000)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="without,with,state", help="which runs (default all three)")
    args = ap.parse_args()
    runs = set(args.runs.split(","))
    city = water_city(args.seed, args.meters)
    out: dict = {"meters": sum(1 for d in city.devices if d.kind == "water_meter"),
                 "district_meters": sum(1 for d in city.devices if d.kind == "district_meter"), "days": args.days}
    with tempfile.TemporaryDirectory(prefix="clapas-bench-") as tmp:
        for key, name, detectors, state in (("without_detectors", "without", False, False),
                                            ("with_detectors", "with", True, False),
                                            ("with_state", "state", True, True)):
            if name in runs:
                out[key] = one_run(city, args.days, args.seed, detectors, Path(tmp), state=state)
                print(f"{key}: {out[key]}", file=sys.stderr)
    without, with_, state = (out.get(k) for k in ("without_detectors", "with_detectors", "with_state"))
    if without and with_:
        out["ratio"] = round(with_["uplinks_per_s"] / without["uplinks_per_s"], 3)
    if with_ and state:
        out["state_ratio"] = round(state["uplinks_per_s"] / with_["uplinks_per_s"], 3)
        out["state_cpu_ratio"] = round(state["uplinks_per_cpu_s"] / with_["uplinks_per_cpu_s"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
