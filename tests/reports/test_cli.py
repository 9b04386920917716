"""`clapas museum report` on a small store: the file it writes, and clear errors."""

from __future__ import annotations

import json

import pytest

from clapas.cli import main
from tests.reports.test_museum import ROOM_A, build_store


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("museum-cli") / "city.duckdb"
    build_store(path).close()
    return f"duckdb:///{path}"


def run(monkeypatch: pytest.MonkeyPatch, store_url: str, *argv: str) -> int:
    monkeypatch.setenv("CLAPAS_STORE", store_url)
    with pytest.raises(SystemExit) as e:
        main(["museum", "report", *argv])
    return int(e.value.code or 0)


def test_report_as_json_file(monkeypatch, store_url, tmp_path, capsys):
    out = tmp_path / "juin.json"
    assert run(monkeypatch, store_url, "--month", "2026-06", "--room", ROOM_A, "--format", "json",
               "--output", str(out)) == 0
    (room,) = json.loads(out.read_text())["rooms"]
    assert room["room"] == ROOM_A and room["climate_class"] == "Bizot"
    assert [e["quantity"] for e in room["breach_episodes"]] == ["humidity", "temperature"]
    assert "1 room(s) for 2026-06 written to" in capsys.readouterr().err


def test_report_as_csv_on_stdout(monkeypatch, store_url, capsys):
    assert run(monkeypatch, store_url, "--month", "2026-06") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("month,room,") and len(lines) == 4  # header + three rooms


def test_bad_month_is_a_clear_error(monkeypatch, store_url, capsys):
    assert run(monkeypatch, store_url, "--month", "juin") == 2
    assert "clapas museum report:" in capsys.readouterr().err
