"""Find codecs where device makers publish them, and read their examples.

Three sources, one shape (`CodecSpec`: a name, the JavaScript source, the examples if any):

- a folder laid out like The Things Stack device repository: `vendor/<maker>/<codec-id>.yaml` files with
  `uplinkDecoder.fileName` (and `downlinkEncoder`/`downlinkDecoder`), each with `examples`;
- a single `.js` file (one per device profile);
- a ChirpStack v4 device-profile export (JSON with `payloadCodecScript`).

Each section of a codec YAML keeps its own file, run alone, as The Things Stack runs it (two files of one codec
often define helpers of the same name: joined, the last one would win for both). Live uplinks use the uplink
decoder's file.

YAML is read as YAML 1.2 (ruamel.yaml): `on`, `off`, `yes`, `no` are strings, as the device repository's own
tooling (js-yaml 4) reads them; a YAML 1.1 reader would turn a codec's expected `direction: no` into `false`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from clapas.codecs.engine import CodecLoadError

# Sections of a codec YAML file, and the class of example each one holds (normalize examples are the uplink
# decoder's examples that have a `normalizedOutput`).
SECTIONS = {"uplinkDecoder": "uplink", "downlinkEncoder": "downlink-encode", "downlinkDecoder": "downlink-decode"}
# Codec YAML files are never this large; anything bigger is not one.
MAX_YAML_BYTES = 4 * 1024 * 1024


@dataclass
class Example:
    kind: str  # uplink, downlink-encode, downlink-decode
    description: str
    input: Any  # as the check passes it: the YAML's JSON (a timestamp becomes JavaScript's ISO text)
    output: Any  # as the check compares it (an unquoted timestamp stays a date: it equals nothing)
    normalized_output: Any = None
    section: str = "uplinkDecoder"
    hardware_versions: list[Any] | None = None  # run only for devices of these hardware versions


@dataclass
class CodecSpec:
    name: str  # `maker/codec-id` in a repository, else the file name
    source: str  # what live uplinks run: the uplink decoder's file (or the only file)
    path: Path
    examples: list[Example] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)  # section → its JS file
    section_sources: dict[str, str] = field(default_factory=dict)  # section → that file's text


def read_yaml(path: Path, timestamps: bool = False) -> Any:
    """One YAML 1.2 document, as plain Python data (timestamps as ISO strings, or kept as dates)."""
    if path.stat().st_size > MAX_YAML_BYTES:
        raise CodecLoadError(f"{path}: larger than {MAX_YAML_BYTES} bytes")
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    try:
        return _plain(yaml.load(path.read_text(encoding="utf-8")), timestamps)
    except (YAMLError, UnicodeDecodeError) as e:
        raise CodecLoadError(f"{path}: not valid YAML: {e}") from None


def _key(k: Any) -> str:
    """A mapping key as JavaScript names it (`true`, `null`, `1.5`), since the check's objects have string keys."""
    if isinstance(k, bool):
        return "true" if k else "false"
    if k is None:
        return "null"
    if isinstance(k, float) and k.is_integer():
        return str(int(k))
    return str(k)


def _plain(v: Any, timestamps: bool = False) -> Any:
    if isinstance(v, dict):
        return {_key(k): _plain(x, timestamps) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x, timestamps) for x in v]
    if isinstance(v, datetime | date):
        return v if timestamps else v.isoformat()
    return v


