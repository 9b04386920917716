"""The monthly museum report on a known month: shares in band, episodes, fluctuations, completeness, the EN 15757
band after a year of data (and "not enough history" without it), CSV and JSON exports, clear errors."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from clapas.indices.museum import MuseumSettings
from clapas.model import Device, Zone
from clapas.reports.museum import (
    CSV_COLUMNS,
    ReportError,
    RoomReport,
    month_bounds,
    monthly_report,
    parse_month,
    to_csv,
    to_json,
)
from clapas.store.base import Batch
from clapas.store.duckdb import DuckDBStore
from tests.store.batches import uplink

PARIS_JUNE = (datetime(2026, 5, 31, 22, tzinfo=UTC), datetime(2026, 6, 30, 22, tzinfo=UTC))
ROOM_A, ROOM_B, ROOM_C = "fabre-room-a", "fabre-room-b", "fabre-room-c"
A1, A2, B1 = "00000000000000a1", "00000000000000a2", "00000000000000b1"
STEPS = 30 * 96  # June: 30 days of 15-min steps

RH_EPISODE = (datetime(2026, 6, 10, 8, tzinfo=UTC), datetime(2026, 6, 10, 14, tzinfo=UTC))  # 65 %RH, 6 h
T_EPISODE = (datetime(2026, 6, 20, 0, tzinfo=UTC), datetime(2026, 6, 20, 3, tzinfo=UTC))  # 26 °C, 3 h
SILENT_A2 = (datetime(2026, 6, 15, tzinfo=UTC), datetime(2026, 6, 16, tzinfo=UTC))  # one sensor off: no effect
SILENT_ROOM = (datetime(2026, 6, 25, tzinfo=UTC), datetime(2026, 6, 25, 12, tzinfo=UTC))  # both off 12 h


def _inside(t: datetime, span: tuple[datetime, datetime]) -> bool:
    return span[0] <= t < span[1]


def room_a(t: datetime) -> tuple[float, float]:
    """Bizot room: 20 °C / 50 %RH, with one RH and one T breach."""
    return (26.0 if _inside(t, T_EPISODE) else 20.0), (65.0 if _inside(t, RH_EPISODE) else 50.0)


def room_b(t: datetime) -> tuple[float, float]:
    """ASHRAE A1 room: 20 °C, RH 50 ± 4 in a daily sine (within ±5 of its set point)."""
    return 20.0, 50.0 + 4.0 * math.sin(2 * math.pi * t.hour / 24)


def _write(store: DuckDBStore, eui: str, f: Callable[[datetime], tuple[float, float]], start: datetime,
           end: datetime, step: timedelta, phase: timedelta, *silent: tuple[datetime, datetime]) -> None:
    b = Batch()
    t = start + phase
    while t < end:
        if not any(_inside(t, span) for span in silent):
            c, rh = f(t)
            uplink(b, eui, t, {"air.temperature": c, "air.humidity": rh})
        t += step
        if len(b) >= 5000:
            store.write(b)
            b = Batch()
    store.write(b)


def build_store(path: Path) -> DuckDBStore:
    """Three rooms: A (Bizot, two sensors, June only), B (class A1 by settings, one sensor, a year and more of
    hourly readings), C (no sensor)."""
    store = DuckDBStore(f"duckdb:///{path}", timezone="Europe/Paris")
    store.upsert_zones([Zone(id=ROOM_A, name="Salle des Colonnes", kind="museum_room", parent="fabre"),
                        Zone(id=ROOM_B, name="Cabinet des dessins", kind="museum_room", parent="fabre"),
                        Zone(id=ROOM_C, name="Réserve", kind="museum_room", parent="fabre",
                             properties={"climate_class": "D"}),
                        Zone(id="fabre", name="Musée Fabre", kind="museum")])
    store.upsert_devices([Device(eui=A1, kind="indoor_climate", zone=ROOM_A),
                          Device(eui=A2, kind="indoor_climate", zone=ROOM_A),
                          Device(eui=B1, kind="indoor_climate", zone=ROOM_B)])
    q = timedelta(minutes=15)
    _write(store, A1, room_a, *PARIS_JUNE, q, timedelta(minutes=3), SILENT_ROOM)
    _write(store, A2, room_a, *PARIS_JUNE, q, timedelta(minutes=9), SILENT_ROOM, SILENT_A2)
    _write(store, B1, room_b, datetime(2025, 6, 1, tzinfo=UTC), datetime(2026, 7, 16, tzinfo=UTC),
           timedelta(hours=1), timedelta(minutes=5))
    return store


SETTINGS = MuseumSettings(rooms={ROOM_B: "A1"})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    s = build_store(tmp_path_factory.mktemp("museum") / "museum.duckdb")
    yield s
    s.close()


@pytest.fixture(scope="module")
def june(store: DuckDBStore) -> dict[str, RoomReport]:
    return {r.room: r for r in monthly_report(store, "2026-06", settings=SETTINGS)}


def test_months_are_local_months() -> None:
    from zoneinfo import ZoneInfo

    assert month_bounds(date(2026, 6, 1), ZoneInfo("Europe/Paris")) == PARIS_JUNE
    assert parse_month("2026-12") == date(2026, 12, 1) and parse_month(date(2026, 6, 17)) == date(2026, 6, 1)
    for bad in ("2026-13", "June", "2026-6", "2026-06-01", ""):
        with pytest.raises(ReportError, match="expected YYYY-MM"):
            parse_month(bad)


def test_worked_month_of_a_bizot_room(june: dict[str, RoomReport]) -> None:
    a = june[ROOM_A]
    assert (a.climate_class, a.class_source, a.sensors, a.sensors_reporting) == ("Bizot", "default class", 2, 2)
    assert a.band_t == [16.0, 25.0] and a.band_rh == [40.0, 60.0]
    # both sensors silent 12 h: the last reading (23:54) is carried 2 h, up to the 01:30 step; then the room has
    # no value until the 12:00 step: 41 steps
    known = STEPS - 41
    assert a.completeness == a.completeness_t == a.completeness_rh == round(known / STEPS, 4)
    assert a.share_in_band_rh == round((known - 24) / known, 4)  # 6 h at 65 %
    assert a.share_in_band_t == round((known - 12) / known, 4)  # 3 h at 26 °C
    assert a.share_in_band_both == round((known - 36) / known, 4)
    rh_ep, t_ep = a.breach_episodes  # in time order
    assert (rh_ep.quantity, rh_ep.direction, rh_ep.start, rh_ep.end, rh_ep.duration_h, rh_ep.peak_value,
            rh_ep.peak_excess) == ("humidity", "high", *RH_EPISODE, 6.0, 65.0, 5.0)
    assert (t_ep.quantity, t_ep.start, t_ep.end, t_ep.duration_h, t_ep.peak_value, t_ep.peak_excess) == (
        "temperature", *T_EPISODE, 3.0, 26.0, 1.0)
    assert a.breach_hours == 9.0
    assert a.max_fluctuation_rh is not None and a.max_fluctuation_rh.range == 15.0
    assert a.max_fluctuation_rh.limit == 20 and not a.max_fluctuation_rh.exceeded
    # Bizot gives no 24-h T limit: the range is reported, never "exceeded"
    assert a.max_fluctuation_t is not None and a.max_fluctuation_t.range == 6.0
    assert a.max_fluctuation_t.limit is None and not a.max_fluctuation_t.exceeded
    assert a.mould_risk_hours == 0 and a.hours_above_mould_rh == 0
    assert a.mean_rh == pytest.approx(50 + 15 * 24 / known, abs=0.01)
    assert a.en15757 is None and a.en15757_note.startswith("not enough history: 30 days")


def test_en15757_band_after_a_year_and_ashrae_bands(june: dict[str, RoomReport]) -> None:
    b = june[ROOM_B]
    assert (b.climate_class, b.class_source, b.sensors) == ("A1", "settings", 1)
    # A1: ±5 %RH, ±2 K around the room's own set point (its mean: 20 °C, 50 %RH)
    assert b.band_rh == [pytest.approx(45.0, abs=0.05), pytest.approx(55.0, abs=0.05)]
    assert b.band_t == [18.0, 22.0]
    assert b.share_in_band_both == 1.0 and b.breach_episodes == [] and b.completeness == 1.0
    assert b.max_fluctuation_rh is not None and b.max_fluctuation_rh.limit == 10
    # hourly readings carried over the hour's steps: the smoothed values are the hourly ones, 46 % at 18:00 UTC
    # and 54 % at 06:00
    assert b.max_fluctuation_rh.range == 8.0 and not b.max_fluctuation_rh.exceeded
    rh, t = b.en15757  # type: ignore[misc]
    # the daily sine's 7th/93rd percentiles are within ±4 %RH: the ±10 %RH floor applies
    assert rh.quantity == "humidity" and -4 <= rh.p_low < -3 and 3 < rh.p_high <= 4
    assert (rh.lower, rh.upper, rh.floor_applied) == (-10.0, 10.0, True)
    assert rh.share_in_band == 1.0 and rh.hours_judged == 720
    assert t.quantity == "temperature" and (t.lower, t.upper, t.floor_applied) == (0.0, 0.0, False)
    assert b.en15757_note == "EN 15757 band over the year ending with the month"


def test_a_room_without_sensors(june: dict[str, RoomReport]) -> None:
    c = june[ROOM_C]
    assert (c.climate_class, c.class_source, c.sensors, c.completeness) == ("D", "zone property climate_class", 0,
                                                                             0.0)
    assert c.share_in_band_rh is None and c.breach_episodes == [] and c.max_fluctuation_rh is None
    assert c.band_rh == [None, 75.0] and c.band_t is None


def test_class_sources() -> None:
    from clapas.reports.museum import _class_source

    s = MuseumSettings(rooms={ROOM_B: "A1"})
    assert _class_source(s, ROOM_B, "D") == "settings"
    assert _class_source(s, ROOM_C, "D") == "zone property climate_class"
    assert _class_source(s, ROOM_C, "") == "default class"
    assert _class_source(s, ROOM_C, "museum") == "default class (zone property climate_class 'museum' is unknown)"


def test_rooms_filter_and_unknown_room(store: DuckDBStore) -> None:
    assert [r.room for r in monthly_report(store, "2026-06", [ROOM_C])] == [ROOM_C]
    with pytest.raises(ReportError, match=r"unknown museum room 'nope'.*fabre-room-a"):
        monthly_report(store, "2026-06", ["nope"])
    empty = monthly_report(store, "2025-01", [ROOM_A], historic=False)[0]
    assert empty.completeness == 0 and empty.en15757_note == "not computed (summary)"


def test_csv_and_json_exports(june: dict[str, RoomReport]) -> None:
    reports = [june[k] for k in sorted(june)]
    rows = list(csv.DictReader(io.StringIO(to_csv(reports))))
    assert [r["room"] for r in rows] == [ROOM_A, ROOM_B, ROOM_C]
    assert tuple(rows[0]) == CSV_COLUMNS
    a = rows[0]
    assert (a["month"], a["climate_class"], a["breach_count"], a["breach_hours"]) == ("2026-06", "Bizot", "2", "9.0")
    assert a["band_rh_low"] == "40" and a["en15757_rh_lower"] == "" and a["share_in_band_t"] != ""
    assert a["breach_episodes"] == ("humidity high 2026-06-10T08:00Z/2026-06-10T14:00Z peak 65 at "
                                    "2026-06-10T08:00Z (6 h); temperature high 2026-06-20T00:00Z/2026-06-20T03:00Z "
                                    "peak 26 at 2026-06-20T00:00Z (3 h)")
    assert rows[1]["en15757_rh_lower"] == "-10.0" and rows[2]["share_in_band_rh"] == ""
    doc = json.loads(to_json(reports))
    ra = doc["rooms"][0]
    assert ra["room"] == ROOM_A and ra["breach_episodes"][0]["start"] == "2026-06-10T08:00:00Z"
    assert ra["breach_episodes"][0]["duration_h"] == 6.0 and doc["rooms"][1]["en15757"][0]["floor_applied"] is True
