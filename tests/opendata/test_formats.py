"""The streaming encoders on their own: quoting, the French variant, empty exports, types."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from clapas.opendata import formats as f

COLUMNS = [("time", f.TIME), ("name", f.STR), ("value", f.FLOAT), ("n", f.INT), ("ok", f.BOOL),
           ("lat", f.FLOAT), ("lon", f.FLOAT)]
T = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=1)))
ROWS = [(T, 'Station "Comédie", nord', 12.5, 3, True, 43.6, 3.87), (None, None, None, None, None, None, None)]


def join(pieces) -> bytes:
    return b"".join(pieces)


def test_csv_quotes_and_converts() -> None:
    text = join(f.encode("csv", COLUMNS, [ROWS[:1], [], ROWS[1:]])).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [c for c, _ in COLUMNS]
    assert rows[1] == ["2026-03-29T00:30:00Z", 'Station "Comédie", nord', "12.5", "3", "true", "43.6", "3.87"]
    assert rows[2] == [""] * 7


def test_french_csv() -> None:
    raw = join(f.encode("csv-fr", COLUMNS, [ROWS]))
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[1][2] == "12,5" and rows[1][5] == "43,6" and rows[1][1] == 'Station "Comédie", nord'


def test_geojson_positions_and_nulls() -> None:
    fc = json.loads(join(f.encode("geojson", COLUMNS, [ROWS])))
    assert fc["features"][0]["geometry"] == {"type": "Point", "coordinates": [3.87, 43.6]}
    assert fc["features"][0]["properties"]["time"] == "2026-03-29T00:30:00Z"
    assert fc["features"][1]["geometry"] is None
    assert json.loads(join(f.encode("geojson", COLUMNS, []))) == {"type": "FeatureCollection", "features": []}


def test_parquet_types_and_empty_file() -> None:
    table = pq.read_table(io.BytesIO(join(f.encode("parquet", COLUMNS, [ROWS[:1], ROWS[1:]]))))
    assert table.num_rows == 2 and table.column("time")[0].as_py() == T.astimezone(UTC)
    assert str(table.schema.field("n").type) == "int64" and str(table.schema.field("ok").type) == "bool"
    empty = pq.read_table(io.BytesIO(join(f.encode("parquet", COLUMNS, []))))
    assert empty.num_rows == 0 and empty.column_names == [c for c, _ in COLUMNS]


def test_unknown_format() -> None:
    with pytest.raises(f.UnknownFormat, match="csv-fr"):
        f.get("xlsx")
