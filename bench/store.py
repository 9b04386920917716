"""Store write and history-query speed: prints one JSON object.

    python bench/store.py --store duckdb:///tmp/bench.duckdb --rows 2000000 --fresh
    python bench/store.py --store postgresql://postgres@127.0.0.1:5432/clapas_bench --rows 2000000 --fresh

Writes `rows` observations as the pipeline does: batches of 5,000 uplinks (one per device, every 15 minutes) of 4
quantities each, with their journal rows; the registry facts of a device go with its first batch only (the pipeline
resends them only when they change). Timed: `store.write`, plus the rollup step (`maintain`) where the store has
one: what the background rollup did meanwhile, and what remains at the end (`rows_per_s` counts both;
`write_rows_per_s` only the writes). Then times the hourly and daily history of one device over the whole period
(median of 5), once everything is rolled up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import msgspec

from clapas.model import QUANTITY_BY_KEY
from clapas.store import Batch, DeviceSeen, Store, open_store

UPLINKS_PER_BATCH = 5000
KEYS = ("air.temperature", "air.humidity", "air.co2", "battery")
QIDS = [QUANTITY_BY_KEY[k].id for k in KEYS]
START = datetime(2026, 3, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)


def eui(i: int) -> str:
    return f"{0x70B3D50000000000 + i:016x}"


def journal_row(b: Batch, e: str, t: datetime, f_cnt: int, raw: bytes, topic: str = "") -> None:
    """One stored `up` message of device `e` in the batch's journal columns."""
    b.j_id.append(None)
    b.j_received.append(t)
    b.j_time.append(t)
    b.j_source.append("bench")
    b.j_event.append("up")
    b.j_fmt.append("json")
    b.j_topic.append(topic)
    b.j_eui.append(e)
    b.j_fport.append(1)
    b.j_fcnt.append(f_cnt)
    b.j_dedup.append(None)
    b.j_status.append("stored")
    b.j_error.append(None)
    b.j_rssi.append(-100.0)
    b.j_snr.append(5.0)
    b.j_sf.append(7)
    b.j_raw.append(raw)


def make_batch(n: int, t: datetime, describe: bool = True) -> Batch:
    """`n` uplinks at time `t`, one per device, 4 rows each; `describe`: with the devices' registry facts."""
    b = Batch()
    raw = msgspec.json.encode({"object": dict.fromkeys(KEYS, 0.0)})
    for i in range(n):
        e = eui(i)
        journal_row(b, e, t, i, raw)
        for k, q in enumerate(QIDS):
            b.o_time.append(t)
            b.o_eui.append(e)
            b.o_quantity.append(q)
            b.o_value.append(float((i + k) % 50))
        if describe:
            b.dev_by_eui[e] = DeviceSeen(eui=e, last_seen=t, kind="air_quality", f_cnt=i, rssi=-100.0,
                                         snr=5.0)
    return b


def fresh(url: str) -> None:
    """Start from an empty store: remove the DuckDB file, or recreate the PostgreSQL database."""
    if url.startswith("duckdb://"):
        path = url.removeprefix("duckdb://")
        path = Path(path[1:] if path.startswith("//") else path)  # as DuckDBStore reads it
        for p in (path, path.with_name(path.name + ".wal")):
            p.unlink(missing_ok=True)
        return
    import psycopg

    u = urlparse(url)
    name = u.path.lstrip("/")
    with psycopg.connect(u._replace(path="/postgres").geturl(), autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')


def write_rows(store: Store, rows: int) -> tuple[float, float]:
    """Seconds spent in `store.write` for `rows` observations, and in total until every rollup is built."""
    per_batch = UPLINKS_PER_BATCH * len(KEYS)
    spent, written, t = 0.0, 0, START
    started = time.perf_counter()
    while written < rows:
        n = min(UPLINKS_PER_BATCH, -(-(rows - written) // len(KEYS)))
        batch = make_batch(n, t, describe=t == START)
        t0 = time.perf_counter()
        store.write(batch)
        spent += time.perf_counter() - t0
        written += min(n * len(KEYS), per_batch)
        t += STEP
    maintain = getattr(store, "maintain", None)
    if maintain is not None:
        maintain(settle_s=0)  # what the rollup step has not done yet
    return spent, time.perf_counter() - started


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()  # warm caches and plans
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True, help="duckdb:///path.duckdb or postgresql://…")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--fresh", action="store_true", help="empty the store first")
    args = p.parse_args(argv)
    if args.fresh:
        fresh(args.store)
    store = open_store(args.store)
    try:
        seconds, with_rollups = write_rows(store, args.rows)
        end = START + STEP * (args.rows // (UPLINKS_PER_BATCH * len(KEYS)) + 1)
        query = {r: median_ms(lambda r=r: store.observations(eui(1), "air.temperature", START, end, r))
                 for r in ("1h", "1d")}
        print(msgspec.json.encode({
            "store": args.store.split(":", 1)[0],
            "rows": args.rows,
            "rows_per_s": round(args.rows / with_rollups),
            "write_rows_per_s": round(args.rows / seconds),
            "query_1h_ms": query["1h"],
            "query_1d_ms": query["1d"],
        }).decode())
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
