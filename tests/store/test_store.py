"""One suite, run against both stores: they must keep the same things and give the same answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from clapas.model import Device, Zone
from clapas.store import schema
from clapas.store.base import DUPLICATE, QUARANTINED, STORED, Batch, Store
from tests.store.batches import device_event, quarantined, series, uplink, utc

A, B, C = "a000000000000001", "b000000000000002", "c000000000000003"
HOUR = timedelta(hours=1)


@pytest.fixture(params=["duckdb", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[..., Store]]:
    """Opens stores on one database (a DuckDB file, or a fresh PostgreSQL database); all closed afterwards."""
    if request.param == "duckdb":
        from clapas.store.duckdb import DuckDBStore

        url, cls = f"duckdb:///{tmp_path}/t.duckdb", DuckDBStore
    else:
        from clapas.store.postgres import PostgresStore

        url, cls = request.getfixturevalue("pg_url"), PostgresStore
    opened: list[Store] = []

    def make(timezone: str = "Europe/Paris") -> Store:
        opened.append(cls(url, timezone=timezone))
        return opened[-1]

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()


def values(rows: list[dict]) -> list[tuple]:
    """History rows as comparable tuples (aware datetimes compare by instant, whatever their zone)."""
    return [tuple(r.values()) for r in rows]


# schema ---------------------------------------------------------------------------------------------------
def test_migrations_are_idempotent(make_store) -> None:
    first = make_store()
    first.write(uplink(Batch(), A, utc(2026, 3, 1, 12), {"air.temperature": 12.5}))
    first.migrate()
    first.close()
    again = make_store()
    again.migrate()
    assert again.counts()["observations"] == 1
    assert again.device(A)["eui"] == A
    steps = len(schema.duckdb_migrations())
    assert steps == len(schema.postgres_migrations())
    # released steps are numbered 1, 2, 3 … in the order they apply, the same in both stores
    assert [v for v, _ in schema.duckdb_migrations()] == list(range(1, steps + 1))
    assert [v for v, _ in schema.postgres_migrations()] == list(range(1, steps + 1))
    last = steps
    assert again.sql("SELECT count(*) AS n, max(version) AS v FROM schema_version")[0] == {"n": steps, "v": last}


# devices and latest values --------------------------------------------------------------------------------
def test_written_batch_registers_devices_with_their_last_state(store: Store) -> None:
    b = Batch()
    uplink(b, A, utc(2026, 3, 1, 12), {"air.temperature": 12.5}, f_cnt=7, rssi=-90, snr=5.5, kind="weather_station",
           zone="ecusson")
    uplink(b, A, utc(2026, 3, 1, 11), {"air.temperature": 11.0}, f_cnt=6, rssi=-80, kind="weather_station")
    uplink(b, B, utc(2026, 3, 1, 12, 5), {"water.volume": 100.25}, kind="water_meter", zone="dma-1")
    store.write(b)

    devices = store.devices()
    assert [d["eui"] for d in devices] == [A, B]
    a = store.device(A)
    assert (a["kind"], a["zone"], a["last_f_cnt"], a["last_rssi"], a["last_snr"]) == (
        "weather_station", "ecusson", 7, -90, 5.5)
    assert a["last_seen"] == utc(2026, 3, 1, 12) and a["last_seen"].tzinfo is not None
    assert [d["eui"] for d in store.devices(kind="water_meter")] == [B]
    assert [d["eui"] for d in store.devices(zone="ecusson")] == [A]
    assert [d["eui"] for d in store.devices(limit=1, offset=1)] == [B]
    assert store.device("ffffffffffffffff") is None


def test_a_late_uplink_does_not_roll_the_last_state_back(store: Store) -> None:
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 12), {"battery": 90}, f_cnt=10, rssi=-90))
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 11), {"battery": 91}, f_cnt=9, rssi=-70))
    a = store.device(A)
    assert (a["last_seen"], a["first_seen"], a["last_f_cnt"], a["last_rssi"]) == (
        utc(2026, 3, 1, 12), utc(2026, 3, 1, 11), 10, -90)


def test_latest_gives_the_last_value_of_each_quantity(store: Store) -> None:
    b = Batch()
    uplink(b, A, utc(2026, 3, 1, 10), {"air.temperature": 10.0, "air.humidity": 60.0})
    uplink(b, A, utc(2026, 3, 1, 12), {"air.temperature": 12.0})
    uplink(b, B, utc(2026, 3, 1, 13), {"air.temperature": 99.0})
    store.write(b)
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 11), {"air.temperature": 11.0}))  # late: not the latest

    assert store.latest(A) == [
        {"quantity": "air.temperature", "unit": "Cel", "time": utc(2026, 3, 1, 12), "value": 12.0},
        {"quantity": "air.humidity", "unit": "%", "time": utc(2026, 3, 1, 10), "value": 60.0},
    ]
    assert store.latest("ffffffffffffffff") == []
    assert store.quantities_in_use() == {"air.temperature": 2, "air.humidity": 1}


# history --------------------------------------------------------------------------------------------------
def test_raw_history_is_the_half_open_range_in_time_order(store: Store) -> None:
    store.write(series(A, utc(2026, 3, 1, 0), HOUR, "water.flow", [1, 2, 3, 4, 5]))
    store.write(series(B, utc(2026, 3, 1, 0), HOUR, "water.flow", [50, 60]))
    rows = store.observations(A, "water.flow", utc(2026, 3, 1, 1), utc(2026, 3, 1, 4))
    assert values(rows) == [(utc(2026, 3, 1, 1), 2.0), (utc(2026, 3, 1, 2), 3.0), (utc(2026, 3, 1, 3), 4.0)]
    assert list(rows[0]) == ["time", "value"]
    assert len(store.observations(A, "water.flow", utc(2026, 3, 1), utc(2026, 3, 2), limit=2)) == 2
    assert store.observations(A, "air.co2", utc(2026, 3, 1), utc(2026, 3, 2)) == []


# 21:30Z on 31 March 2026 is 23:30 in Paris (CEST): the next local day starts at 22:00Z, the next month at 00:00Z
SPAN = [(utc(2026, 3, 31, 21, 30), 1.0), (utc(2026, 3, 31, 22), 2.0), (utc(2026, 3, 31, 22, 30), 3.0),
        (utc(2026, 3, 31, 23), 4.0), (utc(2026, 3, 31, 23, 30), 5.0), (utc(2026, 4, 1, 0), 6.0),
        (utc(2026, 4, 1, 0, 30), 7.0)]


def write_span(store: Store) -> None:
    """SPAN in two batches, so that rollups are updated, not only created."""
    for part in (SPAN[:3], SPAN[3:]):
        b = Batch()
        for t, v in part:
            uplink(b, A, t, {"air.temperature": v})
        store.write(b)


def test_hourly_buckets_are_utc_hours_across_a_month_boundary(store: Store) -> None:
    write_span(store)
    rows = store.observations(A, "air.temperature", utc(2026, 3, 31), utc(2026, 4, 2), "1h")
    assert list(rows[0]) == ["time", "mean", "min", "max", "count"]
    assert values(rows) == [
        (utc(2026, 3, 31, 21), 1.0, 1.0, 1.0, 1),
        (utc(2026, 3, 31, 22), 2.5, 2.0, 3.0, 2),
        (utc(2026, 3, 31, 23), 4.5, 4.0, 5.0, 2),
        (utc(2026, 4, 1, 0), 6.5, 6.0, 7.0, 2),
    ]


def test_daily_buckets_are_the_city_days(store: Store) -> None:
    write_span(store)
    rows = store.observations(A, "air.temperature", utc(2026, 3, 30), utc(2026, 4, 2), "1d")
    assert values(rows) == [
        (utc(2026, 3, 30, 22), 1.0, 1.0, 1.0, 1),  # 31 March in Paris
        (utc(2026, 3, 31, 22), 4.5, 2.0, 7.0, 6),  # 1 April in Paris
    ]
    assert rows[0]["time"].utcoffset() is not None


def test_a_range_that_cuts_a_bucket_gives_the_buckets_starting_in_it_whole(store: Store) -> None:
    write_span(store)
    hourly = store.observations(A, "air.temperature", utc(2026, 3, 31, 22, 15), utc(2026, 3, 31, 23, 15), "1h")
    assert values(hourly) == [(utc(2026, 3, 31, 23), 4.5, 4.0, 5.0, 2)]
    daily = store.observations(A, "air.temperature", utc(2026, 3, 31), utc(2026, 3, 31, 23), "1d")
    assert values(daily) == [(utc(2026, 3, 31, 22), 4.5, 2.0, 7.0, 6)]


def test_daily_buckets_follow_the_time_zone_given(make_store) -> None:
    store = make_store(timezone="UTC")
    write_span(store)
    rows = store.observations(A, "air.temperature", utc(2026, 3, 30), utc(2026, 4, 2), "1d")
    assert values(rows) == [(utc(2026, 3, 31), 3.0, 1.0, 5.0, 5), (utc(2026, 4, 1), 6.5, 6.0, 7.0, 2)]


# journal --------------------------------------------------------------------------------------------------
def mixed_batch() -> Batch:
    """Two stored uplinks, a duplicate of one, a message that failed to decode and one that failed to parse."""
    b = Batch()
    uplink(b, A, utc(2026, 3, 1, 10), {"air.temperature": 10.0}, dedup="k1")
    uplink(b, A, utc(2026, 3, 1, 10), status=DUPLICATE, dedup="k1")
    uplink(b, B, utc(2026, 3, 1, 11), {"water.volume": 3.5, "water.flow": 12.0}, dedup="k2")
    quarantined(b, C, utc(2026, 3, 1, 12), "cayenne_lpp: unknown Cayenne LPP type 200 on channel 1")
    quarantined(b, None, utc(2026, 3, 1, 13), "not JSON")
    return b


def test_quarantined_and_duplicate_messages_are_listed_with_their_error(store: Store) -> None:
    store.write(mixed_batch())
    q = store.uplinks(status=QUARANTINED)
    assert [(u["dev_eui"], u["error"]) for u in q] == [
        (None, "not JSON"), (C, "cayenne_lpp: unknown Cayenne LPP type 200 on channel 1")]
    assert q[1]["raw"].startswith('{"devEui":"c0') and q[1]["raw_size"] == len(q[1]["raw"])
    assert "raw_hex" not in q[1]
    dup = store.uplinks(status=DUPLICATE)
    assert [(u["dev_eui"], u["dedup_key"], u["error"]) for u in dup] == [(A, "k1", None)]
    assert dup[0]["received_at"].tzinfo is not None
    newest_first = store.uplinks()
    assert [u["status"] for u in newest_first] == [QUARANTINED, QUARANTINED, STORED, DUPLICATE, STORED]
    assert newest_first[0]["id"] > newest_first[-1]["id"]
    assert [u["status"] for u in store.uplinks(dev_eui=A)] == [DUPLICATE, STORED]
    assert len(store.uplinks(limit=2, offset=4)) == 1


def test_counts_account_for_everything_received(store: Store) -> None:
    assert store.counts() == {"stored": 0, "quarantined": 0, "duplicate": 0, "observations": 0, "devices": 0}
    store.write(mixed_batch())
    # the device of a quarantined message is not registered: nothing is known of it but its EUI
    assert store.counts() == {"stored": 2, "quarantined": 2, "duplicate": 1, "observations": 3, "devices": 2}


def test_device_events_are_kept_newest_first(store: Store) -> None:
    b = Batch()
    device_event(b, A, utc(2026, 3, 1, 9), "join", {"devAddr": "01020304"})
    uplink(b, A, utc(2026, 3, 1, 10), {"battery": 80})
    device_event(b, A, utc(2026, 3, 1, 11), "txack", {"fCntDown": 3})
    store.write(b)
    events = store.device_events(A)
    assert [(e["time"], e["event"], e["data"]) for e in events] == [
        (utc(2026, 3, 1, 11), "txack", {"fCntDown": 3}), (utc(2026, 3, 1, 9), "join", {"devAddr": "01020304"})]
    assert len(store.device_events(A, limit=1)) == 1
    assert store.device_events(B) == []


def test_recent_dedup_keys_are_the_newest_first(store: Store) -> None:
    b = Batch()
    for i in range(5):
        uplink(b, A, utc(2026, 3, 1, i), {"battery": 90 - i}, dedup=f"k{i}")
    uplink(b, A, utc(2026, 3, 1, 6), {"battery": 80})  # no key
    store.write(b)
    assert store.recent_dedup_keys(3) == ["k4", "k3", "k2"]


def test_iter_journal_pages_in_id_order_and_filters(store: Store) -> None:
    store.write(mixed_batch())
    b = Batch()
    for i in range(4):
        uplink(b, B, utc(2026, 3, 2, i), {"water.flow": float(i)})
    store.write(b)
    chunks = list(store.iter_journal(batch_size=3))
    assert [len(c) for c in chunks] == [3, 3, 2]  # 8 stored or quarantined; the duplicate is left out
    ids = [r.id for c in chunks for r in c]
    assert ids == sorted(ids)
    first = chunks[0][0]
    assert (first.source, first.event, first.fmt, first.status) == ("chirpstack", "up", "json", STORED)
    assert first.raw.startswith(b'{"devEui":"a0') and first.received_at.tzinfo is not None
    assert sum(len(c) for c in store.iter_journal(statuses=(DUPLICATE,))) == 1
    assert sum(len(c) for c in store.iter_journal(dev_eui=B)) == 5
    since = [r.received_at for c in store.iter_journal(since=utc(2026, 3, 2, 1), until=utc(2026, 3, 2, 3))
             for r in c]
    assert since == [utc(2026, 3, 2, 1, 0, 1), utc(2026, 3, 2, 2, 0, 1)]


# registry -------------------------------------------------------------------------------------------------
METER = Device(eui=A, name="Compteur rue Foch", kind="water_meter", zone="dma-1", lat=43.61, lon=3.87,
               data_class="personal", expected_interval_s=3600, subscriber="S-42", premises_use="habitation",
               tags={"dn": "15"})


def test_registry_fields_survive_uplinks_and_network_state_survives_imports(store: Store) -> None:
    assert store.upsert_devices([METER]) == 1
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 12), {"water.volume": 12.5}, f_cnt=4, rssi=-101,
                       kind="air_quality", zone="elsewhere"))
    a = store.device(A)
    assert (a["kind"], a["zone"], a["lat"], a["data_class"], a["subscriber"], a["premises_use"]) == (
        "water_meter", "dma-1", 43.61, "personal", "S-42", "habitation")
    assert (a["last_seen"], a["last_f_cnt"], a["last_rssi"]) == (utc(2026, 3, 1, 12), 4, -101)

    renamed = Device(**{**{f: getattr(METER, f) for f in METER.__struct_fields__}, "name": "Compteur 2"})
    assert store.upsert_devices([METER, renamed]) == 1  # one EUI twice: the last entry wins
    a = store.device(A)
    assert (a["name"], a["tags"], a["last_seen"], a["last_f_cnt"], a["last_rssi"]) == (
        "Compteur 2", {"dn": "15"}, utc(2026, 3, 1, 12), 4, -101)
    assert store.counts()["devices"] == 1


def test_a_device_imported_after_it_was_seen_keeps_its_history(store: Store) -> None:
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 12), {"water.volume": 12.5}, kind="generic"))
    store.upsert_devices([METER, Device(eui=B, kind="air_quality")])
    assert store.device(A)["kind"] == "water_meter"
    assert store.latest(A)[0]["value"] == 12.5
    store.write(uplink(Batch(), A, utc(2026, 3, 1, 13), {"water.volume": 12.75}))
    assert [r["value"] for r in store.observations(A, "water.volume", utc(2026, 3, 1), utc(2026, 3, 2))] == [
        12.5, 12.75]
    assert store.device(B)["last_seen"] is None


def test_tags_the_city_set_at_run_time_stay_when_the_network_server_sends_its_own(store: Store) -> None:
    """`selfservice.tags`: a device's tags set through the API (a `devices.<eui>.tags` row of the history) are no
    longer replaced by those of its next uplink; another device's still follow the network server."""
    b = uplink(Batch(), A, utc(2026, 3, 1, 12), {"battery": 90})
    uplink(b, B, utc(2026, 3, 1, 12), {"battery": 90})
    store.write(b)
    store.set_device_tags(A, {"river": "Lez"})
    store.record_setting(f"devices.{A}.tags", '{"river":"Lez"}', actor="crues", previous="{}")
    b = uplink(Batch(), A, utc(2026, 3, 1, 13), {"battery": 89})
    uplink(b, B, utc(2026, 3, 1, 13), {"battery": 89})
    for eui in (A, B):
        b.dev_by_eui[eui].tags = {"river": "Mosson"}
    store.write(b)
    assert store.device(A)["tags"] == {"river": "Lez"}
    assert store.device(B)["tags"] == {"river": "Mosson"}
    assert store.device(A)["last_seen"] == utc(2026, 3, 1, 13)


