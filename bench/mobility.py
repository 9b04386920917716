"""Mobility at a city's size (issue 12). Prints one JSON object.

    python bench/mobility.py                                   # 500 counters × a year; 100 systems × 500 stations
    python bench/mobility.py --counters 50 --systems 10        # a quick look

- `observatory`: a year of hourly counts (two directions and their total) for `--counters` counters through the
  observatory's computations (`clapas.indices.counters`: local days, quality flags, TMJA, TMJO, weekend mean,
  hourly and weekly profiles, peak hours, year-on-year against the previous year): wall and CPU seconds, per
  counter; and `--store-counters` of them written through the real pipeline into DuckDB and read back by the API's
  report (`clapas.reports.mobility.observatory`), timed per counter.
- `gbfs`: `--systems` GBFS systems of `--stations` stations polled once a minute: per poll cycle (every system
  once), the CPU the connector spends on the fetched station_status files (schema validation with the vendored
  official schema, normalisation, cross-file checks, messages) and the CPU the pipeline spends journaling, decoding
  and storing them (DuckDB, `--store-cycles` cycles); `core_share` = CPU seconds per minute / 60 (1.0 = one core
  busy all the time). HTTP transfer is not included (the files are built in memory, as the simulated feed does).
Figures depend on the machine: say whether it was shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import msgspec

from clapas.connectors import counts
from clapas.connectors.gbfs import messages, normalize, schema
from clapas.indices import counters as ct
from clapas.pipeline.ingest import Pipeline
from clapas.reports import mobility as rep
from clapas.simulator.mobility import StationModel, build_mobility
from clapas.store.base import open_store

TZ = "Europe/Paris"
Z = ZoneInfo(TZ)
YEAR = 2025


def year_of_counts(k: int, year: int) -> dict[str, dict[int, float]]:
    """Hourly slots of one counter for a local year: in, out, total (a daily and weekly shape, a lost day)."""
    t = int(datetime(year, 1, 1, tzinfo=Z).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=Z).timestamp())
    out: dict[str, dict[int, float]] = {"in": {}, "out": {}, "total": {}}
    while t < end:
        loc = datetime.fromtimestamp(t, UTC).astimezone(Z)
        if not (loc.month == 3 + k % 9 and loc.day == 10):
            base = 30 + k % 50 if loc.weekday() < 5 else 15 + k % 20
            a = float(base + (60 if loc.hour == 8 else 0) + loc.hour % 4)
            b = float(base + (60 if loc.hour == 18 else 0) + loc.hour % 3)
            out["in"][t], out["out"][t], out["total"][t] = a, b, a + b
        t += 3600
    return out


def observatory(n: int) -> dict:
    """Each counter's two years generated, then timed through the computations (generation not counted)."""
    s = ct.CounterSettings()
    wall = cpu = 0.0
    tmja_days = slots = 0
    for k in range(n):
        this, prev = year_of_counts(k, YEAR), year_of_counts(k, YEAR - 1)
        slots += len(this["in"]) + len(this["out"])
        w0, c0 = time.perf_counter(), time.process_time()
        for name in ("in", "out", "total"):
            days = ct.flag_days(ct.daily(this[name], TZ, s), s)
            before = ct.flag_days(ct.daily(prev[name], TZ, s), s)
            ct.flag_hours(this[name], s)
            tm = ct.tmja(days, YEAR)
            ct.tmjo(days, s)
            ct.weekend_mean(days)
            ct.peak_hours(ct.hourly_profile(this[name], days, TZ), s)
            ct.weekly_profile(days)
            ct.year_on_year(days, before)
            tmja_days += tm.n_days_used
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
    return {"counters": n, "hourly_slots": slots, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "cpu_ms_per_counter": round(1000 * cpu / max(n, 1), 2),
            "tmja_days_used_per_channel": round(tmja_days / max(3 * n, 1), 1)}


