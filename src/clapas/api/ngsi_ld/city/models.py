"""Which Smart Data Model each device becomes, and which stored quantity fills which of the model's attributes.

A device gives one observation entity per model of its kind (a river gauge two: WaterObserved and FloodMonitoring),
plus a `Device` entity, and its profile a `DeviceModel`. A quantity fills a model attribute in the model's unit
(`Attr.unit`, UCUM; `units.convert` from the stored unit), with the UN/CEFACT `unitCode` of that unit. The
domains name the Smart Data Models repository of each term (its IRI: https://smartdatamodels.org/dataModel.<domain>/
<term>); a term two domains share (temperature…) has one IRI in one context, that of `SHARED_DOMAIN`.
"""

from __future__ import annotations

from dataclasses import dataclass

SDM = "https://smartdatamodels.org/"
SHARED_DOMAIN = "Environment"  # the domain whose IRI a term shared by several models keeps


@dataclass(frozen=True, slots=True)
class Attr:
    term: str
    quantity: str
    unit: str  # the model's unit (UCUM)
    integer: bool = False  # the schema says integer


@dataclass(frozen=True, slots=True)
class Model:
    type: str
    domain: str
    kinds: tuple[str, ...]  # device kinds that give this entity
    attrs: tuple[Attr, ...]
    # quantities that give the entity to a device of any kind (a generic device with a sound level)
    by_quantity: tuple[str, ...] = ()


_T, _RH, _P = Attr("temperature", "air.temperature", "Cel"), Attr("relativeHumidity", "air.humidity", "1"), \
    Attr("atmosphericPressure", "air.pressure", "hPa")

MODELS: tuple[Model, ...] = (
    Model("WeatherObserved", "Weather", ("weather_station", "rain_gauge"), (
        _T, _RH, _P, Attr("precipitation", "rain.amount", "mm"), Attr("windSpeed", "wind.speed", "m/s"),
        Attr("windDirection", "wind.direction", "deg"), Attr("illuminance", "light.illuminance", "lx"),
        Attr("dewPoint", "air.dew_point", "Cel"))),
    Model("AirQualityObserved", "Environment", ("air_quality",), (
        Attr("pm1", "air.pm1", "ug/m3"), Attr("pm25", "air.pm2_5", "ug/m3"), Attr("pm10", "air.pm10", "ug/m3"),
        Attr("no2", "air.no2", "ug/m3"), Attr("o3", "air.o3", "ug/m3"), Attr("so2", "air.so2", "ug/m3"),
        Attr("co", "air.co", "mg/m3"), Attr("co2", "air.co2", "ppm"),
        Attr("volatileOrganicCompoundsTotal", "air.tvoc", "ppb"), _T, _RH, Attr("pressure", "air.pressure", "hPa"))),
    Model("IndoorEnvironmentObserved", "Environment", ("indoor_climate",), (
        _T, _RH, _P, Attr("illuminance", "light.illuminance", "lx"), Attr("co2", "air.co2", "ppm"))),
    Model("WaterObserved", "Environment", ("water_level",), (
        Attr("waterLevel", "water.level", "m"), Attr("temperature", "water.temperature", "Cel"))),
    Model("FloodMonitoring", "Environment", ("water_level",), (
        Attr("currentLevel", "water.level", "m"), Attr("measuredDistance", "distance", "m"))),
    Model("WaterConsumptionObserved", "WaterConsumption", ("water_meter", "district_meter"), (
        Attr("waterConsumption", "water.volume", "L", integer=True),
        Attr("alarmStopsLeaks", "alarm.leak", "1", integer=True),
        Attr("alarmTamper", "alarm.tamper", "1", integer=True),
        Attr("alarmWaterQuality", "alarm.backflow", "1", integer=True))),
    Model("TrafficFlowObserved", "Transportation", ("traffic_counter", "bike_counter"), (
        Attr("intensity", "counter.count", "{count}"),)),
    Model("NoiseLevelObserved", "Environment", (), (Attr("LAeq", "sound.level", "dB"),), by_quantity=("sound.level",)),
    # a GBFS station (`clapas.connectors.gbfs`): docks_disabled are the slots out of order
    Model("BikeHireDockingStation", "Transportation", ("bike_station",), (
        Attr("availableBikeNumber", "bikeshare.bikes_available", "{count}", integer=True),
        Attr("freeSlotNumber", "bikeshare.docks_available", "{count}", integer=True),
        Attr("outOfServiceSlotNumber", "bikeshare.docks_disabled", "{count}", integer=True))),
)
MODEL_BY_TYPE = {m.type: m for m in MODELS}

