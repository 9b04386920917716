"""Flood report on the small known city (env_city.py): river level, class, rises; rain accumulations and tiers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from clapas.indices.flood import FloodSettings
from clapas.reports import flood
from clapas.store.base import Store
from tests.reports.env_city import NOW, RG, G, open_city


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = open_city(str(tmp_path_factory.mktemp("flood") / "city.duckdb"))
    yield s
    s.close()


def test_river_level_against_its_thresholds_with_its_rises(store: Store) -> None:
    (gauge,) = flood.rivers_report(store, now=NOW)["rivers"]
    assert (gauge["eui"], gauge["river"], gauge["zone"]) == (G, "Lez", "catchment-lez")
    assert gauge["thresholds"] == {"yellow": 1.5, "orange": 2.3, "red": 3.3}
    # the level the rules use is the median of the last three readings (2.0, 2.1, 2.2): 2.1 m, yellow
    assert (gauge["level"], gauge["raw_level"], gauge["class_name"], gauge["class"]) == (2.1, 2.2, "yellow", 1)
    assert gauge["time"] == NOW and not gauge["stale"]
    # an hour ago the de-spiked level was 1.7 m: 0.4 m/h; three hours ago 1.0 m: 1.1 m in 3 h = 0.367 m/h
    assert (gauge["rise_1h_m_per_h"], gauge["rise_3h_m_per_h"], gauge["rising"]) == (0.4, 0.367, True)
    assert (gauge["rise_1h_m"], gauge["rise_3h_m"]) == (0.4, 1.1)


def test_a_silent_gauge_is_stale(store: Store) -> None:
    (gauge,) = flood.rivers_report(store, now=NOW + timedelta(hours=3))["rivers"]
    assert gauge["stale"] and gauge["level"] == 2.1


def test_rain_accumulations_and_tiers(store: Store) -> None:
    report = flood.rivers_report(store, now=NOW)
    assert report["windows_h"] == [1, 3, 6, 12, 24]
    (rain,) = report["rain_gauges"]
    assert rain["eui"] == RG and rain["time"] == NOW
    assert rain["accumulations_mm"] == {"1h": 12.0, "3h": 12.0, "6h": 30.0, "12h": 30.0, "24h": 30.0}
    assert rain["tier"] == "none" and set(rain["tiers"].values()) == {"none"}
    low = FloodSettings(rain_heavy_mm=(10.0, 45.0, 25.0, 65.0, 80.0))
    (rain,) = flood.rivers_report(store, now=NOW, settings=low)["rain_gauges"]
    assert rain["tiers"] == {"1h": "heavy", "3h": "none", "6h": "heavy", "12h": "none", "24h": "none"}
    assert rain["tier"] == "heavy" and rain["thresholds_mm"]["heavy"]["1h"] == 10.0
    # two hours later the last hour is dry; the 3 h window still holds the 12 mm
    (later,) = flood.rivers_report(store, now=NOW + timedelta(hours=2))["rain_gauges"]
    assert later["accumulations_mm"]["1h"] == 0.0 and later["accumulations_mm"]["3h"] == 12.0
