"""Entity ordering (`orderBy`, v1.9.1 §4.23): directions, ties by id, absent values last, kinds, distances; and
through the query route of the sandbox tenant on both stores, applied before paging (pages never overlap nor
skip), with the error types of malformed orders."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from clapas.api.ngsi_ld.context import CORE, DEFAULT_VOCAB
from clapas.api.ngsi_ld.entity import LOCATION
from clapas.api.ngsi_ld.errors import NgsiError
from clapas.api.ngsi_ld.geo import parse_geo
from clapas.api.ngsi_ld.ordering import parse_order

from .conftest import E, create, problem, uid, vehicle

V = DEFAULT_VOCAB


def ent(i: str, **attrs: object) -> dict:
    out: dict = {"id": f"urn:x:{i}", "type": V + "Car"}
    for k, v in attrs.items():
        out[V + k] = v if isinstance(v, dict | list) else {"type": "Property", "value": v}
    return out


def ids(order: str, entities: list[dict], geo: object = None) -> list[str]:
    return [e["id"].removeprefix("urn:x:") for e in parse_order(order, CORE, geo).sort(entities)]  # type: ignore[arg-type]


CARS = [ent("d", speed=50), ent("a", speed=80), ent("c"), ent("b", speed=50), ent("e", speed=120.5)]


def test_ascending_descending_ties_by_id_and_absent_last() -> None:
    assert ids("speed", CARS) == ["b", "d", "a", "e", "c"]
    assert ids("speed;asc", CARS) == ids("speed", CARS)
    assert ids("speed;desc", CARS) == ["e", "a", "b", "d", "c"]  # ties still by id ascending, absent still last


def test_several_paths_break_ties_in_turn() -> None:
    cars = [ent("1", speed=50, name="Zoé"), ent("2", speed=50, name="Clio"), ent("3", speed=10, name="Twingo")]
    assert ids("speed;desc,name", cars) == ["2", "1", "3"]
    assert ids("speed;desc,name;desc", cars) == ["1", "2", "3"]


def test_kinds_compare_by_kind_then_value() -> None:
    mixed = [ent("s", v="abc"), ent("t", v="2026-03-01T10:00:00Z"), ent("n", v=3), ent("b", v=True),
             ent("u", v="2026-02-01T10:00:00+01:00"), ent("m", v=-1.5)]
    assert ids("v", mixed) == ["m", "n", "u", "t", "s", "b"]


def test_sub_attribute_paths_and_compound_keys() -> None:
    cars = [ent("1", speed={"type": "Property", "value": 1, "observedAt": "2026-03-02T00:00:00Z"}),
            ent("2", speed={"type": "Property", "value": 2, "observedAt": "2026-03-01T00:00:00Z"}),
            ent("3", spec={"type": "Property", "value": {"engine": {"kw": 65}}}),
            ent("4", spec={"type": "Property", "value": {"engine": {"kw": 40}}})]
    assert ids("speed.observedAt", cars) == ["2", "1", "3", "4"]
    assert ids("spec[engine.kw]", cars) == ["4", "3", "1", "2"]


def test_distance_orders_from_the_geo_query() -> None:
    def at(i: str, lon: float) -> dict:
        return {**ent(i), LOCATION: {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, 43.6]}}}

    places = [at("far", 3.95), at("near", 3.881), at("mid", 3.9), ent("nowhere")]
    geo = parse_geo("near;maxDistance==100000", "Point", "[3.88,43.6]", None, CORE)
    assert ids("location;dist-asc", places, geo) == ["near", "mid", "far", "nowhere"]
    assert ids("location;dist-desc", places, geo) == ["far", "mid", "near", "nowhere"]


@pytest.mark.parametrize(("order", "kind"), [("speed;up", "InvalidRequest"), ("", "InvalidRequest"),
                                             ("speed,", "InvalidRequest"), ("a b", "InvalidRequest"),
                                             ("location;dist-asc", "BadRequestData")])
def test_malformed_orders(order: str, kind: str) -> None:
    with pytest.raises(NgsiError) as err:
        parse_order(order, CORE, None)
    assert err.value.kind == kind


def test_pages_of_an_ordered_query_concatenate_to_the_whole_order(client: TestClient) -> None:
    marker = uid("Marker").rsplit(":", 1)[-1]
    speeds = [70, 30, 70, 90, 30, 70, 10, 50, 70]
    made = []
    for n, s in enumerate(speeds):
        eid = f"urn:ngsi-ld:Vehicle:ord-{marker}-{n:02d}"
        create(client, vehicle(eid, speed=s))
        made.append((s, eid))
    create(client, {"id": f"urn:ngsi-ld:Vehicle:ord-{marker}-nospeed", "type": "Vehicle"})
    base = f"{E}?type=Vehicle&idPattern=ord-{marker}&count=true"
    for direction, expected in (("asc", [i for _, i in sorted(made)]),
                                ("desc", [i for _, i in sorted(made, key=lambda x: (-x[0], x[1]))])):
        expected = [*expected, f"urn:ngsi-ld:Vehicle:ord-{marker}-nospeed"]
        whole = client.get(f"{base}&orderBy=speed;{direction}&limit=100")
        assert whole.status_code == 200, whole.text
        assert [e["id"] for e in whole.json()] == expected
        pages = []
        for offset in range(0, len(expected), 3):
            r = client.get(f"{base}&orderBy=speed;{direction}&limit=3&offset={offset}")
            assert r.status_code == 200 and r.headers["NGSILD-Results-Count"] == str(len(expected))
            pages += [e["id"] for e in r.json()]
        assert pages == expected  # the order before the paging: nothing twice, nothing skipped


def test_a_malformed_order_is_the_specs_error(client: TestClient) -> None:
    problem(client.get(f"{E}?type=Vehicle&orderBy=speed;sideways"), 400, "InvalidRequest")
    problem(client.get(f"{E}?type=Vehicle&orderBy=location;dist-asc"), 400, "BadRequestData")


NAMES = [ent("1", name="zoo"), ent("2", name="été"), ent("3", name="Eté"), ent("4", name="etre"),
         ent("5", name="ébène"), ent("6", name="apple")]


def named(collation: str | None) -> list[str]:
    order = parse_order("name", CORE, None, collation)
    return [e[V + "name"]["value"] for e in order.sort(NAMES)]  # type: ignore[arg-type]


def test_strings_by_code_point_unless_a_collation_is_named() -> None:
    assert named(None) == ["Eté", "apple", "etre", "zoo", "ébène", "été"]
    # the Unicode Collation Algorithm: accents and case only break ties; equal keys by code point
    assert named("fr") == ["apple", "ébène", "Eté", "été", "etre", "zoo"]
    assert named("en-GB") == named("fr")
    with pytest.raises(NgsiError) as err:
        parse_order("name", CORE, None, "not a tag!")
    assert err.value.kind == "BadRequestData"


def test_a_post_query_orders_as_the_get_one(client: TestClient) -> None:
    marker = uid("Marker").rsplit(":", 1)[-1]
    for n, (s, name) in enumerate([(70, "Été"), (30, "zèbre"), (70, "abri"), (10, "été")]):
        create(client, vehicle(f"urn:ngsi-ld:Vehicle:post-{marker}-{n}", speed=s,
                               name={"type": "Property", "value": name}))
    query = {"type": "Query", "entities": [{"type": "Vehicle", "idPattern": f"post-{marker}"}]}
    post = "/ngsi-ld/v1/entityOperations/query"

    def names(r: object) -> list[str]:
        assert r.status_code == 200, r.text  # type: ignore[attr-defined]
        return [e["name"]["value"] for e in r.json()]  # type: ignore[attr-defined]

    get = f"{E}?type=Vehicle&idPattern=post-{marker}"
    by_speed = names(client.get(f"{get}&orderBy=speed;desc,name"))
    assert by_speed == ["abri", "Été", "zèbre", "été"]
    assert names(client.post(f"{post}?orderBy=speed;desc,name", json=query)) == by_speed
    assert names(client.post(post, json={**query, "orderBy": "speed;desc,name"})) == by_speed
    assert names(client.post(post, json={**query, "orderBy": ["speed;desc", "name"]})) == by_speed
    collated = {**query, "orderBy": "name", "collation": "fr"}
    assert names(client.post(post, json=collated)) == ["abri", "été", "Été", "zèbre"]
    assert names(client.get(f"{get}&orderBy=name&collation=fr")) == ["abri", "été", "Été", "zèbre"]
    problem(client.post(post, json={**query, "orderBy": 3}), 400, "BadRequestData")
    problem(client.post(f"{post}?orderBy=speed;sideways", json=query), 400, "InvalidRequest")
