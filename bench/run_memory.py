"""`clapas run`'s memory at start with a city's registry (issue 14). Prints one JSON object.

    python bench/run_memory.py                                  # 80,000 devices, a temporary DuckDB file
    python bench/run_memory.py --devices 20000 --store postgresql://postgres@127.0.0.1:5432/clapas_runmem

The simulator's city (`build_city`, the demo's mix of kinds) registers its N devices and its zones in a fresh store
(`clapas devices import`'s way: `upsert_devices` by chunks), without any observation. Then a fresh process builds
`clapas run`'s `Service` on it (the registry, the pipeline, every detector, the alert sink; no listeners) and reads
its resident memory (`rss_mb_at_start`; `python_mb`: the same process after importing the code, before the
service). A second fresh process does the same under `tracemalloc` (`--no-tracemalloc` skips it): the Python memory
held once the service is built, by the part of `Service.__init__` that allocated it (`tracemalloc_mb.by_owner`:
the first two clapas files under it on the allocation's stack) and by the allocating line (`top_lines`).
What the detectors' windows add with data is `bench/city.py`'s `rss_mb`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from city import rss_mb  # bench/city.py
from store import fresh  # bench/store.py

TRACE_FRAMES = 40  # deep enough to see Service.__init__ under the allocations of the registry's rows
TOP_LINES = 8


def register(url: str, devices: int, seed: int) -> float:
    """A fresh store holding the city's registry; seconds taken."""
    from clapas.registry.cli import import_devices
    from clapas.simulator.city import build_city
    from clapas.store import open_store

    fresh(url)
    t0 = time.perf_counter()
    city = build_city(seed=seed, devices=devices)
    store = open_store(url)
    try:
        store.upsert_zones(city.zones)
        import_devices(store, city.registry_devices(), quiet=True)
    finally:
        store.close()
    return time.perf_counter() - t0


def _owner(tb: tracemalloc.Traceback, root: str) -> str | None:
    """The first two clapas files under `Service.__init__` on an allocation's stack (oldest frame first)."""
    names = [f.filename for f in tb]
    below = [i for i, n in enumerate(names) if n.endswith(os.path.join("clapas", "service.py"))]
    if not below:
        return None
    mine = [n.removeprefix(root) for n in names[below[-1] + 1:] if n.startswith(root)]
    return " > ".join(mine[:2]) or "(service.py)"


def child(url: str, trace: bool) -> dict[str, Any]:
    """In this fresh process: `clapas run`'s service on the store."""
    from clapas.config import Settings
    from clapas.service import Service

    gc.collect()
    before = rss_mb()
    if trace:
        tracemalloc.start(TRACE_FRAMES)
    t0 = time.perf_counter()
    service = Service(Settings(store=url))
    started_s = time.perf_counter() - t0
    gc.collect()
    out: dict[str, Any] = {"python_mb": before, "rss_mb_at_start": rss_mb(), "start_s": round(started_s, 1),
                           "store_devices": service.store.counts()["devices"]}
    if trace:
        snap = tracemalloc.take_snapshot()
        tracemalloc.stop()
        root = str(Path(sys.modules["clapas"].__file__).parent.parent) + os.sep
        owners: dict[str, int] = {}
        for st in snap.statistics("traceback"):
            o = _owner(st.traceback, root)
            if o is not None:
                owners[o] = owners.get(o, 0) + st.size
        lines = snap.statistics("lineno")[:TOP_LINES]
        out["tracemalloc_mb"] = {
            "total": round(sum(owners.values()) / 2**20, 1),
            "by_owner": {k: round(v / 2**20, 1) for k, v in sorted(owners.items(), key=lambda kv: -kv[1])
                         if v >= 2**19},
            "top_lines": {f"{s.traceback[0].filename.removeprefix(root)}:{s.traceback[0].lineno}":
                          round(s.size / 2**20, 1) for s in lines}}
    service.pipeline.close()
    service.store.close()
    return out


def run_child(url: str, trace: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), "src") if p)}
    cmd = [sys.executable, __file__, "--child", url, *(["--trace"] if trace else [])]
    return json.loads(subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=True).stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=80_000)
    p.add_argument("--seed", type=int, default=34)
    p.add_argument("--store", help="store URL (recreated); default: a DuckDB file in a temporary folder")
    p.add_argument("--no-tracemalloc", action="store_true", help="skip the tracemalloc run")
    p.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.trace)))
        return 0
    with tempfile.TemporaryDirectory(prefix="clapas-runmem-") as tmp:
        url = args.store or f"duckdb:///{tmp}/city.duckdb"
        out: dict[str, Any] = {"devices": args.devices, "store": url.split(":", 1)[0],
                               "register_s": round(register(url, args.devices, args.seed), 1)}
        out.update(run_child(url, False))
        if not args.no_tracemalloc:
            out["tracemalloc_mb"] = run_child(url, True)["tracemalloc_mb"]
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
