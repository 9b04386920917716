"""The charter over every route: each route of the OpenAPI document is declared (`serves`) and called as an anonymous
caller, a partner and the water service's operator (each with a real key of the city) against a city holding a
dwelling's meter full of sentinel values (charter_city.py). Nothing the first two get — bodies and headers of every
route, the dashboard's files, the metrics — contains a sentinel; the operator gets them. New routes are walked
without editing this file: their parameters are filled from the OpenAPI document (a device is always the dwelling's
meter, an alert always its alert), and a route that declares nothing fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from clapas.api.access import DECLARATION_ATTR, Declaration
from clapas.api.app import create_app, static_dir
from clapas.charter.keys import new_key
from clapas.config import AuthSettings, Settings
from clapas.pipeline.ingest import Pipeline
from clapas.store.base import Store, open_store

from .charter_city import HOME, SENTINELS, SUBSCRIBER, fill_charter_city
from .city import NOW
from .conftest import ZONES

WALKERS = {"anonymous": None, "partner": "partner", "operator": "operator-water"}
ROLES = ("partner", "operator-water", "operator-environment")  # each gets a real key of the city


def declaration(route: APIRoute) -> Declaration | None:
    """The `serves(...)` declaration among a route's dependencies (at any depth), if any."""
    todo = list(route.dependant.dependencies)
    while todo:
        dep = todo.pop()
        decl = getattr(dep.call, DECLARATION_ATTR, None)
        if decl is not None:
            return decl
        todo += dep.dependencies
    return None


def api_routes(app: FastAPI) -> list[APIRoute]:
    """The app's API routes, included routers flattened (FastAPI ≥ 0.120 keeps them as included routers)."""
    flatten = getattr(fastapi.routing, "_iter_included_route_candidates", None)
    return [r for r in (flatten(app.routes) if flatten else app.routes) if isinstance(r, APIRoute)]


def undeclared(app: FastAPI) -> list[str]:
    return sorted(f"{m} {r.path}" for r in api_routes(app) if declaration(r) is None for m in r.methods)


def test_a_route_without_a_declaration_is_found() -> None:
    app = FastAPI()

    @app.get("/leaky")
    def leaky() -> dict[str, str]:
        return {}

    assert undeclared(app) == ["GET /leaky"]


# the city -----------------------------------------------------------------------------------------------------
class Walked:
    """The app over the sentinel city, and a key of each role in ROLES made as `clapas keys create` makes them."""

    def __init__(self, client: TestClient, ids: dict[str, Any], store: Store) -> None:
        self.client, self.ids = client, ids
        self.tokens = {}
        for role in ROLES:
            k = new_key()
            store.create_key(key_id=k.key_id, name=f"walk {role}", secret_hash=k.hash, role=role)
            self.tokens[role] = k.token

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def get(self, path: str, role: str | None = None) -> Any:
        return self.client.get(path, headers=self.headers(role))


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def walked(request: pytest.FixtureRequest, samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walked]:
    if request.param == "duckdb":
        url, drop = f"duckdb:///{tmp_path_factory.mktemp('charter') / 'city.duckdb'}", None
    else:
        url, drop = _pg_database(request)
    store = open_store(url, "Europe/Paris")
    store.upsert_zones(ZONES)
    pipeline = Pipeline(store)
    ids = fill_charter_city(samples, store, pipeline)
    # the charter as it ships (anonymous = public), without rate limits: the walk is hundreds of calls a minute
    app = create_app(store, Settings(auth=AuthSettings(rate_limits=False)), pipeline)
    with TestClient(app) as client:
        yield Walked(client, ids, store)
    pipeline.close()
    store.close()
    if drop:
        drop()


def _pg_database(request: pytest.FixtureRequest) -> tuple[str, Any]:
    import psycopg

    server = request.getfixturevalue("pg_server_url")
    name = f"clapas_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlparse(server)._replace(path=f"/{name}").geturl(), drop


