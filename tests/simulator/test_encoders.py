"""The simulator's encoders produce the vendors' own frames, and every frame decodes back to its readings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clapas.decoders import DECODERS
from clapas.simulator.encoders import ENCODER_KEYS, ENCODERS

B = st.sampled_from([0, 1])


def rng(lo: float, hi: float, res: float) -> tuple[st.SearchStrategy[float], float]:
    """Values in a format's range, and the round-trip tolerance: half its resolution."""
    return st.floats(lo, hi, allow_nan=False), res / 2 + 1e-9


def ints(lo: int, hi: int) -> tuple[st.SearchStrategy[int], float]:
    return st.integers(lo, hi), 0.5  # whole units: a fractional reading comes back rounded


# decoder name → key → (values the format can carry, tolerance)
RANGES: dict[str, dict[str, tuple[st.SearchStrategy, float]]] = {
    "cayenne_lpp": {"air.temperature": rng(-100, 100, 0.1), "air.humidity": rng(0, 100, 0.5),
                    "air.pressure": rng(300, 1100, 0.1), "light.illuminance": ints(0, 65535), "occupancy": (B, 0)},
    "elsys": {"air.temperature": rng(-40, 85, 0.1), "air.humidity": ints(0, 100), "light.illuminance": ints(0, 65535),
              "motion.count": ints(0, 255), "air.co2": ints(0, 10000), "battery.voltage": rng(2, 3.7, 0.001),
              "counter.count": ints(0, 65535), "counter.total": ints(0, 2**32 - 1), "distance": rng(0, 65, 0.001),
              "occupancy": (B, 0), "air.pressure": rng(300, 1100, 0.001), "air.tvoc": ints(0, 60000)},
    "dragino_lht65": {"air.temperature": rng(-40, 85, 0.01), "air.humidity": rng(0, 100, 0.1),
                      "battery.voltage": rng(2.4, 3.6, 0.001)},
    "milesight": {"battery": ints(0, 100), "air.temperature": rng(-30, 70, 0.1), "air.humidity": rng(0, 100, 0.5),
                  "occupancy": (B, 0), "motion.count": ints(0, 65535), "air.co2": ints(400, 5000),
                  "air.tvoc": ints(0, 60000), "air.pressure": rng(300, 1100, 0.1), "air.pm2_5": ints(0, 1000),
                  "air.pm10": ints(0, 1000), "air.o3": rng(0, 1000, 19.954), "distance": rng(0, 65, 0.001),
                  "counter.total": ints(0, 2**32 - 1), "counter.in": ints(0, 65535), "counter.out": ints(0, 65535)},
    "decentlab_pm": {"battery.voltage": rng(2.5, 3.6, 0.001), "air.pm1": rng(0, 1000, 0.1),
                     "air.pm2_5": rng(0, 1000, 0.1), "air.pm10": rng(0, 1000, 0.1),
                     "air.temperature": rng(-40, 85, 0.0027), "air.humidity": rng(0, 100, 0.002),
                     "air.pressure": rng(300, 1100, 0.02)},
    "decentlab_mbx": {"distance": rng(0, 10, 0.001), "battery.voltage": rng(2.5, 3.6, 0.001)},
    "kamstrup": {"water.volume": rng(0, 999_999, 0.001), "water.reverse_volume": rng(0, 9999, 0.001),
                 "water.flow": rng(-50_000, 50_000, 1), "alarm.leak": (B, 0), "alarm.burst": (B, 0),
                 "alarm.backflow": (B, 0), "alarm.dry": (B, 0), "alarm.tamper": (B, 0), "alarm.low_battery": (B, 0)},
    "oms": {"water.volume": rng(0, 999_999, 0.001), "water.reverse_volume": rng(0, 9999, 0.001),
            "water.flow": rng(-50_000, 50_000, 1), "alarm.low_battery": (B, 0)},
}


def test_every_format_has_an_encoder_and_ranges() -> None:
    assert set(ENCODERS) == set(ENCODER_KEYS) == set(DECODERS) == set(RANGES)
    for name, keys in ENCODER_KEYS.items():
        assert keys == set(RANGES[name]), name


def _round_trip(name: str, readings: dict[str, float]) -> None:
    f_port, payload = ENCODERS[name](readings)
    decoded = dict(DECODERS[name](payload, f_port))
    for key, value in readings.items():
        assert decoded[key] == pytest.approx(value, abs=RANGES[name][key][1], rel=1e-12), (name, key)


@pytest.mark.parametrize("name", sorted(RANGES))
def test_round_trip_of_every_key(name: str) -> None:
    readings = {"water.volume": 123.456, "alarm.leak": 1, "battery": 90, "air.temperature": 21.5,
                "air.humidity": 48.5, "distance": 1.25, "counter.total": 1234, "air.pm2_5": 12, "air.pm10": 20,
                "air.pm1": 8, "battery.voltage": 3.1, "water.flow": 15, "alarm.low_battery": 0}
    _round_trip(name, {k: v for k, v in readings.items() if k in ENCODER_KEYS[name]})


@st.composite
def readings_for(draw: st.DrawFn, name: str) -> dict[str, float]:
    keys = draw(st.sets(st.sampled_from(sorted(RANGES[name])), min_size=1))
    return {k: draw(RANGES[name][k][0]) for k in keys}


@pytest.mark.parametrize("name", sorted(RANGES))
@given(data=st.data())
def test_round_trip_over_valid_ranges(name: str, data: st.DataObject) -> None:
    _round_trip(name, data.draw(readings_for(name)))


@pytest.mark.parametrize(("name", "readings", "frame"), [
    # the vendors' published examples (TheThingsNetwork/lorawan-devices, vendor/<maker>/*-codec.yaml)
    ("dragino_lht65", {"battery.voltage": 3.062, "air.temperature": 28.29, "air.humidity": 88.6,
                       "probe_temperature": 27.81}, "cbf60b0d0376010add7fff"),
    ("milesight", {"battery": 92, "air.temperature": 30.8, "air.humidity": 50.5, "motion.count": 73},
     "01755c03673401046865056a4900"),
    ("milesight", {"battery": 92, "distance": 0.03}, "01755c03821e00"),
    ("milesight", {"battery": 92, "counter.total": 256}, "01755c05c800010000"),
    ("elsys", {"air.temperature": 22.6, "air.humidity": 41, "light.illuminance": 39, "motion.count": 6,
               "air.co2": 776}, "0100e202290400270506060308"),
    ("decentlab_mbx", {"device_id": 303, "distance": 1.234, "battery.voltage": 2.993}, "02012f000304d200010bb1"),
    ("decentlab_pm", {"device_id": 6992, "battery.voltage": 3.109, "air.temperature": 24.35660461425781,
                      "air.humidity": 41.63221740722656, "air.pressure": 968.0}, "021b50000d0c2567bd618dbd10"),
])
def test_encoders_write_the_vendor_frames(name: str, readings: dict[str, float], frame: str) -> None:
    assert ENCODERS[name](readings)[1].hex() == frame


@pytest.mark.parametrize(("name", "readings"), [
    ("milesight", {"air.co2": 70_000}), ("elsys", {"air.temperature": -5000}), ("kamstrup", {"water.volume": 3e6}),
])
def test_values_a_format_cannot_carry_are_refused(name: str, readings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="outside"):
        ENCODERS[name](readings)
