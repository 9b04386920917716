"""Export formats, each a streaming encoder: chunks of rows in, pieces of the file out, nothing kept between chunks.

- `csv`: RFC 4180, UTF-8, comma-separated, decimal point; the default of open-data portals.
- `csv-fr`: for French spreadsheets: `;`-separated, decimal comma, UTF-8 with a byte-order mark (without it,
  Excel reads UTF-8 as Windows-1252 and garbles "é").
- `geojson`: RFC 7946 FeatureCollection, one Feature per row, positioned (WGS 84 lon/lat) when the row has one.
- `parquet`: Apache Parquet, one row group per chunk (typed columns, times in UTC).
Times are written in UTC, ISO 8601 with `Z` (a portal's user reads them unambiguously whatever their zone).
Media types are IANA's; file types the EU Publications Office's vocabulary (DCAT-AP's dct:format).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

TIME, STR, FLOAT, INT, BOOL, GEOMETRY = "time", "str", "float", "int", "bool", "geometry"
Column = tuple[str, str]  # name, type
Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Format:
    id: str
    media_type: str  # IANA
    extension: str
    file_type: str  # http://publications.europa.eu/resource/authority/file-type/…
    title: str


FORMATS: dict[str, Format] = {f.id: f for f in (
    Format("csv", "text/csv", "csv", "CSV", "CSV (UTF-8, comma)"),
    Format("csv-fr", "text/csv", "csv", "CSV", "CSV pour tableurs français (point-virgule, virgule décimale)"),
    Format("geojson", "application/geo+json", "geojson", "GEOJSON", "GeoJSON"),
    Format("parquet", "application/vnd.apache.parquet", "parquet", "PARQUET", "Apache Parquet"),
)}


def title(fmt: Format, lang: str) -> str:
    """The format's name in a language (`Format.title` when the catalog has none)."""
    from clapas.i18n import T, has_key, render

    key = f"opendata.format.{fmt.id}"
    return render(T(key), lang) if has_key(key) else fmt.title


class UnknownFormat(ValueError):
    pass


def get(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownFormat(f"unknown format {name!r}: one of {', '.join(FORMATS)}") from None


def utc_text(t: datetime | None) -> str:
    if t is None:
        return ""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _times(col: Sequence[Any]) -> list[str]:
    """Times as text, each distinct instant formatted once (a chunk's rows share a few instants)."""
    memo: dict[Any, str] = {}
    out = []
    for v in col:
        text = memo.get(v)
        if text is None:
            text = memo[v] = utc_text(v)
        out.append(text)
    return out


def _converter(kind: str, decimal_comma: bool) -> Callable[[Sequence[Any]], list[Any]] | None:
    """How a column's values become CSV text (None: as they are; the csv module writes None as "")."""
    if kind == TIME:
        return _times
    if kind == FLOAT and decimal_comma:
        return lambda col: ["" if v is None else repr(float(v)).replace(".", ",") for v in col]
    if kind == BOOL:
        return lambda col: ["" if v is None else "true" if v else "false" for v in col]
    if kind == GEOMETRY:
        return lambda col: ["" if v is None else msgspec.json.encode(v).decode() for v in col]
    return None


def csv_stream(columns: Sequence[Column], chunks: Iterable[list[Row]], *, french: bool = False) -> Iterator[bytes]:
    """Column by column: each converter runs over a whole column of the chunk, not cell by cell."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";" if french else ",", lineterminator="\r\n")
    w.writerow([c for c, _ in columns])
    head = buf.getvalue().encode()
    yield (b"\xef\xbb\xbf" + head) if french else head
    convert = [(i, conv) for i, (_, k) in enumerate(columns) if (conv := _converter(k, french)) is not None]
    for rows in chunks:
        if not rows:
            continue
        buf.seek(0)
        buf.truncate()
        cols = list(zip(*rows, strict=True))
        for i, conv in convert:
            cols[i] = conv(cols[i])
        w.writerows(zip(*cols, strict=True))
        yield buf.getvalue().encode()


def _point(columns: Sequence[Column]) -> Callable[[Row], Any]:
    names = [c for c, _ in columns]
    if GEOMETRY in [k for _, k in columns]:
        i = [k for _, k in columns].index(GEOMETRY)
        return lambda r: r[i]
    if "lat" in names and "lon" in names:
        la, lo = names.index("lat"), names.index("lon")
        return lambda r: ({"type": "Point", "coordinates": [r[lo], r[la]]}
                          if r[la] is not None and r[lo] is not None else None)
    return lambda r: None


def geojson_stream(columns: Sequence[Column], chunks: Iterable[list[Row]]) -> Iterator[bytes]:
    enc = msgspec.json.Encoder()
    geometry = _point(columns)
    props = [(i, c, k) for i, (c, k) in enumerate(columns) if k != GEOMETRY]
    yield b'{"type":"FeatureCollection","features":['
    first = True
    for rows in chunks:
        parts = []
        for r in rows:
            p = {c: (utc_text(r[i]) if k == TIME and r[i] is not None else r[i]) for i, c, k in props}
            parts.append(enc.encode({"type": "Feature", "geometry": geometry(r), "properties": p}))
        if parts:
            yield (b"" if first else b",") + b",".join(parts)
            first = False
    yield b"]}\n"


class _Sink:
    """A file object that hands back what was written since the last `take` (Parquet's writer writes to it)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, b: bytes) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def flush(self) -> None:
        pass

    def tell(self) -> int:  # pragma: no cover - pyarrow asks only for seekable sinks
        return sum(map(len, self.parts))

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {TIME: pa.timestamp("us", tz="UTC"), FLOAT: pa.float64(), INT: pa.int64(), BOOL: pa.bool_()}.get(
        kind, pa.string())


def parquet_stream(columns: Sequence[Column], chunks: Iterable[list[Row]]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, _arrow_type(k)) for c, k in columns])
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        for rows in chunks:
            if not rows:
                continue
            cols = list(zip(*rows, strict=True))
            arrays = [pa.array([msgspec.json.encode(v).decode() if v is not None else None for v in col]
                               if k == GEOMETRY else col, _arrow_type(k)) for col, (_, k) in zip(cols, columns,
                                                                                                strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            out = sink.take()
            if out:
                yield out
    finally:
        writer.close()
    yield sink.take()


def encode(fmt: str, columns: Sequence[Column], chunks: Iterable[list[Row]]) -> Iterator[bytes]:
    """The file in format `fmt`, piece by piece."""
    f = get(fmt)
    if f.id == "geojson":
        return geojson_stream(columns, chunks)
    if f.id == "parquet":
        return parquet_stream(columns, chunks)
    return csv_stream(columns, chunks, french=f.id == "csv-fr")
