"""Which entities a query selects and how they are shown (§4.9 q, §4.10 geo, §4.17 type, §4.19 scope, §4.21
projections, §4.5.23 joins, §4.5 representations), over HTTP on each store."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import E, create, ids_of, problem, uid, vehicle


def test_representations(client: TestClient) -> None:
    eid = uid()
    create(client, {**vehicle(eid), "name": {"type": "LanguageProperty", "languageMap": {"fr": "voiture",
                                                                                         "en": "car"}},
                    "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}})
    kv = client.get(f"{E}/{eid}?options=keyValues").json()
    assert kv["speed"] == 80 and kv["owner"] == "urn:ngsi-ld:Person:1" and kv["location"]["type"] == "Point"
    assert client.get(f"{E}/{eid}?format=simplified").json() == kv
    concise = client.get(f"{E}/{eid}?format=concise").json()
    assert concise["speed"] == {"value": 80, "unitCode": "KMH", "observedAt": "2026-03-01T12:00:00Z"}
    assert concise["owner"] == {"object": "urn:ngsi-ld:Person:1"}
    assert concise["location"] == {"type": "Point", "coordinates": [3.88, 43.61]}
    norm = client.get(f"{E}/{eid}?options=sysAttrs").json()
    assert norm["createdAt"].endswith("Z") and norm["speed"]["modifiedAt"].endswith("Z")
    assert "createdAt" not in client.get(f"{E}/{eid}").json()
    fr = client.get(f"{E}/{eid}?lang=fr").json()["name"]
    assert fr == {"type": "Property", "value": "voiture", "lang": "fr"}
    problem(client.get(f"{E}/{eid}?options=keyValues,concise"), 400, "BadRequestData")
    # a concise body is read back as the normalized entity
    eid2 = uid()
    create(client, {"id": eid2, "type": "Vehicle", "speed": 10, "owner": {"object": "urn:ngsi-ld:Person:2"},
                    "location": {"type": "Point", "coordinates": [1, 2]}})
    n = client.get(f"{E}/{eid2}").json()
    assert n["speed"] == {"type": "Property", "value": 10}
    assert n["owner"] == {"type": "Relationship", "object": "urn:ngsi-ld:Person:2"}
    assert n["location"]["type"] == "GeoProperty"


def test_attrs_pick_and_omit(client: TestClient) -> None:
    eid = uid()
    create(client, vehicle(eid, brand={"type": "Property", "value": "Mercedes"}))
    assert set(client.get(f"{E}/{eid}?attrs=speed").json()) == {"id", "type", "speed"}
    assert set(client.get(f"{E}/{eid}?pick=id,brand").json()) == {"id", "brand"}
    assert set(client.get(f"{E}/{eid}?omit=speed,type").json()) == {"id", "location", "brand"}
    problem(client.get(f"{E}/{eid}?pick=id&omit=speed"), 400, "BadRequestData")
    problem(client.get(f"{E}/{uid()}"), 404, "ResourceNotFound")


def test_query_language(client: TestClient) -> None:
    kind = f"Q{uid()[-6:]}"
    ids = [f"urn:ngsi-ld:{kind}:{i}" for i in range(5)]
    for i, eid in enumerate(ids):
        create(client, {"id": eid, "type": kind, "n": {"type": "Property", "value": i * 10,
                                                       "observedAt": f"2026-03-0{i + 1}T00:00:00Z"},
                        "name": {"type": "Property", "value": f"car-{i}"},
                        "spec": {"type": "Property", "value": {"color": "red" if i % 2 else "blue"}},
                        "rel": {"type": "Relationship", "object": f"urn:ngsi-ld:Park:{i % 2}"}})
    q = lambda expr: ids_of(client, f"type={kind}&q={expr}")  # noqa: E731
    assert q("n>20") == ids[3:]
    assert q("n>=20;n<40") == ids[2:4]
    assert q("n==0|n==40") == [ids[0], ids[4]]
    assert q("(n==0|n==40);name==%22car-4%22") == [ids[4]]
    assert q("n==10..30") == ids[1:4]
    assert q("n==10,30") == [ids[1], ids[3]]
    assert q("n!=10") == [i for i in ids if i != ids[1]]
    assert q("name~=car-[12]") == ids[1:3]
    assert q("spec[color]==%22red%22") == [ids[1], ids[3]]
    assert q("rel==urn:ngsi-ld:Park:0") == ids[0::2]
    assert q("n.observedAt>2026-03-03T00:00:00Z") == ids[3:]
    assert q("missing") == [] and q("n") == ids
    problem(client.get(f"{E}?type={kind}&q=n==(1"), 400, "InvalidRequest")
    problem(client.get(f"{E}?type={kind}&q=n>>"), 400, "InvalidRequest")


def test_type_id_and_pattern_selections(client: TestClient) -> None:
    k = uid()[-6:]
    a, b = f"urn:ngsi-ld:A{k}:1", f"urn:ngsi-ld:B{k}:2"
    create(client, {"id": a, "type": f"A{k}"})
    create(client, {"id": b, "type": [f"A{k}", f"B{k}"]})
    assert ids_of(client, f"type=A{k},B{k}") == [a, b]
    assert ids_of(client, f"type=A{k};B{k}") == [b]
    assert ids_of(client, f"type=B{k}|A{k}") == [a, b]
    assert ids_of(client, f"type=A{k}&idPattern=.*:2$") == [b]
    assert ids_of(client, f"id={a}") == [a]
    problem(client.get(E), 400, "BadRequestData")  # a query names at least something


def test_scope_queries(client: TestClient) -> None:
    k = f"S{uid()[-6:]}"
    ids = [f"urn:ngsi-ld:{k}:{i}" for i in range(3)]
    for eid, scope in zip(ids, ["/Montpellier/Ecusson", "/Montpellier/Port-Marianne/Odysseum", "/Lyon"],
                          strict=True):
        create(client, {"id": eid, "type": k, "scope": scope})
    assert ids_of(client, f"type={k}&scopeQ=/Montpellier/%23") == ids[:2]
    assert ids_of(client, f"type={k}&scopeQ=/Montpellier/%2B") == ids[:1]
    assert ids_of(client, f"type={k}&scopeQ=/Lyon,/Montpellier/Ecusson") == [ids[0], ids[2]]
    assert client.get(f"{E}/{ids[0]}").json()["scope"] == ["/Montpellier/Ecusson"]


def test_geo_queries(client: TestClient) -> None:
    k = f"G{uid()[-6:]}"
    comedie, odysseum, lyon = (f"urn:ngsi-ld:{k}:{n}" for n in ("comedie", "odysseum", "lyon"))
    create(client, {"id": comedie, "type": k, "location": {"type": "Point", "coordinates": [3.8797, 43.6086]}})
    create(client, {"id": odysseum, "type": k, "location": {"type": "Point", "coordinates": [3.9197, 43.6039]}})
    create(client, {"id": lyon, "type": k, "location": {"type": "Point", "coordinates": [4.8357, 45.764]}})
    g = lambda rest: ids_of(client, f"type={k}&{rest}")  # noqa: E731
    near = "georel=near;maxDistance=={}&geometry=Point&coordinates=[3.8797,43.6086]"
    assert g(near.format(1000)) == [comedie]
    assert g(near.format(5000)) == [comedie, odysseum]  # 3.3 km apart
    assert g("georel=near;minDistance==100000&geometry=Point&coordinates=[3.8797,43.6086]") == [lyon]
    box = "[[[3.8,43.5],[4.0,43.5],[4.0,43.7],[3.8,43.7],[3.8,43.5]]]"
    assert g(f"georel=within&geometry=Polygon&coordinates={box}") == [comedie, odysseum]
    assert g(f"georel=intersects&geometry=Polygon&coordinates={box}") == [comedie, odysseum]
    assert g(f"georel=disjoint&geometry=Polygon&coordinates={box}") == [lyon]
    assert g("georel=equals&geometry=Point&coordinates=[4.8357,45.764]") == [lyon]
    line = "[[3.8797,43.6086],[3.9197,43.6039]]"
    assert g(f"georel=intersects&geometry=LineString&coordinates={line}") == [comedie, odysseum]
    problem(client.get(f"{E}?type={k}&georel=near&geometry=Point&coordinates=[1,2]"), 400, "BadRequestData")
    problem(client.get(f"{E}?type={k}&georel=within&geometry=Polygon&coordinates=[1]"), 400, "BadRequestData")
    problem(client.get(f"{E}?type={k}&georel=within"), 400, "BadRequestData")


def test_linked_entity_retrieval(client: TestClient) -> None:
    k = uid()[-6:]
    building, city, country = (f"urn:ngsi-ld:{t}:{k}" for t in ("Building", "City", "Country"))
    create(client, {"id": building, "type": "Building", "locatedAt": {"type": "Relationship", "object": city}})
    create(client, {"id": city, "type": "City", "partOf": {"type": "Relationship", "object": country}})
    create(client, {"id": country, "type": "Country"})
    inline = client.get(f"{E}/{building}?join=inline").json()
    assert inline["locatedAt"]["entity"]["id"] == city and "entity" not in inline["locatedAt"]["entity"]["partOf"]
    deep = client.get(f"{E}/{building}?join=inline&joinLevel=2").json()
    assert deep["locatedAt"]["entity"]["partOf"]["entity"] == {"id": country, "type": "Country"}
    kv = client.get(f"{E}/{building}?join=inline&options=keyValues").json()
    assert kv["locatedAt"] == {"id": city, "type": "City", "partOf": country}
    flat = client.get(f"{E}/{building}?join=flat").json()
    assert [e["id"] for e in flat] == [building, city]
    assert [e["id"] for e in client.get(f"{E}?type=Building,City&id={building},{city}&join=flat&joinLevel=2").json()] \
        == [building, city, country]
    problem(client.get(f"{E}/{building}?join=sideways"), 400, "BadRequestData")


def test_nested_pick_and_omit_on_linked_entities(client: TestClient) -> None:
    k = uid()[-6:]
    b, c, n = (f"urn:ngsi-ld:{t}:{k}" for t in ("Building", "City", "Country"))
    create(client, {"id": b, "type": "Building", "name": "tower", "locatedAt": {"type": "Relationship", "object": c}})
    create(client, {"id": c, "type": "City", "name": "Paris", "description": "capital",
                    "isInCountry": {"type": "Relationship", "object": n}})
    create(client, {"id": n, "type": "Country", "name": "France", "description": "a country"})
    get = lambda q: client.get(f"{E}/{b}?joinLevel=2&{q}").json()  # noqa: E731
    assert get("join=inline&pick=id,locatedAt{id,name}") == {"id": b, "locatedAt": {
        "type": "Relationship", "object": c, "entity": {"id": c, "name": {"type": "Property", "value": "Paris"}}}}
    flat = get("join=flat&pick=id,locatedAt{id,name,isInCountry{id,description}}")
    assert flat == [{"id": b, "locatedAt": {"type": "Relationship", "object": c}},
                    {"id": c, "name": {"type": "Property", "value": "Paris"},
                     "isInCountry": {"type": "Relationship", "object": n}},
                    {"id": n, "description": {"type": "Property", "value": "a country"}}]
    assert [e["id"] for e in get("join=flat&pick=id,locatedAt{id,name}")] == [b, c]  # isInCountry not shown
    inline = get("join=inline&omit=type,locatedAt{name,isInCountry{description}}")
    city = inline["locatedAt"]["entity"]
    assert "type" not in inline and "name" in inline and set(city) == {"id", "type", "description", "isInCountry"}
    assert set(city["isInCountry"]["entity"]) == {"id", "type", "name"}
    problem(client.get(f"{E}/{b}?pick=id,locatedAt{{id"), 400, "InvalidRequest")
