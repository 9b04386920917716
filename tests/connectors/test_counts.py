"""Counter files: NGSI TrafficFlowObserved archives and national-schema CSV, through the pipeline into both stores
(issue 12)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clapas.cli import main
from clapas.connectors.counts import counter_eui
from clapas.connectors.import_cli import import_text
from clapas.store.base import open_store
from tests.helpers import progress_lines

ARCHIVE = Path(__file__).parents[1] / "fixtures" / "mobility" / "ecocompt_archive.json"
Z = ZoneInfo("Europe/Paris")
SERIAL = "MMM_EcoCompt_X2H19070220"


def _check(store) -> None:
    report = import_text(store, ARCHIVE.read_text(), "ngsi", "Europe/Paris", 3600)
    assert report["documents"] == 8 and report["glued"] == 1
    assert report["invalid"] == 2  # the null intensity (no data: never 0) and the truncated last object
    assert report["duplicates"] == 2 and report["conflicts"] == 1 and "790 kept, 795 ignored" in \
        report["conflict_examples"][0]
    assert report["out_of_order"] == 2
    assert report["counters"][SERIAL]["missing_periods"] == 1  # 4 January
    assert report["stored"] == 5
    eui = counter_eui(SERIAL)
    dev = store.device(eui)
    assert dev["kind"] == "bike_counter" and dev["tags"]["time_step"] == "86400"
    # laneId is shared by the two counters: they stay two devices
    assert store.device(counter_eui("MMM_EcoCompt_X2H20042632")) is not None
    rows = store.observations(eui, "counter.count", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 8, tzinfo=UTC))
    # each day observed at its end (the next local midnight), in order whatever the file's order
    assert [(r["time"].astimezone(Z).day, r["value"]) for r in rows] == [(2, 301), (3, 790), (4, 812), (6, 770)]
    again = import_text(store, ARCHIVE.read_text(), "ngsi", "Europe/Paris", 3600)
    assert again["stored"] == 0 and again["already_stored"] == 5


def test_ngsi_archive_duckdb(tmp_path):
    store = open_store(f"duckdb:///{tmp_path / 'c.duckdb'}")
    store.migrate()
    _check(store)
    store.close()


def test_ngsi_archive_postgres(pg_url):
    store = open_store(pg_url)
    store.migrate()
    _check(store)
    store.close()


def test_smart_data_model_examples(samples, tmp_path):
    folder = samples / "smart-data-models" / "TrafficFlowObserved"
    text = "\n".join((folder / n).read_text() for n in ("example.json", "example-normalized.jsonld"))
    store = open_store(f"duckdb:///{tmp_path / 'c.duckdb'}")
    store.migrate()
    report = import_text(store, text, "ngsi", "Europe/Paris", 3600)
    # key-values and normalized NGSI-LD of the same entity and period: one count, the second a duplicate
    assert report["records"] == 2 and report["duplicates"] == 1 and report["stored"] == 1
    dev = store.device(counter_eui("TrafficFlowObserved-Valladolid-osm-60821110"))
    assert dev["tags"]["time_step"] == "300" and dev["kind"] == "traffic_counter"
    store.close()


def test_national_schema_csv_with_directions_and_empty_counts(tmp_path):
    csv = ("channel_id,counter_id,start_datetime,end_datetime,count,direction\n"
           "c1,site-1,2024-03-01T08:00:00+01:00,2024-03-01T09:00:00+01:00,12,IN\n"
           "c2,site-1,2024-03-01T08:00:00+01:00,2024-03-01T09:00:00+01:00,7,OUT\n"
           "c1,site-1,2024-03-01T09:00:00+01:00,,,IN\n"  # no data: missing, never 0
           "c1,site-1,2024-03-01T10:00:00+01:00,,0,IN\n"  # no passage: 0
           "c1,site-1,not a date,,3,IN\n")
    store = open_store(f"duckdb:///{tmp_path / 'c.duckdb'}")
    store.migrate()
    report = import_text(store, csv, "counts", "Europe/Paris", 3600)
    assert report["stored"] == 3 and report["invalid"] == 1
    eui = counter_eui("site-1")
    a, b = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)
    assert [r["value"] for r in store.observations(eui, "counter.in", a, b)] == [12, 0]
    assert [r["value"] for r in store.observations(eui, "counter.out", a, b)] == [7]
    with pytest.raises(ValueError, match="lacks the columns"):
        import_text(store, "a,b\n1,2\n", "counts", "Europe/Paris", 3600)
    store.close()


def test_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLAPAS_STORE", f"duckdb:///{tmp_path / 'cli.duckdb'}")
    with pytest.raises(SystemExit) as e:
        main(["import", "ngsi", str(ARCHIVE), "--json"])
    assert e.value.code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stored"] == 5


def test_cli_from_a_url(tmp_path, monkeypatch, capsys):
    import threading

    from clapas.simulator.mobility import json_server

    server = json_server(lambda name: (200, ARCHIVE.read_bytes()) if name == "archive" else (404, b""))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CLAPAS_STORE", f"duckdb:///{tmp_path / 'url.duckdb'}")
    host, port = server.server_address[:2]
    try:
        with pytest.raises(SystemExit) as e:
            main(["import", "ngsi", f"http://{host}:{port}/archive.json", "--json"])
        assert e.value.code == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stored"] == 5
        with pytest.raises(SystemExit) as e:
            main(["import", "ngsi", f"http://{host}:{port}/missing.json"])
        assert e.value.code == 2 and "cannot read" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()


def test_import_reports_its_progress(tmp_path, caplog, monkeypatch):
    """The messages go to the pipeline a chunk at a time, each chunk a log line with the count so far."""
    import logging

    from clapas.connectors import import_cli

    monkeypatch.setattr(import_cli, "IMPORT_CHUNK", 2)
    store = open_store(f"duckdb:///{tmp_path / 'c.duckdb'}")
    try:
        with caplog.at_level(logging.INFO, logger="clapas.progress"):
            report = import_text(store, ARCHIVE.read_text(), "ngsi", "Europe/Paris", 3600, terminal=False,
                                 every_s=0.0)
    finally:
        store.close()
    lines = progress_lines(caplog)
    counts = [int(line.split(",")[0].split(": ")[1].split()[0]) for line in lines[:-1]]
    assert counts == list(range(2, counts[-1] + 1, 2)) or counts[-1] % 2  # 2, 4, … (the last chunk may be short)
    assert counts[-1] >= report["stored"] and lines[-1].startswith(f"import ngsi: {counts[-1]} messages in ")
