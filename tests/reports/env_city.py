"""A tiny environmental city with known series, written into a real store: what the report and API tests read.

Local days are Paris days; `today` is the last one. Values are chosen so every figure can be worked by hand:

- reference station R (zone `rural-reference`, kind rural): one reading per local hour; Tn at 05:00, Tx at 15:00,
  (Tn+Tx)/2 at the other hours, with TNX below (days relative to today); humidity 40 %.
- street station S (zone `dma-01`): R + 2 °C by day (07–19 h), + 4 °C by night.
- park stations P1 (`park-01`, parent dma-01): S − 3 by day, − 1 by night; P3 (`park-03`, parent dma-01): S − 1.5 by
  day, − 2.5 by night. `park-02` (parent dma-02) has a station P2 but no surroundings (no street station in dma-02).
- air sensors (15 min), the whole of today (written ahead of `now`, so that today's ATMO does not depend on the
  hour the tests run): A1 (dma-01) PM10 30 and NO2 50 (95 in the 13:00 hour), its 10:00 hour holds two readings only
  (PM10 1000: an invalid hour); A2 (dma-01) PM10 50, silent in the 10:00 hour; A3 (dma-02) PM10 10 for the first
  eight hours only.
- river gauge G (catchment-lez; thresholds 1.5/2.3/3.3 m): 1.0 m every 15 min, then + 0.1 m per reading over the last
  three hours (2.2 m at `now`). Rain gauge RG (every 10 min): 1 mm per uplink over (now−6 h, now−3 h], 2 mm per uplink
  over the last hour, 0 otherwise.
- museum room `museum-room-01` with one indoor sensor M: 20 °C and 50 %RH every hour (the museum panel's row).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from clapas.model import Device, Zone
from clapas.store.base import Batch, Store
from tests.store.batches import uplink

PARIS = ZoneInfo("Europe/Paris")
R, S, P1, P2, P3 = ("d000000000000001", "d000000000000002", "d000000000000003", "d000000000000004",
                    "d000000000000005")
A1, A2, A3 = "e000000000000001", "e000000000000002", "e000000000000003"
G, RG = "f000000000000001", "f000000000000002"
M = "f000000000000003"
TNX = {-5: (18.0, 30.0), -4: (18.0, 30.0), -3: (21.0, 34.0), -2: (22.0, 35.0), -1: (23.0, 36.0), 0: (24.0, 37.0)}
RH = 40.0

ZONES = [
    Zone(id="rural-reference", name="Référence", kind="rural"),
    Zone(id="dma-01", name="Centre", kind="dma"),
    Zone(id="dma-02", name="Est", kind="dma"),
    Zone(id="park-01", name="Jardin des plantes", kind="park", parent="dma-01"),
    Zone(id="park-02", name="Parc de l'Est", kind="park", parent="dma-02"),
    Zone(id="park-03", name="Square Planchon", kind="park", parent="dma-01"),
    Zone(id="catchment-lez", name="Bassin du Lez", kind="catchment"),
    Zone(id="museum-fabre", name="Musée Fabre", kind="museum"),
    Zone(id="museum-room-01", name="Salle des Courbet", kind="museum_room", parent="museum-fabre",
         properties={"rh_min": 40, "rh_max": 60, "t_min": 16, "t_max": 25}),
]
DEVICES = [
    Device(eui=R, name="Station de référence", kind="weather_station", zone="rural-reference",
           expected_interval_s=3600),
    Device(eui=S, name="Météo rue", kind="weather_station", zone="dma-01", expected_interval_s=3600),
    Device(eui=P1, name="Météo parc 1", kind="weather_station", zone="park-01", expected_interval_s=3600),
    Device(eui=P2, name="Météo parc 2", kind="weather_station", zone="park-02", expected_interval_s=3600),
    Device(eui=P3, name="Météo parc 3", kind="weather_station", zone="park-03", expected_interval_s=3600),
    Device(eui=A1, name="Air 1", kind="air_quality", zone="dma-01", expected_interval_s=900),
    Device(eui=A2, name="Air 2", kind="air_quality", zone="dma-01", expected_interval_s=900),
    Device(eui=A3, name="Air 3", kind="air_quality", zone="dma-02", expected_interval_s=900),
    Device(eui=G, name="Limnimètre Lez", kind="water_level", zone="catchment-lez", expected_interval_s=900,
           tags={"river": "Lez", "threshold_yellow": "1.5", "threshold_orange": "2.3", "threshold_red": "3.3"}),
    Device(eui=RG, name="Pluviomètre Lez", kind="rain_gauge", zone="catchment-lez", expected_interval_s=600),
    Device(eui=M, name="Thermohygromètre Courbet", kind="indoor_climate", zone="museum-room-01",
           expected_interval_s=3600),
]


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), PARIS)


def ref_temperature(offset: int, hour: int) -> float:
    tn, tx = TNX[offset]
    return tn if hour == 5 else tx if hour == 15 else (tn + tx) / 2


def is_day(hour: int) -> bool:
    return 7 <= hour < 19


def build(store: Store, today: date, now: datetime) -> None:
    """Registry, zones and every series, up to `now` (exclusive of later readings)."""
    store.upsert_zones(ZONES)
    store.upsert_devices(DEVICES)
    b = Batch()

    def add(eui: str, t: datetime, values: dict[str, float], future: bool = False) -> None:
        if future or t <= now:
            uplink(b, eui, t, values)

    for offset in TNX:
        day = today + timedelta(days=offset)
        for hour in range(24):
            t = local(day, hour)
            ref = ref_temperature(offset, hour)
            street = ref + (2.0 if is_day(hour) else 4.0)
            add(R, t, {"air.temperature": ref, "air.humidity": RH})
            add(S, t, {"air.temperature": street})
            add(P1, t, {"air.temperature": street - (3.0 if is_day(hour) else 1.0)})
            add(P2, t, {"air.temperature": street - 5.0})
            add(P3, t, {"air.temperature": street - (1.5 if is_day(hour) else 2.5)})
            add(M, t, {"air.temperature": 20.0, "air.humidity": 50.0})
    for hour in range(24):
        for quarter in range(4):
            t = local(today, hour, 15 * quarter)
            if hour == 10:
                if quarter < 2:
                    add(A1, t, {"air.pm10": 1000.0, "air.no2": 50.0}, future=True)
            else:
                add(A1, t, {"air.pm10": 30.0, "air.no2": 95.0 if hour == 13 else 50.0}, future=True)
                add(A2, t, {"air.pm10": 50.0}, future=True)
            if hour < 8:
                add(A3, t, {"air.pm10": 10.0}, future=True)
    for k in range(4 * 12, -1, -1):  # the last 12 hours, every 15 minutes
        t = now - timedelta(minutes=15 * k)
        add(G, t, {"water.level": 1.0 + 0.1 * max(0, 12 - k)})
    for k in range(6 * 26, -1, -1):  # the last 26 hours, every 10 minutes
        t = now - timedelta(minutes=10 * k)
        mm = 2.0 if k < 6 else 1.0 if 18 <= k < 36 else 0.0
        add(RG, t, {"rain.amount": mm})
    store.write(b)


TODAY = date(2026, 7, 2)  # 1 July is the day after a month boundary: the IBM of 1 July spans June and July
NOW = local(TODAY, 23, 30)


def open_city(path: str, today: date = TODAY, now: datetime = NOW) -> Store:
    """A DuckDB store at `path` filled with the city."""
    from clapas.store.duckdb import DuckDBStore

    store = DuckDBStore(f"duckdb:///{path}", timezone="Europe/Paris")
    build(store, today, now)
    return store
