"""Open WaterConsumptionObserved entities per zone (the charter's published daily aggregates), on both stores: a
caller without personal:read gets the district's consumption through them, never a meter; a cell the charter
suppresses (too few meters, or one dominant) gives no entity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clapas.api.ngsi_ld.city.context import expand
from clapas.api.ngsi_ld.city.source import CitySource
from clapas.api.ngsi_ld.source import Hint
from clapas.charter import OPEN_READ, Caller
from clapas.charter.aggregates import AggregateSettings
from clapas.model import Device, Zone
from clapas.store.base import Store, open_store

from .city_data import ZONES, batch, schema_errors

PUBLIC = Caller(scopes=frozenset({OPEN_READ}))
METERS = [f"0e0e0e0e0e0e{i:04x}" for i in range(12)]
LITRES_A_DAY = 150.0  # each household


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = f"duckdb:///{tmp_path}/agg.duckdb" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    s = open_store(url, "Europe/Paris")
    s.upsert_zones([*ZONES, Zone(id="small", name="Hameau", kind="district", parent="ecusson")])
    s.upsert_devices([Device(eui=e, kind="water_meter", zone="small" if i >= 10 else "ecusson", decoder="kamstrup",
                             premises_use="habitation", data_class="personal", lat=43.61, lon=3.87)
                      for i, e in enumerate(METERS)])
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows = [(e, now - timedelta(hours=h), {"water.volume": 100.0 + i + (120 - h) / 24 * LITRES_A_DAY / 1000})
            for h in range(0, 120, 3) for i, e in enumerate(METERS)]
    s.write(batch(rows))
    maintain = getattr(s, "maintain", None)
    if maintain is not None:
        maintain(settle_s=0)
    yield s
    s.close()


def test_published_cells_are_open_entities(store: Store, samples: Path) -> None:
    source = CitySource(store, aggregates=AggregateSettings(min_meters=10))
    found = {e["id"]: e for e in source.candidates(PUBLIC, Hint(types=frozenset({expand("WaterConsumptionObserved")})))}
    # the city (12 meters) and the Écusson (its 10 and the hamlet's 2) are published; the hamlet (2) is not
    assert set(found) == {"urn:ngsi-ld:WaterConsumptionObserved:zone:city",
                          "urn:ngsi-ld:WaterConsumptionObserved:zone:ecusson"}
    city = found["urn:ngsi-ld:WaterConsumptionObserved:zone:city"]
    assert city["scope"] == ["/open"]
    litres = city[expand("waterConsumption")]
    assert litres["unitCode"] == "LTR" and litres["value"] == pytest.approx(12 * LITRES_A_DAY, abs=2)
    assert found["urn:ngsi-ld:WaterConsumptionObserved:zone:ecusson"][expand("location")]["type"] == "GeoProperty"
    for e in found.values():
        assert schema_errors(samples, e) == []
    assert not any(m in str(found) for m in METERS)  # no meter, not even its id
    one = source.get(PUBLIC, "urn:ngsi-ld:WaterConsumptionObserved:zone:ecusson")
    assert one is not None and one["id"].endswith("zone:ecusson")


def test_suppressed_cells_give_no_entity(store: Store) -> None:
    source = CitySource(store, aggregates=AggregateSettings(min_meters=13))
    assert list(source.candidates(PUBLIC, Hint(types=frozenset({expand("WaterConsumptionObserved")})))) == []
