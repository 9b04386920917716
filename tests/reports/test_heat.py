"""Heat reports on the small known city (env_city.py): Tn/Tx, IBM and states, heat stress, islands, cool refuges."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from clapas.indices.heat import HeatSettings, heat_index_c, humidex_from_rh
from clapas.reports import heat
from clapas.store.base import Store
from tests.reports.env_city import NOW, RH, TODAY, R, local, open_city, ref_temperature


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = open_city(str(tmp_path_factory.mktemp("heat") / "city.duckdb"))
    yield s
    s.close()


def test_status_gives_tn_tx_ibm_and_states_across_a_month_boundary(store: Store) -> None:
    report = heat.heat_status(store, days=4, now=NOW)
    assert report["today"] == TODAY and report["state"] == "heatwave"
    assert report["thresholds"] == {"department": "34", "name": "Hérault", "ibmn": 22.0, "ibmx": 35.0,
                                    "ibm_days": 3, "ibm_alignment": "trailing"}
    assert "Météo-France" in report["statement"]
    (station,) = report["stations"]
    assert station["eui"] == R and station["zone"] == "rural-reference"
    rows = {d["day"]: d for d in station["days"]}
    assert list(rows) == [date(2026, 6, 29), date(2026, 6, 30), date(2026, 7, 1), date(2026, 7, 2)]
    # 29 June: IBMn (18+18+21)/3 = 19, IBMx (30+30+34)/3 = 31.33: nothing
    assert (rows[date(2026, 6, 29)]["state"], rows[date(2026, 6, 29)]["ibmn"], rows[date(2026, 6, 29)]["ibmx"]) == (
        "none", 19.0, 31.33)
    # 30 June: Tn 22 reaches the threshold on its own, IBMs do not: a heat peak
    assert rows[date(2026, 6, 30)]["state"] == "heat_peak" and rows[date(2026, 6, 30)]["tn"] == 22.0
    # 1 July: IBMn (21+22+23)/3 = 22 and IBMx (34+35+36)/3 = 35, both at the thresholds, over 29 June–1 July
    first = rows[date(2026, 7, 1)]
    assert (first["tn"], first["tx"], first["ibmn"], first["ibmx"], first["state"], first["run_days"]) == (
        23.0, 36.0, 22.0, 35.0, "heatwave", 1)
    assert first["window"] == [date(2026, 6, 29), date(2026, 6, 30), date(2026, 7, 1)]
    assert (rows[TODAY]["ibmn"], rows[TODAY]["ibmx"], rows[TODAY]["run_days"]) == (23.0, 36.0, 2)
    assert report["latest_available"] == {"day": TODAY, "state": "heatwave"}


def test_a_day_without_enough_hours_is_unavailable_and_other_departments_apply(store: Store) -> None:
    morning = local(TODAY + timedelta(days=1), 3)  # 3 hours into a day with no readings at all
    report = heat.heat_status(store, days=2, now=morning)
    assert [d["state"] for d in report["stations"][0]["days"]] == ["heatwave", "unavailable"]
    assert report["state"] == "unavailable" and report["latest_available"]["day"] == TODAY
    # Bouches-du-Rhône, 24/35 °C: today's IBMn (22+23+24)/3 = 23 falls short, its Tn 24 alone makes a heat peak
    bdr = heat.heat_status(store, days=1, now=NOW, settings=HeatSettings(department="13"))
    assert bdr["stations"][0]["days"][0]["state"] == "heat_peak"
    assert bdr["thresholds"]["ibmn"] == 24.0


def test_heat_stress_is_the_latest_paired_temperature_and_humidity(store: Store) -> None:
    stress = {s["eui"]: s for s in heat.heat_status(store, days=1, now=NOW)["heat_stress"]}
    assert set(stress) == {R}  # the other stations report no humidity
    t = ref_temperature(0, 23)
    assert stress[R]["time"] == local(TODAY, 23) and stress[R]["temperature"] == t
    assert stress[R]["heat_index"] == round(heat_index_c(t, RH), 1)
    assert stress[R]["humidex"] == round(humidex_from_rh(t, RH), 1)


def test_islands_by_day_and_night(store: Store) -> None:
    report = heat.islands_report(store, date(2026, 7, 1))
    assert [r["eui"] for r in report["reference"]] == [R]
    districts = {d["zone"]: d for d in report["districts"]}
    assert districts["dma-01"]["day"] == {"mean": 2.0, "max": 2.0, "hours": 12}
    assert districts["dma-01"]["night"] == {"mean": 4.0, "max": 4.0, "hours": 12}
    parks = {p["zone"]: p for p in report["parks"]}
    assert (parks["park-01"]["district"], parks["park-01"]["surrounding_stations"]) == ("dma-01", 1)
    assert parks["park-01"]["day"]["mean"] == 3.0 and parks["park-01"]["night"]["mean"] == 1.0
    assert parks["park-03"]["day"]["mean"] == 1.5 and parks["park-03"]["night"]["mean"] == 2.5
    assert parks["park-02"]["day"] is None and parks["park-02"]["surrounding_stations"] == 0


def test_cool_refuges_rank_parks_over_the_current_heatwave(store: Store) -> None:
    report = heat.cool_refuges(store, now=NOW)
    assert report["basis"] == "heatwave" and report["days"] == [date(2026, 7, 1), TODAY]
    ranked = [(p["rank"], p["zone"]) for p in report["parks"]]
    assert ranked == [(1, "park-01"), (2, "park-03"), (3, "park-02")]
    top = report["parks"][0]
    assert top["day"] == {"mean": 3.0, "max": 3.0, "hours": 24}  # two days of 12 hours
    assert top["night"] == {"mean": 1.0, "max": 1.0, "hours": 12}  # tonight has 5 hours so far (< 6): not yet
    rows = list(csv.DictReader(io.StringIO(heat.refuges_csv(report))))
    assert [r["zone"] for r in rows] == ["park-01", "park-03", "park-02"]
    assert rows[0]["pci_day_mean_c"] == "3.0" and rows[0]["first_day"] == "2026-07-01"
    assert rows[2]["pci_day_mean_c"] == "" and rows[2]["day_hours"] == "0"


def test_cool_refuges_fall_back_to_hot_days_then_recent_days(store: Store) -> None:
    before = local(date(2026, 6, 30), 23, 30)  # no heatwave yet: the heat peak of 30 June
    report = heat.cool_refuges(store, now=before, hot_days=3)
    assert report["basis"] == "hot_days" and report["days"] == [date(2026, 6, 30)]
    calm = heat.cool_refuges(store, now=local(date(2026, 6, 29), 23, 30), hot_days=2)
    assert calm["basis"] == "recent_days" and calm["days"] == [date(2026, 6, 27), date(2026, 6, 28)]
    assert {p["zone"] for p in calm["parks"]} == {"park-01", "park-02", "park-03"}