def test_zones_list_their_device_count(store: Store) -> None:
    square = {"type": "Polygon", "coordinates": [[[3.8, 43.6], [3.9, 43.6], [3.9, 43.7], [3.8, 43.6]]]}
    store.upsert_zones([Zone(id="dma-1", name="DMA 1", kind="dma", geometry=square, properties={"m3": 10}),
                        Zone(id="parc-1", name="Parc", kind="park")])
    store.upsert_devices([METER, Device(eui=B, zone="dma-1"), Device(eui=C, zone="other")])
    store.upsert_zones([Zone(id="parc-1", name="Parc Méric", kind="park")])
    assert store.zones() == [
        {"id": "dma-1", "name": "DMA 1", "kind": "dma", "parent": "", "geometry": square,
         "properties": {"m3": 10}, "devices": 2},
        {"id": "parc-1", "name": "Parc Méric", "kind": "park", "parent": "", "geometry": None, "properties": {},
         "devices": 0},
    ]


# replay ---------------------------------------------------------------------------------------------------
def journal_ids(store: Store, eui: str | None = None) -> list[int]:
    return [r.id for c in store.iter_journal(dev_eui=eui) for r in c]


def test_replace_changes_values_without_duplicates_and_keeps_rollups_exact(store: Store) -> None:
    write_span(store)
    ids = journal_ids(store)
    t3, t4 = SPAN[3][0], SPAN[4][0]  # both in the 23:00Z hour
    replay = Batch()
    uplink(replay, A, t3, {"air.temperature": 40.0, "air.humidity": 55.0}, journal_id=ids[3])
    uplink(replay, A, t4, {"air.temperature": 50.0}, journal_id=ids[4])
    store.replace(replay)
    store.replace(replay)  # replaying twice changes nothing more

    day = (utc(2026, 3, 31), utc(2026, 4, 2))
    raw = store.observations(A, "air.temperature", *day)
    assert [r["value"] for r in raw] == [1, 2, 3, 40, 50, 6, 7]
    assert values(store.observations(A, "air.temperature", *day, "1h"))[2] == (utc(2026, 3, 31, 23), 45.0, 40.0,
                                                                              50.0, 2)
    assert values(store.observations(A, "air.temperature", utc(2026, 3, 30), day[1], "1d")) == [
        (utc(2026, 3, 30, 22), 1.0, 1.0, 1.0, 1), (utc(2026, 3, 31, 22), 18.0, 2.0, 50.0, 6)]
    assert values(store.observations(A, "air.humidity", *day, "1d")) == [(utc(2026, 3, 31, 22), 55.0, 55.0, 55.0, 1)]
    assert store.counts()["observations"] == 8
    assert store.counts()["stored"] == 7


