"""The charter over every route: each route of the OpenAPI document is declared (`serves`) and called as an
anonymous caller, a partner and the water service's operator against a city holding a dwelling's meter full of
sentinel values (charter_city.py). Nothing the first two get — bodies and headers of every route, the dashboard's
files, the metrics — contains a sentinel; the operator gets them. New routes are walked without editing this file:
their parameters are filled from the OpenAPI document (a device is always the dwelling's meter, an alert always
its alert), and a route that declares nothing fails.
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
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from clapas.api.access import DECLARATION_ATTR, Declaration
from clapas.api.app import create_app, static_dir
from clapas.charter import Caller
from clapas.charter.roles import effective_roles
from clapas.config import Settings
from clapas.pipeline.ingest import Pipeline
from clapas.store.base import open_store

from .charter_city import HOME, SENTINELS, SUBSCRIBER, fill_charter_city
from .conftest import ZONES

ROLE_HEADER = "X-Test-Role"  # how this test says who calls, until the access layer's own keys are used here
WALKERS = {"anonymous": None, "partner": "partner", "operator": "operator-water"}


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
def role_identify(settings: Settings) -> Any:
    """Callers by role name in a header, with the scopes the live configuration gives that role."""
    roles = effective_roles(settings.charter.roles)

    def identify(request: Request) -> Caller:
        role = request.headers.get(ROLE_HEADER) or settings.charter.anonymous
        via = "key" if ROLE_HEADER in request.headers else "anonymous"
        return Caller(actor=f"walk-{role}", via=via, role=role, scopes=frozenset(roles[role].scopes))

    return identify


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def walked(request: pytest.FixtureRequest, samples: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    if request.param == "duckdb":
        url, drop = f"duckdb:///{tmp_path_factory.mktemp('charter') / 'city.duckdb'}", None
    else:
        url, drop = _pg_database(request)
    store = open_store(url, "Europe/Paris")
    store.upsert_zones(ZONES)
    pipeline = Pipeline(store)
    ids = fill_charter_city(samples, store, pipeline)
    settings = Settings()
    app = create_app(store, settings, pipeline)
    app.state.identify = role_identify(settings)
    with TestClient(app) as client:
        yield client, ids
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
              "alert": ids["personal_alerts"][0], "subscriber": SUBSCRIBER, "quantity": "water.volume"}
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


def walk(client: TestClient, ids: dict[str, Any], role: str | None) -> list[tuple[str, int, str]]:
    headers = {ROLE_HEADER: role} if role else {}
    seen = []
    for method, url, query, body, decl in calls(client.app, ids):
        assert decl is not None, f"{method} {url}: the route declares no class (serves(...))"
        r = client.request(method, url, params=query, json=body, headers=headers)
        assert r.status_code < 500, f"{method} {url} as {role or 'anonymous'}: {r.status_code} {r.text[:300]}"
        text = r.text + " " + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        seen.append((f"{method} {url}", r.status_code, text))
    return seen


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [s for s in SENTINELS if s.lower() in low]


def test_every_route_is_declared(walked: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = walked
    assert undeclared(client.app) == []


@pytest.mark.parametrize("who", ["anonymous", "partner"])
def test_no_personal_value_reaches_callers_without_personal_read(walked: tuple[TestClient, dict[str, Any]],
                                                                 who: str) -> None:
    client, ids = walked
    seen = walk(client, ids, WALKERS[who])
    assert len(seen) >= 20  # the whole API was walked
    found = {route: leaks(text) for route, _, text in seen if leaks(text)}
    assert found == {}, f"personal values served to {who}: {found}"
    by_route = {route: status for route, status, _ in seen}
    # the dwelling's own routes are refused, not answered empty
    assert by_route[f"GET /api/v1/devices/{HOME}"] in (401, 403)
    assert by_route[f"GET /api/v1/devices/{HOME}/observations"] in (401, 403)
    # and listings still answer, with what this caller may see
    assert by_route["GET /api/v1/devices"] == 200 and by_route["GET /api/v1/alerts"] == 200


def test_the_water_operator_sees_the_dwelling(walked: tuple[TestClient, dict[str, Any]]) -> None:
    """The same walk as the water service: the sentinels are there (the filter withholds, it does not blind)."""
    client, ids = walked
    seen = walk(client, ids, WALKERS["operator"])
    everything = " ".join(text for _, _, text in seen)
    assert set(leaks(everything)) >= {HOME, SUBSCRIBER, "8765.4"}
    by_route = {route: status for route, status, _ in seen}
    assert by_route[f"GET /api/v1/devices/{HOME}"] == 200
    assert by_route[f"GET /api/v1/devices/{HOME}/observations"] == 200


def test_listings_count_what_they_withhold(walked: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = walked
    body = client.get("/api/v1/devices").json()
    assert HOME not in {d["eui"] for d in body["devices"]}
    withheld = {(w["zone"], w["kind"], w["class"]): w["devices"] for w in body["withheld"]}
    assert withheld[("ecusson", "water_meter", "personal")] == 1
    assert withheld[("ecusson", "water_meter", "restricted")] == 1  # the bakery: restricted, not open
    assert {d["class"] for d in body["devices"]} == {"open"}
    partner = client.get("/api/v1/devices", headers={ROLE_HEADER: "partner"}).json()
    assert {d["class"] for d in partner["devices"]} == {"open", "restricted"}
    assert [(w["kind"], w["class"], w["devices"]) for w in partner["withheld"]] == [("water_meter", "personal", 1)]


def test_alerts_about_a_home_are_reduced_to_what_is_open(walked: tuple[TestClient, dict[str, Any]]) -> None:
    client, ids = walked
    alerts = {a["id"]: a for a in client.get("/api/v1/alerts", headers={ROLE_HEADER: "partner"}).json()["alerts"]}
    home = alerts[ids["personal_alerts"][0]]
    assert home["withheld"] is True and home["class"] == "personal"
    assert set(home) == {"id", "rule", "subject_kind", "zone", "state", "opened_at", "acked_at", "resolved_at",
                         "subject", "class", "withheld"}
    assert home["subject"] is None and home["zone"] == "ecusson" and home["rule"] == "water.continuous_flow"
    burst = next(a for a in alerts.values() if a["rule"] == "water.burst")
    assert burst["class"] == "restricted" and "evidence" in burst  # the bakery's: a partner reads it
    assert client.get(f"/api/v1/alerts?device={HOME}", headers={ROLE_HEADER: "partner"}).json()["alerts"] == []
    operator = client.get(f"/api/v1/alerts/{ids['personal_alerts'][0]}",
                          headers={ROLE_HEADER: "operator-water"}).json()
    assert operator["subject"] == HOME and any(SUBSCRIBER in e["text"] for e in operator["events"])


def test_journal_needs_journal_read_and_filters_personal_frames(walked: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = walked
    environment = client.get("/api/v1/uplinks?limit=1000", headers={ROLE_HEADER: "operator-environment"})
    assert environment.status_code == 200
    body = environment.json()
    assert body["withheld"] >= 7 and HOME not in {u["dev_eui"] for u in body["uplinks"]}
    assert {u["class"] for u in body["uplinks"]} == {"restricted"}
    water = client.get("/api/v1/uplinks?limit=1000", headers={ROLE_HEADER: "operator-water"}).json()
    assert water["withheld"] == 0 and HOME in {u["dev_eui"] for u in water["uplinks"]}


def test_dashboard_files_and_metrics_hold_no_personal_value(walked: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = walked
    files = [p.relative_to(static_dir()).as_posix() for p in static_dir().rglob("*") if p.is_file()]
    for f in ["", *files]:
        r = client.get(f"/{f}")
        assert r.status_code == 200 and not leaks(r.text), f
    for role in (None, "partner", "operator-water"):
        r = client.get("/metrics", headers={ROLE_HEADER: role} if role else {})
        assert not leaks(r.text)


# never a device, zone or subscriber; the Python runtime's own collectors name their interpreter
METRIC_LABELS = {"source", "event", "status", "le", "quantile", "generation", "implementation", "major", "minor",
                 "patchlevel", "version"}


def test_metric_labels_name_no_device(walked: tuple[TestClient, dict[str, Any]]) -> None:
    """Labels are classless only while they name no device: a new per-device label fails here."""
    client, _ = walked
    r = client.get("/metrics", headers={ROLE_HEADER: "operator-water"})
    assert r.status_code == 200
    labels = {part.split("=")[0] for line in r.text.splitlines() if not line.startswith("#") and "{" in line
              for part in line[line.index("{") + 1:line.index("}")].split(",") if part}
    assert labels and labels <= METRIC_LABELS, labels
