"""Entity forms (§4.5): normalized and concise bodies expanded to the seam's form, and back to each
representation."""

from __future__ import annotations

import pytest

from clapas.api.ngsi_ld.context import CORE, DEFAULT_VOCAB, NGSI_LD, ContextResolver
from clapas.api.ngsi_ld.entity import compact_entity, expand_entity, utc_text
from clapas.api.ngsi_ld.errors import NgsiError

V = DEFAULT_VOCAB


def test_concise_and_normalized_bodies_expand_alike() -> None:
    normalized = {"id": "urn:x:1", "type": "Car", "speed": {"type": "Property", "value": 3, "unitCode": "KMH"},
                  "owner": {"type": "Relationship", "object": "urn:p:1"},
                  "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
                  "name": {"type": "LanguageProperty", "languageMap": {"fr": "voiture"}},
                  "kind": {"type": "VocabProperty", "vocab": "Electric"},
                  "raw": {"type": "JsonProperty", "json": {"any": ["json"]}}}
    concise = {"id": "urn:x:1", "type": "Car", "speed": {"value": 3, "unitCode": "KMH"},
               "owner": {"object": "urn:p:1"}, "location": {"type": "Point", "coordinates": [1, 2]},
               "name": {"languageMap": {"fr": "voiture"}}, "kind": {"vocab": "Electric"},
               "raw": {"json": {"any": ["json"]}}}
    a, b = expand_entity(normalized, CORE), expand_entity(concise, CORE)
    assert a == b
    assert a["type"] == V + "Car" and a[NGSI_LD + "location"]["type"] == "GeoProperty"
    assert a[V + "kind"]["vocab"] == V + "Electric"  # @vocab-typed value expanded
    assert compact_entity(a, CORE) == normalized
    assert compact_entity(a, CORE, "concise") == {**concise, "speed": {"value": 3, "unitCode": "KMH"}}
    kv = compact_entity(a, CORE, "keyValues")
    assert kv["speed"] == 3 and kv["owner"] == "urn:p:1" and kv["kind"] == "Electric"
    assert kv["name"] == {"languageMap": {"fr": "voiture"}}
    assert compact_entity(a, CORE, "keyValues", lang="fr")["name"] == "voiture"


def test_sub_attributes_are_expanded_and_compacted() -> None:
    ctx = ContextResolver(hosts=()).resolve({"ex": "http://ex.org/", "accuracy": "ex:accuracy"})
    e = expand_entity({"id": "urn:x:1", "type": "T", "p": {"type": "Property", "value": 1,
                                                         "accuracy": {"type": "Property", "value": 0.1},
                                                         "observedAt": "2020-01-01T01:00:00+01:00"}}, ctx)
    p = e[V + "p"]
    assert p["http://ex.org/accuracy"] == {"type": "Property", "value": 0.1}
    assert p["observedAt"] == "2020-01-01T00:00:00Z"
    assert compact_entity(e, ctx)["p"]["accuracy"]["value"] == 0.1
    assert compact_entity(e, CORE)["p"]["http://ex.org/accuracy"]["value"] == 0.1


@pytest.mark.parametrize("body", [
    {"type": "T"}, {"id": "urn:x:1"}, {"id": "nope", "type": "T"}, {"id": "urn:x:1", "type": ["T", 3]},
    {"id": "urn:x:1", "type": "T", "p": None}, {"id": "urn:x:1", "type": "T", "p": {"type": "Property"}},
    {"id": "urn:x:1", "type": "T", "p": {"type": "Magic", "value": 1}},
    {"id": "urn:x:1", "type": "T", "r": {"type": "Relationship", "object": 3}},
    {"id": "urn:x:1", "type": "T", "g": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": "x"}}},
    {"id": "urn:x:1", "type": "T", "location": {"type": "Property", "value": 3}},
    {"id": "urn:x:1", "type": "T", "p": {"value": 1, "observedAt": "yesterday"}},
    {"id": "urn:x:1", "type": "T", "p": {"value": 1, "datasetId": "not a uri"}},
    {"id": "urn:x:1", "type": "T", "bad name": 1}, {"id": "urn:x:1", "type": "T", "scope": "no-slash"},
    {"id": "urn:x:1", "type": "T", "p": [{"value": 1}, {"value": 2}]},  # two default instances
])
def test_invalid_entities(body: dict) -> None:
    with pytest.raises(NgsiError) as e:
        expand_entity(body, CORE)
    assert e.value.kind == "BadRequestData"


def test_times_keep_their_precision() -> None:
    from datetime import UTC, datetime

    assert utc_text(datetime(2020, 1, 1, tzinfo=UTC)) == "2020-01-01T00:00:00Z"
    assert utc_text(datetime(2020, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)) == "2020-01-01T00:00:00.250Z"
    assert utc_text(datetime(2020, 1, 1, 0, 0, 0, 250001, tzinfo=UTC)) == "2020-01-01T00:00:00.250001Z"
