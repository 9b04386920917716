"""The dashboard as an anonymous visitor sees it, in headless Chromium, with the charter as it ships: open devices
listed and the others counted, alerts about a home reduced, the journal and the museum rooms saying they are not
open data, the households' consumption as district aggregates (on the water page) — no sentinel personal value
anywhere, and no panel broken."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from clapas.api.app import create_app
from clapas.config import Settings
from clapas.model import Device, Zone
from clapas.pipeline.ingest import Pipeline
from clapas.simulator.encoders import kamstrup_frame
from clapas.store.duckdb import DuckDBStore
from tests.api.charter_city import HOME, METER_TAGS, SENTINELS, fill_charter_city
from tests.api.city import BROKEN, NOW, ROOM, STATION, submit, up_json
from tests.api.conftest import ZONES
from tests.web.conftest import serving
from tests.web.test_dashboard import chromium, needs_chromium

# dwellings beside the sentinel one: enough in two districts for their consumption to be published, too few in
# Comédie (and one of the others then withheld too, so that the city's total does not give Comédie's away)
DWELLINGS = {"ecusson": 11, "antigone": 10, "comedie": 4}


def dwellings() -> list[Device]:
    return [Device(eui=f"{i:02x}{zone[:3].encode().hex()}0000000000"[:16], kind="water_meter", decoder="kamstrup",
                   zone=zone, data_class="personal", premises_use="habitation", subscriber=f"S-{zone}-{i}")
            for zone, n in DWELLINGS.items() for i in range(n)]


@pytest.fixture(scope="module")
def anonymous_city(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = DuckDBStore(f"duckdb:///{tmp_path_factory.mktemp('web-charter') / 'city.duckdb'}")
    store.upsert_zones([*ZONES, Zone(id="comedie", name="Comédie", kind="district"),
                        Zone(id="antigone", name="Antigone", kind="district")])
    pipeline = Pipeline(store)
    fill_charter_city(samples, store, pipeline)
    homes = dwellings()
    store.upsert_devices(homes)
    for n, d in enumerate(homes):  # every 3 h over five days: whole local days of consumption
        for step in range(40):
            _, payload = kamstrup_frame({"water.volume": 100.0 + n + step * 0.02})
            submit(pipeline, up_json(samples, d.eui, payload, NOW - timedelta(hours=3 * (40 - step)), f_cnt=step,
                                     tags={**METER_TAGS, "zone": d.zone}))
    assert pipeline.drain(timeout=20)
    app = create_app(store, Settings(), pipeline)  # the charter on: anonymous is "public"
    with serving(app) as url:
        yield url
    app.state.access.close()  # the server ran no lifespan: the audit writer is closed here, before the store
    pipeline.close()
    store.close()


@needs_chromium
def test_anonymous_dashboard_shows_open_data_and_district_aggregates(anonymous_city: str) -> None:
    dom = chromium("--dump-dom", anonymous_city + "?lang=en#/")
    assert re.search(r'id="status"[^>]*>Updated ', dom), dom[:3000]  # every section answered or said why not
    assert "Anonymous: open data" in dom
    rows = set(re.findall(r'<tr[^>]*data-eui="([0-9a-f]{16})"', dom))
    assert STATION in rows and not rows & {ROOM, BROKEN, HOME}, rows
    withheld = re.search(r'id="dev-withheld"[^>]*>([^<]*)<', dom).group(1)
    assert "personal" in withheld and "Water meter in ecusson: 12" in withheld and "district aggregates" in withheld
    # the home's alerts: rule, zone and time; no device, no evidence, no action offered
    assert "a device (personal data)" in dom and "not shown: personal data" in dom
    assert "Acknowledge" not in dom and "Resolve</button>" not in dom
    assert "The journal is not open data" in dom
    assert 'class="err"' not in dom  # no section broken
    museum_page = chromium("--dump-dom", anonymous_city + "?lang=en#/museum")
    museum = re.search(r'<article id="env-museum".*?</article>', museum_page, re.S).group(0)
    assert "Not open data" in museum and 'class="err"' not in museum
    water_page = chromium("--dump-dom", anonymous_city + "?lang=en#/water")
    water = re.search(r'<article id="env-water".*?</article>', water_page, re.S).group(0)
    published = re.findall(r'data-zone="(\w+)" data-status="published"><th[^>]*>[^<]*</th><td[^>]*>[\d.,]+ m³', water)
    assert {"city"} < set(published) <= {"city", "ecusson", "antigone"}, water  # the city and a district
    assert re.search(r'data-zone="comedie" data-status="suppressed".*?not published: too few meters', water, re.S)
    # the water page's alerts: the home's, reduced, and nothing else broken
    assert "a device (personal data)" in water_page and 'class="err"' not in water_page
    for page in (dom, museum_page, water_page):
        found = [s for s in SENTINELS if s.lower() in page.lower()]
        assert found == []


@needs_chromium
def test_anonymous_device_page_of_a_home_says_not_open(anonymous_city: str) -> None:
    """A dwelling's meter asked for by its page: refused, said so, and nothing of it shown."""
    dom = chromium("--dump-dom", f"{anonymous_city}?lang=fr#/device/{HOME}")
    note = re.search(r'id="dv-note"[^>]*>([^<]*)<', dom).group(1)
    assert note.startswith("Ce capteur n'est pas une donnée ouverte"), note
    assert re.search(r'id="dv-body"[^>]*hidden', dom) and 'class="uplot' not in dom
    assert [s for s in SENTINELS if s.lower() in dom.lower()] == []
