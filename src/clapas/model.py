"""The core model every layer shares: quantities, devices, uplinks and device events.

The core knows only these types; connectors produce `Uplink` / `DeviceEvent`, decoders turn an uplink's payload
into `(quantity, value)` pairs, the store keeps them as narrow observation rows.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec


class Quantity(msgspec.Struct, frozen=True):
    """A measured quantity of the fixed catalogue. `id` is stable: it is what the store keeps in each row."""

    id: int
    key: str
    unit: str  # UCUM
    label: str


# The catalogue. Keys follow The Things Stack normalized-payload naming where one exists.
# Never renumber: ids are stored. Append new quantities at the end.
QUANTITIES: tuple[Quantity, ...] = (
    Quantity(1, "water.volume", "m3", "water meter index"),
    Quantity(2, "water.flow", "L/h", "water flow"),
    Quantity(3, "water.reverse_volume", "m3", "reverse (backflow) volume"),
    Quantity(4, "water.level", "m", "river or tank water level"),
    Quantity(5, "water.temperature", "Cel", "water temperature"),
    Quantity(6, "air.temperature", "Cel", "air temperature"),
    Quantity(7, "air.humidity", "%", "relative humidity"),
    Quantity(8, "air.pressure", "hPa", "atmospheric pressure"),
    Quantity(9, "air.co2", "ppm", "carbon dioxide"),
    Quantity(10, "air.tvoc", "ppb", "total volatile organic compounds"),
    Quantity(11, "air.pm1", "ug/m3", "PM1 particulate matter"),
    Quantity(12, "air.pm2_5", "ug/m3", "PM2.5 particulate matter"),
    Quantity(13, "air.pm10", "ug/m3", "PM10 particulate matter"),
    Quantity(14, "air.no2", "ug/m3", "nitrogen dioxide"),
    Quantity(15, "air.o3", "ug/m3", "ozone"),
    Quantity(16, "air.so2", "ug/m3", "sulphur dioxide"),
    Quantity(17, "air.co", "mg/m3", "carbon monoxide"),
    Quantity(18, "light.illuminance", "lx", "illuminance"),
    Quantity(19, "sound.level", "dB", "sound level (A-weighted)"),
    Quantity(20, "rain.amount", "mm", "rain fallen since the previous uplink"),
    Quantity(21, "wind.speed", "m/s", "wind speed"),
    Quantity(22, "wind.direction", "deg", "wind direction"),
    Quantity(23, "distance", "m", "distance measured by a ranging sensor"),
    Quantity(24, "counter.count", "{count}", "events counted since the previous uplink"),
    Quantity(25, "counter.total", "{count}", "absolute event counter"),
    Quantity(26, "counter.in", "{count}", "passages in the 'in' direction since the previous uplink"),
    Quantity(27, "counter.out", "{count}", "passages in the 'out' direction since the previous uplink"),
    Quantity(28, "battery", "%", "battery level"),
    Quantity(29, "battery.voltage", "V", "battery voltage"),
    Quantity(30, "radio.margin", "dB", "link margin reported by the device (DevStatusAns)"),
    Quantity(31, "alarm.leak", "1", "meter alarm: leak (1 active, 0 clear)"),
    Quantity(32, "alarm.burst", "1", "meter alarm: burst"),
    Quantity(33, "alarm.backflow", "1", "meter alarm: reverse flow"),
    Quantity(34, "alarm.dry", "1", "meter alarm: dry (no water)"),
    Quantity(35, "alarm.tamper", "1", "meter alarm: tamper or fraud"),
    Quantity(36, "alarm.low_battery", "1", "device alarm: low battery"),
    Quantity(37, "occupancy", "1", "presence detected (1) or not (0)"),
    Quantity(38, "motion.count", "{count}", "motion events since the previous uplink"),
    Quantity(39, "air.dew_point", "Cel", "dew point"),
    Quantity(40, "water.leak_detected", "1", "water detected by a leak probe"),
    # bike share (GBFS station_status, §6.1): one observation per station and poll, at the poll time
    Quantity(41, "bikeshare.bikes_available", "{count}", "bikes (vehicles) available at a station"),
    Quantity(42, "bikeshare.bikes_disabled", "{count}", "disabled bikes at a station"),
    Quantity(43, "bikeshare.docks_available", "{count}", "empty, operable docks at a station"),
    Quantity(44, "bikeshare.docks_disabled", "{count}", "disabled docks at a station"),
    Quantity(45, "bikeshare.installed", "1", "station installed (1) or not (0)"),
    Quantity(46, "bikeshare.renting", "1", "station renting (1) or not (0)"),
    Quantity(47, "bikeshare.returning", "1", "station accepting returns (1) or not (0)"),
    Quantity(48, "bikeshare.last_reported", "s", "station's last report to the operator (POSIX time)"),
    Quantity(49, "bikeshare.last_updated", "s", "feed file's last_updated (POSIX time)"),
    Quantity(50, "bikeshare.feed_age", "s", "poll time minus the feed's last_updated"),
    Quantity(51, "bikeshare.poll_ok", "1", "the system's poll succeeded (1) or failed (0)"),
    Quantity(52, "bikeshare.vehicles_free", "{count}", "free-floating vehicles available"),
)

QUANTITY_BY_KEY: dict[str, Quantity] = {q.key: q for q in QUANTITIES}
QUANTITY_BY_ID: dict[int, Quantity] = {q.id: q for q in QUANTITIES}

DEVICE_KINDS: tuple[str, ...] = (
    "water_meter",
    "district_meter",
    "weather_station",
    "air_quality",
    "water_level",
    "rain_gauge",
    "indoor_climate",
    "traffic_counter",
    "bike_counter",
    "bike_station",
    "bikeshare_system",  # a GBFS system's feed (its polls), beside its stations
    "bikeshare_zone",  # a GBFS system's free-floating vehicles available in one zone (their history per zone)
    "generic",
)

DATA_CLASSES: tuple[str, ...] = ("open", "restricted", "personal")


class Device(msgspec.Struct, kw_only=True):
    """A device of the registry. EUIs are lowercase hex; tags carry anything the city wants to keep."""

    eui: str
    name: str = ""
    kind: str = "generic"
    decoder: str = ""
    profile: str = ""
    zone: str = ""
    lat: float | None = None
    lon: float | None = None
    data_class: str = "open"
    expected_interval_s: int | None = None
    subscriber: str = ""
    premises_use: str = ""  # "habitation" or not, for the loi Warsmann
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class Zone(msgspec.Struct, kw_only=True):
    """A district, DMA, park, museum room… with its geometry (GeoJSON) when known."""

    id: str
    name: str = ""
    kind: str = ""  # district, dma, park, museum_room, catchment…
    parent: str = ""
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] = msgspec.field(default_factory=dict)


class DeviceInfo(msgspec.Struct, kw_only=True):
    """What the network server says about the device that sent a message."""

    name: str = ""
    profile: str = ""
    application: str = ""
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class Message(msgspec.Struct, kw_only=True):
    """One message as it arrived, before anything else: this is what the journal keeps."""

    source: str  # chirpstack, ttn, http, simulator…
    event: str  # up, status, join, ack, txack, log, location
    fmt: str  # json or protobuf
    raw: bytes
    received_at: datetime
    topic: str = ""


class Uplink(msgspec.Struct, kw_only=True):
    """A parsed uplink (or status event): the fields the pipeline needs, whatever the source."""

    dev_eui: str
    time: datetime
    event: str = "up"
    f_port: int | None = None
    f_cnt: int | None = None
    payload: bytes = b""
    obj: dict[str, Any] | None = None  # the network server's own decoded object, if any
    values: list[tuple[str, float]] | None = None  # values carried by the event itself (status)
    rssi: float | None = None
    snr: float | None = None
    sf: int | None = None
    gateways: int = 0
    # (gateway id, SNR) of every gateway that heard the uplink (health: blast radius, link margin) and the LoRa
    # bandwidth (Hz) the SNR floor depends on
    rx: tuple[tuple[str, float], ...] = ()
    bw: int | None = None
    dedup_key: str = ""
    info: DeviceInfo | None = None
    event_data: dict[str, Any] | None = None  # join/ack/txack/log/location details


class GatewayEvent(msgspec.Struct, kw_only=True):
    """A gateway's own event (ChirpStack Gateway Bridge): its retained connection state or its periodic stats."""

    gateway_id: str
    time: datetime
    kind: str  # "conn" or "stats"
    online: bool = True  # conn: ONLINE / OFFLINE; stats: a gateway that reports is online
    rx_received: int | None = None  # stats: packets received (all, and with a good CRC)
    rx_ok: int | None = None


_HEX16 = re.compile(r"[0-9a-f]{16}")


def normalize_eui(eui: str) -> str:
    """LoRaWAN DevEUIs are kept as 16 lowercase hex digits."""
    e = eui.strip().lower().replace("-", "").replace(":", "")
    if len(e) != 16 or not _HEX16.fullmatch(e):
        raise ValueError(f"not a DevEUI (16 hex digits): {eui!r}")
    return e
