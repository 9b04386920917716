"""The cost of one page of the city's NGSI-LD entities at city scale (issue 11): does a page cost its page or its
whole type? Prints one JSON object.

    python bench/ngsi_ld_paging.py --devices 6400 --days 1 --store duckdb:///tmp/paging.duckdb --keep

The store is filled as bench/city.py fills it (the simulator's city: about 78 % water meters, so 6,400 devices give
about 5,000 meters); `--keep` leaves it filled and a later run on the same `--store` reuses it (so that two versions
of the code are timed on the same data: run it with PYTHONPATH at the other checkout's src). Then, in-process through
the FastAPI app (the city's tenant, clapas context), each question `--repeat` times: `p50_ms`, `p95_ms`, and
`built`, the entities the city's source built for one answer (calls of its builders `entities.observation`,
`entities.device_entity`, `entities.device_model_entity`: a count, not a timing) beside `answered`, the entities
in the answer, and `count`, the NGSILD-Results-Count header when asked. Callers: `local` reads every class,
`partner` open and restricted data (no meter), `anonymous` open data (the zones' published aggregates, no meter).
Figures depend on the machine: say whether it was shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from city import build, timed  # bench/city.py
from store import fresh  # bench/store.py

from clapas.config import Settings
from clapas.simulator.city import build_city
from clapas.store import open_store

LINK = '<http://localhost/ngsi-ld/contexts/clapas.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; ' \
       'type="application/ld+json"'
BUILDERS = ("observation", "device_entity", "device_model_entity")


def callers() -> dict[str, Any]:
    from clapas.charter import LOCAL, OPEN_READ, RESTRICTED_READ, Caller

    return {"local": LOCAL,
            "partner": Caller(actor="bench partner", via="key", role="partner",
                              scopes=frozenset({OPEN_READ, RESTRICTED_READ})),
            "anonymous": Caller(scopes=frozenset({OPEN_READ}))}


def questions(meters: int) -> dict[str, tuple[str, str]]:
    """name: (caller, query string of /ngsi-ld/v1/entities)."""
    wco = "type=WaterConsumptionObserved"
    return {
        "meters_first_page_200": ("local", f"{wco}&limit=200"),
        "meters_last_page_200_count": ("local", f"{wco}&limit=200&offset={max(0, meters - 100)}&count=true"),
        "meters_count_only": ("local", f"{wco}&limit=0&count=true"),
        "meters_q_filtered_page_200": ("local", f"{wco}&q=waterConsumption>0&limit=200"),
        "meters_ordered_page_200_offset_1000": ("local", f"{wco}&orderBy=waterConsumption;desc&limit=200"
                                                         f"&offset={min(1000, meters // 2)}"),
        "devices_page_200_offset_1000": ("local", "type=Device&limit=200&offset=1000"),
        "device_models_count": ("local", "type=DeviceModel&limit=100&count=true"),
        "partner_devices_page_200_count": ("partner", "type=Device&limit=200&count=true"),
        "anonymous_water_consumption_count": ("anonymous", f"{wco}&limit=100&count=true"),
    }


def measure(store: Any, url: str, meters: int, repeat: int, only: set[str] | None = None) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from clapas.api.app import create_app
    from clapas.api.ngsi_ld.city import entities

    who = callers()
    current = {"caller": who["local"]}
    app = create_app(store, Settings(store=url))
    app.state.identify = lambda request: current["caller"]
    client = TestClient(app)
    calls = {"n": 0}
    for name in BUILDERS:  # count the builders' calls (the source calls them through the module)
        original = getattr(entities, name)

        def counted(*a: Any, _f: Any = original, **k: Any) -> Any:
            calls["n"] += 1
            return _f(*a, **k)

        setattr(entities, name, counted)
    out: dict[str, Any] = {}
    for name, (caller, query) in questions(meters).items():
        if only is not None and name not in only:
            continue
        print(f"paging: {name}", file=sys.stderr, flush=True)
        current["caller"] = who[caller]
        last: dict[str, Any] = {}

        def ask(_: Any, query: str = query, last: dict[str, Any] = last) -> None:
            calls["n"] = 0
            r = client.get(f"/ngsi-ld/v1/entities?{query}", headers={"Link": LINK})
            if r.status_code != 200:
                raise RuntimeError(f"{query}: {r.status_code} {r.text[:300]}")
            last.update(built=calls["n"], answered=len(r.json()), count=r.headers.get("NGSILD-Results-Count"))

        t = timed(ask, [0], repeat)
        out[name] = {"caller": caller, "query": query, **t, **last}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=6400)
    p.add_argument("--days", type=float, default=1.0)
    p.add_argument("--store", default="", help="duckdb:///path.duckdb or postgresql://… (emptied first unless kept)")
    p.add_argument("--keep", action="store_true", help="reuse a store a previous run filled, leave it filled")
    p.add_argument("--part-through-pipeline", type=float, default=0.1, metavar="FRACTION")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="", help="comma-separated question names (default: every question)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="clapas-bench-paging-") as tmp:
        url = args.store or f"duckdb:///{Path(tmp) / 'city.duckdb'}"
        city = build_city(args.seed, args.devices)
        store = open_store(url) if args.keep else None
        reused = store is not None and store.counts()["observations"] > 0
        if not reused:
            if store is not None:
                store.close()
            fresh(url)
            store = open_store(url)
            end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            build(store, city, end - timedelta(days=args.days), end, args.part_through_pipeline, args.seed)
        assert store is not None
        try:
            meters = sum(1 for d in city.devices if d.kind == "water_meter")
            counts = store.counts()
            result = measure(store, url, meters, args.repeat, set(args.only.split(",")) if args.only else None)
        finally:
            store.close()
    print(json.dumps({"store": url.split(":", 1)[0], "devices": len(city.devices), "water_meters": meters,
                      "observations": counts["observations"], "reused_store": reused, "questions": result},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