# The Device and DeviceModel entities (dataModel.Device).
DEVICE, DEVICE_MODEL = "Device", "DeviceModel"
DEVICE_TERMS = ("controlledProperty", "batteryLevel", "rssi", "dateLastValueReported", "refDeviceModel",
                "serialNumber", "deviceState", "category", "manufacturerName", "brandName", "modelName", "name")
# Terms every observation entity may carry besides its attributes.
OBSERVATION_TERMS = ("dateObserved", "dateObservedFrom", "dateObservedTo", "refDevice", "areaServed", "name",
                     "vehicleType", "alertLevel", "dangerLevel", "floodLevelStatus", "minFlow", "maxFlow",
                     "alarmInProgress")
# BikeHireDockingStation's terms from the registry and the GBFS flags (`status` is the core's protected term: its
# IRI stays NGSI-LD's, like `location`, `context.CORE_TERMS`).
BIKE_STATION_TERMS = ("totalSlotNumber", "stationCode", "observationDateTime", "address")

# Device.controlledProperty of each stored quantity (the Device-Commons enumeration's names).
CONTROLLED: dict[str, str] = {
    "air.temperature": "temperature", "water.temperature": "temperature", "air.humidity": "humidity",
    "air.pressure": "atmosphericPressure", "air.co2": "airPollution", "air.tvoc": "airPollution",
    "air.pm1": "airPollution", "air.pm2_5": "airPollution", "air.pm10": "airPollution", "air.no2": "airPollution",
    "air.o3": "airPollution", "air.so2": "airPollution", "air.co": "airPollution", "light.illuminance": "light",
    "sound.level": "noiseLevel", "rain.amount": "precipitation", "wind.speed": "windSpeed",
    "wind.direction": "windDirection", "water.volume": "waterConsumption", "water.flow": "waterFlow",
    "water.level": "waterLevel", "distance": "depth", "counter.count": "trafficFlow", "counter.in": "trafficFlow",
    "counter.out": "trafficFlow", "occupancy": "occupancy", "motion.count": "motion", "air.dew_point": "temperature",
}

# DeviceModel.manufacturerName from the decoder family (the registry names a decoder, not a maker).
MANUFACTURERS: dict[str, str] = {
    "kamstrup": "Kamstrup", "decentlab": "Decentlab", "elsys": "Elsys", "milesight": "Milesight",
    "dragino_lht65": "Dragino", "mbus": "M-Bus (EN 13757)",
}


def models_of(kind: str, quantities: set[str]) -> list[Model]:
    """The observation models a device of this kind, reporting these quantities, gives."""
    return [m for m in MODELS if kind in m.kinds or any(q in quantities for q in m.by_quantity)]


def domain_of(term: str) -> str:
    """The one domain whose IRI a term gets (the shared one when several models use it)."""
    domains = {m.domain for m in MODELS if any(a.term == term for a in m.attrs)}
    if len(domains) == 1:
        return domains.pop()
    if term in DEVICE_TERMS and not domains:
        return "Device"
    return SHARED_DOMAIN


def context_terms() -> dict[str, str]:
    """Every term of the clapas context with its IRI (types and attributes), sorted."""
    out = {m.type: f"{SDM}dataModel.{m.domain}/{m.type}" for m in MODELS}
    out[DEVICE] = f"{SDM}dataModel.Device/{DEVICE}"
    out[DEVICE_MODEL] = f"{SDM}dataModel.Device/{DEVICE_MODEL}"
    terms = {a.term for m in MODELS for a in m.attrs} | set(OBSERVATION_TERMS)
    for t in terms:
        out[t] = f"{SDM}dataModel.{'Transportation' if t == 'vehicleType' else domain_of(t)}/{t}"
    for t in DEVICE_TERMS:
        out.setdefault(t, f"{SDM}dataModel.Device/{t}")
    for t in ("minFlow", "maxFlow", "alarmInProgress"):
        out[t] = f"{SDM}dataModel.WaterConsumption/{t}"
    for t in ("alertLevel", "dangerLevel", "floodLevelStatus"):
        out[t] = f"{SDM}dataModel.Environment/{t}"
    for t in BIKE_STATION_TERMS:
        out[t] = f"{SDM}dataModel.Transportation/{t}"
    return dict(sorted(out.items()))