def test_replay_stores_a_quarantined_message_and_quarantines_a_stored_one(store: Store) -> None:
    b = Batch()
    uplink(b, A, utc(2026, 3, 1, 10), {"water.flow": 5.0})
    quarantined(b, A, utc(2026, 3, 1, 11), "decoder failed")
    store.write(b)
    stored_id, quarantined_id = journal_ids(store)
    replay = Batch()
    uplink(replay, A, utc(2026, 3, 1, 10), status=QUARANTINED, error="now rejected", journal_id=stored_id)
    uplink(replay, A, utc(2026, 3, 1, 11), {"water.flow": 7.0}, journal_id=quarantined_id)
    store.replace(replay)

    assert [(u["id"], u["status"], u["error"]) for u in store.uplinks()] == [
        (quarantined_id, STORED, None), (stored_id, QUARANTINED, "now rejected")]
    day = (utc(2026, 3, 1), utc(2026, 3, 2))
    assert values(store.observations(A, "water.flow", *day)) == [(utc(2026, 3, 1, 11), 7.0)]
    assert values(store.observations(A, "water.flow", *day, "1h")) == [(utc(2026, 3, 1, 11), 7.0, 7.0, 7.0, 1)]
    # 1 March in Paris starts at 23:00Z the day before: a range from midnight UTC leaves that bucket out
    assert store.observations(A, "water.flow", *day, "1d") == []
    assert values(store.observations(A, "water.flow", utc(2026, 2, 28), day[1], "1d")) == [
        (utc(2026, 2, 28, 23), 7.0, 7.0, 7.0, 1)]
    assert store.counts()["observations"] == 1


