"""The query language (§4.9), scope queries (§4.19) and type selections (§4.17), on expanded entities."""

from __future__ import annotations

import pytest

from clapas.api.ngsi_ld.context import CORE, DEFAULT_VOCAB
from clapas.api.ngsi_ld.errors import NgsiError
from clapas.api.ngsi_ld.query import parse_q, parse_scope_q, parse_types

V = DEFAULT_VOCAB


def e(**attrs: object) -> dict:
    out: dict = {"id": "urn:x:1", "type": V + "Car"}
    for k, v in attrs.items():
        out[V + k] = v if isinstance(v, dict | list) else {"type": "Property", "value": v}
    return out


CAR = e(speed=80, name="Zoé", tags={"type": "Property", "value": ["a", "b"]},
        spec={"type": "Property", "value": {"engine": {"kw": 65}}, "observedAt": "2026-03-01T10:00:00Z",
              V + "accuracy": {"type": "Property", "value": 0.9}},
        when="2026-03-01T10:00:00Z", ok=True, owner={"type": "Relationship", "object": "urn:ngsi-ld:P:1"})


@pytest.mark.parametrize(("q", "hit"), [
    ("speed==80", True), ("speed==80.0", True), ("speed!=80", False), ("speed>79.5", True), ("speed<=79", False),
    ("speed==70..90", True), ("speed==81..90", False), ("speed==1,2,80", True), ("speed!=1,2", True),
    ('name=="Zoé"', True), ("name~=^Z", True), ("name!~=^Z", False), ("name==Zoé", True),
    ("tags==b", True), ('tags=="c"', False),
    ("spec[engine.kw]>60", True), ("spec[engine][kw]==65", True), ("spec.accuracy>=0.9", True),
    ("spec.observedAt>2026-03-01T09:00:00Z", True), ("spec.observedAt<2026-03-01T09:00:00Z", False),
    ("when>=2026-03-01T10:00:00Z", True), ("when<2026-02-01", False), ("ok==true", True), ("ok==false", False),
    ("owner==urn:ngsi-ld:P:1", True), ("owner!=urn:ngsi-ld:P:1", False),
    ("speed", True), ("missing", False), ("!missing", True), ("!speed", False),
    ("speed==80;name~=x", False), ("speed==80|name~=x", True), ("(speed==1|speed==80);ok==true", True),
    ("speed==1|speed==2;ok==true", False), ("speed==80|speed==2;ok==false", True),  # ; binds tighter than |
    ("missing!=3", False), ("missing>3", False),
])
def test_q(q: str, hit: bool) -> None:
    assert parse_q(q, CORE)(CAR) is hit


@pytest.mark.parametrize("q", ["", "speed==", "speed>>1", "(speed==1", "speed==1)", "speed==(1", 'name=="x',
                               "speed~=[", "speed>1,2", "speed<1..3", "==1", "spec[==1"])
def test_q_syntax_errors(q: str) -> None:
    with pytest.raises(NgsiError) as err:
        parse_q(q, CORE)
    assert err.value.kind == "InvalidRequest" and err.value.status == 400


def test_multi_attribute_matches_any_instance() -> None:
    ent = e(speed=[{"type": "Property", "value": 1}, {"type": "Property", "value": 5, "datasetId": "urn:d:1"}])
    assert parse_q("speed==5", CORE)(ent) and parse_q("speed<2", CORE)(ent) and not parse_q("speed>9", CORE)(ent)


@pytest.mark.parametrize(("scope_q", "hit"), [
    ("/Occitanie/Montpellier", True), ("/Occitanie", False), ("/Occitanie/#", True), ("/Occitanie/+", True),
    ("/+/Montpellier", True), ("/Lyon,/Occitanie/Montpellier", True), ("/Lyon;/Occitanie/Montpellier", False),
    ("/Occitanie/Montpellier;/Tags/Open", True), ("(/Lyon|/Tags/Open);/Occitanie/#", True), ("/#", True),
])
def test_scope_q(scope_q: str, hit: bool) -> None:
    ent = {"id": "urn:x:1", "type": "T", "scope": ["/Occitanie/Montpellier", "/Tags/Open"]}
    assert parse_scope_q(scope_q)(ent) is hit


def test_scope_q_syntax() -> None:
    with pytest.raises(NgsiError):
        parse_scope_q("Montpellier")
    assert not parse_scope_q("/A")({"id": "x", "type": "T"})


def test_types() -> None:
    both = {"id": "urn:x:1", "type": [V + "A", V + "B"]}
    a = {"id": "urn:x:2", "type": V + "A"}
    pred, named = parse_types("A;B", CORE)
    assert pred(both) and not pred(a) and named == {V + "A", V + "B"}
    pred, _ = parse_types("(A;B)|C", CORE)
    assert pred(both) and not pred(a)
    pred, _ = parse_types("B,C", CORE)
    assert pred(both) and not pred(a)
    pred, named = parse_types("http://example.org/T", CORE)
    assert named == {"http://example.org/T"}
    with pytest.raises(NgsiError):
        parse_types("A;", CORE)