def js_json(v: Any) -> Any:
    """Example data as `JSON.stringify` hands it on: a timestamp becomes `toISOString()` text (a date alone is
    midnight UTC, a time without zone is UTC, as js-yaml reads them), NaN and infinities become null."""
    if isinstance(v, dict):
        return {k: js_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [js_json(x) for x in v]
    if isinstance(v, datetime | date):
        t = v if isinstance(v, datetime) else datetime(v.year, v.month, v.day)
        t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    return v


def is_codec_yaml(doc: Any) -> bool:
    return isinstance(doc, dict) and any(isinstance(doc.get(s), dict) and doc[s].get("fileName") for s in SECTIONS)


def load_codec_yaml(path: Path, name: str | None = None) -> CodecSpec:
    """A codec YAML file: the JavaScript file of each section and every example of every section."""
    doc = read_yaml(path, timestamps=True)
    if not is_codec_yaml(doc):
        raise CodecLoadError(f"{path}: not a codec file (no uplinkDecoder/downlink fileName)")
    files: dict[str, Path] = {}
    texts: dict[str, str] = {}
    examples: list[Example] = []
    for section, kind in SECTIONS.items():
        sec = doc.get(section)
        if not isinstance(sec, dict) or not sec.get("fileName"):
            continue
        p = files[section] = (path.parent / str(sec["fileName"])).resolve()
        if not p.is_file():
            raise CodecLoadError(f"{path}: codec file not found: {p.name}")
        texts[section] = _text(p)
        for i, ex in enumerate(sec.get("examples") or []):
            if not isinstance(ex, dict):
                continue
            hw = ex.get("hardwareVersions")
            examples.append(Example(kind=kind, description=str(ex.get("description") or f"{section} example {i + 1}"),
                                    input=js_json(ex.get("input")), output=ex.get("output"),
                                    normalized_output=ex.get("normalizedOutput"), section=section,
                                    hardware_versions=list(hw) if isinstance(hw, list) else None))
    live = texts.get("uplinkDecoder") or next(iter(texts.values()))
    return CodecSpec(name=name or path.stem, source=live, path=path, examples=examples, sources=files,
                     section_sources=texts)


def _text(path: Path) -> str:
    """A JavaScript file's text; one that is not UTF-8 is a load error, not a crash (found by tests/fuzz)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CodecLoadError(f"{path}: not UTF-8 text: {e}") from None


def load_js(path: Path) -> CodecSpec:
    return CodecSpec(name=path.stem, source=_text(path), path=path)


def chirpstack_profile(doc: Any) -> tuple[str, str] | None:
    """(profile name, codec script) of a ChirpStack device-profile export, whatever its exact shape."""
    if not isinstance(doc, dict):
        return None
    prof = doc.get("deviceProfile") if isinstance(doc.get("deviceProfile"), dict) else doc
    script = prof.get("payloadCodecScript") or prof.get("payload_codec_script")
    runtime = str(prof.get("payloadCodecRuntime") or prof.get("payload_codec_runtime") or "JS").upper()
    if not isinstance(script, str) or not script.strip() or runtime not in ("JS", "JAVASCRIPT", "2"):
        return None
    return str(prof.get("name") or ""), script


def load_chirpstack_profile(path: Path) -> CodecSpec:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CodecLoadError(f"{path}: not valid JSON: {e}") from None
    found = chirpstack_profile(doc)
    if found is None:
        raise CodecLoadError(f"{path}: not a ChirpStack device profile with a JavaScript codec")
    name, script = found
    return CodecSpec(name=name or path.stem, source=script, path=path)


def load_spec(path: Path, name: str | None = None) -> CodecSpec:
    """Whatever codec file `path` is, by its extension."""
    if not path.is_file():
        raise CodecLoadError(f"codec file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return load_codec_yaml(path, name)
    if suffix == ".json":
        return load_chirpstack_profile(path)
    if suffix in (".js", ".mjs", ".cjs"):
        return load_js(path)
    raise CodecLoadError(f"{path}: not a codec (.js, codec .yaml or ChirpStack profile .json)")


@dataclass(frozen=True)
class DeviceVersion:
    """One (device, hardware, firmware, region) a device profile of the repository uses a codec for: the check
    runs a codec's examples once per such version and hands it to `normalizeUplink` as `input.version`."""

    vendor_id: Any  # as the check passes it: the vendor folder, `./vendor/<maker>`
    end_device_id: Any
    hardware_version: Any
    firmware_version: Any
    region: str

    def as_input(self) -> dict[str, Any]:
        return {"vendorID": self.vendor_id, "endDeviceID": self.end_device_id,
                "hardwareVersion": self.hardware_version, "firmwareVersion": self.firmware_version,
                "region": self.region}


def device_versions(vendor_dir: Path) -> dict[str, list[DeviceVersion]]:
    """Codec id → the device versions whose profiles name it, from the vendor's `index.yaml` (`endDevices`) and
    each device's `firmwareVersions` (hardware versions, or one empty one, times regions). A vendor without an
    index has none: the check does not look at its devices."""
    index = vendor_dir / "index.yaml"
    out: dict[str, list[DeviceVersion]] = {}
    try:
        devices = (read_yaml(index) or {}).get("endDevices") if index.is_file() else None
    except (CodecLoadError, AttributeError):
        return out
    for d in devices or []:
        try:
            doc = read_yaml(vendor_dir / f"{d}.yaml")
        except (CodecLoadError, OSError):
            continue
        for fw in (doc.get("firmwareVersions") or []) if isinstance(doc, dict) else []:
            if not isinstance(fw, dict) or not isinstance(fw.get("profiles"), dict):
                continue
            for region, prof in fw["profiles"].items():
                codec = isinstance(prof, dict) and prof.get("codec")
                if not codec:
                    continue
                for hw in fw.get("hardwareVersions") or [""]:
                    v = DeviceVersion(f"./vendor/{vendor_dir.name}", d, hw, fw.get("version"), region)
                    if v not in out.setdefault(str(codec), []):
                        out[str(codec)].append(v)
    return out


def codec_files(root: Path) -> list[tuple[str, Path]]:
    """Every codec YAML of a repository-layout folder, named `maker/codec-id`, sorted."""
    base = root / "vendor" if (root / "vendor").is_dir() else root
    out: list[tuple[str, Path]] = []
    for p in sorted([*base.rglob("*.yaml"), *base.rglob("*.yml")]):
        if "codec" not in p.stem and not _looks_like_codec(p):
            continue
        try:
            if not is_codec_yaml(read_yaml(p)):
                continue
        except CodecLoadError:
            if "codec" not in p.stem:
                continue  # an unreadable device or profile file is not ours to report
        out.append((p.relative_to(base).with_suffix("").as_posix(), p))
    return out


def _looks_like_codec(p: Path) -> bool:
    """Cheap test before parsing: only codec files mention `fileName`."""
    try:
        with p.open("rb") as f:
            return b"fileName" in f.read(MAX_YAML_BYTES)
    except OSError:
        return False


def chirpstack_profiles(folder: Path) -> dict[str, Path]:
    """ChirpStack device-profile exports of a folder, by profile name."""
    out: dict[str, Path] = {}
    for p in sorted(folder.rglob("*.json")):
        try:
            found = chirpstack_profile(json.loads(p.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError, OSError):
            continue
        if found is not None:
            out[found[0] or p.stem] = p
    return out
