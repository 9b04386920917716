"""Grafana's role on a real PostgreSQL store: every panel's SQL runs as that role and returns rows for a small
city, and the role never reads personal data (a dwelling's meter, its readings, the store's own tables)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import psycopg
import pytest

from clapas.charter.classes import Classifier
from clapas.config import CharterSettings
from clapas.grafana.dashboards import Rules, dashboards
from clapas.grafana.views import RoleError, check_role, create_role
from clapas.model import Device
from clapas.store.base import Batch
from clapas.store.postgres import PostgresStore
from tests.store.batches import uplink

HOME, SHOP, DMA, STATION, RAIN, RIVER, AIR, ROOM, COUNTER, BIKES = (
    "a000000000000001", "a000000000000002", "b000000000000001", "c000000000000001", "c000000000000002",
    "c000000000000003", "d000000000000001", "e000000000000001", "f000000000000001", "f000000000000002")
HOURS = 72  # three days of hourly uplinks, ending an hour ago
PENDING = 12  # the last hours are written after the rollup step: read from the raw rows
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = NOW - timedelta(hours=HOURS)

DEVICES = [
    Device(eui=HOME, name="Logement 12 rue des Lilas", kind="water_meter", zone="dma-nord",
           premises_use="habitation", subscriber="S-1"),
    Device(eui=SHOP, name="Boulangerie", kind="water_meter", zone="dma-nord", premises_use="commerce"),
    Device(eui=DMA, name="Entrée secteur nord", kind="district_meter", zone="dma-nord"),
    Device(eui=STATION, name="Station Comédie", kind="weather_station", zone="centre", expected_interval_s=600),
    Device(eui=RAIN, name="Pluviomètre Lez", kind="rain_gauge", zone="lez"),
    Device(eui=RIVER, name="Lez à Lavalette", kind="water_level", zone="lez"),
    Device(eui=AIR, name="Capteur Pérols", kind="air_quality", zone="sud"),
    Device(eui=ROOM, name="Salle Courbet", kind="indoor_climate", zone="salle-courbet"),
    Device(eui=COUNTER, name="Compteur Albert 1er", kind="bike_counter", zone="centre"),
    Device(eui=BIKES, name="Station Corum", kind="bike_station", zone="centre"),
]


def readings(h: int) -> dict[str, dict[str, float]]:
    return {
        HOME: {"water.volume": 100 + 0.01 * h, "battery": 90.0},
        SHOP: {"water.volume": 500 + 0.1 * h},
        DMA: {"water.flow": 2_000.0 + 100 * (h % 24)},
        STATION: {"air.temperature": 20 + h % 10, "air.humidity": 50.0, "rain.amount": 0.2, "battery": 80 - h / 10},
        RAIN: {"rain.amount": 0.5 * (h % 3)},
        RIVER: {"water.level": 1.0 + h / 100},
        AIR: {"air.pm2_5": 10.0, "air.pm10": 20 + h % 5, "air.no2": 30.0, "air.o3": 60.0},
        ROOM: {"air.temperature": 19.5, "air.humidity": 50 + h % 4},
        COUNTER: {"counter.count": 40.0 + h % 7},
        BIKES: {"bikeshare.bikes_available": float(h % 12)},
    }


def batch(hours: range) -> Batch:
    b = Batch()
    kinds = {d.eui: d for d in DEVICES}
    for h in hours:
        for eui, values in readings(h).items():
            uplink(b, eui, START + timedelta(hours=h), values, rssi=-100.0 - h % 20, snr=5.0,
                   kind=kinds[eui].kind, zone=kinds[eui].zone)
    return b


@pytest.fixture
def city(pg_url: str):
    """The store (rolled up but for the last PENDING hours) and the URL of its Grafana role."""
    store = PostgresStore(pg_url, rollup_interval_s=None)
    store.upsert_devices(DEVICES)
    store.write(batch(range(HOURS - PENDING)))
    store.maintain(settle_s=0)
    store.write(batch(range(HOURS - PENDING, HOURS)))
    role = f"grafana_{uuid.uuid4().hex[:10]}"
    create_role(pg_url, Classifier(), "Europe/Paris", role, password="not-used-with-trust")
    create_role(pg_url, Classifier(), "Europe/Paris", role)  # idempotent: a second run changes nothing
    yield store, urlparse(pg_url)._replace(netloc=f"{role}@{urlparse(pg_url).netloc.split('@')[-1]}").geturl()
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"DROP OWNED BY {role}")
        con.execute(f"DROP ROLE {role}")


def grafana_macros(sql: str, start: datetime, end: datetime) -> str:
    """Grafana's PostgreSQL macros, expanded as Grafana expands them (RFC 3339 times, BETWEEN)."""
    a, b = f"'{start.isoformat()}'", f"'{end.isoformat()}'"
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {a} AND {b}", sql)
    sql = sql.replace("$__timeFrom()", a).replace("$__timeTo()", b)
    assert "$" not in sql, sql
    return sql


def test_every_panel_returns_rows_as_the_role_and_nothing_personal(city) -> None:
    _, role_url = city
    names = {d.eui: d.name for d in DEVICES}
    with psycopg.connect(role_url) as con:
        for board in dashboards(Rules()).values():
            for panel in board["panels"]:
                sql = grafana_macros(panel["targets"][0]["rawSql"], START - timedelta(hours=1), NOW)
                rows = con.execute(sql).fetchall()
                assert rows, (board["uid"], panel["title"])
                text = repr(rows)
                assert HOME not in text and names[HOME] not in text, (board["uid"], panel["title"])


