"""The museum rules on hand-made room streams: band edges, the one-hour debounce, clearing, escalation, the mean of a
room's sensors, ASHRAE set points, the 24-hour fluctuation and mould risk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from clapas.detectors import CLEAR, OPEN, Detection, DetectorRunner, MemorySink, Registry
from clapas.detectors.base import run_observations
from clapas.detectors.museum import CLIMATE, FLUCTUATION, MOULD, MuseumDetector
from clapas.indices.museum import MuseumSettings
from clapas.model import QUANTITY_BY_KEY

T = QUANTITY_BY_KEY["air.temperature"].id
RH = QUANTITY_BY_KEY["air.humidity"].id
START = datetime(2026, 6, 1, tzinfo=UTC)
ROOM, ROOM2, OFFICE = "fabre-room-01", "fabre-room-02", "mairie-bureau"
S1, S2, S3, S4 = "00000000000000c1", "00000000000000c2", "00000000000000c3", "00000000000000c4"
Row = tuple[datetime, str, int, float]
Climate = Callable[[float], tuple[float, float]]  # hours since START → (°C, %RH)


class ListSink:
    """Every detection as emitted, escalations included (MemorySink drops re-opens of an open alert)."""

    def __init__(self) -> None:
        self.all: list[Detection] = []

    def handle(self, detections: list[Detection]) -> None:
        self.all += detections

    def of(self, rule: str, subject: str = ROOM) -> list[Detection]:
        return [d for d in self.all if d.rule == rule and d.subject == subject]


def registry(room2_class: str = "") -> Registry:
    zones = [{"id": ROOM, "kind": "museum_room", "name": "Salle des Colonnes"},
             {"id": ROOM2, "kind": "museum_room", "properties": {"climate_class": room2_class} if room2_class else {}},
             {"id": OFFICE, "kind": "office"}]
    devices = [{"eui": S1, "kind": "indoor_climate", "zone": ROOM}, {"eui": S2, "kind": "indoor_climate", "zone": ROOM},
               {"eui": S3, "kind": "indoor_climate", "zone": ROOM2},
               {"eui": S4, "kind": "indoor_climate", "zone": OFFICE}]
    return Registry(devices=devices, zones=zones)


def steady(t_c: float = 20.0, rh: float = 50.0) -> Climate:
    return lambda h: (t_c, rh)


def sensor(eui: str, climate: Climate, hours: float, *, every_s: float = 900, phase_s: float = 420,
           lost: Callable[[float], bool] = lambda h: False, start: datetime = START) -> Iterator[Row]:
    """A thermohygrometer every 15 min (7 min into each 15-min step)."""
    t = start + timedelta(seconds=phase_s)
    end = start + timedelta(hours=hours)
    while t < end:
        h = (t - START).total_seconds() / 3600
        if not lost(h):
            c, rh = climate(h)
            yield t, eui, T, c
            yield t, eui, RH, rh
        t += timedelta(seconds=every_s)


def run(rows: list[Row], settings: MuseumSettings | None = None, chunk: int = 997,
        reg: Registry | None = None) -> ListSink:
    sink = ListSink()
    runner = DetectorRunner([MuseumDetector(settings)], sink, reg or registry())
    run_observations(runner, sorted(rows, key=lambda r: (r[0], r[1])), chunk=chunk)
    runner.finish(max(r[0] for r in rows).timestamp() + 3600)
    return sink


def at(h: float) -> datetime:
    return START + timedelta(hours=h)


def blip(base: Climate, h0: float, h1: float, t_c: float | None = None, rh: float | None = None) -> Climate:
    def f(h: float) -> tuple[float, float]:
        c, r = base(h)
        if h0 <= h < h1:
            return (t_c if t_c is not None else c), (rh if rh is not None else r)
        return c, r
    return f


def test_quiet_room_and_band_edges_raise_nothing() -> None:
    # Bizot: 40–60 %RH, 16–25 °C, bounds included; 2 days sitting exactly on the edges
    def edges(h: float) -> tuple[float, float]:
        return (25.0, 60.0) if int(h) % 2 else (16.0, 40.0)
    rows = [*sensor(S1, edges, 48), *sensor(S2, edges, 48)]
    assert run(rows).all == []


def test_breach_opens_after_an_hour_and_clears_after_an_hour_in_band() -> None:
    climate = blip(steady(), 10, 14, rh=64.0)  # 4 h at 64 %RH from 10:00 UTC
    sink = run([*sensor(S1, climate, 24), *sensor(S2, climate, 24)])
    opened, cleared = sink.of(CLIMATE)
    assert opened.state == OPEN and opened.at == at(11)  # the 10:00 step counts, 4 steps out = 1 h at 11:00
    assert opened.severity == "warning"  # 4 %RH beyond: major from 5
    assert opened.evidence["peak"]["humidity"]["value"] == 64.0
    assert opened.evidence["start"] == at(10).isoformat()
    assert cleared.state == CLEAR and cleared.at == at(15)  # back in band at 14:00, one hour later
    assert cleared.evidence["start"] == at(10).isoformat() and cleared.evidence["end"] == at(14).isoformat()
    assert cleared.evidence["duration_h"] == 4.0
    assert "Salle des Colonnes" in opened.message and "Bizot" in opened.message


def test_just_past_the_edge_counts() -> None:
    rows = [*sensor(S1, blip(steady(), 10, 13, t_c=25.1), 24), *sensor(S2, blip(steady(), 10, 13, t_c=25.1), 24)]
    (opened, _), = [run(rows).of(CLIMATE)]
    assert opened.evidence["peak"]["temperature"]["excess"] == pytest.approx(0.1)


@pytest.mark.parametrize(("minutes", "alerts"), [(45, 0), (60, 1), (90, 1)])
def test_duration_rule(minutes: int, alerts: int) -> None:
    climate = blip(steady(), 10, 10 + minutes / 60, rh=70.0)
    sink = run([*sensor(S1, climate, 24), *sensor(S2, climate, 24)])
    assert len([d for d in sink.of(CLIMATE) if d.state == OPEN]) == alerts


def test_a_deepening_breach_escalates() -> None:
    def climate(h: float) -> tuple[float, float]:
        return 20.0, 50.0 if h < 10 else 63.0 if h < 13 else 72.0 if h < 16 else 50.0
    sink = run([*sensor(S1, climate, 24)])
    states = [(d.state, d.severity) for d in sink.of(CLIMATE)]
    assert states == [(OPEN, "warning"), (OPEN, "critical"), (CLEAR, "info")]
    assert sink.of(CLIMATE)[1].at == at(13.25)  # the first 72 % step, judged at its end
    mem = MemorySink()
    mem.handle(sink.all)
    assert len(mem.opened(CLIMATE)) == 1  # one alert, escalated


def test_room_value_is_the_mean_of_its_sensors_and_a_lost_uplink_does_not_move_it() -> None:
    # 64 % and 52 %: the room is at 58 %, in band. The 52 % sensor loses its uplinks for 1.5 h: its last value is
    # carried (stale after 2 h), so the room stays at 58 % and nothing opens.
    rows = [*sensor(S1, steady(rh=64.0), 24), *sensor(S2, steady(rh=52.0), 24, lost=lambda h: 8 <= h < 9.5)]
    assert run(rows).of(CLIMATE) == []
    # silent for 4 h: stale, the room is its one remaining sensor at 64 %, out of band
    rows = [*sensor(S1, steady(rh=64.0), 24), *sensor(S2, steady(rh=52.0), 24, lost=lambda h: 8 <= h < 12)]
    opened = run(rows).of(CLIMATE)[0]
    # last reading 07:52: stale in the step ending 10:00 (2 h 08 min), so out of band from 09:45, an hour at 10:45
    assert opened.at == at(10.75)
    assert opened.evidence["peak"]["humidity"]["value"] == 64.0


def test_other_zones_and_answers_do_not_depend_on_batching() -> None:
    climate = blip(steady(), 5, 30, rh=68.0, t_c=27.0)
    rows = [*sensor(S1, climate, 48), *sensor(S2, climate, 48, phase_s=600), *sensor(S4, climate, 48)]
    a = run(rows, chunk=37)
    b = run(rows, chunk=100_000)
    assert a.all == b.all
    assert {d.subject for d in a.all} == {ROOM}  # the office's thermohygrometer is not a museum room's


def test_ashrae_class_bands_around_the_room_set_point() -> None:
    # room 2 is class AA by its zone property: ±5 %RH and ±2 K around the seasonal set point. Eight quiet days at
    # 18 °C / 45 %RH make the set point 18 °C / 45 %; then 52 %RH (inside Bizot and inside 50 ± 5) is a breach.
    def climate(h: float) -> tuple[float, float]:
        return (18.0, 52.0) if 8 * 24 + 10 <= h < 8 * 24 + 14 else (18.0, 45.0)
    rows = [*sensor(S3, climate, 9 * 24)]
    sink = run(rows, reg=registry("AA"))
    opened, cleared = sink.of(CLIMATE, ROOM2)
    assert opened.evidence["class"] == "AA"
    assert opened.evidence["band_rh"] == [40.0, 50.0] and opened.evidence["band_t"] == [16.0, 20.0]
    assert opened.at == at(8 * 24 + 11) and cleared.at == at(8 * 24 + 15)
    # in its first week the room has no history: RH is judged around 50 % (45–55), T has no relative limit
    early = [*sensor(S3, lambda h: (18.0, 52.0), 3 * 24)]
    assert run(early, reg=registry("AA")).of(CLIMATE, ROOM2) == []


def test_settings_choose_the_class_and_unknown_classes_fail_early() -> None:
    s = MuseumSettings(rooms={ROOM2: "C"}, default_class="B")
    det = MuseumDetector(s)
    det.bind(registry("AA"))
    assert det._room(ROOM2).cls.name == "C"  # settings before the zone's property
    assert det._room(ROOM).cls.name == "B"
    det = MuseumDetector()
    det.bind(registry("ZZ"))  # a zone property naming no class: the default, not a crash at the first uplink
    assert det._room(ROOM2).cls.name == "Bizot"
    with pytest.raises(ValueError, match="unknown climate class 'Z'"):  # the settings are checked when built
        MuseumSettings(default_class="Z")
    with pytest.raises(ValueError, match="unknown climate class 'AAA'"):
        MuseumSettings(rooms={ROOM: "AAA"})


def test_fluctuation_on_the_24_hour_range() -> None:
    # RH climbs from 41 % to 62 % over 6 h and falls back: the 24-h range (21) exceeds Bizot's 20
    def climate(h: float) -> tuple[float, float]:
        if h < 10:
            return 20.0, 41.0
        if h < 16:
            return 20.0, 41.0 + 21.0 * (h - 10) / 6
        return 20.0, 62.0 if h < 19 else 50.0
    sink = run([*sensor(S1, climate, 72)])
    opened, cleared = sink.of(FLUCTUATION)
    assert opened.state == OPEN and at(15) < opened.at < at(17)
    assert opened.evidence["humidity"]["range"] > 20 and opened.evidence["humidity"]["limit"] == 20
    # the 41 % hours leave the 24-h window at about 34:00, then 6 h within the limit
    assert cleared.state == CLEAR and at(39) < cleared.at < at(41)


def test_fluctuation_ignores_one_stray_reading_and_swings_within_the_limit() -> None:
    def climate(h: float) -> tuple[float, float]:
        if 10 <= h < 10.25:
            return 20.0, 80.0  # one 15-min reading (a glitch): its trailing hour mean is 57.5 %
        return 20.0, 42.0 + 15.0 * (h % 24 >= 12)  # a 15 %RH swing twice a day
    sink = run([*sensor(S1, climate, 72)])
    assert sink.of(FLUCTUATION) == [] and sink.of(CLIMATE) == []


@pytest.mark.parametrize(("days", "opens"), [(6, False), (8, True)])
def test_mould_risk_after_a_week_above_75(days: int, opens: bool) -> None:
    climate = blip(steady(), 2, 2 + days * 24, rh=78.0)
    sink = run([*sensor(S1, climate, (days + 3) * 24)])
    mould = sink.of(MOULD)
    if not opens:
        assert mould == []
        return
    opened, cleared = mould
    assert opened.at == at(2 + 7 * 24) and opened.evidence["peak_rh"] == 78.0
    assert cleared.at == at(2 + days * 24 + 24)  # a day at or below 75 %
    assert sink.of(CLIMATE)[0].severity == "critical"  # 18 %RH beyond Bizot's 60 %
