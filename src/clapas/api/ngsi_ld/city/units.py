"""UCUM (clapas's units, `clapas.model.QUANTITIES`) to UN/CEFACT common codes (NGSI-LD `unitCode`), and the
conversions the Smart Data Models need where their unit differs from the stored one.

NGSI-LD says `unitCode` is a UN/CEFACT Recommendation 20 common code (ETSI GS CIM 009 §4.5.2); the Smart Data Models
use the same codes in their examples (`CEL`, `GQ`, `GP`, `LTR`, `E32`…). Every code here is a Rec. 20 common code
(UNECE Recommendation 20, rev. 17, annex I–III); where the model wants another unit than the one clapas stores
(relative humidity 0–1 instead of %, a battery level 0–1, a water index in litres), `convert` says by how much.
../shared/domain-rules.md §8.7 lists the pitfalls.
"""

from __future__ import annotations

# UCUM → UN/CEFACT Rec. 20 common code.
UNIT_CODES: dict[str, str] = {
    "m3": "MTQ",  # cubic metre
    "L": "LTR",  # litre
    "L/h": "E32",  # litre per hour
    "m": "MTR",  # metre
    "mm": "MMT",  # millimetre (rain: 1 mm = 1 L/m², the models' "Liters per square meter")
    "Cel": "CEL",  # degree Celsius
    "%": "P1",  # percent
    "1": "C62",  # one (a ratio 0–1, a flag, a count without unit)
    "hPa": "A97",  # hectopascal
    "ppm": "59",  # part per million (CO₂: §8.7, not the schema's implausible mg/L)
    "ppb": "61",  # part per billion
    "ug/m3": "GQ",  # microgram per cubic metre
    "mg/m3": "GP",  # milligram per cubic metre
    "lx": "LUX",  # lux
    "dB": "2N",  # decibel
    "m/s": "MTS",  # metre per second
    "deg": "DD",  # degree (unit of angle)
    "V": "VLT",  # volt
    "s": "SEC",  # second (GBFS times and ages)
    "{count}": "C62",  # a number of events (UCUM annotation of 1)
}

# (stored UCUM, model UCUM) → factor: model value = stored value × factor.
FACTORS: dict[tuple[str, str], float] = {
    ("%", "1"): 0.01,  # relative humidity, battery level: the models want 0–1 (§8.7)
    ("m3", "L"): 1000.0,  # WaterConsumptionObserved.waterConsumption: an integer, example unitCode LTR (§8.7)
    ("L", "m3"): 0.001,
    ("mm", "m"): 0.001,
    ("m", "mm"): 1000.0,
}


class UnknownUnit(KeyError):
    """A UCUM unit without a UN/CEFACT code here, or a conversion this table does not know."""


def unit_code(ucum: str) -> str:
    """The UN/CEFACT common code of a UCUM unit."""
    try:
        return UNIT_CODES[ucum]
    except KeyError:
        raise UnknownUnit(f"no UN/CEFACT code for the UCUM unit {ucum!r}") from None


def convert(value: float, stored: str, model: str) -> float:
    """A stored value in the unit the model wants."""
    if stored == model:
        return value
    try:
        return value * FACTORS[(stored, model)]
    except KeyError:
        raise UnknownUnit(f"no conversion from {stored!r} to {model!r}") from None
