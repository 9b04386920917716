"""GET /api/v1/devices for callers who may not read every class, over both stores: the store pages only the device
groups (registry class, kind, premises use) the caller may read, and the others are counted per zone, kind and class
without being read. The pages must be those of the whole registry filtered row by row (the old path)."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient

from clapas.api.app import create_app
from clapas.charter import LOCAL, OPEN_READ, RESTRICTED_READ, Caller
from clapas.charter.classes import Classifier
from clapas.config import Settings
from clapas.model import Device
from clapas.store.base import Store
from tests.store.test_store import make_store  # noqa: F401 - the fixture that opens both stores

PARTNER = Caller(actor="partner", via="key", role="partner", scopes=frozenset({OPEN_READ, RESTRICTED_READ}))
KINDS = [("water_meter", "habitation", ""), ("water_meter", "commerce", ""), ("water_meter", "", ""),
         ("weather_station", "", ""), ("weather_station", "", "personal"), ("district_meter", "", ""),
         ("air_quality", "", "restricted"), ("", "", "")]


@pytest.fixture
def store(make_store) -> Store:  # noqa: F811 - the imported fixture
    s: Store = make_store()
    s.upsert_devices([Device(eui=f"{i:016x}", kind=KINDS[i % len(KINDS)][0], premises_use=KINDS[i % len(KINDS)][1],
                             data_class=KINDS[i % len(KINDS)][2], zone=f"z{i % 3}") for i in range(120)])
    return s


def listing(store: Store, caller: Caller | None, query: str) -> dict:
    app = create_app(store, Settings())
    if caller is not None:
        app.state.identify = lambda request: caller
    r = TestClient(app).get(f"/api/v1/devices?{query}")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("caller", [None, PARTNER], ids=["anonymous", "partner"])
def test_pages_are_the_readable_rows_of_the_whole_registry(store: Store, caller: Caller | None) -> None:
    who = caller or Caller(scopes=frozenset({OPEN_READ}))
    classes = Classifier()
    for query, zone in (("", None), ("zone=z1", "z1"), ("kind=weather_station", None)):
        everyone = listing(store, LOCAL, f"limit=10000&{query}")["devices"]
        mine = [d["eui"] for d in everyone if who.may_read(classes.device(d))]
        withheld = Counter((d["zone"], d["kind"], classes.device(d)) for d in everyone
                           if not who.may_read(classes.device(d)))
        assert mine and withheld, query
        for limit, offset in ((7, 0), (7, 7), (1000, 0), (5, len(mine) - 2), (5, len(mine) + 3)):
            body = listing(store, caller, f"limit={limit}&offset={offset}&{query}")
            assert [d["eui"] for d in body["devices"]] == mine[offset:offset + limit], (query, limit, offset)
            assert {(w["zone"], w["kind"], w["class"]): w["devices"] for w in body["withheld"]} == dict(withheld)
            assert all(d["zone"] == zone for d in body["devices"]) or zone is None
