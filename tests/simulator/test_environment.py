"""The environmental scoring set (`environment_incidents`) and what the signals make of it: several incidents of
each kind, spaced and placed as planned, and near misses that really stay under what their rules are for. Signals
are read directly (no pipeline): the score tests run the whole chain."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from clapas.simulator.city import RAIN_TIP_MM, build_city
from clapas.simulator.incidents import (
    ALL_KINDS,
    ENV_KINDS,
    HVAC_CLEAR_DAYS,
    LEGITIMATE,
    NEAR_MISS_KINDS,
    environment_incidents,
    select,
)
from clapas.simulator.signals import Signals

TZ = ZoneInfo("Europe/Paris")
SEED = 3
START = datetime(2026, 8, 9, 22, tzinfo=UTC)  # a local midnight
END = START + timedelta(days=28)
DAY = 86400.0
HERAULT_IBMN, HERAULT_IBMX = 22.0, 35.0  # domain-rules §2.1
PM10_INFORMATION, PM10_ALERT = 50.0, 80.0  # daily means, §4.3
NO2_INFORMATION, NO2_ALERT = 200.0, 400.0  # hourly; the alert over 3 consecutive hours
SO2_INFORMATION, SO2_ALERT = 300.0, 500.0  # hourly; the alert over 3 consecutive hours
O3_INFORMATION, O3_ALERT = 180.0, 240.0  # hourly
MOULD_RH, MOULD_DAYS = 75.0, 7.0  # MuseumSettings: above 75 %RH for a week
FLOOD_RAIN_3H_MM = 45.0  # FloodSettings' lowest 3-hour depth (heavy, ≈ 2-year)


@pytest.fixture(scope="module")
def city():
    return build_city(SEED, 200)


@pytest.fixture(scope="module")
def incidents(city):
    return environment_incidents(city, START, END, SEED)


def of(incidents, kind):
    return [i for i in incidents if i.kind == kind]


def test_deterministic_and_within_the_run(city, incidents):
    assert environment_incidents(city, START, END, SEED) == incidents
    assert all(START <= i.start < i.end <= END for i in incidents)
    assert set(NEAR_MISS_KINDS) <= LEGITIMATE and set(NEAR_MISS_KINDS) <= set(ALL_KINDS)
    for i in incidents:
        assert i.expected_alert == (i.kind not in NEAR_MISS_KINDS)
    assert [i.kind for i in select("environment", city, START, END, SEED)] == [i.kind for i in incidents]
    assert {i.kind for i in select("heat_peak,flood", city, START, END, SEED)} == {"heat_peak", "flood"}
    assert set(ENV_KINDS) <= set(ALL_KINDS) and not set(ENV_KINDS) & LEGITIMATE
    assert {i.kind for i in select("so2_plume,damp_room", city, START, END, SEED)} == {"so2_plume", "damp_room"}


def test_several_of_each_spaced_so_rules_can_lift(city, incidents):
    assert len(of(incidents, "heatwave")) == 3 and len(of(incidents, "heat_peak")) == 2
    params = {(i.params["tmax_c"], i.params["tmin_c"]) for i in of(incidents, "heatwave")}
    assert len(params) == 3  # each heatwave its own
    floods = of(incidents, "flood")
    catchments = {z.id for z in city.zones if z.kind == "catchment"}
    assert len(floods) == 6 and {f.zone for f in floods} == catchments
    for a in floods:
        assert set(a.devices) == {d.eui for d in city.devices if d.group == a.zone
                                  and d.kind in ("water_level", "rain_gauge")}
        for b in floods:
            if a is not b and a.zone == b.zone:
                assert abs(a.t0 - b.t0) >= 3 * DAY  # the river is back down in between
    hot = of(incidents, "heatwave") + of(incidents, "heat_peak")
    for st in floods + of(incidents, "heavy_shower"):  # storms end heat spells, they do not rain inside them
        assert not any(h.t0 + DAY / 2 <= st.t0 < h.t1 - DAY / 2 for h in hot)
    assert len(of(incidents, "heavy_shower")) == 3 and len(of(incidents, "mild_pollution")) >= 3
    # every air and museum rule has at least three cases to find (the ones over their alert thresholds on
    # different districts or rooms), and cases of the level below that must stay under it
    for kind in ENV_KINDS:
        assert len(of(incidents, kind)) >= (2 if kind == "damp_spell" else 3), kind
    for kind in ("ozone_episode", "no2_episode", "so2_plume"):
        assert len({i.zone for i in of(incidents, kind)}) >= 3, kind
    assert len({i.zone for i in of(incidents, "damp_room")}) >= 2


def test_pollution_is_zone_specific(city, incidents):
    sensors = defaultdict(set)
    for d in city.by_kind("air_quality"):
        sensors[d.device.zone].add(d.eui)
    episodes = defaultdict(set)
    for i in of(incidents, "pollution"):
        assert set(i.devices) == sensors[i.zone]
        episodes[i.start].add(i.zone)
    assert len(episodes) == 3
    assert any(z == set(sensors) for z in episodes.values())  # a regional episode
    assert any(len(z) < len(sensors) for z in episodes.values())  # and local ones


def test_hvac_failures_on_different_rooms_blips_apart(city, incidents):
    failures = of(incidents, "hvac_failure")
    rooms = {d.device.zone for d in city.by_kind("indoor_climate")}
    assert len(failures) == 5 and {f.zone for f in failures} == rooms
    blips = of(incidents, "hvac_blip")
    assert len(blips) >= 3
    for b in blips:
        assert b.t1 - b.t0 <= 3600
        assert all(abs(b.t0 - f.t0) > HVAC_CLEAR_DAYS * DAY - DAY for f in failures if f.zone == b.zone)


def test_damp_rooms_clear_of_failures_and_blips(incidents):
    failures, blips = of(incidents, "hvac_failure"), of(incidents, "hvac_blip")
    damp = of(incidents, "damp_room") + of(incidents, "damp_spell")
    for a in damp:
        assert a.params["rh_target"] > MOULD_RH + 4
        same_room = [f for f in failures + damp if f.zone == a.zone and f is not a]
        assert all(b.t0 > a.t1 + HVAC_CLEAR_DAYS * DAY or a.t0 > b.t1 + HVAC_CLEAR_DAYS * DAY for b in same_room)
        assert not [b for b in blips if b.zone == a.zone and a.t0 - HVAC_CLEAR_DAYS * DAY < b.t0 < a.t1 + DAY]
    assert all(d.t1 - d.t0 > (MOULD_DAYS + 1) * DAY for d in of(incidents, "damp_room"))
    assert all(d.t1 - d.t0 < (MOULD_DAYS - 3) * DAY for d in of(incidents, "damp_spell"))


def test_gaps_are_hours_long(incidents):
    gaps = of(incidents, "silent")
    assert len(gaps) == 6
    assert all(3600 <= g.t1 - g.t0 <= 8 * 3600 for g in gaps)


# --- the signals ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def series(city, incidents):
    """Every environmental device's readings over the run, asked in time order as the simulation does."""
    sig = Signals(city, SEED, incidents, START.timestamp())
    out = {}
    for d in city.devices:
        if d.kind not in ("weather_station", "air_quality", "water_level", "rain_gauge", "indoor_climate"):
            continue
        step = float(d.device.expected_interval_s)
        rows, t = [], START.timestamp() + step
        while t < END.timestamp():
            r = sig.readings(d, t - step, t)
            if "distance" in r:
                r["water.level"] = float(d.device.tags["level_datum"]) - r["distance"]
            if d.kind == "rain_gauge" and "counter.count" in r:
                r["rain.amount"] = r["counter.count"] * RAIN_TIP_MM
            rows.append((t, r))
            t += step
        out[d.eui] = rows
    return out