# the walk -----------------------------------------------------------------------------------------------------
def _value(param: dict[str, Any], ids: dict[str, Any]) -> Any:
    """A parameter's value: the sentinel device or alert when it names one, else what the schema accepts."""
    name, schema = param["name"], param.get("schema") or {}
    probes = {"eui": HOME, "device": HOME, "dev_eui": HOME, "subject": HOME, "alert_id": ids["personal_alerts"][0],
              "alert": ids["personal_alerts"][0], "subscriber": SUBSCRIBER, "quantity": "water.volume",
              "dataset": "water_meter"}  # open-data exports: the households' meters
    if name in probes:
        return probes[name]
    if not param.get("required"):
        return None
    today = datetime.now(UTC).date()
    known = {"month": f"{today:%Y-%m}", "day": today.isoformat(), "event": "up"}
    if name in known:
        return known[name]
    schema = next(iter(schema.get("anyOf") or [schema]))
    if "enum" in schema:
        return schema["enum"][0]
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return "false"
    if fmt == "date":
        return today.isoformat()
    if fmt == "date-time":
        return (datetime.now(UTC) - timedelta(days=1)).isoformat()
    return "x"


def calls(app: FastAPI, ids: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], Any, Declaration | None]]:
    """Every operation of the OpenAPI document as (method, url, query, body, declaration); reads first."""
    routes = {(m, r.path): r for r in api_routes(app) for m in r.methods}
    out = []
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            method = method.upper()
            url, query = path, {}
            for p in op.get("parameters", []):
                v = _value(p, ids)
                if v is None:
                    continue
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", str(v))
                elif p["in"] == "query":
                    query[p["name"]] = v
            body = {"author": "walk", "text": "walk"} if "requestBody" in op else None
            out.append((method, url, query, body, declaration(routes[(method, path)])))
    return sorted(out, key=lambda c: c[0] != "GET")


def walk(w: Walked, role: str | None) -> list[tuple[str, int, str, bool]]:
    client, headers = w.client, w.headers(role)
    seen = []
    for method, url, query, body, decl in calls(client.app, w.ids):
        assert decl is not None, f"{method} {url}: the route declares no class (serves(...))"
        r = client.request(method, url, params=query, json=body, headers=headers)
        assert r.status_code < 500, f"{method} {url} as {role or 'anonymous'}: {r.status_code} {r.text[:300]}"
        text = r.text + " " + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        seen.append((f"{method} {url}", r.status_code, text, decl.write))
    return seen


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [s for s in SENTINELS if s.lower() in low]


def test_every_route_is_declared(walked: Walked) -> None:
    assert undeclared(walked.client.app) == []


@pytest.mark.parametrize("who", ["anonymous", "partner"])
def test_no_personal_value_reaches_callers_without_personal_read(walked: Walked, who: str) -> None:
    seen = walk(walked, WALKERS[who])
    assert len(seen) >= 20  # the whole API was walked
    found = {route: leaks(text) for route, _, text, _ in seen if leaks(text)}
    assert found == {}, f"personal values served to {who}: {found}"
    by_route = {route: status for route, status, _, _ in seen}
    # neither may write anything (ingest, alert actions): refused before the route runs — except that a credential
    # may keep its own NGSI-LD subscriptions (its registration, not the city's data; notifications are built with
    # its scopes: tests/api/ngsi_ld/test_matching.py)
    own = "/ngsi-ld/v1/subscriptions"
    assert {route: status for route, status, _, write in seen if write and status not in (401, 403)
            and not (who != "anonymous" and route.split(" ", 1)[1].startswith(own))} == {}
    # the dwelling's own routes are refused, not answered empty
    assert by_route[f"GET /api/v1/devices/{HOME}"] in (401, 403)
    assert by_route[f"GET /api/v1/devices/{HOME}/observations"] in (401, 403)
    # and listings still answer, with what this caller may see
    assert by_route["GET /api/v1/devices"] == 200 and by_route["GET /api/v1/alerts"] == 200


