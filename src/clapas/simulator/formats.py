"""Which payload format each kind of simulated device speaks, and how its readings become bytes.

A device uses a real binary format (`clapas.simulator.encoders`) when one that the pipeline can also decode carries
the readings its kind needs; otherwise it behaves like a device whose codec runs in the network server: ChirpStack
sends the raw bytes *and* the decoded `object` (field names as vendors' codecs write them), and clapas maps the
object (`decoder` tag `chirpstack_object`). Both paths exist in real cities, so the simulator exercises both.
"""

from __future__ import annotations

import inspect
import struct
from collections.abc import Callable

from clapas.decoders import CHIRPSTACK_OBJECT, DECODERS
from clapas.simulator import encoders

# Binary formats per kind (names of `encoders.ENCODERS` / `clapas.decoders.DECODERS`). A city buys from several
# vendors over the years, so devices of a kind take turns among the usable formats of its list; a kind with no
# usable format falls back to the network server's codec.
PREFERRED: dict[str, tuple[str, ...]] = {
    "water_meter": ("kamstrup", "oms"),
    "district_meter": ("oms", "kamstrup"),
    "weather_station": ("elsys", "milesight", "dragino_lht65", "cayenne_lpp"),
    "air_quality": (),  # no binary format here carries NO2, O3 and SO2 together: the network server decodes
    "water_level": ("decentlab_mbx", "milesight", "elsys"),
    "rain_gauge": ("elsys",),
    "indoor_climate": ("elsys", "milesight", "dragino_lht65"),
    "traffic_counter": ("elsys",),
    "bike_counter": ("milesight",),
}

# What a format must carry for a kind (all keys of one of the alternatives).
REQUIRED: dict[str, tuple[frozenset[str], ...]] = {
    "water_meter": (frozenset({"water.volume"}),),
    "district_meter": (frozenset({"water.volume"}),),
    "weather_station": (frozenset({"air.temperature", "air.humidity"}),),
    "air_quality": (frozenset({"air.pm2_5", "air.pm10", "air.no2", "air.o3", "air.so2"}),),
    "water_level": (frozenset({"distance"}),),
    "rain_gauge": (frozenset({"rain.amount"}), frozenset({"counter.count"})),
    "indoor_climate": (frozenset({"air.temperature", "air.humidity"}),),
    "traffic_counter": (frozenset({"counter.count"}),),
    "bike_counter": (frozenset({"counter.in", "counter.out"}), frozenset({"counter.count"})),
}

# Field names of the network server's decoded object: the names vendors' codecs use where
# `clapas.decoders.chirpstack_object.COMMON_NAMES` knows them, the catalogue key otherwise.
OBJECT_FIELDS: dict[str, str] = {
    "water.volume": "volume",
    "water.flow": "flow",
    "air.temperature": "temperature",
    "air.humidity": "humidity",
    "air.pressure": "pressure",
    "air.pm2_5": "pm2_5",
    "air.pm10": "pm10",
    "air.no2": "no2",
    "air.o3": "o3",
    "air.so2": "so2",
    "rain.amount": "rain",
    "battery": "battery",
    "distance": "distance",
}
# Decimals kept in the object, as a codec would round them.
OBJECT_DECIMALS = 3
# The object devices' own raw frame: one signed 32-bit integer per reading, in thousandths.
RAW_SCALE = 1000
OBJECT_FPORT = 2
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


def _usable(name: str, kind: str) -> bool:
    if name not in encoders.ENCODERS or name not in DECODERS:
        return False
    keys = encoders.ENCODER_KEYS.get(name, frozenset())
    return any(req <= keys for req in REQUIRED.get(kind, ()))


def choose(kind: str, turn: int = 0) -> str:
    """The decoder tag of the `turn`-th device of this kind."""
    usable = [name for name in PREFERRED.get(kind, ()) if _usable(name, kind)]
    return usable[turn % len(usable)] if usable else CHIRPSTACK_OBJECT


def uses_counter_for_rain(decoder: str) -> bool:
    """Rain gauges in a pulse-counting format need `pulse_quantity`/`pulse_factor` tags."""
    keys = encoders.ENCODER_KEYS.get(decoder, frozenset())
    return decoder != CHIRPSTACK_OBJECT and "rain.amount" not in keys and "counter.count" in keys


def carries(decoder: str, key: str) -> bool:
    if decoder == CHIRPSTACK_OBJECT:
        return True
    return key in encoders.ENCODER_KEYS.get(decoder, frozenset())


Encoder = Callable[[dict[str, float]], tuple[int, bytes]]


def encoder_for(decoder: str) -> Encoder:
    """A function readings -> (fPort, payload); adapts encoders that take an fPort hint."""
    if decoder == CHIRPSTACK_OBJECT:
        return _raw_frame
    fn = encoders.ENCODERS[decoder]
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(params) >= 2:
        return lambda readings: fn(readings, None)  # type: ignore[call-arg]
    return fn


def _raw_frame(readings: dict[str, float]) -> tuple[int, bytes]:
    values = [max(_I32_MIN, min(_I32_MAX, round(v * RAW_SCALE))) for v in readings.values()]
    return OBJECT_FPORT, struct.pack(f">{len(values)}i", *values)


def to_object(readings: dict[str, float]) -> dict[str, float]:
    """The `object` ChirpStack's codec would produce for these readings."""
    return {OBJECT_FIELDS.get(k, k): round(v, OBJECT_DECIMALS) for k, v in readings.items()}
