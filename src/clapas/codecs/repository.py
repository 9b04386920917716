"""Find codecs where device makers publish them, and read their examples.

Three sources, one shape (`CodecSpec`: a name, the JavaScript source, the examples if any):

- a folder laid out like The Things Stack device repository: `vendor/<maker>/<codec-id>.yaml` files with
  `uplinkDecoder.fileName` (and `downlinkEncoder`/`downlinkDecoder`), each with `examples`;
- a single `.js` file (one per device profile);
- a ChirpStack v4 device-profile export (JSON with `payloadCodecScript`).

YAML is read as YAML 1.2 (ruamel.yaml): `on`, `off`, `yes`, `no` are strings, as the device repository's own
tooling reads them; a YAML 1.1 reader would turn a codec's expected `direction: no` into `false`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from clapas.codecs.engine import CodecLoadError

# Sections of a codec YAML file, and the example kind each one holds.
SECTIONS = {"uplinkDecoder": "uplink", "downlinkEncoder": "downlink-encode", "downlinkDecoder": "downlink-decode"}
# Codec YAML files are never this large; anything bigger is not one.
MAX_YAML_BYTES = 4 * 1024 * 1024


@dataclass
class Example:
    kind: str  # uplink, downlink-encode, downlink-decode
    description: str
    input: dict[str, Any]
    output: Any
    normalized_output: Any = None


@dataclass
class CodecSpec:
    name: str  # `maker/codec-id` in a repository, else the file name
    source: str
    path: Path
    examples: list[Example] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)  # section → JS file, when sections use different files


def read_yaml(path: Path) -> Any:
    """One YAML 1.2 document, as plain Python data (timestamps kept as ISO strings)."""
    if path.stat().st_size > MAX_YAML_BYTES:
        raise CodecLoadError(f"{path}: larger than {MAX_YAML_BYTES} bytes")
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    try:
        return _plain(yaml.load(path.read_text(encoding="utf-8")))
    except (YAMLError, UnicodeDecodeError) as e:
        raise CodecLoadError(f"{path}: not valid YAML: {e}") from None


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def is_codec_yaml(doc: Any) -> bool:
    return isinstance(doc, dict) and any(isinstance(doc.get(s), dict) and doc[s].get("fileName") for s in SECTIONS)


def load_codec_yaml(path: Path, name: str | None = None) -> CodecSpec:
    """A codec YAML file: its JavaScript (the uplink decoder's file, with the downlink files if distinct) and
    every example of every section."""
    doc = read_yaml(path)
    if not is_codec_yaml(doc):
        raise CodecLoadError(f"{path}: not a codec file (no uplinkDecoder/downlink fileName)")
    files: dict[str, Path] = {}
    examples: list[Example] = []
    for section, kind in SECTIONS.items():
        sec = doc.get(section)
        if not isinstance(sec, dict) or not sec.get("fileName"):
            continue
        files[section] = (path.parent / str(sec["fileName"])).resolve()
        for i, ex in enumerate(sec.get("examples") or []):
            if not isinstance(ex, dict):
                continue
            examples.append(Example(kind=str(ex.get("type") or kind),
                                    description=str(ex.get("description") or f"{section} example {i + 1}"),
                                    input=ex.get("input") or {}, output=ex.get("output"),
                                    normalized_output=ex.get("normalizedOutput")))
    # One runtime per codec: distinct files of one codec are concatenated, uplink first.
    parts: list[str] = []
    for p in dict.fromkeys(files.values()):
        if not p.is_file():
            raise CodecLoadError(f"{path}: codec file not found: {p.name}")
        parts.append(_text(p))
    return CodecSpec(name=name or path.stem, source="\n;\n".join(parts), path=path, examples=examples, sources=files)


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