def test_the_water_operator_sees_the_dwelling(walked: Walked) -> None:
    """The same walk as the water service: the sentinels are there (the filter withholds, it does not blind)."""
    seen = walk(walked, WALKERS["operator"])
    everything = " ".join(text for _, _, text, _ in seen)
    assert set(leaks(everything)) >= {HOME, SUBSCRIBER, "8765.4"}
    by_route = {route: status for route, status, _, _ in seen}
    assert by_route[f"GET /api/v1/devices/{HOME}"] == 200
    assert by_route[f"GET /api/v1/devices/{HOME}/observations"] == 200


def test_listings_count_what_they_withhold(walked: Walked) -> None:
    body = walked.get("/api/v1/devices").json()
    assert HOME not in {d["eui"] for d in body["devices"]}
    withheld = {(w["zone"], w["kind"], w["class"]): w["devices"] for w in body["withheld"]}
    assert withheld[("ecusson", "water_meter", "personal")] == 1
    assert withheld[("ecusson", "water_meter", "restricted")] == 1  # the bakery: restricted, not open
    assert {d["class"] for d in body["devices"]} == {"open"}
    partner = walked.get("/api/v1/devices", "partner").json()
    assert {d["class"] for d in partner["devices"]} == {"open", "restricted"}
    assert [(w["kind"], w["class"], w["devices"]) for w in partner["withheld"]] == [("water_meter", "personal", 1)]


def test_alerts_about_a_home_are_reduced_to_what_is_open(walked: Walked) -> None:
    ids = walked.ids
    alerts = {a["id"]: a for a in walked.get("/api/v1/alerts", "partner").json()["alerts"]}
    home = alerts[ids["personal_alerts"][0]]
    assert home["withheld"] is True and home["class"] == "personal"
    assert set(home) == {"id", "rule", "subject_kind", "zone", "state", "opened_at", "acked_at", "resolved_at",
                         "subject", "class", "withheld"}
    assert home["subject"] is None and home["zone"] == "ecusson" and home["rule"] == "water.continuous_flow"
    burst = next(a for a in alerts.values() if a["rule"] == "water.burst")
    assert burst["class"] == "restricted" and "evidence" in burst  # the bakery's: a partner reads it
    assert walked.get(f"/api/v1/alerts?device={HOME}", "partner").json()["alerts"] == []
    operator = walked.get(f"/api/v1/alerts/{ids['personal_alerts'][0]}", "operator-water").json()
    assert operator["subject"] == HOME and any(SUBSCRIBER in e["text"] for e in operator["events"])


def test_journal_needs_journal_read_and_filters_personal_frames(walked: Walked) -> None:
    assert walked.get("/api/v1/uplinks").status_code == 401
    assert walked.get("/api/v1/uplinks", "partner").status_code == 403
    environment = walked.get("/api/v1/uplinks?limit=1000", "operator-environment")
    assert environment.status_code == 200
    body = environment.json()
    assert body["withheld"] >= 7 and HOME not in {u["dev_eui"] for u in body["uplinks"]}
    assert {u["class"] for u in body["uplinks"]} == {"restricted"}
    water = walked.get("/api/v1/uplinks?limit=1000", "operator-water").json()
    assert water["withheld"] == 0 and HOME in {u["dev_eui"] for u in water["uplinks"]}


def test_dashboard_files_and_metrics_hold_no_personal_value(walked: Walked) -> None:
    files = [p.relative_to(static_dir()).as_posix() for p in static_dir().rglob("*") if p.is_file()]
    for f in ["", *files]:
        r = walked.get(f"/{f}")
        assert r.status_code == 200 and not leaks(r.text), f
    for role in (None, "partner", "operator-water"):
        assert not leaks(walked.get("/metrics", role).text)


# never a device, zone or subscriber; the Python runtime's own collectors name their interpreter
METRIC_LABELS = {"source", "event", "status", "le", "quantile", "generation", "implementation", "major", "minor",
                 "patchlevel", "version",
                 "problem", "state"}  # the fleet's health gauges: a problem or a gateway state, never a device


