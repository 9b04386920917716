"""Payload encoders: the simulator speaks the same device formats as real sensors, so its uplinks go through the
same decoders. `ENCODERS[decoder_name](readings, f_port_hint)` takes catalogue-keyed readings
(`{"air.temperature": 21.3, ...}`) and returns `(f_port, payload)`; `ENCODER_KEYS[name]` lists the keys it can carry.
"""

from __future__ import annotations

from collections.abc import Callable


def _int(value: float, size: int) -> bytes:
    return int(round(value)).to_bytes(size, "big", signed=True)


def cayenne_lpp(readings: dict[str, float]) -> tuple[int, bytes]:
    """Cayenne LPP, one channel per quantity (channel numbers from 1 in the order below)."""
    out = bytearray()
    for channel, (key, type_id, size, mult, signed) in enumerate(_LPP, start=1):
        if key in readings:
            v = round(readings[key] * mult)
            out += bytes([channel, type_id]) + int(v).to_bytes(size, "big", signed=signed)
    return 1, bytes(out)


# (key, LPP type, size, multiplier, signed)
_LPP = (
    ("air.temperature", 103, 2, 10, True),
    ("air.humidity", 104, 1, 2, False),
    ("air.pressure", 115, 2, 10, False),
    ("light.illuminance", 101, 2, 1, False),
    ("occupancy", 102, 1, 1, False),
)

ENCODERS: dict[str, Callable[[dict[str, float]], tuple[int, bytes]]] = {
    "cayenne_lpp": cayenne_lpp,
}
ENCODER_KEYS: dict[str, frozenset[str]] = {
    "cayenne_lpp": frozenset(k for k, *_ in _LPP),
}