def test_replay_does_not_double_device_events(store: Store) -> None:
    store.write(device_event(Batch(), A, utc(2026, 3, 1, 9), "join", {"devAddr": "01"}))
    replay = device_event(Batch(), A, utc(2026, 3, 1, 9), "join", {"devAddr": "01"})
    replay.j_id[0] = journal_ids(store)[0]
    store.replace(replay)
    assert [e["event"] for e in store.device_events(A)] == ["join"]


def test_rows_of_a_device_the_batch_did_not_describe_register_it_bare(store: Store) -> None:
    b = uplink(Batch(), A, utc(2026, 3, 1, 10), {"battery": 90})
    b.dev_by_eui.clear()
    store.write(b)
    # when a device was heard comes from the journal rows, described or not
    assert store.device(A)["last_seen"] == utc(2026, 3, 1, 10)
    assert store.latest(A)[0]["value"] == 90


# bulk history (Store.series): many devices, one query, the same answers as per-device `observations` ----------
HALF = timedelta(minutes=30)


def fill_two_stations(store: Store) -> None:
    b = Batch()
    uplink(b, A, utc(2026, 3, 1, 0), {"air.temperature": 10.0}, kind="weather_station")
    uplink(b, B, utc(2026, 3, 1, 0), {"air.temperature": 20.0}, kind="weather_station")
    uplink(b, C, utc(2026, 3, 1, 0), {"water.level": 1.0}, kind="water_level")
    store.write(b)
    store.write(series(A, utc(2026, 3, 1, 0, 30), HALF, "air.temperature", [11, 12, 13]))
    store.write(series(B, utc(2026, 3, 1, 0, 30), HALF, "air.temperature", [21, 22, 23]))


