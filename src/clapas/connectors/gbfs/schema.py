"""Validation of fetched GBFS files against the official JSON schemas, vendored (MobilityData/gbfs-json-schema,
commit 2e974fd, `schemas/v2.3`, `schemas/v3.0`; no network at run time).

The schemas of a version are chosen from the file's own `version`: 3.x files against v3.0, 2.x files against v2.3
(the version this project vendors for the 2.x line; the live Vélomagg feed says 2.2, §6.2). For a 2.x file that is not
2.3 the schema's `version` constant is set to the declared version, so that a 2.2 feed is checked on its content
rather than refused for its number: 2.3 only added optional fields over 2.2. Formats (date-time, uri, email) are
checked, as the official validator does (§6.5).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMAS = Path(__file__).with_name("schemas")
MAX_ERRORS = 10  # errors kept in a quarantine reason: enough to fix a feed, short enough to read


class UnknownFile(ValueError):
    """A file name or version the vendored schemas do not cover."""


def schema_version(version: Any) -> str:
    """The vendored schema folder for a file's declared `version`."""
    v = str(version or "")
    if v.startswith("3."):
        return "v3.0"
    if v.startswith("2.") or v.startswith("1."):
        return "v2.3"
    raise UnknownFile(f"GBFS version {v!r} is not one of 2.x or 3.x")


@functools.lru_cache(maxsize=64)
def _validator(folder: str, name: str, declared: str) -> Any:
    path = SCHEMAS / folder / f"{name}.schema.json"
    if not path.is_file():
        raise UnknownFile(f"no GBFS {folder} schema for {name!r}")
    schema = json.loads(path.read_text(encoding="utf-8"))
    const = schema.get("properties", {}).get("version", {}).get("const")
    if const is not None and declared and const != declared:
        schema = copy.deepcopy(schema)
        schema["properties"]["version"]["const"] = declared
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def errors(name: str, doc: Any) -> list[str]:
    """The validator's messages for one file (`name`: gbfs, station_status…), each with the path it is about;
    an empty list when the file is valid."""
    if not isinstance(doc, dict):
        return ["the file is not a JSON object"]
    try:
        folder = schema_version(doc.get("version"))
        validator = _validator(folder, name, str(doc.get("version") or ""))
    except UnknownFile as e:
        return [str(e)]
    out = []
    for e in validator.iter_errors(doc):
        where = "/".join(str(p) for p in e.instance_path) or "(root)"
        out.append(f"{where}: {e.message[:300]}")
        if len(out) >= MAX_ERRORS:
            break
    return out


def files_of(version: str) -> list[str]:
    """The file names the vendored schemas of a version cover."""
    return sorted(p.name.removesuffix(".schema.json") for p in (SCHEMAS / schema_version(version)).glob("*.json"))
