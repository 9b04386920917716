"""Entities of the city's tenant, built from one device's registry row and latest values (expanded normalized form,
as they cross `clapas.api.ngsi_ld.source`).

Pure functions: the source (`source.py`) reads the store through the charter and hands them only what the caller
may read. Every numeric Property carries `unitCode` (UN/CEFACT, `units.py`) and `observedAt`; values are converted
to the model's unit; the entity's `scope` is its data class (`/open`, `/restricted`, `/personal`); its location is
the device's point, else its zone's geometry (a GeoProperty); ids are `urn:ngsi-ld:<Type>:<eui>`.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clapas.api.ngsi_ld.city import models, units
from clapas.api.ngsi_ld.city.context import expand
from clapas.model import QUANTITY_BY_KEY

URN = "urn:ngsi-ld:"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
ROUND_DIGITS = 9  # converted values: 54 % × 0.01 is 0.54, not 0.5400000000000001
RSSI_UNIT = "2N"  # decibel: the radio's dBm (a decibel level; Rec. 20 has no code for the milliwatt reference) [U]
CITY_PROVIDER = "clapas"


def iso(t: datetime) -> str:
    """NGSI-LD times: UTC, ending in Z."""
    t = t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
    return t.isoformat(timespec="milliseconds" if t.microsecond else "seconds").replace("+00:00", "Z")


def entity_id(type_: str, key: str) -> str:
    return f"{URN}{type_}:{key}"


def parse_id(entity_id_: str) -> tuple[str, str] | None:
    """(type, key) of a city entity id, or None when it is not one."""
    if not entity_id_.startswith(URN):
        return None
    type_, _, key = entity_id_[len(URN):].partition(":")
    return (type_, key) if key else None


def model_key(d: Mapping[str, Any]) -> str:
    """A device model's id key: its profile (what the network server calls the model), else its decoder."""
    return _SLUG.sub("-", str(d.get("profile") or d.get("decoder") or "unknown")).strip("-") or "unknown"


def prop(value: Any, *, unit: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"type": "Property", "value": value}
    if unit is not None:
        p["unitCode"] = units.unit_code(unit)
    if at is not None:
        p["observedAt"] = iso(at)
    return p


def date_prop(t: datetime) -> dict[str, Any]:
    return {"type": "Property", "value": {"@type": "DateTime", "@value": iso(t)}}