def series_tuples(rows: list[dict]) -> list[tuple]:
    return [tuple(r.values()) for r in rows]


def test_raw_series_of_several_devices_ordered_by_device_then_time(store: Store) -> None:
    fill_two_stations(store)
    rows = store.series("air.temperature", utc(2026, 3, 1, 0, 30), utc(2026, 3, 1, 1, 30), euis=[B, A])
    assert list(rows[0]) == ["eui", "time", "value"]
    assert series_tuples(rows) == [(A, utc(2026, 3, 1, 0, 30), 11.0), (A, utc(2026, 3, 1, 1), 12.0),
                            (B, utc(2026, 3, 1, 0, 30), 21.0), (B, utc(2026, 3, 1, 1), 22.0)]


def test_devices_by_kind_or_all_and_an_empty_list_is_none(store: Store) -> None:
    fill_two_stations(store)
    day = (utc(2026, 3, 1), utc(2026, 3, 2))
    assert {r["eui"] for r in store.series("air.temperature", *day, kind="weather_station")} == {A, B}
    assert {r["eui"] for r in store.series("air.temperature", *day, kind="water_level")} == set()
    assert {r["eui"] for r in store.series("water.level", *day)} == {C}
    assert store.series("air.temperature", *day, euis=[]) == []
    assert {r["eui"] for r in store.series("air.temperature", *day, euis=[A], kind="weather_station")} == {A}


