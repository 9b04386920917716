"""Signals are plausible, and every default incident is in the ground truth and visible in the stored data."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from datetime import timedelta

from clapas.simulator.incidents import KINDS, read_truth, write_truth

from .conftest import TZ, local_hour


def _meters_without_incidents(week):
    touched = {e for i in week.incidents for e in i.devices}
    return [d for d in week.city.by_kind("water_meter") if d.eui not in touched]


def test_night_water_use_near_zero_day_peaks(week):
    flows = week.series("water.flow")
    night, peak = [], []
    for d in _meters_without_incidents(week):
        if d.device.premises_use != "habitation":
            continue
        for t, v in flows.get(d.eui, []):
            h = local_hour(t)
            if 2 <= h <= 4:
                night.append(v)
            elif h in (8, 20, 21):
                peak.append(v)
    assert statistics.mean(night) < 0.1 * statistics.mean(peak)
    assert statistics.median(night) == 0.0
    assert all(v >= 0 for v in night + peak)


def test_district_inflow_exceeds_its_customers(week):
    inflow = week.series("water.volume")
    for dm in week.city.by_kind("district_meter"):
        vals = [v for _, v in inflow[dm.eui]]
        district_m3 = vals[-1] - vals[0]
        customers = [d for d in week.city.by_kind("water_meter") if d.group == dm.group]
        billed = sum(inflow[d.eui][-1][1] - inflow[d.eui][0][1] for d in customers if d.eui in inflow)
        assert billed < district_m3 < 1.5 * billed  # background leakage on top of what customers use


def test_park_cooler_than_street_at_night(week):
    temps = week.series("air.temperature")
    hw = week.incident("heatwave")
    by_site = defaultdict(list)
    for d in week.city.by_kind("weather_station"):
        for t, v in temps.get(d.eui, []):
            if local_hour(t) in (1, 2, 3, 4) and not hw.start - timedelta(days=1) <= t < hw.end + timedelta(days=1):
                by_site[d.site].append(v)
    assert statistics.mean(by_site["park"]) + 1.0 < statistics.mean(by_site["street"])
    assert statistics.mean(by_site["rural"]) < statistics.mean(by_site["street"])


def test_humidity_anticorrelated_with_temperature(week):
    d = next(d for d in week.city.by_kind("weather_station") if d.site == "street")
    t = dict(week.series("air.temperature")[d.eui])
    rh = dict(week.series("air.humidity")[d.eui])
    common = sorted(set(t) & set(rh))
    assert statistics.correlation([t[k] for k in common], [rh[k] for k in common]) < -0.3


def test_rush_hours_busier_than_night(week):
    counts = week.series("counter.count")
    for d in week.city.by_kind("traffic_counter"):
        rush = [v for t, v in counts[d.eui] if t.weekday() < 5 and local_hour(t) in (8, 17, 18)]
        night = [v for t, v in counts[d.eui] if local_hour(t) in (2, 3, 4)]
        assert statistics.mean(rush) > 5 * statistics.mean(night)


def test_museum_rooms_stable(week):
    hvac = week.incident("hvac_failure")
    for d in week.city.by_kind("indoor_climate"):
        t = [v for ts, v in week.series("air.temperature")[d.eui] if d.eui not in hvac.devices or ts < hvac.start]
        rh = [v for ts, v in week.series("air.humidity")[d.eui] if d.eui not in hvac.devices or ts < hvac.start]
        assert min(t) > 18 and max(t) < 22.5
        assert min(rh) > 43 and max(rh) < 57


def test_truth_file_has_every_default_incident(week, tmp_path):
    path = tmp_path / "truth.jsonl"
    assert write_truth(path, week.incidents) == len(week.incidents)
    truth = read_truth(path)
    assert {i.kind for i in truth} == set(KINDS)
    assert truth == week.incidents
    for i in truth:
        assert i.start < i.end and (i.devices or i.zone)
        assert i.expected_alert == (i.kind not in ("pool_filling", "garden_watering"))


def test_leak_never_reaches_zero(week):
    leak = week.incident("leak")
    during = week.during("water.flow", leak.devices[0], leak)
    assert len(during) > 24 and min(during) >= leak.params["flow_lph"] * 0.9
    before = [v for t, v in week.series("water.flow")[leak.devices[0]] if t < leak.start]
    assert min(before) == 0.0


def test_burst_is_a_large_flow(week):
    burst = week.incident("burst")
    assert max(week.during("water.flow", burst.devices[0], burst)) > 800
    assert max(week.during("alarm.burst", burst.devices[0], burst) or [1.0]) == 1.0


def test_backflow_runs_the_index_backwards(week):
    bf = week.incident("backflow")
    eui = bf.devices[0]
    assert min(week.during("water.flow", eui, bf)) < 0
    vols = [v for t, v in week.series("water.volume")[eui] if bf.start <= t < bf.end + timedelta(hours=1)]
    assert any(b < a for a, b in itertools.pairwise(vols))
    reverse = [v for _, v in week.series("water.reverse_volume")[eui]]
    assert reverse[-1] > reverse[0]


def test_overconsumption_well_above_history(week):
    oc = week.incident("overconsumption")
    vols = week.series("water.volume")[oc.devices[0]]
    before = [(t, v) for t, v in vols if t < oc.start]
    during = [(t, v) for t, v in vols if t >= oc.start]
    rate_before = (before[-1][1] - before[0][1]) / (before[-1][0] - before[0][0]).total_seconds()
    rate_during = (during[-1][1] - during[0][1]) / (during[-1][0] - during[0][0]).total_seconds()
    assert rate_during > 2 * rate_before


def test_legitimate_pool_filling_is_not_a_never_zero_flow(week):
    pool = week.incident("pool_filling")
    eui = pool.devices[0]
    assert max(week.during("water.flow", eui, pool)) > 1000
    day = [v for t, v in week.series("water.flow")[eui] if pool.start - timedelta(hours=12) <= t < pool.end +
           timedelta(hours=12)]
    assert 0.0 in day  # hours without flow around it: not a leak


def test_garden_watered_at_night_only_at_its_hour(week):
    g = week.incident("garden_watering")
    (hour,) = g.params["local_hours"]
    nights: dict = defaultdict(float)
    for t, v in week.series("water.flow")[g.devices[0]]:
        if g.start <= t < g.end and local_hour(t) in (hour, hour + 1):
            nights[t.astimezone(TZ).date()] += v  # the two hourly uplinks that share the watering hour
    assert len(nights) >= 2
    assert all(total > 0.9 * g.params["flow_lph"] for total in nights.values())


def test_heatwave_hot_days_and_nights(week):
    hw = week.incident("heatwave")
    silent = week.incident("silent").devices
    checked = 0
    for d in week.city.by_kind("weather_station"):
        if d.site != "street" or d.eui in silent:
            continue
        vals = [(t, v) for t, v in week.series("air.temperature")[d.eui]
                if hw.start + timedelta(hours=12) <= t < hw.end - timedelta(hours=12)]
        assert max(v for _, v in vals) > 35
        assert min(v for _, v in vals) > 22
        checked += 1
    assert checked


def test_river_rises_above_thresholds_in_the_storm(week):
    flood = week.incident("flood")
    levels = week.series("water.level")
    gauges = [d for d in week.city.by_kind("water_level") if d.group == flood.zone]
    assert gauges
    for d in gauges:
        during = week.during("water.level", d.eui, flood)
        before = [v for t, v in levels[d.eui] if t < flood.start]
        assert max(during) > float(d.device.tags["threshold_orange"])
        assert max(before) < float(d.device.tags["threshold_yellow"])
    rain = [v for d in week.city.by_kind("rain_gauge") if d.group == flood.zone
            for v in week.during("rain.amount", d.eui, flood)]
    assert sum(rain) > 50


def test_pollution_episode_above_information_threshold(week):
    ep = week.incident("pollution")
    for eui in ep.devices:
        during = week.during("air.pm10", eui, ep)
        after = [v for t, v in week.series("air.pm10")[eui] if t > ep.end + timedelta(days=1)]
        assert statistics.mean(during) > 50  # PM10 information threshold (daily mean)
        assert statistics.mean(after) < 40


def test_hvac_failure_drifts_out_of_band(week):
    hv = week.incident("hvac_failure")
    for eui in hv.devices:
        assert max(week.during("air.humidity", eui, hv)) > 65
        assert max(week.during("air.temperature", eui, hv)) > 25


def test_silent_sensor_sends_nothing(week):
    s = week.incident("silent")
    rows = week.store.sql("SELECT max(time) AS last FROM journal WHERE dev_eui = ?", [s.devices[0]])
    assert rows[0]["last"] < s.start