def _local_day(t: float):
    return datetime.fromtimestamp(t, TZ).date()


def test_each_heatwave_its_own_heat_and_peaks_stay_under_the_thresholds(city, incidents, series):
    ref = next(d for d in city.by_kind("weather_station") if d.site == "rural")
    tn, tx = defaultdict(lambda: math.inf), defaultdict(lambda: -math.inf)
    for t, r in series[ref.eui]:
        day = _local_day(t)
        tn[day], tx[day] = min(tn[day], r["air.temperature"]), max(tx[day], r["air.temperature"])
    for hw in of(incidents, "heatwave"):
        hottest = max(tx[_local_day(t)] for t in range(int(hw.t0 + DAY), int(hw.t1 - DAY / 2), 3600))
        assert abs(hottest - hw.params["tmax_c"]) < 1.0
    days = sorted(tn)
    met = {days[k] for k in range(2, len(days))
           if statistics.mean(tn[x] for x in days[k - 2:k + 1]) >= HERAULT_IBMN
           and statistics.mean(tx[x] for x in days[k - 2:k + 1]) >= HERAULT_IBMX}
    heat_days = {_local_day(t) for hw in of(incidents, "heatwave")
                 for t in range(int(hw.t0), int(hw.t1 + DAY), 3600)}  # a day after: trailing means
    assert met and met <= heat_days
    for hw in of(incidents, "heatwave"):
        assert any(hw.t0 <= datetime.combine(d, datetime.min.time(), TZ).timestamp() <= hw.t1 for d in met)


