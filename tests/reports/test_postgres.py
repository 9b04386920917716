"""The reports give the same answers on PostgreSQL (rollups and pending buckets) as on DuckDB."""

from __future__ import annotations

from datetime import date

from clapas.reports import air, flood, heat
from clapas.store.postgres import PostgresStore
from tests.reports.env_city import NOW, TODAY, build, open_city


def test_reports_match_duckdb(pg_url: str, tmp_path) -> None:
    duck = open_city(str(tmp_path / "city.duckdb"))
    pg = PostgresStore(pg_url, timezone="Europe/Paris", rollup_interval_s=None)
    try:
        build(pg, TODAY, NOW)
        for rolled_up in (False, True):  # hourly buckets read from raw rows while pending, then from the rollups
            if rolled_up:
                pg.maintain(settle_s=0)
            assert air.atmo_report(pg, TODAY) == air.atmo_report(duck, TODAY)
            assert air.eaqi_report(pg, NOW) == air.eaqi_report(duck, NOW)
            assert heat.heat_status(pg, 4, NOW) == heat.heat_status(duck, 4, NOW)
            assert heat.islands_report(pg, date(2026, 7, 1)) == heat.islands_report(duck, date(2026, 7, 1))
            assert heat.cool_refuges(pg, NOW) == heat.cool_refuges(duck, NOW)
        assert flood.rivers_report(pg, NOW) == flood.rivers_report(duck, NOW)
    finally:
        pg.close()
        duck.close()
