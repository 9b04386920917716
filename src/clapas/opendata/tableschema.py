"""The Table Schema (frictionless, the format of schema.data.gouv.fr) of a dataset's CSV and Parquet exports: what
the catalogue's dct:conformsTo points at, so that a portal or a re-user can check a file's columns and types.

Column names are stable machine names, the same in every language (a re-user's script must not break when another
reads the French schema); the titles and descriptions meant for people are in the language asked (`clapas.i18n`)."""

from __future__ import annotations

from typing import Any

from clapas.i18n import T, has_key, render
from clapas.opendata import formats as f
from clapas.opendata.datasets import AGGREGATE, COUNTS, DEVICES, ZONES, Dataset
from clapas.opendata.settings import LICENCES, OpenDataSettings

_TYPES = {f.TIME: "datetime", f.STR: "string", f.FLOAT: "number", f.INT: "integer", f.BOOL: "boolean",
          f.GEOMETRY: "geojson"}


def columns_of(ds: Dataset) -> list[f.Column]:
    from clapas.opendata import source

    return {AGGREGATE: source.AGGREGATE_COLUMNS, DEVICES: source.DEVICE_COLUMNS, ZONES: source.ZONE_COLUMNS,
            COUNTS: source.COUNT_COLUMNS}.get(ds.type, source.OBSERVATION_COLUMNS)


def table_schema(ds: Dataset, s: OpenDataSettings, base_url: str, lang: str = "fr") -> dict[str, Any]:
    """The schema with its title, description and column descriptions in `lang` (fr or en)."""
    lic = LICENCES[ds.licence or s.licence]
    fields = []
    for name, kind in columns_of(ds):
        field: dict[str, Any] = {"name": name, "type": _TYPES[kind]}
        if kind == f.TIME:
            field["format"] = "any"
        if has_key(doc := f"opendata.column.{name}"):
            field["description"] = render(T(doc), lang)
        fields.append(field)
    return {"$schema": "https://frictionlessdata.io/schemas/table-schema.json", "name": ds.id,
            "title": ds.title_en if lang == "en" else ds.title_fr,
            "description": f"{ds.description_en if lang == 'en' else ds.description_fr} "
                           f"{render(T('opendata.columns'), lang)}", "language": lang,
            "path": f"{base_url.rstrip('/')}/api/v1/exports/{ds.id}/schema",
            "licenses": [{"name": lic.spdx, "title": lic.title, "path": lic.url}],
            "fields": fields, "missingValues": [""]}
