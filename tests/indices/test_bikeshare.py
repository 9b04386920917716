"""Station KPIs on a crafted day of one-minute polls (issue 12, "Done when" 2)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from clapas.indices.bikeshare import (
    EMPTY,
    FULL,
    UNKNOWN,
    BikeShareSettings,
    Sample,
    Windows,
    episodes,
    exemptions,
    flows,
    hold_cap,
    shares,
    state_at,
    timeline,
)

TZ = "Europe/Paris"
DAY0 = datetime(2026, 6, 2, tzinfo=ZoneInfo(TZ)).timestamp()  # a Tuesday, local midnight
POLL = 60.0
S = BikeShareSettings()


def local(h: float) -> float:
    return DAY0 + h * 3600


def crafted_day(runs: list[tuple[float, float]], gap: tuple[float, float] | None = None) -> list[Sample]:
    """One poll a minute; empty (0 bikes) inside each (start hour, minutes) run; no poll strictly inside `gap`."""
    out = []
    for k in range(24 * 60):
        t = DAY0 + k * POLL
        if gap and gap[0] < t < gap[1]:
            continue
        empty = any(local(a) <= t < local(a) + m * 60 for a, m in runs)
        out.append(Sample(t, 0 if empty else 7, 5))
    return out


def test_episode_durations_exact_to_one_poll_and_only_long_runs_violate():
    runs = [(3.0, 100), (9.0, 30), (12.0, 70), (21.0, 130)]
    samples = crafted_day(runs)
    cap = hold_cap(POLL, S)
    eps = episodes(timeline(samples, cap, until=local(24)), Windows(S, TZ))
    got = [(e.start, round(e.duration_s), e.violation, e.peak) for e in eps if e.state == EMPTY]
    # off-peak 100 min < 120: no violation; peak 30 < 60 no; peak 70 > 60 yes; off-peak 130 > 120 yes
    assert got == [(local(3), 6000, False, False), (local(9), 1800, False, True), (local(12), 4200, True, True),
                   (local(21), 7800, True, False)]
    for e, (_, minutes) in zip([e for e in eps if e.state == EMPTY], runs, strict=True):
        assert abs(e.duration_s - minutes * 60) <= POLL


def test_a_twenty_minute_poll_gap_is_unknown_never_empty():
    gap = (local(12.5), local(12.5) + 20 * 60)
    samples = crafted_day([(12.0, 70)], gap=gap)
    cap = hold_cap(POLL, S)
    tl = timeline(samples, cap, until=local(24))
    assert state_at(tl, gap[0] + 16 * 60) == UNKNOWN  # beyond the 15-min hold
    assert state_at(tl, gap[0] + 10 * 60) == EMPTY  # still held
    eps = [e for e in episodes(tl, Windows(S, TZ)) if e.state == EMPTY]
    # the run is cut by the unknown stretch: two episodes, the first censored at its hold's end
    assert eps[0].censored and eps[0].end == samples[[s.t for s in samples].index(gap[0])].t + cap
    sh = shares(tl, Windows(S, TZ))
    assert sh.unknown_s == 5 * 60
    assert sh.known_s == 24 * 3600 - 5 * 60


def test_closed_station_is_neither_empty_nor_full_and_shares_use_renting_time():
    t = [DAY0 + k * 600 for k in range(7)]
    samples = [Sample(t[0], 0, 5), Sample(t[1], 0, 5, renting=False, returning=False), Sample(t[2], 4, 0),
               Sample(t[3], 4, 0, installed=False), Sample(t[4], 4, 2), Sample(t[5], 4, 2), Sample(t[6], 4, 2)]
    tl = timeline(samples, hold_cap(600, S), until=t[6] + 600)
    assert [i.state for i in tl][:4] == [EMPTY, "closed", FULL, "closed"]
    sh = shares(tl, Windows(S, TZ))
    assert sh.empty_share == round(600 / (5 * 600), 6)  # renting: all but the two closed samples


def test_flows_are_lower_bounds_and_rebalancing_apart():
    samples = [Sample(DAY0 + k * 60, n, 10) for k, n in enumerate([5, 4, 6, 6, 20, 19])]
    f = flows(samples, hold_cap(60, S), capacity=30, s=S)
    assert (f.departures_lb, f.arrivals_lb) == (2, 2)
    assert f.rebalancing == [(DAY0 + 240, 14)]


def test_neighbour_exemption():
    w = Windows(S, TZ)
    a = [Sample(local(12) + k * 60, 0, 5) for k in range(90)]
    b = [Sample(local(12) + k * 60, 0, 5) for k in range(90)]
    c = [Sample(local(12) + k * 60, 3, 5) for k in range(90)]
    cap = hold_cap(60, S)
    tls = {"a": timeline(a, cap), "b": timeline(b, cap), "c": timeline(c, cap)}
    eps = {k: episodes(v, w) for k, v in tls.items()}
    pos = {"a": (43.6, 3.87), "b": (43.601, 3.87), "c": (43.7, 3.9)}
    out = exemptions(eps, tls, pos, w)
    assert out["a"][0].violation and out["a"][0].exempt
    assert not exemptions(eps, tls, {"a": pos["a"], "c": pos["c"]}, w)["a"][0].exempt
