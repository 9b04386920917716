"""The NGSI-LD sandbox tables (migration 9): entities whole, temporal instances by time; both stores."""

from __future__ import annotations

from clapas.store.base import Store
from tests.store import test_store as suite

make_store = suite.make_store
store = suite.store


def test_entities_are_written_read_and_deleted_per_tenant(store: Store) -> None:
    store.ngsi_put("sandbox", "urn:x:2", '{"id": "urn:x:2"}')
    store.ngsi_put("sandbox", "urn:x:1", '{"id": "urn:x:1"}')
    store.ngsi_put("other", "urn:x:1", '{"id": "urn:x:1", "other": true}')
    assert [i for i, _ in store.ngsi_entities("sandbox")] == ["urn:x:1", "urn:x:2"]
    assert store.ngsi_entities("sandbox", ["urn:x:2"]) == [("urn:x:2", '{"id": "urn:x:2"}')]
    assert store.ngsi_entities("sandbox", []) == []
    store.ngsi_put("sandbox", "urn:x:1", '{"id": "urn:x:1", "v": 2}')  # rewritten whole
    assert store.ngsi_entity("sandbox", "urn:x:1") == '{"id": "urn:x:1", "v": 2}'
    assert store.ngsi_entity("other", "urn:x:1") == '{"id": "urn:x:1", "other": true}'
    store.ngsi_put("sandbox", "urn:x:1", None, drop_instances=True)
    assert store.ngsi_entity("sandbox", "urn:x:1") is None and store.ngsi_entity("other", "urn:x:1") is not None


def test_instances_by_time_attribute_and_id(store: Store) -> None:
    insts = [("a", f"i{t}", t, f'{{"value": {t}}}') for t in (30, 10, 20)] + [("b", "j1", 15, '{"value": 0}')]
    store.ngsi_put("sandbox", "urn:x:1", "{}", insts)
    rows = store.ngsi_instances("sandbox", ["urn:x:1"])
    assert [(r["attr"], r["time_us"]) for r in rows] == [("a", 10), ("a", 20), ("a", 30), ("b", 15)]
    assert [r["instance_id"] for r in store.ngsi_instances("sandbox", ["urn:x:1"], ["a"], 15, 30)] == ["i20"]
    assert store.ngsi_instances("sandbox", ["urn:x:1"], []) == [] and store.ngsi_instances("sandbox", []) == []
    assert store.ngsi_replace_instance("sandbox", "urn:x:1", "a", "i20", 25, '{"value": 25}')
    assert not store.ngsi_replace_instance("sandbox", "urn:x:1", "a", "nope", 25, "{}")
    assert [r["time_us"] for r in store.ngsi_instances("sandbox", ["urn:x:1"], ["a"])] == [10, 25, 30]
    assert store.ngsi_delete_instance("sandbox", "urn:x:1", "a", "i10")
    assert not store.ngsi_delete_instance("sandbox", "urn:x:1", "a", "i10")
    store.ngsi_put("sandbox", "urn:x:1", "{}", drop_attrs=["b"])
    assert {r["attr"] for r in store.ngsi_instances("sandbox", ["urn:x:1"])} == {"a"}


def test_bulk_writes(store: Store) -> None:
    store.ngsi_put_many("sandbox", [(f"urn:x:{i}", "{}", [("a", f"i{i}", i, "{}")]) for i in range(3)])
    assert len(store.ngsi_entities("sandbox")) == 3
    assert len(store.ngsi_instances("sandbox", ["urn:x:0", "urn:x:2"])) == 2
