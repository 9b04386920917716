"""A CSV export of a city-month of open data streams with flat memory (issue 11).

    python bench/exports.py --store duckdb:///tmp/bench_exports.duckdb --stations 200 --days 30
    python bench/exports.py --store postgresql://postgres@127.0.0.1/bench_exports --stations 200 --days 30

The city: `stations` open weather stations reporting temperature, humidity and pressure every `interval_min`
minutes for `days` days (200 × 30 days × every 15 min × 3 = 1.7 million rows). Then, each in a fresh process, the
`weather` dataset is exported as CSV (the API's and `clapas export`'s path: the charter's view as the anonymous
public caller, the store's keyset chunks, the CSV encoder) over the first half of the period and over the whole
of it, into a sink that counts bytes. Per export: rows, seconds, rows/s, bytes, the process's resident memory
before, its peak growth (VmHWM, reset before the export) and its growth sampled at each quarter of the rows.
DuckDB keeps the table pages it read in its own buffer pool (bounded by its memory_limit), which is part of the
process's RSS and grows with what was read: it is sampled too (`duckdb_memory()`) and set apart. Memory is flat
when the whole month's growth without that cache is no larger than the half month's (plus a margin for allocator
noise): the export itself does not grow with the rows exported. Prints one JSON object. The store is started afresh.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store import fresh, journal_row

from clapas.model import QUANTITY_BY_KEY, Device
from clapas.store.base import Batch, open_store

START = datetime(2026, 3, 1, tzinfo=UTC)
QUANTITIES = [QUANTITY_BY_KEY[k].id for k in ("air.temperature", "air.humidity", "air.pressure")]
FLAT_MARGIN_MB = 8.0  # allocator and import noise between two fresh processes


def station(i: int) -> str:
    return f"e{i:015x}"


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where it cannot be reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def build(url: str, stations: int, days: int, interval_min: int) -> dict[str, Any]:
    fresh(url)
    store = open_store(url)
    t0 = time.perf_counter()
    try:
        store.upsert_devices([Device(eui=station(i), name=f"Station {i}", kind="weather_station",
                                     zone=f"z{i % 10}", lat=43.6 + i * 1e-4, lon=3.87 + i * 1e-4)
                              for i in range(stations)])
        steps = days * 24 * 60 // interval_min
        rows = 0
        per_batch = max(1, 20_000 // stations)  # about 20,000 uplinks per write
        for s0 in range(0, steps, per_batch):
            b = Batch()
            for s in range(s0, min(steps, s0 + per_batch)):
                t = START + timedelta(minutes=interval_min * s)
                for i in range(stations):
                    e = station(i)
                    journal_row(b, e, t, s, b"{}")
                    for k, q in enumerate(QUANTITIES):
                        b.o_time.append(t)
                        b.o_eui.append(e)
                        b.o_quantity.append(q)
                        b.o_value.append(10.0 + k * 40 + (s % 96) / 7 + i / 100)
                        rows += 1
            store.write(b)
        maintain = getattr(store, "maintain", None)
        if maintain is not None:
            maintain(settle_s=0)
    finally:
        store.close()
    return {"rows": rows, "write_s": round(time.perf_counter() - t0, 2)}


def store_cache_kb(store: Any) -> float:
    """What DuckDB holds in its own buffer pool (table pages read stay cached, up to its memory_limit): part of this
    process's RSS that grows with what was read, not with what the export keeps. PostgreSQL caches in the server."""
    if not store.url.startswith("duckdb"):
        return 0.0
    return store.sql("SELECT coalesce(sum(memory_usage_bytes), 0) AS b FROM duckdb_memory()")[0]["b"] / 1024


class CountingSink:
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, b: bytes) -> None:
        self.bytes += len(b)


def child(url: str, start: datetime, end: datetime, expected: int) -> dict[str, Any]:
    """One export in this (fresh) process: what it costs in time and memory."""
    from clapas.charter import Caller
    from clapas.charter.classes import Classifier
    from clapas.config import Settings
    from clapas.opendata import formats
    from clapas.opendata.datasets import resolve
    from clapas.opendata.source import export

    settings = Settings()
    store = open_store(url)
    public = Caller(scopes=frozenset({"open:read"}))
    ds = resolve("weather", settings.open_data, set())
    rss0, cache0 = status_kb("VmRSS"), store_cache_kb(store)
    peak_reset = reset_peak()
    sink = CountingSink()
    samples: list[float] = []
    cache: list[float] = []
    marks = [expected * q // 4 for q in (1, 2, 3, 4)]
    t0 = time.perf_counter()
    ex = export(store, public, Classifier(), ds, start=start, end=end, settings=settings,
                chunk_rows=settings.open_data.chunk_rows)
    for piece in formats.encode("csv", ex.columns, ex.chunks()):
        sink.write(piece)
        while marks and ex.rows >= marks[0]:
            marks.pop(0)
            samples.append(round((status_kb("VmRSS") - rss0) / 1024, 1))
            cache.append(round((store_cache_kb(store) - cache0) / 1024, 1))
    seconds = time.perf_counter() - t0
    store.close()
    peak = status_kb("VmHWM")
    return {"rows": ex.rows, "seconds": round(seconds, 2), "rows_per_s": round(ex.rows / seconds),
            "bytes": sink.bytes, "rss_start_mb": round(rss0 / 1024, 1),
            "peak_growth_mb": round((peak - rss0) / 1024, 1) if peak_reset else None,
            "growth_at_quarters_mb": samples, "store_cache_growth_at_quarters_mb": cache,
            "growth_without_store_cache_at_quarters_mb": [round(a - b, 1) for a, b in zip(samples, cache, strict=True)],
            "chunk_rows": settings.open_data.chunk_rows}


def run_child(url: str, start: datetime, end: datetime, expected: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, __file__, "--child", url, start.isoformat(), end.isoformat(),
                          str(expected)], env=env, capture_output=True, check=True, timeout=3600)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="duckdb:///tmp/bench_exports.duckdb")
    p.add_argument("--stations", type=int, default=200)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--interval-min", type=int, default=15)
    p.add_argument("--child", nargs=4, metavar=("URL", "START", "END", "EXPECTED"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        url, s, e, n = args.child
        print(json.dumps(child(url, datetime.fromisoformat(s), datetime.fromisoformat(e), int(n))))
        return 0
    city = build(args.store, args.stations, args.days, args.interval_min)
    end = START + timedelta(days=args.days)
    half_end = START + timedelta(days=args.days / 2)
    half = run_child(args.store, START, half_end, city["rows"] // 2)
    whole = run_child(args.store, START, end, city["rows"])
    # what the export itself holds: the process's growth less DuckDB's page cache, at its largest
    growth = [max(x["growth_without_store_cache_at_quarters_mb"] or [0]) for x in (half, whole)]
    print(json.dumps({
        "store": args.store.split(":", 1)[0], "stations": args.stations, "days": args.days,
        "interval_min": args.interval_min, "rows_in_store": city["rows"], "write_s": city["write_s"],
        "exports": {"half_period": half, "whole_period": whole},
        "flat_memory": growth[1] <= growth[0] + FLAT_MARGIN_MB,
        "growth_without_store_cache_mb": {"half_period": growth[0], "whole_period": growth[1]},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
                   f"{platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
