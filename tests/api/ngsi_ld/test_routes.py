"""The NGSI-LD read routes clause by clause (ETSI GS CIM 009 §5.5, §5.7, §6.3–6.5, §6.23–6.28), on the sandbox
tenant of each store: negotiation, errors, @context, GeoJSON, pagination, discovery, source identity."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import FIWARE, LINK, E, create, ids_of, problem, uid, vehicle


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


def test_unknown_parameters_are_invalid_requests(client: TestClient) -> None:
    problem(client.get(f"{E}?type=Vehicle&invalidParameter=1"), 400, "InvalidRequest")
    problem(client.get("/ngsi-ld/v1/types?invalidParameter=1"), 400, "InvalidRequest")
    problem(client.post(f"{E}?invalidParameter=1", json=vehicle(uid())), 400, "InvalidRequest")


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


def test_pagination_and_results_count(client: TestClient) -> None:
    k = f"P{uid()[-6:]}"
    ids = [f"urn:ngsi-ld:{k}:{i:02d}" for i in range(25)]
    client.post("/ngsi-ld/v1/entityOperations/create", json=[{"id": i, "type": k} for i in ids])
    r = client.get(f"{E}?type={k}&count=true")
    assert r.headers["NGSILD-Results-Count"] == "25" and [e["id"] for e in r.json()] == ids[:20]
    assert ids_of(client, f"type={k}&limit=5&offset=22") == ids[22:]
    r = client.get(f"{E}?type={k}&limit=0&count=true")
    assert r.json() == [] and r.headers["NGSILD-Results-Count"] == "25"
    problem(client.get(f"{E}?type={k}&limit=0"), 400, "BadRequestData")
    problem(client.get(f"{E}?type={k}&limit=-1"), 400, "BadRequestData")
    problem(client.get(f"{E}?type={k}&limit=100000"), 403, "TooManyResults")


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


def test_context_source_identity(client: TestClient) -> None:
    r = client.get("/ngsi-ld/v1/info/sourceIdentity", headers={"Accept": "application/json"})
    body = r.json()
    assert r.status_code == 200 and body["type"] == "ContextSourceIdentity" and body["id"].startswith("urn:")
    assert body["contextSourceUptime"].startswith("PT") and body["contextSourceTimeAt"].endswith("Z")
    other = client.get("/ngsi-ld/v1/info/sourceIdentity", headers={"NGSILD-Tenant": "urnalias-a"}).json()
    again = client.get("/ngsi-ld/v1/info/sourceIdentity", headers={"NGSILD-Tenant": "urnalias-a"}).json()
    assert other["contextSourceAlias"] != body["contextSourceAlias"] == body["contextSourceAlias"]
    assert again["contextSourceAlias"] == other["contextSourceAlias"]
