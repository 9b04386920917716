"""The Table Schema (frictionless, the format of schema.data.gouv.fr) of a dataset's CSV and Parquet exports: what
the catalogue's dct:conformsTo points at, so that a portal or a re-user can check a file's columns and types."""

from __future__ import annotations

from typing import Any

from clapas.opendata import formats as f
from clapas.opendata.datasets import AGGREGATE, COUNTS, DEVICES, ZONES, Dataset
from clapas.opendata.settings import LICENCES, OpenDataSettings

_TYPES = {f.TIME: "datetime", f.STR: "string", f.FLOAT: "number", f.INT: "integer", f.BOOL: "boolean",
          f.GEOMETRY: "geojson"}
_DOC = {
    "time": "instant of the measurement, UTC (ISO 8601, Z)", "device": "DevEUI of the sensor",
    "quantity": "what is measured (clapas quantity key)", "value": "the measured value, in `unit`",
    "unit": "UCUM unit of the value", "status": "published, suppressed (with its reason) or empty",
    "reason": "why a cell is suppressed: min_meters, dominance or secondary",
    "volume_m3": "volume consumed in the cell (published cells only)",
}


def columns_of(ds: Dataset) -> list[f.Column]:
    from clapas.opendata import source

    return {AGGREGATE: source.AGGREGATE_COLUMNS, DEVICES: source.DEVICE_COLUMNS, ZONES: source.ZONE_COLUMNS,
            COUNTS: source.COUNT_COLUMNS}.get(ds.type, source.OBSERVATION_COLUMNS)


def table_schema(ds: Dataset, s: OpenDataSettings, base_url: str) -> dict[str, Any]:
    lic = LICENCES[ds.licence or s.licence]
    fields = []
    for name, kind in columns_of(ds):
        field: dict[str, Any] = {"name": name, "type": _TYPES[kind]}
        if kind == f.TIME:
            field["format"] = "any"
        if name in _DOC:
            field["description"] = _DOC[name]
        fields.append(field)
    return {"$schema": "https://frictionlessdata.io/schemas/table-schema.json", "name": ds.id,
            "title": ds.title_fr, "description": ds.description_fr,
            "path": f"{base_url.rstrip('/')}/api/v1/exports/{ds.id}/schema",
            "licenses": [{"name": lic.spdx, "title": lic.title, "path": lic.url}],
            "fields": fields, "missingValues": [""]}
