"""The city's NGSI-LD tenant at city size: entity and temporal queries beside the same answers from /api/v1, and the
subscription notification throughput. Prints one JSON object.

    python bench/ngsi_ld_city.py --devices 1000 --days 30          # the issue's 1,000-sensor city-month (DuckDB)
    python bench/ngsi_ld_city.py --devices 200 --days 3 --store postgresql://postgres@127.0.0.1:5432/clapas_ngsi

The store is filled as bench/city.py fills it (the simulator's city through the real pipeline for a share of the
period, the rest by the bulk path). Then, in-process through the FastAPI app as a caller who reads everything:
- `queries`: each pair (`ngsi_ld` and `rest`) answers the same question — a page of 200 entities of one type
  (WeatherObserved; WaterConsumptionObserved, the commonest) beside /api/v1/devices?kind=…&latest=true; one entity
  beside /api/v1/devices/{eui}; a month of raw temperatures (temporal, `timerel=between`) beside the device's
  observations; the same month hourly (`aggrMethods=avg,min,max&aggrPeriodDuration=PT1H`, from the rollups)
  beside `resolution=1h`. `p50_ms`, `p95_ms`, and `ratio` = NGSI-LD p50 / REST p50;
- `subscriptions`: `--subscriptions` subscriptions of one key watching the weather stations' temperature; one
  matching round over a batch that changes every device (`matched_per_s`: notifications built and queued in the
  outbox per second), then their delivery by the outbox worker and the NGSI-LD notifier to a local HTTP receiver
  (`delivered_per_s`), `--rounds` times over.
Figures depend on the machine: say whether it was shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from city import build, timed  # bench/city.py
from store import fresh  # bench/store.py

from clapas.config import Settings
from clapas.model import QUANTITY_BY_KEY
from clapas.simulator.city import build_city
from clapas.store import open_store

LINK = '<http://localhost/ngsi-ld/contexts/clapas.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; ' \
       'type="application/ld+json"'


def _t(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def measure_queries(store: Any, url: str, city: Any, start: datetime, end: datetime, repeat: int,
                    seed: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from clapas.api.app import create_app
    from clapas.charter import LOCAL

    app = create_app(store, Settings(store=url))
    app.state.identify = lambda request: LOCAL
    client = TestClient(app)
    rnd = random.Random(seed)
    stations = [d.eui for d in city.devices if d.kind == "weather_station"]
    picks = rnd.sample(stations, min(10, len(stations)))

    def get(path: str, ngsi: bool = False) -> Any:
        r = client.get(path, headers={"Link": LINK} if ngsi else {})
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
        return r

    span = f"timerel=between&timeAt={_t(start)}&endTimeAt={_t(end)}&attrs=temperature"
    frm, to = start.isoformat().replace("+", "%2B"), end.isoformat().replace("+", "%2B")
    pairs: dict[str, tuple[Any, Any, list[Any]]] = {
        "weather_page_200": (lambda _: get("/ngsi-ld/v1/entities?type=WeatherObserved&limit=200", True),
                             lambda _: get("/api/v1/devices?kind=weather_station&latest=true&limit=200"), [0]),
        "meters_page_200": (lambda _: get("/ngsi-ld/v1/entities?type=WaterConsumptionObserved&limit=200", True),
                            lambda _: get("/api/v1/devices?kind=water_meter&latest=true&limit=200"), [0]),
        "one_entity": (lambda e: get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:WeatherObserved:{e}", True),
                       lambda e: get(f"/api/v1/devices/{e}"), picks),
        "temporal_raw_month": (
            lambda e: get(f"/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WeatherObserved:{e}?{span}", True),
            lambda e: get(f"/api/v1/devices/{e}/observations?quantity=air.temperature&from={frm}&to={to}"), picks),
        "temporal_hourly_month": (
            lambda e: get(f"/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WeatherObserved:{e}?{span}"
                          "&aggrMethods=avg,min,max&aggrPeriodDuration=PT1H", True),
            lambda e: get(f"/api/v1/devices/{e}/observations?quantity=air.temperature&from={frm}&to={to}"
                          "&resolution=1h"), picks),
    }
    out: dict[str, Any] = {}
    for name, (ngsi, rest, params) in pairs.items():
        print(f"queries: {name}", file=sys.stderr, flush=True)
        n = max(3, repeat // 4) if name.endswith("page_200") else repeat
        a, b = timed(ngsi, params, n), timed(rest, params, n)
        out[name] = {"ngsi_ld": a, "rest": b, "ratio": round(a["p50_ms"] / b["p50_ms"], 2) if b["p50_ms"] else None}
    sample = get("/ngsi-ld/v1/entities?type=WeatherObserved&limit=1", True).json()
    out["weather_entity_bytes"] = len(json.dumps(sample[0])) if sample else 0
    return out


class Receiver:
    """A local HTTP endpoint that counts the notifications it is sent."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.count += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def measure_subscriptions(store: Any, city: Any, n_subs: int, rounds: int) -> dict[str, Any]:
    from clapas.alerts.notifiers.ngsi_ld import NgsiLdNotifier
    from clapas.alerts.outbox import OutboxWorker
    from clapas.api.ngsi_ld.city.context import expand
    from clapas.api.ngsi_ld.matching import CITY, for_service
    from clapas.charter.keys import new_key
    from clapas.config import AlertSettings

    receiver = Receiver()
    k = new_key()
    store.create_key(key_id=k.key_id, name="bench partner", secret_hash=k.hash, role="partner")
    for _ in range(n_subs):
        store.create_subscription(f"urn:ngsi-ld:Subscription:{uuid.uuid4()}", body={"type": "Subscription"},
                                  spec={"endpoint": receiver.url, "entities": [{"type": expand("WeatherObserved")}],
                                        "watched": [expand("temperature")],
                                        "context": "http://localhost/ngsi-ld/contexts/clapas.jsonld"},
                                  owner_key=k.key_id, owner="bench partner")
    matcher = for_service(Settings(), store)
    temp = QUANTITY_BY_KEY["air.temperature"].id
    changed = {d.eui: {temp} for d in city.devices}  # a batch that changes every device (the weather: temperature)
    match_s, queued = 0.0, 0
    worker = OutboxWorker(store, {"ngsi-ld": NgsiLdNotifier(store, 10.0)}, AlertSettings(poll_interval_s=0.05))

    async def deliver(expected: int) -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        t0 = time.perf_counter()
        while receiver.count < expected and time.perf_counter() - t0 < 600:
            await asyncio.sleep(0.01)
        took = time.perf_counter() - t0
        stop.set()
        await task
        return took

    for _ in range(rounds):
        t0 = time.perf_counter()
        queued += matcher.round([(CITY, changed)])
        match_s += time.perf_counter() - t0
    print(f"subscriptions: {queued} notifications queued, delivering…", file=sys.stderr, flush=True)
    deliver_s = asyncio.run(deliver(queued))
    receiver.close()
    stations = sum(1 for d in city.devices if d.kind == "weather_station")
    return {"subscriptions": n_subs, "rounds": rounds, "devices_changed": len(changed),
            "entities_per_notification": stations, "queued": queued, "delivered": receiver.count,
            "match_round_ms": round(match_s / rounds * 1000, 1),
            "matched_per_s": round(queued / match_s) if match_s else None,
            "delivered_per_s": round(receiver.count / deliver_s) if deliver_s else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--store", default="", help="duckdb:///path.duckdb or postgresql://… (emptied first)")
    p.add_argument("--part-through-pipeline", type=float, default=0.05, metavar="FRACTION")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--subscriptions", type=int, default=20)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="clapas-bench-ngsi-") as tmp:
        url = args.store or f"duckdb:///{Path(tmp) / 'city.duckdb'}"
        fresh(url)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=args.days)
        city = build_city(args.seed, args.devices)
        store = open_store(url)
        try:
            built = build(store, city, start, end, args.part_through_pipeline, args.seed)
            counts = store.counts()
            queries = measure_queries(store, url, city, start, end, args.repeat, args.seed)
            subs = measure_subscriptions(store, city, args.subscriptions, args.rounds)
        finally:
            store.close()
    kinds: dict[str, int] = {}
    for d in city.devices:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    print(json.dumps({"store": url.split(":", 1)[0], "devices": len(city.devices), "kinds": kinds,
                      "days": args.days, "observations": counts["observations"],
                      "build_s": round(built["pipeline"]["seconds"] + built["bulk"]["seconds"], 1),
                      "queries": queries, "subscriptions": subs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
