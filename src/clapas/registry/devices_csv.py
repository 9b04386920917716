"""Devices as CSV, one row per device: the columns of `clapas.model.Device`, tags as `key=value;key=value`.

Import checks every row and reports each problem with its line number; nothing is written if a row is wrong.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, TextIO

import msgspec

from clapas.model import DATA_CLASSES, DEVICE_KINDS, Device, normalize_eui

COLUMNS = [f.name for f in msgspec.structs.fields(Device)]


class RegistryError(ValueError):
    """The file has problems; the message lists them by line."""


def _tags_text(tags: dict[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(tags.items()))


def _tags(text: str, line: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"line {line}: tag {part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _row_to_device(row: dict[str, str], line: int) -> Device:
    data: dict[str, Any] = {k: (v or "").strip() for k, v in row.items() if k in COLUMNS}
    try:
        data["eui"] = normalize_eui(data.get("eui", ""))
    except ValueError as e:
        raise ValueError(f"line {line}: {e}") from None
    for key in ("lat", "lon", "expected_interval_s"):
        if data.get(key) in ("", None):
            data.pop(key, None)
    data["tags"] = _tags(data.get("tags", ""), line)
    for key in ("name", "kind", "decoder", "profile", "zone", "data_class", "subscriber", "premises_use"):
        if data.get(key) == "":
            data.pop(key)
    try:
        device = msgspec.convert(data, Device, strict=False)
    except msgspec.ValidationError as e:
        raise ValueError(f"line {line}: {e}") from None
    if device.kind not in DEVICE_KINDS:
        raise ValueError(f"line {line}: unknown kind {device.kind!r} (one of {', '.join(DEVICE_KINDS)})")
    if device.data_class not in DATA_CLASSES:
        raise ValueError(f"line {line}: data_class must be one of {', '.join(DATA_CLASSES)}")
    lat_bad = device.lat is not None and not -90 <= device.lat <= 90
    if lat_bad or (device.lon is not None and not -180 <= device.lon <= 180):
        raise ValueError(f"line {line}: lat/lon out of range")
    return device


def read_devices(f: TextIO) -> list[Device]:
    reader = csv.DictReader(f)
    if not reader.fieldnames or "eui" not in reader.fieldnames:
        raise RegistryError("the CSV needs a header row with at least an `eui` column")
    unknown = [c for c in reader.fieldnames if c not in COLUMNS]
    if unknown:
        raise RegistryError(f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    devices, errors, seen = [], [], set()
    for line, row in enumerate(reader, start=2):
        try:
            d = _row_to_device(row, line)
        except ValueError as e:
            errors.append(str(e))
            continue
        if d.eui in seen:
            errors.append(f"line {line}: EUI {d.eui} appears twice")
        seen.add(d.eui)
        devices.append(d)
    if errors:
        raise RegistryError("; ".join(errors[:20]) + (f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""))
    return devices


def write_devices(devices: Iterable[dict[str, Any] | Device], f: TextIO) -> int:
    writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    n = 0
    for d in devices:
        row = msgspec.structs.asdict(d) if isinstance(d, Device) else dict(d)
        row["tags"] = _tags_text(row.get("tags") or {})
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
        n += 1
    return n


def devices_to_text(devices: Iterable[dict[str, Any] | Device]) -> str:
    buf = io.StringIO()
    write_devices(devices, buf)
    return buf.getvalue()
