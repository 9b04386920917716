"""The mobility rules on the detector framework (issue 12)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from clapas.detectors.base import CLEAR, OPEN, DetectorRunner, MemorySink, Registry
from clapas.detectors.mobility import EMPTY_RULE, FULL_RULE, RESET_RULE, STALE_RULE, ZERO_RULE, MobilityDetector
from clapas.model import QUANTITY_BY_KEY

Z = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 6, 2, tzinfo=Z).timestamp()
DEVICES = [{"eui": "aa00000000000001", "kind": "bike_station", "zone": "z1"},
           {"eui": "aa00000000000002", "kind": "bikeshare_system"},
           {"eui": "aa00000000000003", "kind": "bike_counter", "zone": "z1"}]


def chain():
    sink = MemorySink()
    runner = DetectorRunner([MobilityDetector()], sink, Registry(devices=DEVICES, zones=[{"id": "z1"}]))
    return runner, sink


def rows(eui, t, **values):
    at = datetime.fromtimestamp(t, UTC)
    return [(at, eui, QUANTITY_BY_KEY[k.replace("__", ".")].id, float(v)) for k, v in values.items()]


def station(t, bikes, docks=5):
    return rows("aa00000000000001", t, bikeshare__bikes_available=bikes, bikeshare__docks_available=docks,
                bikeshare__installed=1, bikeshare__renting=1, bikeshare__returning=1)


def test_station_empty_beyond_the_limit_and_cleared_by_the_first_poll_out():
    runner, sink = chain()
    feed = []
    for k in range(200):  # one poll a minute: empty from minute 10 to 80 (70 min), full from 120 to 150
        bikes = 0 if 10 <= k < 80 else 6
        docks = 0 if 120 <= k < 150 else 5
        feed += station(T0 + 60 * k, bikes, docks)
    runner.feed(feed)
    opened = [(d.rule, d.at.timestamp()) for d in sink.transitions if d.state == OPEN]
    assert opened == [(EMPTY_RULE, T0 + 60 * 70)]  # first poll 60 min after the first poll in; full 30 < 60
    cleared = [(d.rule, d.at.timestamp()) for d in sink.transitions if d.state == CLEAR]
    assert cleared == [(EMPTY_RULE, T0 + 60 * 80)]


def test_a_poll_gap_breaks_the_run():
    runner, sink = chain()
    feed = []
    for k in list(range(0, 40)) + list(range(60, 100)):  # a 20-min gap: polls at 39 and 60
        feed += station(T0 + 60 * k, 0)
    runner.feed(feed)
    # the run restarts at minute 60 (the gap is unknown): opens at minute 120 at the earliest, beyond the data
    assert sink.opened(EMPTY_RULE) == []


def test_feed_stale_and_failing():
    runner, sink = chain()
    e = "aa00000000000002"
    runner.feed(rows(e, T0, bikeshare__poll_ok=1, bikeshare__feed_age=20)
                + rows(e, T0 + 60, bikeshare__poll_ok=1, bikeshare__feed_age=400)
                + rows(e, T0 + 120, bikeshare__poll_ok=1, bikeshare__feed_age=30)
                + [r for k in range(3) for r in rows(e, T0 + 180 + 60 * k, bikeshare__poll_ok=0)]
                + rows(e, T0 + 400, bikeshare__poll_ok=1, bikeshare__feed_age=10))
    got = [(d.state, d.at.timestamp()) for d in sink.transitions if d.rule == STALE_RULE]
    assert got == [(OPEN, T0 + 60), (CLEAR, T0 + 120), (OPEN, T0 + 300), (CLEAR, T0 + 400)]


def test_counter_reset_once_and_zero_day():
    runner, sink = chain()
    e = "aa00000000000003"
    feed = []
    total = 0.0
    for h in range(24 * 15):
        t = T0 + 3600 * (h + 1)
        day = h // 24
        n = 0.0 if day == 14 else 10.0  # day 14 (same weekday as day 7 and 0) counts nothing
        total = 5.0 if h == 30 else total + n  # a reset at hour 30
        feed += rows(e, t, counter__in=n, counter__total=total)
    runner.feed(feed)
    runner.finish(T0 + 86400 * 16)
    assert len(sink.opened(RESET_RULE)) == 1
    zero = sink.opened(ZERO_RULE)
    assert len(zero) == 1 and zero[0].evidence["day"] == "2026-06-16"


def test_state_in_the_store_a_restart_gives_the_alerts_of_an_uninterrupted_run(tmp_path):
    """The mobility rules through `clapas run`'s chain (state committed with each batch), stopped mid-incidents."""
    from datetime import timedelta
    from itertools import pairwise

    from clapas.alerts.wiring import build_alerting
    from clapas.config import Settings
    from clapas.pipeline.ingest import Pipeline
    from clapas.simulator.mobility import build_mobility, mobility_incidents, scenario_messages
    from clapas.store.base import open_store
    from tests.detectors.state_chain import alert_history

    city = build_mobility(5, stations=6, counters=2)
    start = datetime(2026, 5, 31, 22, tzinfo=UTC)
    end = start + timedelta(days=10)
    msgs = list(scenario_messages(city, mobility_incidents(city, start, end, 5), start, end))

    def run(name: str, cuts: list[int]) -> list:
        url = f"duckdb:///{tmp_path / name}"
        history: list = []
        for a, b in pairwise([0, *cuts, len(msgs)]):
            store = open_store(url)
            if a == 0:
                store.upsert_zones(city.zones)
                store.upsert_devices(city.registry_devices())
            alerting = build_alerting(Settings(), store)
            pipeline = Pipeline(store, detectors=alerting.runner)
            for i in range(a, b, 2000):
                pipeline.submit_many(msgs[i:min(i + 2000, b)])
                pipeline.flush()
            pipeline.close()
            if b == len(msgs):
                history = [h for h in alert_history(store) if h[0].startswith("mobility.")]
            store.close()
        return history

    whole = run("whole.duckdb", [])
    assert {h[0] for h in whole} >= {EMPTY_RULE, FULL_RULE, STALE_RULE, RESET_RULE}
    assert run("cut.duckdb", [len(msgs) // 3 // 2000 * 2000, 2 * len(msgs) // 3 // 2000 * 2000]) == whole