def rel(obj: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": obj}


def location(d: Mapping[str, Any], zone: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The device's point, else its zone's geometry: a GeoProperty, or None when neither is known."""
    if d.get("lat") is not None and d.get("lon") is not None:
        return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [d["lon"], d["lat"]]}}
    if zone and zone.get("geometry"):
        return {"type": "GeoProperty", "value": zone["geometry"]}
    return None


@dataclass
class DeviceFacts:
    """What the source read for one device, already filtered by the charter."""

    device: Mapping[str, Any]
    data_class: str
    latest: list[dict[str, Any]]  # Store.latest rows the caller may read
    zone: Mapping[str, Any] | None = None
    level_thresholds: tuple[float | None, float | None, float | None] = (None, None, None)  # yellow, orange, red
    week_flow: tuple[float, float] | None = None  # (min, max) L/h over the last week, for a meter
    extra: dict[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, tuple[float, datetime]]:
        return {r["quantity"]: (r["value"], r["time"]) for r in self.latest if r.get("time") is not None}


def _base(type_: str, key: str, facts: DeviceFacts) -> dict[str, Any]:
    e: dict[str, Any] = {"id": entity_id(type_, key), "type": expand(type_), "scope": [f"/{facts.data_class}"]}
    loc = location(facts.device, facts.zone)
    if loc is not None:
        e[expand("location")] = loc
    zone = facts.device.get("zone")
    if zone:
        e[expand("areaServed")] = prop(str((facts.zone or {}).get("name") or zone))
    return e


def converted(attr: models.Attr, stored: float) -> float | int:
    """A stored value of the attribute's quantity, in the model's unit (an integer where the schema says so)."""
    v = units.convert(stored, QUANTITY_BY_KEY[attr.quantity].unit, attr.unit)
    return round(v) if attr.integer else (round(v, ROUND_DIGITS) if v != stored else v)


def measured(a: models.Attr, value: tuple[float, datetime]) -> dict[str, Any]:
    """A model attribute's Property from its quantity's latest (value, time)."""
    return prop(converted(a, value[0]), unit=a.unit, at=value[1])


def attributes_of(type_: str, facts: DeviceFacts, iris: Container[str] | Iterable[str]) -> dict[str, Any] | None:
    """The attributes `iris` (expanded) of the entity of this type a device gives, as `entities_of` would build
    them but without building the entity (orderBy's values for a whole listing): a model's measured attributes,
    the location and zone, the Device's name and serial number. None when one of them is another (derived)
    attribute: the caller then builds the entity."""
    model = models.MODEL_BY_TYPE.get(type_)
    by_iri = {expand(a.term): a for a in model.attrs} if model else {}
    values = facts.values()
    out: dict[str, Any] = {}
    for iri in iris:
        a = by_iri.get(iri)
        if a is not None and not (type_ == "TrafficFlowObserved" and a.quantity not in values):
            if a.quantity in values:
                out[iri] = measured(a, values[a.quantity])
        elif iri == expand("location"):
            loc = location(facts.device, facts.zone)
            if loc is not None:
                out[iri] = loc
        elif type_ == models.DEVICE and iri == expand("serialNumber"):
            out[iri] = prop(facts.device["eui"])
        elif type_ == models.DEVICE and iri == expand("name"):
            if facts.device.get("name"):
                out[iri] = prop(str(facts.device["name"]))
        else:
            return None
    return out


def gives(model: models.Model, values: Container[str]) -> bool:
    """Whether a device with values of these quantities gives the model's entity (`observation` is not None)."""
    return any(a.quantity in values for a in model.attrs) or (
        model.type == "TrafficFlowObserved" and any(q in values for q in ("counter.in", "counter.out")))


def observation_types(kind: str, latest: list[dict[str, Any]]) -> list[str]:
    """The observation entities' types a device of this kind gives with these latest values, without building
    them (the listing of a page: `entities_of` gives exactly these)."""
    values = {r["quantity"] for r in latest if r.get("time") is not None}
    return [m.type for m in models.models_of(kind, {r["quantity"] for r in latest}) if gives(m, values)]


def observation(model: models.Model, facts: DeviceFacts) -> dict[str, Any] | None:
    """One observation entity of a device, or None when it has none of the model's values."""
    values = facts.values()
    if not gives(model, values):
        return None
    eui = facts.device["eui"]
    e = _base(model.type, eui, facts)
    newest: datetime | None = None
    for a in model.attrs:
        if a.quantity not in values:
            continue
        e[expand(a.term)] = measured(a, values[a.quantity])
        newest = values[a.quantity][1] if newest is None or values[a.quantity][1] > newest else newest
    if model.type == "TrafficFlowObserved" and "counter.count" not in values:
        both = [values[q] for q in ("counter.in", "counter.out") if q in values]
        if both:  # a two-way counter: the passages of both directions
            t = max(t for _, t in both)
            e[expand("intensity")] = prop(sum(v for v, _ in both), unit="{count}", at=t)
            newest = t if newest is None or t > newest else newest
    if newest is None:
        return None
    e[expand("dateObserved")] = date_prop(newest)
    e[expand("refDevice")] = rel(entity_id(models.DEVICE, eui))
    _specifics(model.type, e, facts, values, newest)
    return e


def _specifics(type_: str, e: dict[str, Any], facts: DeviceFacts, values: Mapping[str, tuple[float, datetime]],
               newest: datetime) -> None:
    if type_ == "TrafficFlowObserved" and facts.device.get("kind") == "bike_counter":
        e[expand("vehicleType")] = prop("bicycle")
    elif type_ == "NoiseLevelObserved":
        span = facts.device.get("expected_interval_s") or facts.extra.get("noise_period_s", 3600)
        e[expand("dateObservedFrom")] = date_prop(datetime.fromtimestamp(newest.timestamp() - span, UTC))
        e[expand("dateObservedTo")] = date_prop(newest)
    elif type_ == "FloodMonitoring":
        yellow, _orange, red = facts.level_thresholds
        if yellow is not None:
            e[expand("alertLevel")] = prop(yellow, unit="m")
        if red is not None:
            e[expand("dangerLevel")] = prop(red, unit="m")
        if "water.level" in values:
            e[expand("floodLevelStatus")] = prop(level_status(values["water.level"][0], facts.level_thresholds),
                                                 at=values["water.level"][1])
    elif type_ == "BikeHireDockingStation":
        _bike_station(e, facts, values)
    elif type_ == "WaterConsumptionObserved":
        alarms = [values[q] for q in values if q.startswith("alarm.")]
        if alarms:
            e[expand("alarmInProgress")] = prop(int(any(v >= 0.5 for v, _ in alarms)), unit="1",
                                                at=max(t for _, t in alarms))
        if facts.week_flow is not None:
            low, high = facts.week_flow
            e[expand("minFlow")] = prop(round(low), unit="L/h")
            e[expand("maxFlow")] = prop(round(high), unit="L/h")


GBFS_FLAGS = ("bikeshare.installed", "bikeshare.renting", "bikeshare.returning")


def _bike_station(e: dict[str, Any], facts: DeviceFacts, values: Mapping[str, tuple[float, datetime]]) -> None:
    """The station's registry facts (name, GBFS station_id, capacity, address), its last report and its status."""
    d = facts.device
    tags = d.get("tags") or {}
    if d.get("name"):
        e[expand("name")] = prop(str(d["name"]))
    if tags.get("station_id"):
        e[expand("stationCode")] = prop(str(tags["station_id"]))
    if tags.get("address"):
        e[expand("address")] = prop({"streetAddress": str(tags["address"])})
    try:  # station_information's capacity: a registry fact, not an observation (no observedAt)
        capacity = int(float(tags["capacity"]))
    except (KeyError, ValueError, OverflowError):
        capacity = None
    if capacity is not None and capacity >= 0:
        e[expand("totalSlotNumber")] = prop(capacity, unit="{count}")
    if "bikeshare.last_reported" in values:
        e[expand("observationDateTime")] = date_prop(datetime.fromtimestamp(values["bikeshare.last_reported"][0], UTC))
    flags = [values[q] for q in GBFS_FLAGS if q in values]
    if len(flags) == len(GBFS_FLAGS):
        e[expand("status")] = prop(station_status(*(v >= 0.5 for v, _ in flags)), at=max(t for _, t in flags))


def station_status(installed: bool, renting: bool, returning: bool) -> str:
    """BikeHireDockingStation.status from GBFS station_status' is_installed, is_renting, is_returning: a station that
    neither rents nor takes bikes back (or is not installed) is out of service, one that does only one of both has an
    incidence."""
    if not installed or not (renting or returning):
        return "outOfService"
    return "working" if renting and returning else "withIncidence"


def level_status(level: float, thresholds: tuple[float | None, float | None, float | None]) -> str:
    """The Vigicrues colour of a level against the gauge's (yellow, orange, red) heights (`clapas.indices.flood`)."""
    status = "green"
    for name, limit in zip(("yellow", "orange", "red"), thresholds, strict=True):
        if limit is not None and level >= limit:
            status = name
    return status


def device_entity(facts: DeviceFacts) -> dict[str, Any]:
    """The `Device` entity: what it measures, its battery and radio, its model, when it was last heard."""
    d = facts.device
    values = facts.values()
    e = _base(models.DEVICE, d["eui"], facts)
    controlled = sorted({models.CONTROLLED[q] for q in values if q in models.CONTROLLED})
    e[expand("controlledProperty")] = prop(controlled)
    if d.get("name"):
        e[expand("name")] = prop(str(d["name"]))
    e[expand("serialNumber")] = prop(d["eui"])
    if "battery" in values:
        v, t = values["battery"]
        e[expand("batteryLevel")] = prop(round(units.convert(v, "%", "1"), ROUND_DIGITS), unit="1", at=t)
    if d.get("last_rssi") is not None and d.get("last_seen") is not None:
        e[expand("rssi")] = {**prop(d["last_rssi"], at=d["last_seen"]), "unitCode": RSSI_UNIT}
    if d.get("last_seen") is not None:
        e[expand("dateLastValueReported")] = date_prop(d["last_seen"])
    e[expand("refDeviceModel")] = rel(entity_id(models.DEVICE_MODEL, model_key(d)))
    return e


def device_model_entity(key: str, devices: Iterable[DeviceFacts], data_class: str) -> dict[str, Any]:
    """A `DeviceModel` from the devices of one profile: what they measure, who makes them (by decoder family)."""
    devices = list(devices)
    first = devices[0].device
    decoder = str(first.get("decoder") or "")
    controlled = sorted({models.CONTROLLED[r["quantity"]] for f in devices for r in f.latest
                         if r["quantity"] in models.CONTROLLED})
    kinds = {str(f.device.get("kind") or "") for f in devices}
    maker = models.MANUFACTURERS.get(decoder.split(".")[0], "unknown")
    e: dict[str, Any] = {"id": entity_id(models.DEVICE_MODEL, key), "type": expand(models.DEVICE_MODEL),
                         "scope": [f"/{data_class}"]}
    e[expand("category")] = prop(["meter"] if kinds & {"water_meter", "district_meter"} else ["sensor"])
    e[expand("controlledProperty")] = prop(controlled)
    e[expand("manufacturerName")] = prop(maker)
    e[expand("brandName")] = prop(maker)
    e[expand("modelName")] = prop(str(first.get("profile") or decoder or key))
    return e


def entities_of(facts: DeviceFacts, types: Container[str] | None = None) -> list[dict[str, Any]]:
    """Every entity one device gives (observations and Device), by id; `types`: only those of these types."""
    kind = str(facts.device.get("kind") or "")
    quantities = {r["quantity"] for r in facts.latest}
    out = [e for m in models.models_of(kind, quantities) if (types is None or m.type in types)
           and (e := observation(m, facts)) is not None]
    if types is None or models.DEVICE in types:
        out.append(device_entity(facts))
    return sorted(out, key=lambda e: e["id"])
