"""The temporal API on the sandbox (ETSI GS CIM 009 §5.7.3–5.7.4, §6.18–6.22): instances, timerel, lastN,
temporalValues, aggregation, and instance changes; on each store."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import problem, uid

T = "/ngsi-ld/v1/temporal/entities"


def temporal_vehicle(eid: str) -> dict:
    return {"id": eid, "type": "Vehicle",
            "speed": [{"type": "Property", "value": v, "observedAt": f"2020-08-01T12:0{i}:00Z"}
                      for i, v in enumerate([10, 20, 30, 40, 50, 60])],
            "fuel": [{"type": "Property", "value": 5, "observedAt": "2020-08-01T12:00:00Z"}]}


def test_create_and_retrieve_a_temporal_representation(client: TestClient) -> None:
    eid = uid()
    r = client.post(T, json=temporal_vehicle(eid))
    assert r.status_code == 201 and r.headers["location"].endswith(eid)
    got = client.get(f"{T}/{eid}").json()
    assert [i["value"] for i in got["speed"]] == [10, 20, 30, 40, 50, 60]
    assert got["speed"][0]["observedAt"] == "2020-08-01T12:00:00Z" and "instanceId" in got["speed"][0]
    # the entity's current values are the newest instances
    assert client.get(f"/ngsi-ld/v1/entities/{eid}").json()["speed"]["value"] == 60
    # a second write adds instances (204)
    more = {"id": eid, "type": "Vehicle", "speed": [{"type": "Property", "value": 70,
                                                     "observedAt": "2020-08-01T12:06:00Z"}]}
    assert client.post(T, json=more).status_code == 204
    assert len(client.get(f"{T}/{eid}?attrs=speed").json()["speed"]) == 7


def test_timerel_and_last_n(client: TestClient) -> None:
    eid = uid()
    client.post(T, json=temporal_vehicle(eid))
    vals = lambda q: [i["value"] for i in client.get(f"{T}/{eid}?attrs=speed&{q}").json()["speed"]]  # noqa: E731
    assert vals("timerel=after&timeAt=2020-08-01T12:03:00Z") == [40, 50, 60]
    assert vals("timerel=before&timeAt=2020-08-01T12:02:00Z") == [10, 20]
    assert vals("timerel=between&timeAt=2020-08-01T12:01:00Z&endTimeAt=2020-08-01T12:03:00Z") == [20, 30]
    assert vals("lastN=2") == [50, 60]
    assert vals("timerel=before&timeAt=2020-08-01T12:04:00Z&lastN=1") == [40]
    problem(client.get(f"{T}/{eid}?timerel=between&timeAt=2020-08-01T12:01:00Z"), 400, "BadRequestData")
    problem(client.get(f"{T}/{eid}?timerel=during&timeAt=2020-08-01T12:01:00Z"), 400, "BadRequestData")
    problem(client.get(f"{T}/{eid}?timerel=after"), 400, "BadRequestData")
    problem(client.get(f"{T}/{eid}?timerel=after&timeAt=yesterday"), 400, "BadRequestData")
    problem(client.get(f"{T}/{eid}?lastN=0"), 400, "BadRequestData")
    problem(client.get(f"{T}/{uid()}"), 404, "ResourceNotFound")


def test_temporal_values_representation(client: TestClient) -> None:
    eid = uid()
    client.post(T, json=temporal_vehicle(eid))
    got = client.get(f"{T}/{eid}?options=temporalValues&attrs=speed,fuel").json()
    assert got["speed"]["type"] == "Property"
    assert got["speed"]["values"][:2] == [[10.0, "2020-08-01T12:00:00Z"], [20.0, "2020-08-01T12:01:00Z"]]
    assert got["fuel"]["values"] == [[5.0, "2020-08-01T12:00:00Z"]]


def test_aggregated_values(client: TestClient) -> None:
    eid = uid()
    client.post(T, json=temporal_vehicle(eid))
    base = f"{T}/{eid}?attrs=speed&options=aggregatedValues"
    got = client.get(f"{base}&aggrMethods=sum,avg,min,max,totalCount&aggrPeriodDuration=PT3M"
                     "&timerel=after&timeAt=2020-08-01T12:00:00Z").json()["speed"]
    assert got["sum"] == [[60.0, "2020-08-01T12:00:00Z", "2020-08-01T12:03:00Z"],
                          [150.0, "2020-08-01T12:03:00Z", "2020-08-01T12:06:00Z"]]
    assert [a[0] for a in got["avg"]] == [20.0, 50.0] and [a[0] for a in got["totalCount"]] == [3, 3]
    assert [a[0] for a in got["min"]] == [10.0, 40.0] and [a[0] for a in got["max"]] == [30.0, 60.0]
    whole = client.get(f"{base}&aggrMethods=stddev,distinctCount").json()["speed"]
    assert round(whole["stddev"][0][0], 4) == 17.0783 and whole["distinctCount"][0][0] == 6
    problem(client.get(f"{base}&aggrMethods=median"), 400, "BadRequestData")
    problem(client.get(f"{base}&aggrMethods=sum&aggrPeriodDuration=1h"), 400, "BadRequestData")
    problem(client.get(f"{T}/{eid}?options=aggregatedValues"), 400, "BadRequestData")


def test_query_temporal_entities(client: TestClient) -> None:
    kind = f"TV{uid()[-6:]}"
    ids = [f"urn:ngsi-ld:{kind}:{i}" for i in range(3)]
    for eid in ids:
        client.post(T, json={**temporal_vehicle(eid), "type": kind})
    r = client.get(f"{T}?type={kind}&timerel=after&timeAt=2020-08-01T12:04:00Z&count=true&limit=2")
    assert r.status_code == 200 and r.headers["NGSILD-Results-Count"] == "3"
    body = r.json()
    assert [e["id"] for e in body] == ids[:2] and [i["value"] for i in body[0]["speed"]] == [50, 60]
    assert "fuel" not in body[0]  # no instance in the range
    q = client.get(f"{T}?type={kind}&q=speed>55&timerel=after&timeAt=2020-08-01T00:00:00Z").json()
    assert [e["id"] for e in q] == ids
    problem(client.get(f"{T}?timerel=after&timeAt=2020-08-01T12:04:00Z"), 400, "BadRequestData")


def test_instances_are_changed_and_deleted(client: TestClient) -> None:
    eid = uid()
    client.post(T, json=temporal_vehicle(eid))
    first = client.get(f"{T}/{eid}?attrs=speed").json()["speed"][0]
    iid = first["instanceId"]
    r = client.patch(f"{T}/{eid}/attrs/speed/{iid}",
                     json={"speed": [{"type": "Property", "value": 11, "observedAt": "2020-08-01T12:00:00Z"}]})
    assert r.status_code == 204, r.text
    assert client.get(f"{T}/{eid}?attrs=speed").json()["speed"][0]["value"] == 11
    assert client.delete(f"{T}/{eid}/attrs/speed/{iid}").status_code == 204
    assert len(client.get(f"{T}/{eid}?attrs=speed").json()["speed"]) == 5
    problem(client.delete(f"{T}/{eid}/attrs/speed/{iid}"), 404, "ResourceNotFound")
    assert client.post(f"{T}/{eid}/attrs", json={"fuel": [{"type": "Property", "value": 4,
                                                           "observedAt": "2020-08-01T13:00:00Z"}]}).status_code == 204
    assert [i["value"] for i in client.get(f"{T}/{eid}?attrs=fuel").json()["fuel"]] == [5, 4]
    assert client.delete(f"{T}/{eid}/attrs/fuel").status_code == 204
    assert "fuel" not in client.get(f"{T}/{eid}").json()
    assert client.delete(f"{T}/{eid}").status_code == 204
    problem(client.get(f"{T}/{eid}"), 404, "ResourceNotFound")


def test_ordinary_writes_leave_instances(client: TestClient) -> None:
    eid = uid()
    client.post("/ngsi-ld/v1/entities", json={"id": eid, "type": "Vehicle", "speed": {
        "type": "Property", "value": 1, "observedAt": "2021-01-01T00:00:00Z"}})
    client.patch(f"/ngsi-ld/v1/entities/{eid}/attrs", json={"speed": {"type": "Property", "value": 2,
                                                                      "observedAt": "2021-01-01T00:01:00Z"}})
    got = client.get(f"{T}/{eid}?options=temporalValues").json()
    assert got["speed"]["values"] == [[1.0, "2021-01-01T00:00:00Z"], [2.0, "2021-01-01T00:01:00Z"]]


def test_a_deleted_attribute_leaves_a_tombstone_for_timeproperty_deleted_at(client: TestClient) -> None:
    eid = uid()
    client.post(T, json={**temporal_vehicle(eid), "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:P:1",
                                                              "observedAt": "2020-08-01T12:00:00Z"}]})
    assert client.delete(f"/ngsi-ld/v1/entities/{eid}/attrs/fuel").status_code == 204
    assert client.delete(f"/ngsi-ld/v1/entities/{eid}/attrs/owner").status_code == 204
    got = client.get(f"{T}/{eid}?timeproperty=deletedAt").json()
    assert set(got) == {"id", "type", "fuel", "owner"}  # only attributes deleted
    assert got["fuel"][0]["value"] == "urn:ngsi-ld:null" and got["fuel"][0]["deletedAt"].endswith("Z")
    assert got["owner"][0] == {"type": "Relationship", "object": "urn:ngsi-ld:null",
                               "deletedAt": got["owner"][0]["deletedAt"], "instanceId": got["owner"][0]["instanceId"]}
    # the observations stay, without the tombstones
    assert [i["value"] for i in client.get(f"{T}/{eid}?attrs=fuel").json()["fuel"]] == [5]


def test_timeproperty_created_at(client: TestClient) -> None:
    eid = uid()
    client.post(T, json=temporal_vehicle(eid))
    got = client.get(f"{T}/{eid}?timeproperty=createdAt&timerel=after&timeAt=2000-01-01T00:00:00Z&attrs=speed")
    assert len(got.json()["speed"]) == 6
    none = client.get(f"{T}/{eid}?timeproperty=createdAt&timerel=before&timeAt=2000-01-01T00:00:00Z").json()
    assert set(none) == {"id", "type"}
    problem(client.get(f"{T}/{eid}?timeproperty=when"), 400, "BadRequestData")


def test_pick_and_omit_on_temporal_representations(client: TestClient) -> None:
    eid = uid()
    client.post(T, json=temporal_vehicle(eid))
    assert set(client.get(f"{T}/{eid}?pick=id,speed").json()) == {"id", "speed"}
    assert set(client.get(f"{T}/{eid}?omit=type,speed").json()) == {"id", "fuel"}
    assert client.get(f"{T}/{eid}?pick=id").json() == {"id": eid}
    body = client.get(f"{T}?type=Vehicle&id={eid}&omit=fuel").json()
    assert set(body[0]) == {"id", "type", "speed"}


def test_temporal_pagination_with_content_range(tmp_path) -> None:
    from fastapi.testclient import TestClient as Client

    from clapas.api.app import create_app
    from clapas.store.base import open_store
    from tests.helpers import as_local

    from .conftest import settings

    url = f"duckdb:///{tmp_path / 'p.duckdb'}"
    store = open_store(url)
    eid = uid()
    with Client(as_local(create_app(store, settings(url, max_instances=4)))) as c:
        c.post(T, json=temporal_vehicle(eid))  # 6 speeds, 1 fuel
        r = c.get(f"{T}/{eid}?timerel=after&timeAt=2020-08-01T00:00:00Z")
        assert r.status_code == 206 and [i["value"] for i in r.json()["speed"]] == [10, 20, 30, 40]
        assert r.headers["Content-Range"] == "date-time 2020-08-01T00:00:00Z-2020-08-01T12:03:00Z/*"
        r = c.get(f"{T}/{eid}?timerel=before&timeAt=2020-08-02T00:00:00Z&lastN=5")
        assert r.status_code == 206 and [i["value"] for i in r.json()["speed"]] == [30, 40, 50, 60]
        assert r.headers["Content-Range"] == "date-time 2020-08-02T00:00:00Z-2020-08-01T12:00:00Z/5"  # fuel's
        r = c.get(f"{T}?type=Vehicle&timerel=after&timeAt=2020-08-01T00:00:00Z&lastN=9")
        assert r.status_code == 206 and r.headers["Content-Range"].endswith("-2020-08-01T12:00:00Z/9")
        assert c.get(f"{T}/{eid}?lastN=3").status_code == 200  # nothing left out
        assert "content-range" not in c.get(f"{T}/{eid}?lastN=3").headers
    store.close()
