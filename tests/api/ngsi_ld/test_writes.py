"""The sandbox's writes (ETSI GS CIM 009 §5.6, §6.4–6.7, §6.14–6.17) on each store: create, append, update,
partial update, replace, merge, delete, batch operations, and the checks on their bodies."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import FIWARE, E, create, problem, uid, vehicle


def test_unsupported_content_type_is_415(client: TestClient) -> None:
    eid = uid()
    r = client.post(E, content=b"<a/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415
    create(client, vehicle(eid))
    r = client.patch(f"{E}/{eid}/attrs/speed", content=b"{}", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415


def test_a_delete_answers_204_without_content_length(client: TestClient) -> None:
    eid = uid()
    create(client, vehicle(eid))
    r = client.delete(f"{E}/{eid}")
    assert r.status_code == 204 and "content-length" not in r.headers and r.content == b""
    problem(client.delete(f"{E}/{eid}"), 404, "ResourceNotFound")


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
    assert client.get(f"{E}/{eid}?datasetId=urn:ngsi-ld:Dataset:gps").json()["speed"]["value"] == 10
    assert client.get(f"{E}/{eid}?datasetId=@none").json()["speed"]["value"] == 12
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


def test_a_body_without_content_length_is_a_bare_411(client: TestClient) -> None:
    body = iter([b'{"id": "urn:ngsi-ld:Building:411", "type": "Building"}'])
    r = client.post(E, content=body, headers={"Content-Type": "application/json", "NGSILD-Tenant": "nowhere"})
    assert r.status_code == 411 and r.content == b""
    assert client.get(f"{E}?type=Building").status_code == 200


def test_a_batch_item_with_an_unavailable_context_fails_alone(client: TestClient) -> None:
    good, bad = uid(), uid()
    r = client.post("/ngsi-ld/v1/entityOperations/create", headers={"Content-Type": "application/ld+json"},
                    json=[{"id": good, "type": "T", "@context": FIWARE},
                          {"id": bad, "type": "T", "@context": "https://example.com/gone.jsonld"}])
    assert r.status_code == 207 and r.json()["success"] == [good]
    err = r.json()["errors"][0]
    assert err["entityId"] == bad and err["error"]["type"].endswith("LdContextNotAvailable") and err["error"]["title"]
    assert client.get(f"{E}/{good}").json()["type"] == "http://example.org/T"
