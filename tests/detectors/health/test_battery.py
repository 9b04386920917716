"""Batteries: ChirpStack's mapping, external power and unknown apart, chemistry thresholds, the lithium knee, the
forecast date."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from clapas.config import HealthSettings
from clapas.connectors import chirpstack
from clapas.detectors.health.battery import EXTERNAL, UNKNOWN, devstatus_battery, forecast, status_battery
from clapas.detectors.health.detector import BATTERY, Q_BATTERY, Q_VOLTS
from tests.detectors.health.chain import T0, Stream, eui

SAMPLES = Path(__file__).resolve().parents[3] / ".." / "shared" / "samples" / "chirpstack"


def test_chirpstack_status_sample_maps_to_chirpstacks_percentage() -> None:
    raw = (SAMPLES / "status.json").read_bytes()
    up = chirpstack.parse(chirpstack.message(raw, datetime(2022, 7, 18, 9, 36, tzinfo=UTC), topic="x/event/status"))
    assert dict(up.values)["battery"] == 88.3  # the sample's batteryLevel: ChirpStack already mapped the byte
    assert status_battery(up.event_data) == 88.3
    assert status_battery({"externalPowerSource": True}) == EXTERNAL
    assert status_battery({"batteryLevelUnavailable": True}) == UNKNOWN


def test_devstatus_byte_as_chirpstack() -> None:
    assert devstatus_battery(0) == EXTERNAL and devstatus_battery(255) == UNKNOWN
    assert devstatus_battery(254) == 100.0 and devstatus_battery(127) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        devstatus_battery(300)


def _li_socl2(x: float) -> float:
    """A 3.6-V lithium-thionyl-chloride cell under load over its life (x: 0 … 1): flat, then falling fast."""
    if x < 0.85:
        return 3.62 - 0.08 * x
    return 3.552 - 0.65 * ((x - 0.85) / 0.15) ** 1.5


def test_lithium_curve_warns_before_its_last_ten_percent_of_uplinks() -> None:
    n = 200 * 24  # hourly uplinks over 200 days
    st = Stream([{"eui": eui(1), "kind": "weather_station"}], per_batch=500)
    for k in range(n):
        st.up(T0 + k * 3600.0, eui(1), {Q_VOLTS: round(_li_socl2(k / n), 3)})
    opened = st.opened(BATTERY)
    assert opened, "the cell's end was never announced"
    k_warn = (opened[0].at.timestamp() - T0) / 3600
    assert k_warn < 0.9 * n
    assert k_warn > 0.8 * n  # not during the flat part of its life
    assert opened[0].evidence["source"] == "voltage"


def test_thresholds_per_chemistry_and_forecast_date() -> None:
    devices = [{"eui": eui(1), "kind": "weather_station", "tags": {"battery_chemistry": "li-mno2"}},
               {"eui": eui(2), "kind": "weather_station"}]
    st = Stream(devices, per_batch=100)
    for k in range(48):
        t = T0 + k * 3600.0
        st.up(t, eui(1), {Q_VOLTS: 2.9})  # fine for a 3-V Li-MnO2 cell, far too low for Li-SOCl2
        st.up(t, eui(2), {Q_VOLTS: 2.9})
    assert [(d.subject, d.severity) for d in st.opened(BATTERY)] == [(eui(2), "critical")]
    pts = [(T0 + d * 86400.0, 3.6 - 0.01 * d) for d in range(30)]
    when = forecast(pts, 3.3)
    assert when == pytest.approx(T0 + 30 * 86400.0, abs=1)


def test_devstatus_only_when_no_voltage_and_never_for_external_power() -> None:
    st = Stream([{"eui": eui(i), "kind": "water_meter"} for i in (1, 2)], HealthSettings(devstatus_low_percent=20))
    st.up(T0, eui(1), {Q_BATTERY: 15.0})
    st.up(T0, eui(2), {Q_BATTERY: 15.0, Q_VOLTS: 3.6})
    assert [d.subject for d in st.opened(BATTERY)] == [eui(1)]
