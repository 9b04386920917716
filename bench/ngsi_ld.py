"""NGSI-LD query and temporal latency (issue 11). Prints one JSON object.

    python bench/ngsi_ld.py                              # the sandbox: 1,000 sensors, 7 days hourly
    python bench/ngsi_ld.py --sensors 1000 --days 30     # a sandbox city-month (720 instances a sensor)
    python bench/ngsi_ld.py --city-store duckdb:///var/bench/city.duckdb   # the city's tenant beside /api/v1

Sandbox mode: N sensors (type `WeatherObserved`, a temperature Property and a location around Montpellier), each
with an hourly temperature instance over `--days`, written straight into the sandbox's tables (off the clock);
then each route is called `--requests` times through the whole ASGI app in this process (Starlette's TestClient:
no sockets, the charter layer on, as a deployment runs it) and its p50/p95 reported.

City mode (`--city-store`, a store made by `bench/city.py --keep`): the same NGSI-LD routes on the city's tenant
(whatever types it serves) beside the `/api/v1` routes that give the same answer (device listing, one device's
observations over a day); a pair is made when the entity id carries the device EUI. Wall clock on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter.roles import DEFAULT_ROLES, RoleSettings
from clapas.config import AuthSettings, CharterSettings, NgsiLdSettings, Settings
from clapas.store import open_store

START = datetime(2026, 3, 1, tzinfo=UTC)
TYPE = "WeatherObserved"
V = "https://uri.etsi.org/ngsi-ld/default-context/"
_enc = msgspec.json.Encoder()


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def fill_sandbox(store: Any, sensors: int, days: float, seed: int) -> dict[str, Any]:
    """Sensors and their hourly instances in the sandbox's tables; returns what the timed requests need."""
    rng = random.Random(seed)
    hours = int(days * 24)
    t0 = time.perf_counter()
    rows = 0
    batch: list[tuple[str, str, list[tuple[str, str, int, str]]]] = []
    for i in range(sensors):
        eid = f"urn:ngsi-ld:{TYPE}:{i:05d}"
        lon, lat = 3.88 + rng.uniform(-0.08, 0.08), 43.61 + rng.uniform(-0.05, 0.05)
        insts = []
        for h in range(hours):
            t = START + timedelta(hours=h)
            v = round(15 + 8 * math.sin(2 * math.pi * (h % 24) / 24) + rng.gauss(0, 1), 2)
            insts.append((V + "temperature", f"urn:ngsi-ld:instance:{i}-{h}", int(t.timestamp() * 1e6),
                          _enc.encode({"type": "Property", "value": v, "observedAt": ts(t)}).decode()))
        last = msgspec.json.decode(insts[-1][3]) if insts else {"type": "Property", "value": 15.0}
        entity = {"id": eid, "type": V + TYPE, "createdAt": ts(START), "modifiedAt": ts(START),
                  V + "temperature": {**last, "unitCode": "CEL"},
                  "https://uri.etsi.org/ngsi-ld/location": {"type": "GeoProperty", "value": {
                      "type": "Point", "coordinates": [round(lon, 5), round(lat, 5)]}}}
        batch.append((eid, _enc.encode(entity).decode(), insts))
        rows += len(insts)
        if len(batch) == 100 or i == sensors - 1:
            store.ngsi_put_many("sandbox", batch)
            batch = []
    return {"entities": sensors, "instances": rows, "build_s": round(time.perf_counter() - t0, 1),
            "one_id": f"urn:ngsi-ld:{TYPE}:{sensors // 2:05d}"}


def timed(client: TestClient, url: str, n: int, headers: dict[str, str] | None = None) -> dict[str, float]:
    """p50/p95 in ms of n sequential GETs (each must succeed), and the size of the answer."""
    times = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(url, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        size = len(r.content)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2), "bytes": size}


def sandbox_routes(info: dict[str, Any], days: float) -> dict[str, str]:
    one = info["one_id"]
    day0, day1 = ts(START + timedelta(days=min(days, 1) / 2)), ts(START + timedelta(days=min(days, 1) / 2 + 1))
    full_end = ts(START + timedelta(days=days))
    e, t = "/ngsi-ld/v1/entities", "/ngsi-ld/v1/temporal/entities"
    return {
        "entity_by_id": f"{e}/{one}",
        "query_type_100": f"{e}?type={TYPE}&limit=100",
        "query_q_100": f"{e}?type={TYPE}&q=temperature>15;temperature<30&limit=100",
        "query_geo_near_1km": f"{e}?type={TYPE}&georel=near;maxDistance==1000&geometry=Point"
                              f"&coordinates=[3.88,43.61]&limit=100",
        "query_count_only": f"{e}?type={TYPE}&limit=0&count=true",
        "query_keyvalues_100": f"{e}?type={TYPE}&limit=100&options=keyValues",
        "temporal_one_day": f"{t}/{one}?timerel=between&timeAt={day0}&endTimeAt={day1}",
        "temporal_whole_range": f"{t}/{one}?timerel=before&timeAt={full_end}",
        "temporal_avg_1h_whole_range": f"{t}/{one}?options=aggregatedValues&aggrMethods=avg,max"
                                       f"&aggrPeriodDuration=PT1H",
        "temporal_query_100_one_day": f"{t}?type={TYPE}&limit=100&timerel=between&timeAt={day0}"
                                      f"&endTimeAt={day1}&options=temporalValues",
    }