def test_metric_labels_name_no_device(walked: Walked) -> None:
    """Labels are classless only while they name no device: a new per-device label fails here."""
    r = walked.get("/metrics", "operator-water")
    assert r.status_code == 200
    labels = {part.split("=")[0] for line in r.text.splitlines() if not line.startswith("#") and "{" in line
              for part in line[line.index("{") + 1:line.index("}")].split(",") if part}
    assert labels and labels <= METRIC_LABELS, labels


def test_after_a_change_of_occupant_a_home_shows_only_the_current_occupants_history(
        samples: Path, tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'city.duckdb'}")
    store.upsert_zones(ZONES)
    pipeline = Pipeline(store)
    fill_charter_city(samples, store, pipeline)
    moved_in = NOW - timedelta(hours=3, minutes=30)
    store.reassign(HOME, "AB-NEW-00001", moved_in)
    with TestClient(create_app(store, Settings(auth=AuthSettings(rate_limits=False)), pipeline)) as client:
        w = Walked(client, {}, store)
        points = w.get(f"/api/v1/devices/{HOME}/observations?quantity=water.volume", "operator-water").json()
        device = w.get(f"/api/v1/devices/{HOME}", "operator-water").json()
    pipeline.close()
    store.close()
    times = [datetime.fromisoformat(p["time"]) for p in points["points"]]
    assert len(times) == 3 and min(times) >= moved_in  # 6 hourly readings, 3 since the move
    assert device["subscriber"] == "AB-NEW-00001" and device["events"] == []  # the join and location were before
    assert device["latest"] and all(datetime.fromisoformat(v["time"]) >= moved_in for v in device["latest"])


def test_pages_are_pages_of_what_the_caller_sees(walked: Walked) -> None:
    everyone = [d["eui"] for d in walked.get("/api/v1/devices", "operator-water").json()["devices"]]
    mine = [d["eui"] for d in walked.get("/api/v1/devices").json()["devices"]]
    assert len(everyone) > len(mine) >= 1
    first = walked.get("/api/v1/devices?limit=1").json()
    assert [d["eui"] for d in first["devices"]] == mine[:1]  # not an empty page of withheld devices
    assert sum(w["devices"] for w in first["withheld"]) == len(everyone) - len(mine)


def test_latest_of_a_page_is_each_devices_own_latest_also_after_a_change_of_occupant(
        samples: Path, tmp_path: Path) -> None:
    """`/latest` and `/devices?latest=true` read a page in one query: the same values as each device's own route,
    without a previous occupant's (a move after the home's last reading leaves it none)."""
    store = open_store(f"duckdb:///{tmp_path / 'city.duckdb'}")
    store.upsert_zones(ZONES)
    pipeline = Pipeline(store)
    fill_charter_city(samples, store, pipeline)
    euis = [d["eui"] for d in store.devices(limit=1000)]
    seen = []
    with TestClient(create_app(store, Settings(auth=AuthSettings(rate_limits=False)), pipeline)) as client:
        w = Walked(client, {}, store)
        for moved_in in (NOW - timedelta(hours=3, minutes=30), NOW + timedelta(hours=1)):
            store.reassign(HOME, f"AB-NEW-{len(seen)}", moved_in)
            own = {e: w.get(f"/api/v1/devices/{e}", "operator-water").json()["latest"] for e in euis}
            page = w.get(f"/api/v1/latest?device={','.join(euis)}", "operator-water").json()["latest"]
            listed = {d["eui"]: d["latest"] for d in
                      w.get("/api/v1/devices?latest=true&limit=200", "operator-water").json()["devices"]}
            assert page == own and listed == own
            seen.append(own[HOME])
    pipeline.close()
    store.close()
    assert seen[0] and all(datetime.fromisoformat(v["time"]) >= NOW - timedelta(hours=3, minutes=30)
                           for v in seen[0])
    assert seen[1] == []
