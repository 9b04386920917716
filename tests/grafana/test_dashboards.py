"""The dashboards are valid Grafana dashboard JSON: checked against Grafana's published dashboard schema
(tests/fixtures/grafana, from the Grafana Foundation SDK, Apache-2.0)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema_rs
import pytest

from clapas.grafana.dashboards import DATASOURCE_UID, Rules, dashboards

SCHEMA = Path(__file__).parents[1] / "fixtures" / "grafana" / "dashboard.jsonschema.json"
USES = {"water", "heat", "floods", "air", "museum", "mobility", "health"}


@pytest.fixture(scope="module")
def validator():
    return jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))


def test_one_dashboard_per_use() -> None:
    boards = dashboards(Rules())
    assert {name.removeprefix("clapas-").removesuffix(".json") for name in boards} == USES
    assert all(b["uid"] == name.removesuffix(".json") for name, b in boards.items())


@pytest.mark.parametrize("name", sorted(dashboards(Rules())))
def test_every_dashboard_validates_against_grafanas_schema(validator, name: str) -> None:
    board = json.loads(json.dumps(dashboards(Rules())[name]))  # as written to the file
    errors = [e.message for e in validator.iter_errors(board)]
    assert errors == []
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) >= 3
    for p in board["panels"]:
        [target] = p["targets"]
        assert p["datasource"]["uid"] == target["datasource"]["uid"] == DATASOURCE_UID
        assert target["rawSql"].startswith("SELECT") and "clapas_grafana." in target["rawSql"]
        # panels read the views (rollups and registry), never a store table
        assert not re.search(r"\b(FROM|JOIN)\s+(observations|journal|devices|rollup_1h|rollup_1d)\b",
                             target["rawSql"])


def test_the_schema_refuses_what_grafana_would(validator) -> None:
    """The vendored schema is a real check: a panel wider than the grid, or a dashboard without its
    required `templating`, is refused."""
    board = dashboards(Rules())["clapas-water.json"]
    wide = copy.deepcopy(board)
    wide["panels"][0]["gridPos"]["w"] = 30
    assert not validator.is_valid(wide)
    missing = copy.deepcopy(board)
    del missing["templating"]
    assert not validator.is_valid(missing)
    unknown = copy.deepcopy(board)
    unknown["panels"][0]["sql"] = "SELECT 1"  # a property no panel has
    assert not validator.is_valid(unknown)


def test_the_city_settings_reach_the_sql() -> None:
    boards = dashboards(Rules(timezone="America/Cayenne", mnf_start_hour=1, mnf_end_hour=5, silent_factor=4))
    water = json.dumps(boards["clapas-water.json"])
    assert "America/Cayenne" in water and ">= 1 AND" in water and "< 5 GROUP" in water
    assert boards["clapas-water.json"]["timezone"] == "America/Cayenne"
    assert "expected_interval_s * 4" in json.dumps(boards["clapas-health.json"])
