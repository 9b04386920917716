"""`clapas export` on both stores: the file, the public role by default, the log lines without a terminal, the
audit entry of a non-open export."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from clapas.cli import main
from clapas.store.base import Store
from tests.helpers import progress_lines
from tests.opendata.city import HOME, INDOOR, STATIONS, city_store

__all__ = ["city_store"]


def run(store: Store, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("CLAPAS_STORE", store.url)
    monkeypatch.setenv("CLAPAS_OPEN_DATA_CHUNK_ROWS", "100")
    store.close()  # DuckDB lets one process… one connection write at a time: the command opens its own
    with pytest.raises(SystemExit) as e:
        main(["export", *args])
    return int(e.value.code or 0)


def reopen(store: Store) -> Store:
    from clapas.store.base import open_store

    return open_store(store.url)


def test_export_to_csv_and_parquet_as_public(city_store, tmp_path: Path, monkeypatch, caplog) -> None:
    store, n = city_store
    out = tmp_path / "w.csv"
    with caplog.at_level(logging.INFO, logger="clapas.progress"):
        code = run(store, monkeypatch, "weather", "--since", "2026-05-04", "--until", "2026-05-05", "-o", str(out))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == n and {r["device"] for r in rows} == set(STATIONS)
    # no terminal: log lines, the last with the rows written
    assert progress_lines(caplog)[-1].startswith(f"export weather: {n} rows in ")
    pq_out = tmp_path / "w.parquet"
    assert run(store, monkeypatch, "weather", "-f", "parquet", "--zone", "s1", "--since", "2026-05-04",
               "--until", "2026-05-05", "-o", str(pq_out)) == 0
    assert pq.read_table(pq_out).num_rows == n // 2
    # the public role may not export the museum room nor the dwelling's meter
    assert run(store, monkeypatch, "indoor-climate", "--since", "2026-05-04", "-o", str(tmp_path / "x")) == 1
    assert run(store, monkeypatch, "nothing", "-o", str(tmp_path / "x")) == 2
    devices = tmp_path / "d.csv"
    assert run(store, monkeypatch, "devices", "-o", str(devices)) == 0
    assert HOME not in devices.read_text() and INDOOR not in devices.read_text()


def test_a_role_with_export_bulk_exports_more_and_is_audited(city_store, tmp_path: Path, monkeypatch) -> None:
    store, _ = city_store
    out = tmp_path / "home.csv"
    assert run(store, monkeypatch, "water_meter", "--role", "operator-water", "--since", "2026-05-04",
               "--until", "2026-05-05", "-o", str(out)) == 0
    assert len(list(csv.DictReader(io.StringIO(out.read_text())))) == 96
    s = reopen(store)
    try:
        [entry] = [e for e in s.audit_entries(limit=10) if e["route"] == "clapas export"]
        assert (entry["data_class"], entry["row_count"], entry["role"]) == ("personal", 96, "operator-water")
    finally:
        s.close()
