"""Air reports on the small known city (env_city.py): the ATMO index per zone with its evidence, and the EAQI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from clapas.indices.air import AirQualitySettings, Pollutant
from clapas.reports import air
from clapas.store.base import Store
from tests.reports.env_city import NOW, TODAY, local, open_city


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = open_city(str(tmp_path_factory.mktemp("air") / "city.duckdb"))
    yield s
    s.close()


def test_atmo_is_the_worst_sub_index_with_pm_means_and_gas_maxima(store: Store) -> None:
    report = air.atmo_report(store, TODAY)
    assert report["indicative"] is True and "Indicatif" in report["statement"]
    assert [s["label"] for s in report["scale"]][:3] == ["Bon", "Moyen", "Dégradé"]
    zones = {z["zone"]: z for z in report["zones"]}
    assert set(zones) == {"dma-01", "dma-02"}
    centre = zones["dma-01"]
    # PM10: the mean of A1 (30) and A2 (50) each valid hour = 40, the top of class 2 (upper bounds inclusive);
    # the 10:00 hour (two readings of four at A1, none at A2) is invalid and left out
    pm10 = centre["pollutants"]["pm10"]
    assert (pm10["value"], pm10["sub_index"], pm10["aggregation"]) == (40.0, 2, "mean")
    assert (pm10["valid_hours"], pm10["hours"], pm10["sensors"]) == (23, 24, 2)
    # NO2: the maximum hourly value, 95 µg/m³ (90 < c ≤ 120): class 3
    no2 = centre["pollutants"]["no2"]
    assert (no2["value"], no2["sub_index"], no2["aggregation"], no2["sensors"]) == (95.0, 3, "max", 1)
    assert (centre["index"], centre["label"], centre["colour"], centre["drivers"]) == (3, "Dégradé", "#F0E641",
                                                                                        ["no2"])
    assert centre["sensors"] == 2 and centre["completeness"] == round(23 / 24, 3) and centre["indicative"]
    assert centre["name"] == "Centre"
    assert centre["previous"] == {"day": date(2026, 7, 1), "index": None, "label": "Indisponible", "colour": None}


def test_a_pollutant_short_of_valid_hours_makes_the_index_unavailable(store: Store) -> None:
    east = {z["zone"]: z for z in air.atmo_report(store, TODAY)["zones"]}["dma-02"]
    assert (east["index"], east["label"], east["missing"]) == (None, "Indisponible", ["pm10"])
    assert east["pollutants"]["pm10"]["valid_hours"] == 8 and east["pollutants"]["pm10"]["required_hours"] == 18


def test_required_pollutants_and_a_day_without_data(store: Store) -> None:
    strict = AirQualitySettings(atmo_required=(Pollutant.O3,))
    centre = {z["zone"]: z for z in air.atmo_report(store, TODAY, settings=strict)["zones"]}["dma-01"]
    assert centre["index"] is None and centre["missing"] == ["o3"]
    assert air.atmo_report(store, date(2026, 1, 1))["zones"] == []  # nothing read: no zone to show


def test_eaqi_of_the_newest_complete_hour(store: Store) -> None:
    report = air.eaqi_report(store, now=NOW)
    assert report["until"] == local(TODAY, 23)  # the 23:00 hour is in progress at 23:30
    zones = {z["zone"]: z for z in report["zones"]}
    centre = zones["dma-01"]
    # 22:00: NO2 50 (40 < c ≤ 90: Fair); PM10 24 h running mean 40 over 22 valid hours (Fair)
    assert centre["hour"] == local(TODAY, 22) and centre["sub_indices"] == {"pm10": 2, "no2": 2}
    assert (centre["level"], centre["label"], centre["drivers"]) == (2, "Fair", ["pm10", "no2"])
    # dma-02: PM10 for 8 hours only, too few for its 24 h running mean: no level at its newest hour
    east = zones["dma-02"]
    assert east["hour"] == local(TODAY, 7) and east["level"] is None
