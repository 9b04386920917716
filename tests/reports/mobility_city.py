"""A small mobility city filled through the real pipeline: two bike stations polled each minute for a day (one
empty for 70 min at noon), a GBFS system with free-floating bikes in the centre (hour h of the day: h % 5 of them,
polled every 15 min), and a bike counter with a year of hourly counts per direction."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from clapas.connectors import counts
from clapas.connectors.gbfs import messages
from clapas.connectors.gbfs.normalize import StationInfo, StationSample
from clapas.model import Device, Zone
from clapas.pipeline.ingest import Pipeline

Z = ZoneInfo("Europe/Paris")
DAY0 = datetime(2026, 6, 2, tzinfo=Z)  # a Tuesday
YEAR = 2025
COUNTER = "site-lez"
STATIONS = {"s1": StationInfo(station_id="s1", name="Comédie", lat=43.6085, lon=3.8795, capacity=20),
            "s2": StationInfo(station_id="s2", name="Antigone", lat=43.6080, lon=3.8880, capacity=20)}
ZONES = [Zone(id="centre", kind="district", geometry={"type": "Polygon", "coordinates": [
    [[3.87, 43.60], [3.89, 43.60], [3.89, 43.62], [3.87, 43.62], [3.87, 43.60]]]})]


def count_at(loc: datetime, direction: str) -> float:
    base = 40 if loc.weekday() < 5 else 20
    rush = 60 if (direction == "IN" and loc.hour == 8) or (direction == "OUT" and loc.hour == 18) else 0
    return float(base + rush + loc.hour % 3)


def fill(store) -> None:
    store.upsert_zones(ZONES)
    store.upsert_devices([Device(eui=messages.station_eui("tam", sid), name=i.name, kind="bike_station",
                                 zone="centre", lat=i.lat, lon=i.lon, tags={"capacity": "20", "gbfs_system": "tam"})
                          for sid, i in STATIONS.items()]
                         + [Device(eui=messages.zone_eui("tam", "centre"), name="GBFS tam · centre",
                                   kind="bikeshare_zone", zone="centre",
                                   tags={"gbfs_system": "tam", "vehicle_zone": "centre"})])
    p = Pipeline(store)
    t0 = DAY0.timestamp()
    for k in range(24 * 60):
        t = datetime.fromtimestamp(t0 + 60 * k, UTC)
        empty = 12 * 60 <= k < 12 * 60 + 70
        samples = [StationSample(station_id="s1", bikes_available=0 if empty else 8, docks_available=12,
                                 last_reported=t.timestamp() - 5),
                   StationSample(station_id="s2", bikes_available=5 + (k // 30) % 2, docks_available=15)]
        p.submit_many(messages.station_messages("tam", t, t.timestamp() - 10, samples, STATIONS, {}))
        p.submit(messages.system_message("tam", t, True, t.timestamp() - 10, None, 2))
        if k % 15 == 0:
            p.submit_many(messages.zone_messages("tam", t, {"centre": (k // 60) % 5}))
    report = counts.Report()
    recs = []
    t = int(datetime(YEAR, 1, 1, tzinfo=Z).timestamp())
    end = int(datetime(YEAR + 1, 1, 1, tzinfo=Z).timestamp())
    while t < end:
        loc = datetime.fromtimestamp(t, UTC).astimezone(Z)
        if not (loc.month == 4 and loc.day == 9):  # a day lost: April is incomplete
            for d in ("IN", "OUT"):
                recs.append(counts.CountRecord(counter=COUNTER, start=t, end=t + 3600, count=count_at(loc, d),
                                               direction=d, lat=43.61, lon=3.88))
        t += 3600
    p.submit_many(counts.to_messages(recs, report, datetime.now(UTC)))
    p.close()