def test_hourly_series_match_each_device_history(store: Store) -> None:
    fill_two_stations(store)
    start, end = utc(2026, 3, 1), utc(2026, 3, 1, 2)
    rows = store.series("air.temperature", start, end, kind="weather_station", resolution="1h")
    assert list(rows[0]) == ["eui", "time", "mean", "min", "max", "count"]
    assert series_tuples(rows) == [
        (A, utc(2026, 3, 1, 0), 10.5, 10.0, 11.0, 2), (A, utc(2026, 3, 1, 1), 12.5, 12.0, 13.0, 2),
        (B, utc(2026, 3, 1, 0), 20.5, 20.0, 21.0, 2), (B, utc(2026, 3, 1, 1), 22.5, 22.0, 23.0, 2)]
    for eui in (A, B):
        alone = store.observations(eui, "air.temperature", start, end, "1h")
        assert series_tuples(alone) == [t[1:] for t in series_tuples(rows) if t[0] == eui]


def test_daily_series_are_city_days_before_and_after_the_rollup_step(store: Store) -> None:
    fill_two_stations(store)
    want = [(A, utc(2026, 2, 28, 23), 11.5, 10.0, 13.0, 4), (B, utc(2026, 2, 28, 23), 21.5, 20.0, 23.0, 4)]
    rows = store.series("air.temperature", utc(2026, 2, 28), utc(2026, 3, 2), euis=[A, B], resolution="1d")
    assert series_tuples(rows) == want
    if hasattr(store, "maintain"):  # PostgreSQL: the same answer from the rollups
        store.maintain(settle_s=0)
        rows = store.series("air.temperature", utc(2026, 2, 28), utc(2026, 3, 2), euis=[A, B], resolution="1d")
        assert series_tuples(rows) == want


def test_latest_of_many_devices_in_one_read(store: Store) -> None:
    """`latest_many`: what `latest` says of each device (the NGSI-LD tenant's bulk read)."""
    b = Batch()
    for h in range(3):
        uplink(b, A, utc(2026, 3, 1, 12) + h * HOUR, {"air.temperature": 10.0 + h, "air.humidity": 50.0})
        uplink(b, B, utc(2026, 3, 1, 12) + h * HOUR, {"water.volume": 100.0 + h})
    store.write(b)
    euis = [A, B, C]
    many = store.latest_many(euis)
    assert many == {e: store.latest(e) for e in euis[:2]}
    assert [r["value"] for r in many[A]] == [12.0, 50.0] and store.latest_many([]) == {}
