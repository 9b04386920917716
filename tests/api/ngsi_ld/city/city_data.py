"""A small city for the NGSI-LD tenant's tests: one device of each kind the Smart Data Models cover, with a day of
hourly values written through the store's own batch write (both stores), and helpers to validate entities against
the vendored Smart Data Models schemas (../shared/samples/smart-data-models) once compacted to key-values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

from clapas.api.ngsi_ld.city.context import compact
from clapas.model import QUANTITY_BY_KEY, Device, Zone
from clapas.store.base import STORED, Batch, Store

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
HOURS = 24

WS, AQ, ROOM, GAUGE = "a1a1a1a1a1a1a1a1", "a2a2a2a2a2a2a2a2", "a3a3a3a3a3a3a3a3", "a4a4a4a4a4a4a4a4"
HOME, TRAFFIC, BIKE, NOISE = "0e0e0e0e0e0e0e0e", "a6a6a6a6a6a6a6a6", "a7a7a7a7a7a7a7a7", "a8a8a8a8a8a8a8a8"
DOCK, STATION_CAPACITY = "a9a9a9a9a9a9a9a9", 20
SUBSCRIBER = "AB-NGSI-SENTINEL"
HOME_NAME = "Appartement NGSI sentinelle"

ZONES = [Zone(id="ecusson", name="Écusson", kind="district",
              geometry={"type": "Polygon",
                        "coordinates": [[[3.87, 43.61], [3.88, 43.61], [3.88, 43.62], [3.87, 43.61]]]})]

DEVICES = [
    Device(eui=WS, name="Station Comédie", kind="weather_station", zone="ecusson", lat=43.608, lon=3.879,
           profile="Elsys ERS", decoder="elsys"),
    Device(eui=AQ, name="Air Antigone", kind="air_quality", zone="ecusson", lat=43.607, lon=3.889,
           decoder="decentlab"),
    Device(eui=ROOM, name="Salle 12", kind="indoor_climate", zone="ecusson", decoder="elsys", profile="Elsys ERS"),
    Device(eui=GAUGE, name="Lez Lavalette", kind="water_level", zone="ecusson", lat=43.63, lon=3.87,
           decoder="decentlab", tags={"threshold_yellow": "2.0", "threshold_orange": "2.8", "threshold_red": "3.5"}),
    Device(eui=HOME, name=HOME_NAME, kind="water_meter", zone="ecusson", lat=43.6123457, lon=3.8765431,
           decoder="kamstrup", profile="Kamstrup flowIQ 2200", data_class="personal", subscriber=SUBSCRIBER,
           premises_use="habitation"),
    Device(eui=TRAFFIC, name="Comptage Pompignane", kind="traffic_counter", zone="ecusson", lat=43.61, lon=3.89),
    Device(eui=BIKE, name="Vélos Lez", kind="bike_counter", zone="ecusson", lat=43.611, lon=3.891,
           decoder="milesight"),
    Device(eui=NOISE, name="Sonomètre Comédie", kind="generic", zone="ecusson", lat=43.6085, lon=3.8795),
    Device(eui=DOCK, name="Comédie Vélomagg", kind="bike_station", zone="ecusson", lat=43.6086, lon=3.8801,
           profile="gbfs", tags={"gbfs_system": "velomagg", "station_id": "001", "capacity": str(STATION_CAPACITY),
                                 "address": "Place de la Comédie"}),
]


def hourly(i: int) -> dict[str, dict[str, float]]:
    """The values of hour i (0 = oldest) of each device."""
    return {
        WS: {"air.temperature": 20 + i * 0.5, "air.humidity": 40 + i, "air.pressure": 1013.2, "rain.amount": 0.2,
             "wind.speed": 3.0, "wind.direction": 270.0, "battery": 87.0},
        AQ: {"air.pm2_5": 10.0 + i, "air.pm10": 20.0, "air.no2": 40.0, "air.o3": 80.0, "air.co": 0.4,
             "air.humidity": 60.0, "air.temperature": 19.5},
        ROOM: {"air.temperature": 19.0, "air.humidity": 50.0, "air.co2": 650.0, "light.illuminance": 150.0},
        GAUGE: {"water.level": 1.0 + i * 0.1, "distance": 1.1},
        HOME: {"water.volume": 8765.401 + i * 0.001, "water.flow": 60.0 + i, "alarm.leak": 0.0,
               "alarm.tamper": 0.0},
        TRAFFIC: {"counter.count": 100.0 + i},
        BIKE: {"counter.in": 10.0, "counter.out": 12.0},
        NOISE: {"sound.level": 55.0 + i * 0.25},
        DOCK: {"bikeshare.bikes_available": float(i % 15), "bikeshare.docks_available": float(18 - i % 15),
               "bikeshare.docks_disabled": 2.0, "bikeshare.bikes_disabled": 1.0, "bikeshare.installed": 1.0,
               "bikeshare.renting": 1.0, "bikeshare.returning": 1.0,
               "bikeshare.last_reported": time_of(i).timestamp() - 30},
    }


def time_of(i: int) -> datetime:
    return NOW - timedelta(hours=HOURS - i)


def batch(rows: list[tuple[str, datetime, dict[str, float]]]) -> Batch:
    """One uplink per row (journal + observations), as the pipeline hands them to the store."""
    b = Batch()
    for eui, t, values in rows:
        for name, v in (("j_id", None), ("j_received", t), ("j_time", t), ("j_source", "test"), ("j_event", "up"),
                        ("j_fmt", "json"), ("j_topic", ""), ("j_eui", eui), ("j_fport", 1), ("j_fcnt", None),
                        ("j_dedup", None), ("j_status", STORED), ("j_error", None), ("j_rssi", -90.0),
                        ("j_snr", 7.5), ("j_sf", 7), ("j_raw", b"{}")):
            getattr(b, name).append(v)
        for q, v in values.items():
            b.o_time.append(t)
            b.o_eui.append(eui)
            b.o_quantity.append(QUANTITY_BY_KEY[q].id)
            b.o_value.append(v)
    return b


def fill(store: Store) -> None:
    store.upsert_zones(ZONES)
    store.upsert_devices(DEVICES)
    store.write(batch([(eui, time_of(i), v) for i in range(HOURS) for eui, v in hourly(i).items()]))
    maintain = getattr(store, "maintain", None)  # PostgreSQL: roll every bucket up now
    if maintain is not None:
        maintain(settle_s=0)


# validation against the vendored Smart Data Models ----------------------------------------------------------------
COMMON = "https://smart-data-models.github.io/data-models/common-schema.json"


def key_values(entity: dict[str, Any]) -> dict[str, Any]:
    """An expanded normalized entity compacted to the clapas terms, in the key-values form the schemas describe."""
    out: dict[str, Any] = {"id": entity["id"], "type": compact(entity["type"])}
    for iri, attr in entity.items():
        if iri in ("id", "type", "scope"):
            continue
        if attr["type"] == "Relationship":
            v = attr["object"]
        else:
            v = attr["value"]
            if isinstance(v, dict) and "@value" in v:
                v = v["@value"]
        out[compact(iri)] = v
    return out


@cache
def schema_validator(samples: Path, type_: str) -> Any:
    schema = json.loads((samples / "smart-data-models" / type_ / "schema.json").read_text())
    common = json.loads((samples / "smart-data-models" / "common-schema.json").read_text())

    def retrieve(uri: str) -> dict[str, Any]:
        # the common schema is vendored; the domain bases (Weather-Commons, Device-Commons, Environment's
        # airQualityLevel) are not: each pointer into them accepts anything (the tests check what they define)
        if uri.split("#")[0] == COMMON:
            return common
        doc: dict[str, Any] = {}
        for ref in _refs(schema):
            base, _, pointer = ref.partition("#")
            if base == uri:
                node = doc
                for part in pointer.strip("/").split("/"):
                    node = node.setdefault(part, {})
        return doc

    return jsonschema_rs.validator_for(schema, retriever=retrieve, validate_formats=True)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*([node["$ref"]] if isinstance(node.get("$ref"), str) else []),
                *(r for v in node.values() for r in _refs(v))]
    return [r for v in node for r in _refs(v)] if isinstance(node, list) else []


def schema_errors(samples: Path, entity: dict[str, Any]) -> list[str]:
    kv = key_values(entity)
    return [f"{e.instance_path}: {e.message}" for e in schema_validator(samples, kv["type"]).iter_errors(kv)]
