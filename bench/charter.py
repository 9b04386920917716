"""The data charter's cost on the API: report routes and the ChirpStack HTTP ingest, with the access layer on and
off (`[auth] enforce`). Prints one JSON object. The bar (issue 10): with the charter on, within 10 % of the speed
without it.

    python bench/charter.py                       # 200 environmental sensors, 3 days
    python bench/charter.py --repeat 10           # more rounds

The city is bench/environment.py's, stored once through the real `Pipeline` into a DuckDB file (off the clock).
Requests go through the whole ASGI app in this process (Starlette's TestClient: no sockets), one at a time. "on"
is what a deployment runs: report routes as an anonymous caller (identity, rate limit counted per address, scopes,
the per-row class filter), the ingest with an `ingest` key (key lookup from its cache, hash compare, rate limit,
one audit entry per request, written in batches by the audit thread); "off" skips the layer (every caller gets
every scope; routes still filter per row, for the LOCAL caller). MQTT ingest (bench/ingest.py) never goes through
the access layer: its cost there is nil by construction. Wall clock on a shared machine: medians of `--repeat`.
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

sys.path.insert(0, str(Path(__file__).parent))

from environment import incidents_for, sized_city
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter.keys import new_key
from clapas.charter.roles import DEFAULT_ROLES, RoleSettings
from clapas.config import AuthSettings, CharterSettings, Settings
from clapas.detectors.score import ENV_DEFAULT_START
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.run import feed
from clapas.simulator.simulation import Simulation
from clapas.store import open_store

ROUTES = ["/api/v1/air/eaqi", "/api/v1/heat/status", "/api/v1/heat/cool-refuges", "/api/v1/flood/rivers",
          "/api/v1/quantities"]


def timed(client: TestClient, method: str, url: str, n: int, **kw) -> float:
    """Requests per second over n sequential requests (each must succeed)."""
    t0 = time.perf_counter()
    for _ in range(n):
        r = client.request(method, url, **kw)
        assert r.status_code < 300, (url, r.status_code, r.text[:200])
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=200)
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--requests", type=int, default=30, help="requests per route and round")
    ap.add_argument("--ingest", type=int, default=1000, help="ingest POSTs per round")
    ap.add_argument("--repeat", type=int, default=6, help="rounds (medians are reported)")
    args = ap.parse_args()
    city = sized_city(args.seed, args.sensors)
    start, end = ENV_DEFAULT_START, ENV_DEFAULT_START + timedelta(days=args.days)
    sim = Simulation(city, start, end, args.seed, incidents_for(city, start, args.days, args.seed))
    messages = list(sim.messages())
    bodies = [payload for _, topic, payload in messages if topic.endswith("/up")][:args.ingest]
    # bench-sized limits: the layer counts every request, none is refused
    roles = {"public": RoleSettings(scopes=DEFAULT_ROLES["public"].scopes, rate_per_minute=10**9,
                                    rate_per_day=10**9)}
    with tempfile.TemporaryDirectory(prefix="clapas-bench-charter-") as tmp:
        store = open_store(f"duckdb:///{Path(tmp) / 'city.duckdb'}")
        store.upsert_zones(city.zones)
        store.upsert_devices(city.registry_devices())
        pipeline = Pipeline(store)
        feed(pipeline, iter(messages))
        pipeline.flush()
        key = new_key()
        store.create_key(key_id=key.key_id, name="chirpstack", secret_hash=key.hash, role="ingest",
                         rate_per_minute=10**9, rate_per_day=10**9)
        rates: dict[str, dict[str, list[float]]] = {"off": {}, "on": {}}
        headers = {"Authorization": f"Bearer {key.token}", "content-type": "application/json"}
        clients = {mode: TestClient(create_app(store, Settings(charter=CharterSettings(roles=roles),
                                                               auth=AuthSettings(enforce=mode == "on")),
                                               pipeline)) for mode in ("off", "on")}
        try:
            for c in clients.values():
                c.__enter__()
                for url in ROUTES:
                    c.get(url)  # warm
            # the two apps alternate, route by route, in a different order each round: the machine's drift
            # (other users of a shared machine) falls on both alike
            for i in range(args.repeat):
                for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
                    c = clients[mode]
                    for url in ROUTES:
                        rates[mode].setdefault(url, []).append(timed(c, "GET", url, args.requests))
                    t0 = time.perf_counter()
                    for body in bodies:
                        r = c.post("/api/v1/ingest/chirpstack?event=up", content=body, headers=headers)
                        assert r.status_code == 200, r.text
                    rates[mode].setdefault("ingest", []).append(len(bodies) / (time.perf_counter() - t0))
                    pipeline.flush()
            for c in clients.values():
                c.__exit__(None, None, None)
            audited = len(store.audit_entries(event="write", limit=10**7))
        finally:
            pipeline.close()
            store.close()
    med = {mode: {k: round(statistics.median(v), 1) for k, v in r.items()} for mode, r in rates.items()}
    ratio = {k: round(med["on"][k] / med["off"][k], 3) for k in med["off"]}
    print(json.dumps({"sensors": len(city.devices), "days": args.days, "requests_per_route": args.requests,
                      "ingest_posts": len(bodies), "repeat": args.repeat, "requests_per_s": med,
                      "on_over_off": ratio, "worst_ratio": min(ratio.values()),
                      "within_10_percent": min(ratio.values()) >= 0.9, "audit_write_entries": audited}, indent=2))


if __name__ == "__main__":
    main()
