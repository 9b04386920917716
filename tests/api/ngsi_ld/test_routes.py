"""The NGSI-LD routes clause by clause (ETSI GS CIM 009 §5–6), on the sandbox tenant of each store."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from .conftest import uid, vehicle

E = "/ngsi-ld/v1/entities"
FIWARE = "https://fiware.github.io/NGSI-LD_TestSuite/ldContext/testContext.jsonld"
LINK = f'<{FIWARE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def create(client: TestClient, body: dict[str, Any], **headers: str) -> Any:
    r = client.post(E, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r


def problem(r: Any, status: int, kind: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{kind}" and body["title"] and body["detail"]
    assert r.headers["content-type"].startswith("application/json")


# 6.3.4–6.3.6 common responses and negotiation -------------------------------------------------------------------
def test_accept_selects_in_the_spec_order_unless_weighted(client: TestClient) -> None:
    eid = uid()
    create(client, vehicle(eid))
    cases = {"": "application/json", "application/ld+json, application/json": "application/json",
             "application/geo+json, application/json": "application/json",
             "application/json;q=0.1, application/ld+json;q=0.9": "application/ld+json",
             "application/ld+json": "application/ld+json", "*/*": "application/json",
             "application/*": "application/json", "application/geo+json": "application/geo+json"}
    for accept, expected in cases.items():
        r = client.get(f"{E}/{eid}", headers={"Accept": accept} if accept else {})
        assert r.status_code == 200 and r.headers["content-type"].startswith(expected), (accept, r.headers)


def test_unacceptable_media_types_are_406_before_anything_else(client: TestClient) -> None:
    missing = uid()
    assert client.get(f"{E}/{missing}", headers={"Accept": "application/xml"}).status_code == 406
    r = client.get("/ngsi-ld/v1/temporal/entities?type=Vehicle&timerel=after&timeAt=2020-08-01T12:05:00Z",
                   headers={"Accept": "application/geo+json"})
    assert r.status_code == 406  # GeoJSON only for retrieve and query entities
    assert client.get("/ngsi-ld/v1/types", headers={"Accept": "text/html"}).status_code == 406


def test_unsupported_content_type_is_415(client: TestClient) -> None:
    eid = uid()
    r = client.post(E, content=b"<a/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415
    create(client, vehicle(eid))
    r = client.patch(f"{E}/{eid}/attrs/speed", content=b"{}", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415


def test_unknown_parameters_are_invalid_requests(client: TestClient) -> None:
    problem(client.get(f"{E}?type=Vehicle&invalidParameter=1"), 400, "InvalidRequest")
    problem(client.get("/ngsi-ld/v1/types?invalidParameter=1"), 400, "InvalidRequest")
    problem(client.post(f"{E}?invalidParameter=1", json=vehicle(uid())), 400, "InvalidRequest")


def test_a_delete_answers_204_without_content_length(client: TestClient) -> None:
    eid = uid()
    create(client, vehicle(eid))
    r = client.delete(f"{E}/{eid}")
    assert r.status_code == 204 and "content-length" not in r.headers and r.content == b""
    problem(client.delete(f"{E}/{eid}"), 404, "ResourceNotFound")


def test_geojson_embeds_the_context_unless_prefer_body_json(client: TestClient) -> None:
    eid = uid()
    create(client, vehicle(eid))
    r = client.get(f"{E}?id={eid}", headers={"Accept": "application/geo+json"})
    body = r.json()
    assert body["type"] == "FeatureCollection" and "@context" in body
    f = body["features"][0]
    assert f["type"] == "Feature" and f["geometry"] == {"type": "Point", "coordinates": [3.88, 43.61]}
    assert f["properties"]["type"] == "Vehicle" and f["properties"]["speed"]["value"] == 80
    r = client.get(f"{E}?id={eid}", headers={"Accept": "application/geo+json", "Prefer": "body=json"})
    assert "@context" not in r.json() and "link" in r.headers
    one = client.get(f"{E}/{eid}?format=keyValues", headers={"Accept": "application/geo+json"}).json()
    assert one["type"] == "Feature" and one["properties"]["speed"] == 80


# 5.5.2 errors, 5.6.1 create ------------------------------------------------------------------------------------
def test_create_checks_the_entity(client: TestClient) -> None:
    eid = uid()
    create(client, vehicle(eid))
    problem(client.post(E, json=vehicle(eid)), 409, "AlreadyExists")
    problem(client.post(E, json={"id": "not a uri", "type": "Vehicle"}), 400, "BadRequestData")
    problem(client.post(E, json={"id": uid()}), 400, "BadRequestData")
    problem(client.post(E, json={"id": uid(), "type": "Vehicle", "r": {"type": "Relationship", "object": "x y"}}),
            400, "BadRequestData")
    problem(client.post(E, json={"id": uid(), "type": "Vehicle",
                                 "location": {"type": "GeoProperty", "value": {"type": "Point"}}}),
            400, "BadRequestData")
    problem(client.post(E, content=b"{not json", headers={"Content-Type": "application/json"}), 400,
            "InvalidRequest")


def test_a_write_to_the_city_tenant_is_refused_and_an_unknown_tenant_is_404(client: TestClient) -> None:
    problem(client.post(E, json=vehicle(uid()), headers={"NGSILD-Tenant": "city"}), 422, "OperationNotSupported")
    problem(client.get(f"{E}?type=Vehicle", headers={"NGSILD-Tenant": "nowhere"}), 404, "NonexistentTenant")
    r = client.get(f"{E}?type=Vehicle", headers={"NGSILD-Tenant": "city"})
    assert r.status_code == 200 and r.json() == []  # the city's tenant (empty until its source is plugged in)


# 6.3.5, 5.5.7 @context --------------------------------------------------------------------------------------------
def test_ld_json_bodies_carry_their_context_and_json_bodies_a_link(client: TestClient) -> None:
    eid = uid()
    body = {"id": eid, "type": "T", "P1": {"type": "Property", "value": 1}, "@context": FIWARE}
    assert client.post(E, json=body, headers={"Content-Type": "application/ld+json"}).status_code == 201
    # stored expanded: the core context alone sees the full IRIs, the test context its terms
    plain = client.get(f"{E}/{eid}").json()
    assert plain["type"] == "http://example.org/T" and "http://example.org/P1" in plain
    linked = client.get(f"{E}/{eid}", headers={"Link": LINK})
    assert linked.json()["type"] == "T" and linked.json()["P1"]["value"] == 1
    assert FIWARE in linked.headers["link"]
    ld = client.get(f"{E}/{eid}", headers={"Link": LINK, "Accept": "application/ld+json"}).json()
    assert ld["@context"] == FIWARE and "link" not in ld
    # the same entity written as JSON with a Link header
    eid2 = uid()
    r = client.post(E, json={"id": eid2, "type": "T"}, headers={"Link": LINK})
    assert r.status_code == 201 and client.get(f"{E}/{eid2}").json()["type"] == "http://example.org/T"
    problem(client.post(E, json={**body, "id": uid()}, headers={"Content-Type": "application/json"}), 400,
            "BadRequestData")  # @context in a JSON body
    problem(client.post(E, json={"id": uid(), "type": "T"}, headers={"Content-Type": "application/ld+json"}), 400,
            "BadRequestData")  # ld+json without @context
    inline = {"id": uid(), "type": "Car", "@context": [{"Car": "http://example.org/Car"},
                                                       "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"]}
    assert client.post(E, json=inline, headers={"Content-Type": "application/ld+json"}).status_code == 201
    assert client.get(f"{E}/{inline['id']}").json()["type"] == "http://example.org/Car"


def test_an_unreachable_context_is_503_ld_context_not_available(client: TestClient) -> None:
    body = {"id": uid(), "type": "T", "@context": "https://example.com/nowhere/context.jsonld"}
    problem(client.post(E, json=body, headers={"Content-Type": "application/ld+json"}), 503,
            "LdContextNotAvailable")
    link = '<http://127.0.0.1:9/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
    problem(client.get(f"{E}?type=T", headers={"Link": link}), 503, "LdContextNotAvailable")


# 6.5 retrieve, representations ------------------------------------------------------------------------------------
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


# 6.6–6.7 attributes, 6.5.3.3–4 replace and merge -----------------------------------------------------------------
def test_append_update_patch_and_delete_attributes(client: TestClient) -> None:
    eid = uid()
    create(client, vehicle(eid))
    a = f"{E}/{eid}/attrs"
    assert client.post(a, json={"brand": {"type": "Property", "value": "Renault"}}).status_code == 204
    r = client.post(f"{a}?options=noOverwrite", json={"brand": {"type": "Property", "value": "X"},
                                                      "color": {"type": "Property", "value": "red"}})
    assert r.status_code == 207 and r.json()["updated"] == ["color"]
    assert r.json()["notUpdated"][0]["attributeName"] == "brand"
    r = client.patch(a, json={"speed": {"type": "Property", "value": 90}, "nope": {"type": "Property", "value": 1}})
    assert r.status_code == 207 and r.json()["notUpdated"][0]["attributeName"] == "nope"
    assert client.get(f"{E}/{eid}").json()["speed"] == {"type": "Property", "value": 90}  # replaced whole
    assert client.patch(f"{a}/speed", json={"value": 95}).status_code == 204
    assert client.patch(f"{a}/speed", json={"unitCode": "KMH"}).status_code == 204  # a partial update merges
    got = client.get(f"{E}/{eid}").json()
    assert got["speed"] == {"type": "Property", "value": 95, "unitCode": "KMH"} and got["brand"]["value"] == "Renault"
    problem(client.patch(f"{a}/nothing", json={"value": 1}), 404, "ResourceNotFound")
    assert client.delete(f"{a}/color").status_code == 204
    assert "color" not in client.get(f"{E}/{eid}").json()
    problem(client.delete(f"{a}/color"), 404, "ResourceNotFound")
    problem(client.post(f"{E}/{uid()}/attrs", json={"x": 1}), 404, "ResourceNotFound")


def test_multi_attributes_by_dataset_id(client: TestClient) -> None:
    eid = uid()
    create(client, {"id": eid, "type": "Vehicle", "speed": [
        {"type": "Property", "value": 10, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        {"type": "Property", "value": 12}]})
    speeds = client.get(f"{E}/{eid}").json()["speed"]
    assert sorted(s["value"] for s in speeds) == [10, 12]
    assert client.get(f"{E}?type=Vehicle&q=speed==10&id={eid}").json()[0]["id"] == eid
    r = client.delete(f"{E}/{eid}/attrs/speed?datasetId=urn:ngsi-ld:Dataset:gps")
    assert r.status_code == 204 and client.get(f"{E}/{eid}").json()["speed"]["value"] == 12


def test_replace_and_merge_entity(client: TestClient) -> None:
    eid = uid()
    create(client, vehicle(eid, brand={"type": "Property", "value": "Fiat"}))
    assert client.patch(f"{E}/{eid}", json={"speed": {"type": "Property", "value": 5},
                                             "brand": "urn:ngsi-ld:null"}).status_code == 204
    got = client.get(f"{E}/{eid}").json()
    assert got["speed"]["value"] == 5 and got["speed"]["unitCode"] == "KMH" and "brand" not in got
    assert client.put(f"{E}/{eid}", json={"type": "Vehicle", "color": "blue"}).status_code == 204
    assert set(client.get(f"{E}/{eid}").json()) == {"id", "type", "color"}


def test_batch_operations(client: TestClient) -> None:
    a, b = uid(), uid()
    r = client.post("/ngsi-ld/v1/entityOperations/create", json=[vehicle(a), vehicle(b), vehicle(a)])
    assert r.status_code == 207
    assert r.json()["success"] == [a, b] and r.json()["errors"][0]["error"]["type"].endswith("AlreadyExists")
    r = client.post("/ngsi-ld/v1/entityOperations/upsert", json=[vehicle(a, speed=1), vehicle(uid())])
    assert r.status_code == 204 and client.get(f"{E}/{a}").json()["speed"]["value"] == 1
    r = client.post("/ngsi-ld/v1/entityOperations/delete", json=[a, b])
    assert r.status_code == 204 and client.get(f"{E}/{a}").status_code == 404


# 6.4.3.1 query, 4.9 q, 4.10 geo, 4.19 scope, 6.3.10 pagination ----------------------------------------------------
def _ids(client: TestClient, query: str, **headers: str) -> list[str]:
    r = client.get(f"{E}?{query}", headers=headers)
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


def test_query_language(client: TestClient) -> None:
    kind = f"Q{uid()[-6:]}"
    ids = [f"urn:ngsi-ld:{kind}:{i}" for i in range(5)]
    for i, eid in enumerate(ids):
        create(client, {"id": eid, "type": kind, "n": {"type": "Property", "value": i * 10,
                                                       "observedAt": f"2026-03-0{i + 1}T00:00:00Z"},
                        "name": {"type": "Property", "value": f"car-{i}"},
                        "spec": {"type": "Property", "value": {"color": "red" if i % 2 else "blue"}},
                        "rel": {"type": "Relationship", "object": f"urn:ngsi-ld:Park:{i % 2}"}})
    q = lambda expr: _ids(client, f"type={kind}&q={expr}")  # noqa: E731
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
    assert _ids(client, f"type=A{k},B{k}") == [a, b]
    assert _ids(client, f"type=A{k};B{k}") == [b]
    assert _ids(client, f"type=B{k}|A{k}") == [a, b]
    assert _ids(client, f"type=A{k}&idPattern=.*:2$") == [b]
    assert _ids(client, f"id={a}") == [a]
    problem(client.get(E), 400, "BadRequestData")  # a query names at least something


def test_scope_queries(client: TestClient) -> None:
    k = f"S{uid()[-6:]}"
    ids = [f"urn:ngsi-ld:{k}:{i}" for i in range(3)]
    for eid, scope in zip(ids, ["/Montpellier/Ecusson", "/Montpellier/Port-Marianne/Odysseum", "/Lyon"],
                          strict=True):
        create(client, {"id": eid, "type": k, "scope": scope})
    assert _ids(client, f"type={k}&scopeQ=/Montpellier/%23") == ids[:2]
    assert _ids(client, f"type={k}&scopeQ=/Montpellier/%2B") == ids[:1]
    assert _ids(client, f"type={k}&scopeQ=/Lyon,/Montpellier/Ecusson") == [ids[0], ids[2]]
    assert client.get(f"{E}/{ids[0]}").json()["scope"] == ["/Montpellier/Ecusson"]


def test_geo_queries(client: TestClient) -> None:
    k = f"G{uid()[-6:]}"
    comedie, odysseum, lyon = (f"urn:ngsi-ld:{k}:{n}" for n in ("comedie", "odysseum", "lyon"))
    create(client, {"id": comedie, "type": k, "location": {"type": "Point", "coordinates": [3.8797, 43.6086]}})
    create(client, {"id": odysseum, "type": k, "location": {"type": "Point", "coordinates": [3.9197, 43.6039]}})
    create(client, {"id": lyon, "type": k, "location": {"type": "Point", "coordinates": [4.8357, 45.764]}})
    g = lambda rest: _ids(client, f"type={k}&{rest}")  # noqa: E731
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


def test_pagination_and_results_count(client: TestClient) -> None:
    k = f"P{uid()[-6:]}"
    ids = [f"urn:ngsi-ld:{k}:{i:02d}" for i in range(25)]
    client.post("/ngsi-ld/v1/entityOperations/create", json=[{"id": i, "type": k} for i in ids])
    r = client.get(f"{E}?type={k}&count=true")
    assert r.headers["NGSILD-Results-Count"] == "25" and [e["id"] for e in r.json()] == ids[:20]
    assert _ids(client, f"type={k}&limit=5&offset=22") == ids[22:]
    r = client.get(f"{E}?type={k}&limit=0&count=true")
    assert r.json() == [] and r.headers["NGSILD-Results-Count"] == "25"
    problem(client.get(f"{E}?type={k}&limit=0"), 400, "BadRequestData")
    problem(client.get(f"{E}?type={k}&limit=-1"), 400, "BadRequestData")
    problem(client.get(f"{E}?type={k}&limit=100000"), 403, "TooManyResults")


# 6.25–6.28 discovery --------------------------------------------------------------------------------------------
def test_types_and_attributes_discovery(client: TestClient) -> None:
    k = f"D{uid()[-6:]}"
    create(client, {"id": f"urn:ngsi-ld:{k}:1", "type": k, "temperature": 20.5})
    create(client, {"id": f"urn:ngsi-ld:{k}:2", "type": k, "temperature": 21, "owner": {"object": "urn:x:1"}})
    types = client.get("/ngsi-ld/v1/types").json()
    assert types["type"] == "EntityTypeList" and k in types["typeList"]
    detail = client.get(f"/ngsi-ld/v1/types/{k}").json()
    assert detail["entityCount"] == 2 and detail["typeName"] == k
    assert {a["attributeName"]: a["attributeTypes"] for a in detail["attributeDetails"]} == {
        "temperature": ["Property"], "owner": ["Relationship"]}
    details = client.get("/ngsi-ld/v1/types?details=true").json()
    assert any(t["typeName"] == k and t["attributeNames"] == ["owner", "temperature"] for t in details)
    attrs = client.get("/ngsi-ld/v1/attributes").json()
    assert attrs["type"] == "AttributeList" and "temperature" in attrs["attributeList"]
    t = client.get("/ngsi-ld/v1/attributes/temperature").json()
    assert t["attributeCount"] >= 2 and k in t["typeNames"]
    problem(client.get("/ngsi-ld/v1/types/NoSuchType"), 404, "ResourceNotFound")
    problem(client.get("/ngsi-ld/v1/attributes/noSuchAttr"), 404, "ResourceNotFound")


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


def test_query_by_post_and_batch_merge(client: TestClient) -> None:
    k = f"B{uid()[-6:]}"
    ids = [f"urn:ngsi-ld:{k}:{i}" for i in range(3)]
    for i, eid in enumerate(ids):
        create(client, {"id": eid, "type": k, "n": i, "location": {"type": "Point", "coordinates": [3.88 + i, 43.6]}})
    q = "/ngsi-ld/v1/entityOperations/query"
    r = client.post(f"{q}?count=true", json={"type": "Query", "entities": [{"type": k}], "q": "n>0"})
    assert r.status_code == 200 and [e["id"] for e in r.json()] == ids[1:] and r.headers["NGSILD-Results-Count"] == "2"
    r = client.post(q, json={"type": "Query", "entities": [{"type": k, "idPattern": ":2$"}, {"id": ids[0], "type": k}],
                             "attrs": ["n"]})
    assert [e["id"] for e in r.json()] == [ids[0], ids[2]] and set(r.json()[0]) == {"id", "type", "n"}
    geo = {"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [3.88, 43.6]}
    assert [e["id"] for e in client.post(q, json={"type": "Query", "entities": [{"type": k}], "geoQ": geo}).json()] \
        == ids[:1]
    problem(client.post(q, json={"type": "Query"}), 400, "BadRequestData")
    r = client.post("/ngsi-ld/v1/entityOperations/merge", json=[{"id": ids[0], "type": k, "m": 1}])
    assert r.status_code == 204 and client.get(f"{E}/{ids[0]}?options=keyValues").json()["m"] == 1


def test_a_body_without_content_length_is_a_bare_411(client: TestClient) -> None:
    body = iter([b'{"id": "urn:ngsi-ld:Building:411", "type": "Building"}'])
    r = client.post(E, content=body, headers={"Content-Type": "application/json", "NGSILD-Tenant": "nowhere"})
    assert r.status_code == 411 and r.content == b""
    assert client.get(f"{E}?type=Building").status_code == 200


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


def test_context_source_identity(client: TestClient) -> None:
    r = client.get("/ngsi-ld/v1/info/sourceIdentity", headers={"Accept": "application/json"})
    body = r.json()
    assert r.status_code == 200 and body["type"] == "ContextSourceIdentity" and body["id"].startswith("urn:")
    assert body["contextSourceUptime"].startswith("PT") and body["contextSourceTimeAt"].endswith("Z")
    other = client.get("/ngsi-ld/v1/info/sourceIdentity", headers={"NGSILD-Tenant": "urnalias-a"}).json()
    again = client.get("/ngsi-ld/v1/info/sourceIdentity", headers={"NGSILD-Tenant": "urnalias-a"}).json()
    assert other["contextSourceAlias"] != body["contextSourceAlias"] == body["contextSourceAlias"]
    assert again["contextSourceAlias"] == other["contextSourceAlias"]