def city_routes(client: TestClient) -> tuple[dict[str, str], dict[str, str]]:
    """NGSI-LD routes on the city's tenant and the /api/v1 routes answering the same."""
    types = client.get("/ngsi-ld/v1/types").json().get("typeList", [])
    if not types:
        raise SystemExit("the city's tenant serves no entity type (is its source registered?)")
    first = client.get(f"/ngsi-ld/v1/entities?type={types[0]}&limit=1").json()
    eid = first[0]["id"] if first else ""
    eui = re.search(r"[0-9A-Fa-f]{16}", eid)
    api_devices = client.get("/api/v1/devices?limit=1").json().get("devices", [])
    dev = eui.group() if eui else (api_devices[0]["eui"] if api_devices else "")
    latest = client.get(f"/api/v1/devices/{dev}").json().get("latest") or [{}]
    quantity = latest[0].get("quantity", "")
    end = datetime.fromisoformat(latest[0].get("time", ts(datetime.now(UTC))).replace("Z", "+00:00"))
    day0, day1 = ts(end - timedelta(days=1)), ts(end)
    ngsi = {"query_type_100": f"/ngsi-ld/v1/entities?type={types[0]}&limit=100",
            "entity_by_id": f"/ngsi-ld/v1/entities/{eid}",
            "temporal_one_day": f"/ngsi-ld/v1/temporal/entities/{eid}?timerel=between&timeAt={day0}&endTimeAt={day1}",
            "temporal_avg_1h_one_day": f"/ngsi-ld/v1/temporal/entities/{eid}?timerel=between&timeAt={day0}"
                                       f"&endTimeAt={day1}&options=aggregatedValues&aggrMethods=avg"
                                       f"&aggrPeriodDuration=PT1H"}
    api = {"query_type_100": "/api/v1/devices?limit=100", "entity_by_id": f"/api/v1/devices/{dev}",
           "temporal_one_day": f"/api/v1/devices/{dev}/observations?quantity={quantity}&from={day0}&to={day1}",
           "temporal_avg_1h_one_day": f"/api/v1/devices/{dev}/observations?quantity={quantity}&from={day0}"
                                      f"&to={day1}&resolution=1h"}
    return ngsi, api


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=1000)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--requests", type=int, default=30, help="requests per route")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", help="sandbox store URL (default: a DuckDB file in a temporary directory)")
    ap.add_argument("--city-store", help="time the city's tenant and /api/v1 on this existing store instead")
    args = ap.parse_args()
    # bench-sized limits: the layer counts every request, none is refused
    roles = {"public": RoleSettings(scopes=DEFAULT_ROLES["public"].scopes, rate_per_minute=10**9, rate_per_day=10**9)}
    with tempfile.TemporaryDirectory(prefix="clapas-bench-ngsi-") as tmp:
        url = args.city_store or args.store or f"duckdb:///{Path(tmp) / 'sandbox.duckdb'}"
        store = open_store(url)
        ngsi = NgsiLdSettings(sandbox=not args.city_store, default_tenant="city" if args.city_store else "sandbox",
                              max_limit=1000, max_instances=100_000)
        app = create_app(store, Settings(store=url, ngsi_ld=ngsi, charter=CharterSettings(roles=roles),
                                         auth=AuthSettings(rate_limits=False)))
        out: dict[str, Any] = {"mode": "city" if args.city_store else "sandbox", "store": url.split(":")[0],
                               "requests_per_route": args.requests}
        try:
            with TestClient(app) as client:
                if args.city_store:
                    ngsi_urls, api_urls = city_routes(client)
                    out["ngsi_ld"] = {k: timed(client, u, args.requests) for k, u in ngsi_urls.items()}
                    out["api_v1"] = {k: timed(client, u, args.requests) for k, u in api_urls.items()}
                    out["ngsi_over_api"] = {k: round(out["ngsi_ld"][k]["p50_ms"] / out["api_v1"][k]["p50_ms"], 2)
                                            for k in ngsi_urls}
                else:
                    if not store.ngsi_entities("sandbox", [f"urn:ngsi-ld:{TYPE}:00000"]):
                        out["build"] = fill_sandbox(store, args.sensors, args.days, args.seed)
                    info = {"one_id": f"urn:ngsi-ld:{TYPE}:{args.sensors // 2:05d}"}
                    out.update({"sensors": args.sensors, "days": args.days})
                    urls = sandbox_routes(info, args.days)
                    for _ in range(3):  # warm (DuckDB's first reads after the build are slower)
                        for u in urls.values():
                            client.get(u)
                    out["routes"] = {k: timed(client, u, args.requests) for k, u in urls.items()}
        finally:
            store.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
