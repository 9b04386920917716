"""A small city for the open-data tests, on either store: zones with geometry (a district holding a sector), open
weather stations, a restricted indoor sensor and a dwelling's personal water meter, with a day of readings each.
Rows are written as the pipeline would write them (`tests.store.batches`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from clapas.charter.keys import new_key
from clapas.model import Device, Zone
from clapas.store.base import Batch, Store
from tests.store.batches import uplink, utc

T0 = utc(2026, 5, 4)
DAY = T0, T0 + timedelta(days=1)
STATIONS = ("a1a1a1a1a1a1a1a1", "a2a2a2a2a2a2a2a2")  # weather stations: a1 in the sector, a2 in the district
INDOOR = "c0c0c0c0c0c0c0c0"  # a museum room (restricted)
HOME = "d0d0d0d0d0d0d0d0"  # a dwelling's meter (personal)
ZONES = [
    Zone(id="d1", name="Centre", kind="district",
         geometry={"type": "Polygon", "coordinates": [[[3.86, 43.60], [3.89, 43.60], [3.89, 43.62], [3.86, 43.62],
                                                       [3.86, 43.60]]]}),
    Zone(id="s1", name="Secteur 1", kind="dma", parent="d1",
         geometry={"type": "Polygon", "coordinates": [[[3.87, 43.605], [3.88, 43.605], [3.88, 43.615],
                                                       [3.87, 43.615], [3.87, 43.605]]]}),
    Zone(id="d2", name="Nord", kind="district"),
]
READINGS_PER_HOUR = 4  # every 15 min


def fill(store: Store) -> int:
    """The city; returns how many open weather rows it holds (temperature and humidity, not battery)."""
    store.upsert_zones(ZONES)
    store.upsert_devices([
        Device(eui=STATIONS[0], name="Station Comédie", kind="weather_station", zone="s1", lat=43.608, lon=3.879),
        Device(eui=STATIONS[1], name="Station Peyrou", kind="weather_station", zone="d1", lat=43.611, lon=3.870),
        Device(eui=INDOOR, name="Salle 3", kind="indoor_climate", zone="d2"),
        Device(eui=HOME, name="Appartement 12", kind="water_meter", zone="s1", lat=43.6101, lon=3.8751,
               data_class="personal", subscriber="AB-1234", premises_use="habitation"),
    ])
    b = Batch()
    n = 0
    for i in range(24 * READINGS_PER_HOUR):
        t = T0 + timedelta(minutes=15 * i)
        for k, eui in enumerate(STATIONS):
            uplink(b, eui, t, {"air.temperature": 12.5 + k + i / 8, "air.humidity": 60.0, "battery": 99.0},
                   kind="weather_station")
            n += 2
        uplink(b, INDOOR, t, {"air.temperature": 19.25, "air.co2": 600.0 + i}, kind="indoor_climate")
        uplink(b, HOME, t, {"water.volume": 8765.4 + i / 1000}, kind="water_meter")
    store.write(b)
    return n


@pytest.fixture(params=["duckdb", "postgres"])
def city_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, int]]:
    if request.param == "duckdb":
        from clapas.store.duckdb import DuckDBStore

        store: Store = DuckDBStore(f"duckdb:///{tmp_path}/city.duckdb")
    else:
        from clapas.store.postgres import PostgresStore

        store = PostgresStore(request.getfixturevalue("pg_url"))
    n = fill(store)
    yield store, n
    store.close()


def key_maker(store: Store) -> Callable[..., str]:
    def key(name: str, role: str = "", **kw) -> str:
        k = new_key()
        store.create_key(key_id=k.key_id, name=name, secret_hash=k.hash, role=role, **kw)
        return k.token

    return key
