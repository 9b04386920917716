"""The settings holder over a real store: changes validated as the config file is, seen by another process's
holder within `reload_s`, overrides the base no longer accepts skipped; every detector handed new settings sees
them down to its parts (the sub-rules that keep their own reference to the section)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clapas.alerts.wiring import build_detectors
from clapas.config import Settings
from clapas.detectors.base import DetectorRunner, MemorySink, Registry
from clapas.indices.flood import FloodSettings
from clapas.selfservice.holder import InvalidValue, SettingsHolder, effective
from clapas.selfservice.paths import NotOverridable
from clapas.store.duckdb import DuckDBStore

WHO = {"actor": "test", "via": "local", "role": "admin"}


@pytest.fixture
def store(tmp_path: Path):
    s = DuckDBStore(f"duckdb:///{tmp_path / 'city.duckdb'}")
    yield s
    s.close()


def test_another_process_sees_a_change_within_reload_s(store: DuckDBStore) -> None:
    api, worker = SettingsHolder(Settings(), store), SettingsHolder(Settings(), store, reload_s=0.2)
    api.change("water.burst_q3_share", 0.6, **WHO)
    assert api.current.water.burst_q3_share == 0.6 and api.version == 1
    worker.maybe_reload()  # looked less than reload_s ago: not yet
    assert worker.current.water.burst_q3_share == 0.8 and worker.version == 0
    time.sleep(0.25)
    worker.maybe_reload()
    assert worker.current.water.burst_q3_share == 0.6 and worker.version == 1


def test_changes_are_checked_as_the_config_file_is_and_whole(store: DuckDBStore) -> None:
    h = SettingsHolder(Settings(), store)
    with pytest.raises(InvalidValue, match=r"Expected `int`, got `str` - at `\$.water.night_start_hour`"):
        h.change("water.night_start_hour", "one", **WHO)
    with pytest.raises(NotOverridable, match=r"auth\.enforce cannot be changed at run time"):
        h.change("auth.enforce", False, **WHO)
    h.change("flood.rain_windows_h", [1, 3, 6, 12, 48], **WHO)  # same number of windows: the depths still fit
    with pytest.raises(InvalidValue, match="one depth per window"):
        h.change("flood.rain_windows_h", [1, 3], **WHO)
    assert [r["path"] for r in store.settings_history()] == ["flood.rain_windows_h"]


def test_an_override_the_base_no_longer_accepts_is_skipped_not_fatal(store: DuckDBStore) -> None:
    SettingsHolder(Settings(), store).change("flood.rain_heavy_mm", [1, 2, 3, 4, 5], **WHO)
    # the city's file now has three windows: five depths no longer fit
    base = Settings(flood=FloodSettings(rain_windows_h=(1, 3, 6), rain_heavy_mm=(30, 45, 55),
                                        rain_intense_mm=(50, 80, 100), rain_very_intense_mm=(75, 120, 150)))
    h = SettingsHolder(base, store)
    assert h.current.flood.rain_heavy_mm == (30, 45, 55)
    assert "one depth per window" in h.skipped["flood.rain_heavy_mm"]


def test_every_detector_sees_new_settings_down_to_its_parts() -> None:
    base = Settings()
    dets = build_detectors(base)
    runner = DetectorRunner(dets, MemorySink(), Registry())
    new = effective(base, [(["water", "burst_q3_share"], 0.6), (["heat", "spike_c"], 9.0),
                           (["museum", "p_low"], 10.0), (["flood", "rise_1h_m_per_h"], 0.5),
                           (["bikeshare", "hold_min_s"], 60.0), (["counters", "spike_factor"], 9.0),
                           (["air", "atmo_pm10"], list(base.air.atmo_pm10))])
    runner.reconfigure(new)
    by = {type(d).__name__: d for d in dets}
    water = by["WaterDetector"]
    for part in (water, water.burst, water.leak, water.night, water.overconsumption, water.district):
        assert part.s is new.water, part
    assert by["FloodDetector"].s is new.flood and by["MuseumDetector"].s is new.museum
    assert by["MobilityDetector"].s is new.bikeshare and by["MobilityDetector"].c is new.counters
    heat = by["HeatDetector"]
    assert heat.s.spike_c == 9.0 and heat.heatwave.s is heat.s and heat.stress.s is heat.s
    assert heat.s.timezone == base.timezone  # on the city's clock, as it was built
    assert by["AirDetector"].settings == new.air


def test_a_store_down_at_start_leaves_the_file_settings_until_it_answers(tmp_path: Path) -> None:
    """`clapas serve` over an unreachable store still starts (its /healthz then says why): the holder keeps the
    config file's settings, and reads the overrides once the store answers."""
    path = tmp_path / "city.duckdb"
    first = DuckDBStore(f"duckdb:///{path}")
    SettingsHolder(Settings(), first).change("water.burst_q3_share", 0.6, **WHO)
    first.close()
    holder = SettingsHolder(Settings(), first, reload_s=0)  # a closed store: every read fails
    assert holder.current.water.burst_q3_share == 0.8 and holder.version == 0
    holder.store = again = DuckDBStore(f"duckdb:///{path}")  # the store is back
    holder.maybe_reload()
    assert holder.current.water.burst_q3_share == 0.6 and holder.version == 1
    again.close()