def test_the_views_hold_open_and_restricted_rows_exactly_pending_buckets_included(city) -> None:
    _, role_url = city
    with psycopg.connect(role_url) as con:
        devices = dict(con.execute("SELECT eui, class FROM clapas_grafana.devices").fetchall())
        assert HOME not in devices  # a dwelling's meter: personal
        assert devices[SHOP] == devices[DMA] == devices[ROOM] == "restricted"
        assert devices[STATION] == devices[COUNTER] == "open"
        hours = con.execute("SELECT count(*), min(time), max(time) FROM clapas_grafana.readings_1h "
                            "WHERE eui = %s AND quantity = 'water.volume'", [SHOP]).fetchone()
        # every hour once: the rolled-up ones from the rollup, the last PENDING from the raw rows
        assert hours == (HOURS, START, START + timedelta(hours=HOURS - 1))
        assert con.execute("SELECT count(*) FROM clapas_grafana.readings_1h WHERE eui = %s", [HOME]).fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM clapas_grafana.readings_1d WHERE eui = %s", [HOME]).fetchone() == (0,)
        [(mean, count)] = con.execute("SELECT mean, count FROM clapas_grafana.readings_1h WHERE eui = %s AND "
                                      "quantity = 'air.pm10' AND time = %s", [AIR, START + timedelta(hours=3)])
        assert (mean, count) == (23.0, 1)


@pytest.mark.parametrize("table", ["observations", "devices", "rollup_1h", "rollup_1d", "journal", "alerts",
                                   "occupancy", "api_keys"])
def test_the_role_cannot_read_the_store_tables(city, table: str) -> None:
    _, role_url = city
    with psycopg.connect(role_url) as con, pytest.raises(psycopg.errors.InsufficientPrivilege):
        con.execute(f"SELECT * FROM {table} LIMIT 1")


def test_the_role_writes_nothing(city) -> None:
    _, role_url = city
    with psycopg.connect(role_url) as con, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        con.execute("CREATE TABLE grafana_was_here (x int)")


def test_a_kind_or_quantity_the_city_classes_follows_into_the_views(city, pg_url: str) -> None:
    """[charter.kinds] bike_counter = "personal", [charter.quantities] air.humidity = "personal" and air.pm10 =
    "restricted": provisioning again takes the counter and every humidity out, and makes PM10 rows restricted."""
    _, role_url = city
    role = urlparse(role_url).username
    charter = CharterSettings(kinds={"bike_counter": "personal"},
                              quantities={"air.humidity": "personal", "air.pm10": "restricted"})
    create_role(pg_url, Classifier(charter), "Europe/Paris", role)
    with psycopg.connect(role_url) as con:
        assert con.execute("SELECT count(*) FROM clapas_grafana.readings_1h WHERE quantity = 'air.humidity'"
                           ).fetchone() == (0,)
        assert con.execute("SELECT DISTINCT class FROM clapas_grafana.readings_1d WHERE eui = %s "
                           "AND quantity = 'air.pm10'", [AIR]).fetchall() == [("restricted",)]
        assert con.execute("SELECT DISTINCT class FROM clapas_grafana.readings_1h WHERE eui = %s AND quantity = "
                           "'air.no2'", [AIR]).fetchall() == [("open",)]
        assert COUNTER not in {r[0] for r in con.execute("SELECT eui FROM clapas_grafana.devices")}
        assert con.execute("SELECT count(*) FROM clapas_grafana.readings_1h WHERE eui = %s", [COUNTER]).fetchone() \
            == (0,)
        assert con.execute("SELECT count(*) FROM clapas_grafana.readings_1h WHERE eui = %s", [BIKES]).fetchone() \
            == (HOURS,)


def test_a_bad_role_name_or_a_duckdb_store_is_refused(tmp_path) -> None:
    with pytest.raises(RoleError, match="lowercase"):
        check_role("grafana; DROP TABLE devices")
    with pytest.raises(RoleError, match="PostgreSQL"):
        create_role(f"duckdb:///{tmp_path / 'c.duckdb'}", Classifier(), "Europe/Paris")


def test_the_sql_classes_are_the_classifiers(city, pg_url: str) -> None:
    """Every combination of registry class, kind and premises use: the devices view shows a device with the
    class `Classifier.device` gives it, and exactly the devices it does not class personal."""
    store, _ = city
    combos = [Device(eui=f"9{i:015x}", kind=kind, data_class=data_class, premises_use=premises)
              for i, (kind, data_class, premises) in enumerate(
                  (k, c, p) for k in ("water_meter", "district_meter", "weather_station", "indoor_climate",
                                      "mystery_box", "")
                  for c in ("", "open", "restricted", "personal", "secret")
                  for p in ("", "habitation", "bureaux"))]
    store.upsert_devices(combos)
    charter = CharterSettings(kinds={"weather_station": "restricted", "indoor_climate.non_residential": "open"})
    classifier = Classifier(charter)
    create_role(pg_url, classifier, "Europe/Paris", urlparse(city[1]).username)
    with psycopg.connect(pg_url) as con:
        seen = dict(con.execute("SELECT eui, class FROM clapas_grafana.devices WHERE eui LIKE '9%'").fetchall())
    expected = {d.eui: classifier.device({"kind": d.kind, "data_class": d.data_class,
                                          "premises_use": d.premises_use}) for d in combos}
    assert seen == {eui: c for eui, c in expected.items() if c != "personal"}
    assert set(seen.values()) == {"open", "restricted"} and len(seen) < len(combos)