def observatory_store(n: int) -> dict:
    if n <= 0:
        return {"counters": 0}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"duckdb:///{Path(tmp) / 'o.duckdb'}", timezone=TZ)
        store.migrate()
        report = counts.Report()
        recs = []
        for k in range(n):
            this = year_of_counts(k, YEAR)
            for direction, key in (("IN", "in"), ("OUT", "out")):
                recs += [counts.CountRecord(counter=f"bench-{k}", start=t, end=t + 3600, count=v, direction=direction)
                         for t, v in this[key].items()]
        msgs = counts.to_messages(recs, report, datetime.now(UTC))
        w0 = time.perf_counter()
        p = Pipeline(store)
        p.submit_many(msgs)
        p.close()
        write = time.perf_counter() - w0
        w1 = time.perf_counter()
        for k in range(n):
            rep.observatory(store, counts.counter_eui(f"bench-{k}"), YEAR, timezone=TZ)
        read = time.perf_counter() - w1
        store.close()
    return {"counters": n, "messages": len(msgs), "write_s": round(write, 2),
            "messages_per_s": round(len(msgs) / write), "report_s_per_counter": round(read / n, 3)}


def gbfs(systems: int, stations: int, cycles: int, store_cycles: int) -> dict:
    city = build_mobility(0, stations=stations, counters=0)
    model = StationModel(city, [])
    info = {s.station_id: normalize.StationInfo(station_id=s.station_id, name=s.name, lat=s.lat, lon=s.lon,
                                                capacity=s.capacity) for s in city.stations}
    zones = {s.station_id: s.zone for s in city.stations}
    t0 = time.time() - cycles * 60
    files = [msgspec.json.encode(model.status_doc(t0 + 60 * c)) for c in range(cycles)]
    size = len(files[0])
    cpu0 = time.process_time()
    produced = []
    for c in range(cycles):
        at = datetime.fromtimestamp(t0 + 60 * c, UTC)
        for k in range(systems):
            raw = files[c]
            assert not messages.file_problems("station_status", raw)
            doc = msgspec.json.decode(raw)
            head = normalize.header(doc)
            samples = normalize.station_status(doc)
            normalize.cross_checks(samples, info, head.last_updated, at.timestamp())
            msgs = messages.station_messages(f"sys{k}", at, head.last_updated, samples, info, zones)
            msgs.append(messages.system_message(f"sys{k}", at, True, head.last_updated, None, len(samples)))
            if c < store_cycles:
                produced.append(msgs)
    connector_cpu = (time.process_time() - cpu0) / cycles
    pipeline_cpu = pipeline_wall = None
    stored = 0
    if store_cycles:
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"duckdb:///{Path(tmp) / 'g.duckdb'}", timezone=TZ)
            store.migrate()
            p = Pipeline(store)
            c1, w1 = time.process_time(), time.perf_counter()
            for msgs in produced:
                p.submit_many(msgs)
            p.close()
            pipeline_cpu = (time.process_time() - c1) / store_cycles
            pipeline_wall = (time.perf_counter() - w1) / store_cycles
            stored = store.counts().get("stored", 0)
            store.close()
    per_min = connector_cpu + (pipeline_cpu or 0.0)
    return {"systems": systems, "stations_per_system": stations, "status_file_bytes": size, "cycles": cycles,
            "connector_cpu_s_per_cycle": round(connector_cpu, 3),
            "validation_ms_per_file": round(1000 * _validation_time(files[0]), 2),
            "pipeline_cpu_s_per_cycle": None if pipeline_cpu is None else round(pipeline_cpu, 3),
            "pipeline_wall_s_per_cycle": None if pipeline_wall is None else round(pipeline_wall, 3),
            "messages_stored": stored, "core_share": round(per_min / 60, 4),
            "keeps_up": per_min < 60}


def _validation_time(raw: bytes, n: int = 20) -> float:
    doc = msgspec.json.decode(raw)
    t = time.perf_counter()
    for _ in range(n):
        schema.errors("station_status", doc)
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counters", type=int, default=500)
    ap.add_argument("--store-counters", type=int, default=3)
    ap.add_argument("--systems", type=int, default=100)
    ap.add_argument("--stations", type=int, default=500)
    ap.add_argument("--cycles", type=int, default=3, help="poll cycles measured for the connector")
    ap.add_argument("--store-cycles", type=int, default=1, help="poll cycles also written through the pipeline")
    a = ap.parse_args()
    out = {"date": datetime.now(UTC).date().isoformat(), "observatory": observatory(a.counters),
           "observatory_store": observatory_store(a.store_counters),
           "gbfs": gbfs(a.systems, a.stations, a.cycles, a.store_cycles)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