def test_heavy_showers_stay_under_the_flood_rules(city, incidents, series):
    for sh in of(incidents, "heavy_shower"):
        for d in city.devices:
            if d.eui not in sh.devices:
                continue
            during = [(t, r) for t, r in series[d.eui] if sh.t0 <= t < sh.t1 + 12 * 3600]
            if d.kind == "water_level":
                assert max(r["water.level"] for _, r in during) < float(d.device.tags["threshold_yellow"]) - 0.2
            else:
                mm = [r["rain.amount"] for _, r in during]
                assert sum(mm) > 5 and max(sum(mm[k:k + 18]) for k in range(len(mm))) < FLOOD_RAIN_3H_MM / 2


def zone_hours(city, series, key):
    """zone → UTC hour → the zone's hourly value (the mean of its sensors' hourly means, as the air detector)."""
    per = defaultdict(lambda: defaultdict(list))
    for d in city.by_kind("air_quality"):
        hours = defaultdict(list)
        for t, r in series[d.eui]:
            hours[int(t // 3600) * 3600].append(r[key])
        for h, vs in hours.items():
            per[d.device.zone][h].append(statistics.mean(vs))
    return {z: {h: statistics.mean(v) for h, v in hs.items()} for z, hs in per.items()}


def longest_run_above(values, threshold):
    """The longest run of consecutive values above a threshold."""
    best = run = 0
    for v in values:
        run = run + 1 if v > threshold else 0
        best = max(best, run)
    return best


def test_pollution_between_the_thresholds_dust_over_the_alert_mild_under_all(incidents, series):
    def daily_means(inc):
        by_day = defaultdict(list)
        for eui in inc.devices:
            for t, r in series[eui]:
                if inc.t0 <= t < inc.t1 + DAY / 2:
                    by_day[_local_day(t)].append(r["air.pm10"])
        return [statistics.mean(v) for v in by_day.values() if len(v) > 40]

    for inc in of(incidents, "pollution"):
        means = daily_means(inc)
        assert PM10_INFORMATION + 5 < max(means) < PM10_ALERT - 3
    for inc in of(incidents, "dust_episode"):
        assert max(daily_means(inc)) > PM10_ALERT + 10
    for inc in of(incidents, "mild_pollution"):
        assert max(daily_means(inc)) < PM10_INFORMATION - 2


@pytest.mark.parametrize(("key", "kind", "low", "high"), [
    ("air.no2", "no2_episode", NO2_ALERT, None), ("air.no2", "no2_peak", NO2_INFORMATION, NO2_ALERT),
    ("air.so2", "so2_plume", SO2_ALERT, None), ("air.so2", "so2_puff", SO2_INFORMATION, SO2_ALERT),
])
def test_plumes_over_their_thresholds_peaks_under_the_alert(city, incidents, series, key, kind, low, high):
    """An episode's district is over the alert threshold for 3 consecutive hours; a peak's over the information
    threshold, under the alert's; every other district, and every other time, under the information's."""
    hours = zone_hours(city, series, key)
    plumes = [i for i in incidents if i.params.get("pollutant") == key.split(".")[1]]
    for inc in of(incidents, kind):
        during = [hours[inc.zone][h] for h in sorted(hours[inc.zone]) if inc.t0 <= h < inc.t1]
        if high is None:
            assert longest_run_above(during, low * 1.05) >= 3, (kind, during)
        else:
            assert max(during) > low * 1.15 and max(during) < high, (kind, during)
            assert longest_run_above(during, high * 0.8) < 3, (kind, during)
    outside = [v for z, hs in hours.items() for h, v in hs.items()
               if not any(p.zone == z and p.t0 <= h < p.t1 for p in plumes)]
    assert max(outside) < (NO2_INFORMATION if key == "air.no2" else SO2_INFORMATION) / 2


def test_ozone_over_information_in_heatwaves_over_alert_in_episodes_only(city, incidents, series):
    hours = zone_hours(city, series, "air.o3")
    episodes = of(incidents, "ozone_episode")
    for hw in of(incidents, "heatwave"):
        assert max(v for hs in hours.values() for h, v in hs.items() if hw.t0 <= h < hw.t1) > O3_INFORMATION + 10
    for ep in episodes:
        assert max(v for h, v in hours[ep.zone].items() if ep.t0 <= h < ep.t1) > O3_ALERT + 10
    outside = [v for z, hs in hours.items() for h, v in hs.items()
               if not any(e.zone == z and e.t0 <= h < e.t1 for e in episodes)]
    assert max(outside) < O3_ALERT - 15


def test_damp_rooms_above_the_mould_limit_for_over_a_week_spells_and_failures_not(city, incidents, series):
    step = 900.0
    rooms = defaultdict(lambda: defaultdict(list))  # room → step → its sensors' RH
    for d in city.by_kind("indoor_climate"):
        for t, r in series[d.eui]:
            rooms[d.device.zone][int(t // step)].append(r["air.humidity"])
    for kind, at_least, under in (("damp_room", MOULD_DAYS + 0.5, None), ("damp_spell", 2.5, MOULD_DAYS - 2.5),
                                  ("hvac_failure", 0.0, 1.0)):
        for inc in of(incidents, kind):
            steps = rooms[inc.zone]
            values = [statistics.mean(steps[k]) for k in sorted(steps) if inc.t0 - DAY <= k * step < inc.t1 + 2 * DAY]
            days = longest_run_above(values, MOULD_RH) * step / DAY
            assert days >= at_least and (under is None or days < under), (kind, inc.zone, days)


def test_hvac_blip_stays_in_the_band_a_failure_leaves_it(city, incidents, series):
    for kind, inside in (("hvac_blip", True), ("hvac_failure", False)):
        for inc in of(incidents, kind):
            zone = city.zone(inc.zone).properties
            for eui in inc.devices:
                vals = [r for t, r in series[eui] if inc.t0 <= t < inc.t1 + 3 * 3600]
                in_band = all(r["air.humidity"] <= zone["rh_max"] and r["air.temperature"] <= zone["t_max"]
                              for r in vals)
                assert in_band == inside, (kind, inc.zone)


def test_rain_cools_the_air_towards_its_wet_bulb(city, incidents, series):
    """No rain-soaked 30 °C afternoon: the dew point stays within Montpellier's records (about 25 °C) and a
    storm brings the temperature down."""
    for d in city.by_kind("weather_station"):
        for _, r in series[d.eui]:
            t, rh = r["air.temperature"], r["air.humidity"]
            g = math.log(rh / 100) + 17.625 * t / (243.04 + t)
            assert 243.04 * g / (17.625 - g) < 26.0
    ref = next(d for d in city.by_kind("weather_station") if d.site == "rural")
    for st in of(incidents, "flood"):
        mid = st.t0 + st.params["rain_hours"] * 3600 / 2
        before = [r["air.temperature"] for t, r in series[ref.eui] if mid - DAY - 1800 <= t < mid - DAY + 1800]
        during = [r["air.temperature"] for t, r in series[ref.eui] if mid - 1800 <= t < mid + 1800]
        if before and during:
            assert statistics.mean(during) < statistics.mean(before) - 2
