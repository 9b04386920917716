"""The city's tenant (`CitySource`) on both stores: entities that validate against the vendored Smart Data Models
schemas, units and conversions, scopes, locations, the charter (no personal entity nor value without the scope), and
histories from the rollups or the raw rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.api.ngsi_ld.city import models
from clapas.api.ngsi_ld.city.context import document, expand
from clapas.api.ngsi_ld.city.source import CitySource
from clapas.api.ngsi_ld.source import Hint, TemporalHint
from clapas.charter import LOCAL, OPEN_READ, PERSONAL_READ, RESTRICTED_READ, Caller
from clapas.config import AuthSettings, Settings
from clapas.store.base import Store
from tests.helpers import as_local

from .city_data import (
    AQ,
    BIKE,
    DOCK,
    GAUGE,
    HOME,
    HOME_NAME,
    HOURS,
    NOISE,
    ROOM,
    STATION_CAPACITY,
    SUBSCRIBER,
    WS,
    hourly,
    schema_errors,
    schema_validator,
    time_of,
)

CTX = '<http://localhost/ngsi-ld/contexts/clapas.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; ' \
      'type="application/ld+json"'

PUBLIC = Caller(scopes=frozenset({OPEN_READ}))
PARTNER = Caller(actor="partner", via="key", role="partner", scopes=frozenset({OPEN_READ, RESTRICTED_READ}))
WATER = Caller(actor="water", via="key", role="operator-water",
               scopes=frozenset({OPEN_READ, RESTRICTED_READ, PERSONAL_READ}))
SENTINELS = (HOME, SUBSCRIBER, HOME_NAME, "43.6123457", "3.8765431", "8765")


def by_id(source: CitySource, caller: Any, **hint: Any) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in source.candidates(caller, Hint(**hint))}


def attr(e: dict[str, Any], term: str) -> dict[str, Any]:
    return e[expand(term)]


@pytest.fixture(scope="module")
def source(ngsi_store: Store) -> CitySource:
    return CitySource(ngsi_store)


def test_the_vendored_context_is_the_one_the_models_make() -> None:
    assert document() == {"@context": models.context_terms()}
    assert document()["@context"]["WeatherObserved"] == "https://smartdatamodels.org/dataModel.Weather/WeatherObserved"


def test_every_entity_validates_against_its_smart_data_model(source: CitySource, samples: Path) -> None:
    everything = by_id(source, LOCAL)
    types = {models_type for models_type in (e["type"].rsplit("/", 1)[1] for e in everything.values())}
    assert types == {"WeatherObserved", "AirQualityObserved", "IndoorEnvironmentObserved", "WaterObserved",
                     "FloodMonitoring", "WaterConsumptionObserved", "TrafficFlowObserved", "NoiseLevelObserved",
                     "BikeHireDockingStation", "Device", "DeviceModel"}
    errors = {i: schema_errors(samples, e) for i, e in everything.items()}
    assert {i: errs for i, errs in errors.items() if errs} == {}
    assert list(everything) == sorted(everything)  # stable order, by id
    # the validation bites: humidity left in %, an index in m³ (a float), a battery in %
    air = dict(everything[f"urn:ngsi-ld:AirQualityObserved:{AQ}"])
    air[expand("relativeHumidity")] = {**air[expand("relativeHumidity")], "value": 60.0}
    water = dict(everything[f"urn:ngsi-ld:WaterConsumptionObserved:{HOME}"])
    water[expand("waterConsumption")] = {**water[expand("waterConsumption")], "value": 8765.424}
    assert schema_errors(samples, air) and schema_errors(samples, water)


def test_numeric_properties_carry_unit_code_and_observed_at(source: CitySource) -> None:
    for e in by_id(source, LOCAL).values():
        for iri, a in e.items():
            if isinstance(a, dict) and a.get("type") == "Property" and isinstance(a["value"], int | float):
                assert "unitCode" in a, (e["id"], iri)
                # thresholds, weekly extremes and a station's capacity (registry facts): no instant
                if not iri.endswith(("Level", "minFlow", "maxFlow", "totalSlotNumber")):
                    assert a.get("observedAt", "").endswith("Z"), (e["id"], iri)


def test_values_are_converted_to_the_models_units(source: CitySource) -> None:
    everything = by_id(source, LOCAL)
    last = hourly(HOURS - 1)
    weather = everything[f"urn:ngsi-ld:WeatherObserved:{WS}"]
    rh = attr(weather, "relativeHumidity")
    assert rh["value"] == pytest.approx(last[WS]["air.humidity"] / 100) and rh["unitCode"] == "C62"
    assert attr(weather, "atmosphericPressure")["unitCode"] == "A97"
    assert attr(weather, "temperature") == {"type": "Property", "value": last[WS]["air.temperature"],
                                           "unitCode": "CEL", "observedAt": attr(weather, "temperature")["observedAt"]}
    assert attr(everything[f"urn:ngsi-ld:AirQualityObserved:{AQ}"], "co")["unitCode"] == "GP"
    assert attr(everything[f"urn:ngsi-ld:AirQualityObserved:{AQ}"], "no2")["unitCode"] == "GQ"
    assert attr(everything[f"urn:ngsi-ld:IndoorEnvironmentObserved:{ROOM}"], "co2")["unitCode"] == "59"
    water = everything[f"urn:ngsi-ld:WaterConsumptionObserved:{HOME}"]
    consumption = attr(water, "waterConsumption")
    assert consumption["value"] == round(last[HOME]["water.volume"] * 1000) and consumption["unitCode"] == "LTR"
    assert attr(water, "maxFlow") == {"type": "Property", "value": round(last[HOME]["water.flow"]),
                                      "unitCode": "E32"}
    assert attr(everything[f"urn:ngsi-ld:Device:{WS}"], "batteryLevel")["value"] == pytest.approx(0.87)
    flood = everything[f"urn:ngsi-ld:FloodMonitoring:{GAUGE}"]
    assert attr(flood, "alertLevel")["value"] == 2.0 and attr(flood, "dangerLevel")["value"] == 3.5
    assert attr(flood, "floodLevelStatus")["value"] == "orange"  # 3.3 m: above orange (2.8), below red
    bikes = everything[f"urn:ngsi-ld:TrafficFlowObserved:{BIKE}"]
    assert attr(bikes, "intensity")["value"] == 22.0 and attr(bikes, "vehicleType")["value"] == "bicycle"


def test_scope_is_the_class_and_location_a_geoproperty(source: CitySource) -> None:
    everything = by_id(source, LOCAL)
    assert everything[f"urn:ngsi-ld:WeatherObserved:{WS}"]["scope"] == ["/open"]
    assert everything[f"urn:ngsi-ld:IndoorEnvironmentObserved:{ROOM}"]["scope"] == ["/restricted"]
    assert everything[f"urn:ngsi-ld:WaterConsumptionObserved:{HOME}"]["scope"] == ["/personal"]
    point = everything[f"urn:ngsi-ld:WeatherObserved:{WS}"][expand("location")]
    assert point == {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [3.879, 43.608]}}
    room = everything[f"urn:ngsi-ld:IndoorEnvironmentObserved:{ROOM}"][expand("location")]
    assert room["type"] == "GeoProperty" and room["value"]["type"] == "Polygon"  # no position: its zone's
    assert everything[f"urn:ngsi-ld:WeatherObserved:{WS}"][expand("refDevice")]["object"] == \
        f"urn:ngsi-ld:Device:{WS}"


def test_no_personal_entity_nor_value_without_the_scope(source: CitySource) -> None:
    for caller in (PUBLIC, PARTNER):
        text = json.dumps(list(source.candidates(caller, Hint())))
        assert [s for s in SENTINELS if s.lower() in text.lower()] == []
        assert source.get(caller, f"urn:ngsi-ld:WaterConsumptionObserved:{HOME}") is None
        assert source.get(caller, f"urn:ngsi-ld:Device:{HOME}") is None
        assert list(source.history(caller, [f"urn:ngsi-ld:WaterConsumptionObserved:{HOME}"],
                                   TemporalHint(None, None))) == []
    assert source.get(WATER, f"urn:ngsi-ld:WaterConsumptionObserved:{HOME}") is not None
    public = by_id(source, PUBLIC)
    assert f"urn:ngsi-ld:WeatherObserved:{WS}" in public
    assert f"urn:ngsi-ld:IndoorEnvironmentObserved:{ROOM}" not in public  # restricted
    assert f"urn:ngsi-ld:NoiseLevelObserved:{NOISE}" not in public  # generic: restricted by default
    assert f"urn:ngsi-ld:IndoorEnvironmentObserved:{ROOM}" in by_id(source, PARTNER)
    assert {e["scope"][0] for e in public.values()} == {"/open"}


def test_hints_narrow_the_candidates(source: CitySource) -> None:
    weather = by_id(source, LOCAL, types=frozenset({expand("WeatherObserved")}))
    assert list(weather) == [f"urn:ngsi-ld:WeatherObserved:{WS}"]
    one = by_id(source, LOCAL, ids=frozenset({f"urn:ngsi-ld:Device:{AQ}"}))
    assert list(one) == [f"urn:ngsi-ld:Device:{AQ}"]
    assert by_id(source, LOCAL, types=frozenset({"https://example.org/Unknown"})) == {}
    assert source.get(LOCAL, "urn:ngsi-ld:WeatherObserved:ffffffffffffffff") is None
    assert source.get(LOCAL, "not-an-urn") is None
    model = source.get(LOCAL, "urn:ngsi-ld:DeviceModel:Elsys-ERS")
    assert model is not None and attr(model, "manufacturerName")["value"] == "Elsys"


def test_raw_history_with_last_n(source: CitySource) -> None:
    eid = f"urn:ngsi-ld:WeatherObserved:{WS}"
    [e] = source.history(LOCAL, [eid], TemporalHint(time_of(0), time_of(HOURS), attrs=frozenset(
        {expand("relativeHumidity")})))
    points = e[expand("relativeHumidity")]
    assert len(points) == HOURS and set(e) == {"id", "type", "scope", expand("relativeHumidity")}
    assert points[0]["value"] == pytest.approx(0.40) and points[0]["unitCode"] == "C62"
    [last] = source.history(LOCAL, [eid], TemporalHint(time_of(0), time_of(HOURS), last_n=3))
    assert [p["value"] for p in last[expand("temperature")]] == [20 + i * 0.5 for i in range(HOURS - 3, HOURS)]


@pytest.mark.parametrize("period_s", [3600.0, 7200.0])
def test_aggregated_history_from_rollups_or_raw_rows(source: CitySource, period_s: float) -> None:
    """PT1H is read from the hourly rollup, PT2H from the raw rows: both give the same sums."""
    eid = f"urn:ngsi-ld:WeatherObserved:{WS}"
    query = TemporalHint(time_of(0), time_of(HOURS), aggr_methods=("avg", "max", "totalCount"),
                         aggr_period_s=period_s)
    assert (source._rollup_for(query, time_of(0)) is not None) == (period_s == 3600.0)
    [e] = source.history(LOCAL, [eid], query)
    temp = e[expand("temperature")]
    per = int(period_s // 3600)
    assert temp["type"] == "Property" and len(temp["totalCount"]) == HOURS // per
    assert [c for c, _, _ in temp["totalCount"]] == [per] * (HOURS // per)
    assert temp["max"][-1][0] == 20 + (HOURS - 1) * 0.5
    assert temp["avg"][0][0] == pytest.approx(sum(20 + i * 0.5 for i in range(per)) / per)
    start, end = temp["avg"][0][1:]
    assert start == time_of(0).isoformat().replace("+00:00", "Z")
    assert end == (time_of(0) + timedelta(seconds=period_s)).isoformat().replace("+00:00", "Z")
    rh = e[expand("relativeHumidity")]
    assert rh["max"][-1][0] == pytest.approx((40 + HOURS - 1) / 100)  # converted too


def test_a_bike_station_is_a_bike_hire_docking_station(source: CitySource, samples: Path) -> None:
    """GBFS counts as the model's integers, the registry's capacity, name and station_id, the last report, the status
    from the GBFS flags, an open scope; queried by type; and the validation bites on a count left a float."""
    eid = f"urn:ngsi-ld:BikeHireDockingStation:{DOCK}"
    stations = by_id(source, PUBLIC, types=frozenset({expand("BikeHireDockingStation")}))
    assert list(stations) == [eid]
    e = stations[eid]
    assert schema_errors(samples, e) == []
    last = hourly(HOURS - 1)[DOCK]
    bikes = attr(e, "availableBikeNumber")
    assert bikes == {"type": "Property", "value": int(last["bikeshare.bikes_available"]), "unitCode": "C62",
                     "observedAt": time_of(HOURS - 1).isoformat().replace("+00:00", "Z")}
    assert attr(e, "freeSlotNumber")["value"] == int(last["bikeshare.docks_available"])
    assert attr(e, "outOfServiceSlotNumber")["value"] == 2
    assert attr(e, "totalSlotNumber") == {"type": "Property", "value": STATION_CAPACITY, "unitCode": "C62"}
    assert bikes["value"] + attr(e, "freeSlotNumber")["value"] + 2 == STATION_CAPACITY
    assert attr(e, "name")["value"] == "Comédie Vélomagg" and attr(e, "stationCode")["value"] == "001"
    assert attr(e, "status")["value"] == "working" and expand("status") == "https://uri.etsi.org/ngsi-ld/status"
    reported = datetime.fromtimestamp(last["bikeshare.last_reported"], UTC)
    assert attr(e, "observationDateTime")["value"]["@value"] == reported.isoformat().replace("+00:00", "Z")
    assert e["scope"] == ["/open"] and e[expand("location")]["value"]["coordinates"] == [3.8801, 43.6086]
    assert e[expand("refDevice")]["object"] == f"urn:ngsi-ld:Device:{DOCK}"
    bad = {**e, expand("availableBikeNumber"): {**bikes, "value": 3.5}}
    assert schema_errors(samples, bad)


def test_bike_station_availability_history(source: CitySource) -> None:
    eid = f"urn:ngsi-ld:BikeHireDockingStation:{DOCK}"
    [e] = source.history(PUBLIC, [eid], TemporalHint(time_of(0), time_of(HOURS), attrs=frozenset(
        {expand("availableBikeNumber")})))
    points = e[expand("availableBikeNumber")]
    assert [p["value"] for p in points] == [i % 15 for i in range(HOURS)]
    assert all(isinstance(p["value"], int) and p["unitCode"] == "C62" for p in points)
    assert set(e) == {"id", "type", "scope", expand("availableBikeNumber")}
    [agg] = source.history(PUBLIC, [eid], TemporalHint(time_of(0), time_of(HOURS), aggr_methods=("max",),
                                                       aggr_period_s=86400.0))
    assert agg[expand("availableBikeNumber")]["max"][0][0] == 14


def test_bike_stations_through_the_routes(ngsi_store: Store, samples: Path) -> None:
    """Query by type with the clapas context: key-values that validate as they are, `status` compacted by the core
    context; the temporal route answers the availability history."""
    app = as_local(create_app(ngsi_store, Settings(auth=AuthSettings(rate_limits=False))))
    headers = {"Link": CTX, "NGSILD-Tenant": "city"}
    eid = f"urn:ngsi-ld:BikeHireDockingStation:{DOCK}"
    with TestClient(app) as client:
        r = client.get("/ngsi-ld/v1/entities?type=BikeHireDockingStation&options=keyValues", headers=headers)
        assert r.status_code == 200, r.text
        [kv] = r.json()
        assert kv["id"] == eid and kv["type"] == "BikeHireDockingStation" and kv["status"] == "working"
        assert kv["totalSlotNumber"] == STATION_CAPACITY and kv["location"]["type"] == "Point"
        # the simplified form keeps a DateTime's {"@type", "@value"}; the schemas want the string
        kv = {k: v["@value"] if isinstance(v, dict) and "@value" in v else v for k, v in kv.items()}
        assert [f"{e.instance_path}: {e.message}" for e in
                schema_validator(samples, "BikeHireDockingStation").iter_errors(kv)] == []
        for q, found in (("availableBikeNumber>100", []), ("status==%22working%22", [eid])):
            got = client.get(f"/ngsi-ld/v1/entities?type=BikeHireDockingStation&q={q}", headers=headers)
            assert got.status_code == 200 and [e["id"] for e in got.json()] == found, (q, got.text)
        t = client.get(f"/ngsi-ld/v1/temporal/entities/{eid}?attrs=availableBikeNumber&lastN=3"
                       f"&timerel=after&timeAt={time_of(0).isoformat().replace('+00:00', 'Z')}", headers=headers)
        assert t.status_code == 200, t.text
        assert [p["value"] for p in t.json()["availableBikeNumber"]] == [i % 15 for i in range(HOURS - 3, HOURS)]


# pages: the heads first, then only the page's entities (a city with more meters and restricted rooms) ---------
METERS = [f"0f{i:014x}" for i in range(24)]  # personal
SILENT = "0f0fffffffffffff"  # a personal meter never heard: a Device, no WaterConsumptionObserved
ROOMS = [f"0d{i:014x}" for i in range(9)]  # restricted (indoor climate)
WCO = expand("WaterConsumptionObserved")
PAGE_QUERIES = ("type=Device", "type=WaterConsumptionObserved", "type=Device,DeviceModel,WaterConsumptionObserved",
                "local=true", "idPattern=0f00", "type=Device&scopeQ=/personal",
                "type=WaterConsumptionObserved&q=waterConsumption>0")  # the last: a filter the heads cannot decide


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def paged_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from clapas.model import Device
    from clapas.store.base import open_store

    from ..conftest import store_url
    from .city_data import DEVICES, batch, fill

    url, drop = store_url(request, tmp_path_factory, "paged.duckdb")
    store = open_store(url, "Europe/Paris")
    fill(store)
    store.upsert_devices([Device(eui=e, name=f"Logement {i}", kind="water_meter", zone="ecusson", decoder="kamstrup",
                                 profile="Kamstrup flowIQ 2200", data_class="personal", subscriber=f"AB-{i}")
                          for i, e in enumerate([*METERS, SILENT])]
                         + [Device(eui=e, name=f"Salle {i}", kind="indoor_climate", zone="ecusson", decoder="elsys",
                                   profile="Elsys ERS", data_class="restricted") for i, e in enumerate(ROOMS)])
    store.write(batch([(e, time_of(i), {"water.volume": 100.0 + n + i * 0.01, "water.flow": 20.0 + i})
                       for i in range(3) for n, e in enumerate(METERS)]
                      + [(e, time_of(2), {"air.temperature": 19.0}) for e in ROOMS]))
    assert len(DEVICES) + len(METERS) + 1 + len(ROOMS) == len(store.devices(limit=1000))
    yield store
    store.close()
    if drop:
        drop()


def _page_client(store: Store, caller: Caller) -> TestClient:
    app = create_app(store, Settings(auth=AuthSettings(rate_limits=False)))
    app.state.identify = lambda request: caller
    return TestClient(app)


def _pages(client: TestClient, query: str, limit: int) -> tuple[list[list[str]], set[str]]:
    """Every page of a query (`limit` a page, until an empty one), and the counts their headers said."""
    pages, counts, offset = [], set(), 0
    while True:
        r = client.get(f"/ngsi-ld/v1/entities?{query}&limit={limit}&offset={offset}&count=true",
                       headers={"Link": CTX})
        assert r.status_code == 200, r.text
        counts.add(r.headers["NGSILD-Results-Count"])
        ids = [e["id"] for e in r.json()]
        if not ids:
            return pages, counts
        pages.append(ids)
        offset += limit


@pytest.mark.parametrize("who", ["public", "partner", "water"])
@pytest.mark.parametrize("query", PAGE_QUERIES)
def test_pages_concatenate_to_the_full_listing_and_the_count_is_what_the_caller_may_see(
        paged_store: Store, who: str, query: str) -> None:
    caller = {"public": PUBLIC, "partner": PARTNER, "water": WATER}[who]
    client = _page_client(paged_store, caller)
    # the reference: every entity the caller may read, built (the source's candidates), filtered as the query says
    everything = list(CitySource(paged_store).candidates(caller, Hint()))
    wanted = query.split("&")[0].removeprefix("type=").split(",") if query.startswith("type=") else None
    expected = sorted(e["id"] for e in everything if (wanted is None or e["type"] in {expand(t) for t in wanted})
                      and ("idPattern=0f00" not in query or "0f00" in e["id"])
                      and ("/personal" not in query or e["scope"] == ["/personal"])
                      and ("q=" not in query or e[expand("waterConsumption")]["value"] > 0))
    pages, counts = _pages(client, query, 4)
    listed = [i for page in pages for i in page]
    assert listed == expected  # in id order, nothing twice, nothing left out
    assert counts == {str(len(expected))}
    assert all(len(p) == 4 for p in pages[:-1])
    meters = {f"urn:ngsi-ld:WaterConsumptionObserved:{e}" for e in METERS}
    if who == "water" and query == "type=WaterConsumptionObserved":
        assert meters <= set(listed) and f"urn:ngsi-ld:WaterConsumptionObserved:{SILENT}" not in listed
    if who != "water":  # no meter listed nor counted, the restricted rooms only for the partner
        assert not {i for i in listed if entities_key(i) in {*METERS, SILENT, HOME}}
        rooms = {f"urn:ngsi-ld:Device:{e}" for e in ROOMS}
        if query == "type=Device":
            assert (rooms <= set(listed)) == (who == "partner") and bool(rooms & set(listed)) == (who == "partner")


@pytest.mark.parametrize("path", ["/ngsi-ld/v1/entities?type=Device",
                                  "/ngsi-ld/v1/entities?type=Device&q=serialNumber!=%22x%22",  # not by the heads
                                  "/ngsi-ld/v1/temporal/entities?type=Device&timerel=after&timeAt=2020-01-01T00:00:00Z"])
def test_pages_link_to_the_next_and_previous_ones(paged_store: Store, path: str) -> None:
    """§5.5.9: rel="next" while more entities match, rel="prev" after the first page, beside the context's Link;
    following the next links walks the whole listing once."""
    client = _page_client(paged_store, PARTNER)
    expected = sorted(e["id"] for e in CitySource(paged_store).candidates(PARTNER, Hint(types=frozenset({
        expand("Device")}))))
    url, seen, pages = f"{path}&limit=5", [], 0
    while url:
        r = client.get(url, headers={"Link": CTX})
        assert r.status_code == 200, r.text
        seen += [e["id"] for e in r.json()]
        links = r.headers.get_list("link")
        assert 'rel="http://www.w3.org/ns/json-ld#context"' in links[0]  # the context's Link first
        rels = {rel: link.split(">")[0].lstrip("<") for link in links[1:]
                for rel in ("prev", "next") if f'rel="{rel}"' in link}
        assert ("prev" in rels) == (pages > 0)
        url = rels.get("next")
        pages += 1
    assert seen == expected and pages == -(-len(expected) // 5)


def entities_key(entity_id: str) -> str:
    return entity_id.rsplit(":", 1)[-1]


@pytest.mark.parametrize("caller", [PUBLIC, PARTNER, WATER, LOCAL], ids=["public", "partner", "water", "local"])
def test_listing_heads_are_the_entities_and_build_builds_them_alike(paged_store: Store, caller: Caller) -> None:
    source = CitySource(paged_store)
    for types in (None, frozenset({WCO}), frozenset({expand("Device"), expand("DeviceModel")})):
        built = {e["id"]: e for e in source.candidates(caller, Hint(types=types))}
        heads = source.listing(caller, Hint(types=types))
        assert [h["id"] for h in heads] == sorted(built)
        assert all(h == {k: built[h["id"]][k] for k in ("id", "type", "scope")} for h in heads)
        assert source.build(caller, [h["id"] for h in heads]) == [built[h["id"]] for h in heads]
    assert source.build(caller, [f"urn:ngsi-ld:WeatherObserved:{METERS[0]}", "urn:ngsi-ld:Nothing:x"]) == []


def test_a_page_builds_only_its_entities(paged_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from clapas.api.ngsi_ld.city import entities

    calls: dict[str, int] = {}
    for name in ("observation", "device_entity", "device_model_entity"):
        builder = getattr(entities, name)

        def counted(*a: Any, _f: Any = builder, _n: str = name, **k: Any) -> Any:
            calls[_n] = calls.get(_n, 0) + 1
            return _f(*a, **k)
        monkeypatch.setattr(entities, name, counted)

    def ask(client: TestClient, query: str) -> tuple[list[str], str | None]:
        calls.clear()
        r = client.get(f"/ngsi-ld/v1/entities?{query}", headers={"Link": CTX})
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()], r.headers.get("NGSILD-Results-Count")

    water = _page_client(paged_store, WATER)
    ids, count = ask(water, "type=WaterConsumptionObserved&limit=3&offset=5&count=true")
    assert len(ids) == 3 and count == str(len(METERS) + 1)  # the sentinel home's meter too, not the silent one
    assert calls == {"observation": 3}  # three meters built, no Device entity, no other meter
    ids, count = ask(water, "type=Device&limit=4&count=true")
    assert len(ids) == 4 and calls == {"device_entity": 4}
    ids, _ = ask(water, "type=WaterConsumptionObserved&limit=0&count=true")
    assert ids == [] and calls == {}  # a count alone builds nothing
    ids, count = ask(water, "type=DeviceModel&limit=1&count=true")
    assert len(ids) == 1 and calls == {"device_model_entity": 1} and int(count or 0) > 1
    ask(water, "type=WaterConsumptionObserved&q=waterConsumption>0&limit=2")  # q needs the entities: a chunk's
    assert 2 <= calls["observation"] <= len(METERS) + 1
    ids, _ = ask(_page_client(paged_store, PUBLIC), "type=WaterConsumptionObserved&count=true")
    assert "observation" not in calls  # no meter is built for a caller who may not read them
    ids, _ = ask(water, f"type=WaterConsumptionObserved&id=urn:ngsi-ld:WaterConsumptionObserved:{METERS[1]}")
    assert ids == [f"urn:ngsi-ld:WaterConsumptionObserved:{METERS[1]}"] and calls == {"observation": 1}
    calls.clear()  # the POST query pages alike (its EntityInfo decided by the heads)
    r = water.post("/ngsi-ld/v1/entityOperations/query?limit=3&count=true", headers={"Link": CTX},
                   json={"type": "Query", "entities": [{"type": "WaterConsumptionObserved", "idPattern": "0f00"}]})
    assert r.status_code == 200, r.text
    assert len(r.json()) == 3 and r.headers["NGSILD-Results-Count"] == str(len(METERS)) and calls == {"observation": 3}


# orderBy over the city's tenant: values for the whole listing, sorted before the page is built -------------------
ORDERS = ("type=WaterConsumptionObserved&orderBy=waterConsumption;desc",
          "type=Device&orderBy=name",
          "type=Device,WaterConsumptionObserved,IndoorEnvironmentObserved&orderBy=temperature;desc,waterConsumption",
          "type=WaterConsumptionObserved&orderBy=dateObserved;desc",  # a derived attribute: built to be ordered
          "type=Device&q=serialNumber!=%22x%22&orderBy=serialNumber;desc")  # not decided by the heads


@pytest.mark.parametrize("who", ["public", "partner", "water"])
@pytest.mark.parametrize("query", ORDERS)
def test_ordered_pages_concatenate_to_the_order_of_what_the_caller_may_see(paged_store: Store, who: str,
                                                                            query: str) -> None:
    from types import SimpleNamespace

    from clapas.api.ngsi_ld.ordering import parse_order

    caller = {"public": PUBLIC, "partner": PARTNER, "water": WATER}[who]
    types = {expand(t) for t in query.split("&")[0].removeprefix("type=").split(",")}
    everything = [e for e in CitySource(paged_store).candidates(caller, Hint()) if e["type"] in types]
    ctx = SimpleNamespace(expand=expand)  # the clapas context the Link header names
    order = parse_order(query.split("orderBy=")[1], ctx, None)  # type: ignore[arg-type]
    expected = [e["id"] for e in order.sort(everything)]
    if who == "water" and "waterConsumption;desc" in query:
        assert expected != sorted(expected)  # the order is not the id order
    pages, counts = _pages(_page_client(paged_store, caller), query, 4)
    assert [i for page in pages for i in page] == expected and counts == {str(len(expected))}


def test_an_ordered_page_builds_only_its_entities(paged_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from clapas.api.ngsi_ld.city import entities

    calls: dict[str, int] = {}
    for name in ("observation", "device_entity"):
        builder = getattr(entities, name)

        def counted(*a: Any, _f: Any = builder, _n: str = name, **k: Any) -> Any:
            calls[_n] = calls.get(_n, 0) + 1
            return _f(*a, **k)
        monkeypatch.setattr(entities, name, counted)
    water = _page_client(paged_store, WATER)
    r = water.get("/ngsi-ld/v1/entities?type=WaterConsumptionObserved&orderBy=waterConsumption;desc&limit=3"
                  "&offset=2&count=true", headers={"Link": CTX})
    assert r.status_code == 200 and len(r.json()) == 3 and calls == {"observation": 3}
    values = [e["waterConsumption"]["value"] for e in r.json()]
    assert values == sorted(values, reverse=True)
    calls.clear()
    r = water.get("/ngsi-ld/v1/entities?type=Device&orderBy=name;desc&limit=2", headers={"Link": CTX})
    assert r.status_code == 200 and calls == {"device_entity": 2}


def test_listing_values_are_the_built_entities_attributes(source: CitySource) -> None:
    """`values` (orderBy's read) gives each attribute exactly as the built entity carries it, for every type and
    attribute of the city, so that ordering the heads orders the entities."""
    built = {e["id"]: e for e in source.candidates(WATER, Hint())}
    names = {k for e in built.values() for k in e if k not in ("id", "type", "scope")}
    got = source.values(WATER, sorted(built), frozenset(names))
    assert set(got) == set(built)
    for i, e in built.items():
        assert got[i] == {k: v for k, v in e.items() if k in names}, i


def test_an_order_by_a_value_the_caller_may_not_read_treats_it_as_absent(paged_store: Store) -> None:
    """With air temperatures restricted (`[charter.quantities]`), an anonymous caller's entities carry none: ordered
    by temperature they come by id in both directions (the hidden values decide nothing); a partner's by value."""
    from clapas.config import CharterSettings

    settings = Settings(auth=AuthSettings(rate_limits=False),
                        charter=CharterSettings(quantities={"air.temperature": "restricted"}))

    def order(caller: Caller, direction: str) -> list[str]:
        app = create_app(paged_store, settings)
        app.state.identify = lambda request: caller
        r = TestClient(app).get("/ngsi-ld/v1/entities?type=WeatherObserved,AirQualityObserved&orderBy=temperature;"
                                f"{direction}", headers={"Link": CTX})
        assert r.status_code == 200, r.text
        assert (who := caller is PUBLIC) is False or "temperature" not in r.text, who
        return [e["id"] for e in r.json()]

    public = order(PUBLIC, "desc")
    assert public == order(PUBLIC, "asc") == sorted(public) and len(public) == 2
    assert order(PARTNER, "desc") == [f"urn:ngsi-ld:WeatherObserved:{WS}", f"urn:ngsi-ld:AirQualityObserved:{AQ}"]
    assert order(PARTNER, "asc") == list(reversed(order(PARTNER, "desc")))


def test_the_audit_log_counts_the_devices_a_query_withheld(paged_store: Store) -> None:
    """A partner's NGSI-LD reads of restricted data are audited like REST listings: with how many devices the answer
    left out because the partner may not read them (the personal meters of the kinds the query asks), whatever page
    it is; a query whose kinds hold none withheld says none; the entry names no withheld device."""
    app = create_app(paged_store, Settings(auth=AuthSettings(rate_limits=False)))
    app.state.identify = lambda request: PARTNER
    client = TestClient(app)
    meters = {*METERS, SILENT, HOME}

    def entry(query: str, path: str = "/ngsi-ld/v1/entities") -> dict[str, Any]:
        r = client.get(f"{path}?{query}", headers={"Link": CTX})
        assert r.status_code == 200 and r.json(), r.text
        app.state.access.audit.flush()
        [new] = [e for e in paged_store.audit_entries(limit=100_000) if e["request_id"] == r.headers["x-request-id"]]
        assert new["data_class"] == "restricted" and not meters & set(new["subjects"] or ()), new
        return new

    for query in ("type=Device&limit=5", "type=Device&limit=5&offset=10", "type=Device,WaterConsumptionObserved",
                  "type=Device&q=serialNumber!=%22x%22&limit=3"):
        assert (entry(query)["detail"] or {}).get("withheld") == len(meters), query
    assert "withheld" not in (entry("type=IndoorEnvironmentObserved")["detail"] or {})  # no meter is a room
    temporal = entry("type=Device&limit=5&timerel=after&timeAt=2000-01-01T00:00:00Z", "/ngsi-ld/v1/temporal/entities")
    assert temporal["detail"]["withheld"] == len(meters)


def test_the_temporal_query_pages_in_the_same_order(paged_store: Store) -> None:
    client = _page_client(paged_store, WATER)
    order = "type=WaterConsumptionObserved&orderBy=waterConsumption;desc"
    r = client.get(f"/ngsi-ld/v1/entities?{order}&limit=100", headers={"Link": CTX})
    expected = [e["id"] for e in r.json()]
    got = []
    for offset in range(0, len(expected), 7):
        t = client.get(f"/ngsi-ld/v1/temporal/entities?{order}&timerel=after&timeAt=2000-01-01T00:00:00Z&limit=7"
                       f"&offset={offset}", headers={"Link": CTX})
        assert t.status_code == 200, t.text
        got += [e["id"] for e in t.json()]
    assert got == expected and expected != sorted(expected)
