"""Payload decoders, by the name a device's registry entry (tag `decoder`) or its profile gives.

Each module exposes `decode(payload: bytes, f_port: int) -> list[(key, value)]`; see `base.py`.
`chirpstack_object` is special: it maps the network server's own decoded object, so it is applied by the pipeline
with the profile's field table rather than called on bytes.

| decoder | formats / devices | quantities |
|---|---|---|
| `cayenne_lpp` | myDevices Cayenne LPP | air.temperature, air.humidity, air.pressure, light.illuminance, occupancy |
| `elsys` | Elsys ERS (CO2, VOC, Sound), ELT-2, ELT Ultrasonic, EMS | air.temperature/humidity/co2/tvoc/pressure, |
| | | light.illuminance, motion.count, occupancy, sound.level, distance, counter.count, |
| | | counter.total, battery.voltage |
| `dragino_lht65` | Dragino LHT65 | air.temperature, air.humidity, battery.voltage, light.illuminance, counter.total |
| `milesight` | EM300-TH, AM307/AM319, EM500-UDL, EM300-DI, VS133 | air.temperature/humidity/co2/tvoc/pressure, |
| | | air.pm2_5/pm10/o3, light.illuminance, occupancy, motion.count, distance, |
| | | counter.total, counter.in, counter.out, battery |
| `decentlab_pm` | Decentlab DL-PM | air.pm1/pm2_5/pm10, air.temperature/humidity/pressure, battery.voltage |
| `decentlab_mbx` | Decentlab DL-MBX ultrasonic | distance, battery.voltage |
| `kamstrup` | Kamstrup flowIQ (M-Bus over LoRaWAN) | water.volume/reverse_volume/flow/temperature, |
| | | alarm.dry/backflow/leak/burst/tamper/low_battery |
| `oms` | OMS profile meters, e.g. Sensus iPERL | water.volume/reverse_volume/flow/temperature, alarm.low_battery |

Vendor JavaScript codecs are decoders too (`javascript.py`, `clapas.codecs`): named `codec:<ref>`, or chosen by a
device's `codec` tag, its profile's `codec` setting or its ChirpStack profile export.
"""

from __future__ import annotations

from clapas.decoders import cayenne_lpp, decentlab, dragino_lht65, elsys, mbus, milesight
from clapas.decoders.base import DecodeError, Decoder, Reading

CHIRPSTACK_OBJECT = "chirpstack_object"

DECODERS: dict[str, Decoder] = {
    "cayenne_lpp": cayenne_lpp.decode,
    "elsys": elsys.decode,
    "dragino_lht65": dragino_lht65.decode,
    "milesight": milesight.decode,
    "decentlab_pm": decentlab.decode_pm,
    "decentlab_mbx": decentlab.decode_mbx,
    "kamstrup": mbus.decode_kamstrup,
    "oms": mbus.decode_oms,
}


def get_decoder(name: str) -> Decoder:
    try:
        return DECODERS[name]
    except KeyError:
        known = ", ".join(sorted([*DECODERS, CHIRPSTACK_OBJECT]))
        raise DecodeError(f"unknown decoder {name!r} (known: {known})") from None


__all__ = ["CHIRPSTACK_OBJECT", "DECODERS", "DecodeError", "Decoder", "Reading", "get_decoder"]
