"""`clapas codecs test`: run every example of every codec of a repository-layout folder, as The Things Stack's
device-repository check runs them, and count the results per class of example.

Classes: `uplink` (uplink decoder examples, `decodeUplink`), `normalize` (those with a `normalizedOutput`:
`normalizeUplink` on the example's expected `output.data`), `downlink-encode` (`encodeDownlink`) and
`downlink-decode` (`decodeDownlink`). Each run is `check.run` (fresh sandbox, the section's own file, the
example's input as written, goja's export) and each comparison `compare.difference` (exact deep equality).

Examples are run for the device versions the repository's device profiles use the codec for: an example limited
to `hardwareVersions` no such device has is skipped, as the check skips it, and `normalizeUplink` gets each
version as `input.version`. A codec no device profile names (the check never runs those) is still run, once, with
no `input.version`, and counted as unreferenced.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clapas.codecs.check import compile_error, run, utc_process
from clapas.codecs.compare import as_measurements, difference, js_truthy
from clapas.codecs.engine import CodecError, Limits
from clapas.codecs.repository import CodecSpec, DeviceVersion, Example, codec_files, device_versions, js_json, load_spec

# Classes of example, in report order, with the label the text report prints.
CLASSES = {"uplink": "uplink decode", "normalize": "normalize", "downlink-encode": "downlink encode",
           "downlink-decode": "downlink decode"}
ROUTINES = {"uplink": "decodeUplink", "downlink-encode": "encodeDownlink", "downlink-decode": "decodeDownlink"}
LOAD = "load"  # a codec YAML that cannot be read counts as one failed example of this class


@dataclass
class Outcome:
    codec: str
    kind: str  # a key of CLASSES, or LOAD
    example: str
    reason: str | None = None  # None: passed
    skipped: bool = False

    def as_dict(self) -> dict[str, str]:
        return {"codec": self.codec, "class": self.kind, "example": self.example, "reason": self.reason or ""}


@dataclass
class CodecReport:
    codec: str
    outcomes: list[Outcome] = field(default_factory=list)
    referenced: bool = True  # some device profile of the repository names this codec

    def add(self, kind: str, example: str, reason: str | None, skipped: bool = False) -> None:
        self.outcomes.append(Outcome(self.codec, kind, example, reason, skipped))

    @property
    def examples(self) -> int:
        return sum(not o.skipped for o in self.outcomes)

    @property
    def passed(self) -> int:
        return sum(not o.skipped and o.reason is None for o in self.outcomes)

    @property
    def skipped(self) -> int:
        return sum(o.skipped for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.skipped and o.reason is not None]


def _figures(outcomes: list[Outcome]) -> dict[str, int]:
    ran = [o for o in outcomes if not o.skipped]
    passed = sum(o.reason is None for o in ran)
    return {"examples": len(ran), "passed": passed, "failed": len(ran) - passed,
            "skipped": len(outcomes) - len(ran)}


@dataclass
class Report:
    codecs: list[CodecReport] = field(default_factory=list)

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for c in self.codecs for o in c.outcomes]

    def as_dict(self) -> dict[str, Any]:
        every = self.outcomes
        classes = {k: _figures([o for o in every if o.kind == k]) for k in CLASSES}
        if any(o.kind == LOAD for o in every):
            classes[LOAD] = _figures([o for o in every if o.kind == LOAD])
        return {"codecs": len(self.codecs), "unreferenced_codecs": sum(not c.referenced for c in self.codecs),
                **_figures(every), "classes": classes,
                "failures": [o.as_dict() for c in self.codecs for o in c.failures],
                "skipped_examples": [o.as_dict() for o in every if o.skipped],
                "per_codec": [{"codec": c.codec, **_figures(c.outcomes), "referenced": c.referenced}
                              for c in self.codecs]}


def _version_text(v: DeviceVersion | None) -> str:
    if v is None:
        return ""
    return (f" (device {v.end_device_id}, hardware {v.hardware_version or '-'}, firmware {v.firmware_version}, "
            f"{v.region})")


def check_output(source: str, routine: str, ex: Example, limits: Limits) -> str | None:
    """None when `routine(example input)` gives exactly the example's output, else why not."""
    r = run(source, routine, ex.input, limits)
    return r.error or difference(ex.output, r.output)


def check_normalized(source: str, ex: Example, versions: list[DeviceVersion], limits: Limits) -> str | None:
    """`normalizeUplink({version, data})` with the example's expected `output.data`, once per device version
    (once in all when the codec never reads `input.version`), against `normalizedOutput`."""
    base: dict[str, Any] = {}
    if isinstance(ex.output, dict) and "data" in ex.output:
        base["data"] = js_json(ex.output["data"])
    for v in versions or [None]:
        r = run(source, "normalizeUplink", {"version": v.as_input(), **base} if v else base, limits)
        d = r.error or difference(ex.normalized_output, as_measurements(r.output))
        if d:
            return d + (_version_text(v) if v and len(versions) > 1 else "")
        if not r.version_read:
            break
    return None


def check_codec(spec: CodecSpec, limits: Limits, versions: list[DeviceVersion] | None = None) -> CodecReport:
    """Every example of one codec; `versions` are the device versions that use it (None or empty: none)."""
    rep = CodecReport(spec.name, referenced=bool(versions))
    versions = versions or []
    load_errors = {sec: compile_error(src, limits) for sec, src in spec.section_sources.items()}
    for ex in spec.examples:
        normalized = ex.section == "uplinkDecoder" and js_truthy(ex.normalized_output)
        matching = versions
        if versions and ex.hardware_versions is not None:
            matching = [v for v in versions if v.hardware_version in ex.hardware_versions]
            if not matching:
                why = f"hardware versions {ex.hardware_versions}: no device profile of the repository uses them"
                rep.add(ex.kind, ex.description, why, skipped=True)
                if normalized:
                    rep.add("normalize", f"{ex.description} (normalized)", why, skipped=True)
                continue
        source, err = spec.section_sources[ex.section], load_errors[ex.section]
        rep.add(ex.kind, ex.description, err or check_output(source, ROUTINES[ex.kind], ex, limits))
        if normalized:
            rep.add("normalize", f"{ex.description} (normalized)",
                    err or check_normalized(source, ex, matching, limits))
    return rep


def check_repository(root: Path, limits: Limits | None = None,
                     progress: Callable[[int, int, str], None] | None = None) -> Report:
    limits = limits or Limits()
    report = Report()
    files = codec_files(root)
    base = root / "vendor" if (root / "vendor").is_dir() else root
    by_vendor: dict[str, dict[str, list[DeviceVersion]]] = {}
    with utc_process():
        for i, (name, path) in enumerate(files):
            if progress:
                progress(i + 1, len(files), name)
            try:
                spec = load_spec(path, name)
            except CodecError as e:
                rep = CodecReport(name)
                rep.add(LOAD, "(load)", str(e))
                report.codecs.append(rep)
                continue
            maker, _, codec_id = name.partition("/")
            if maker not in by_vendor:
                by_vendor[maker] = device_versions(base / maker) if codec_id else {}
            report.codecs.append(check_codec(spec, limits, by_vendor[maker].get(codec_id)))
    return report


def stderr_progress(every: int = 25) -> Callable[[int, int, str], None]:
    """Progress on stderr every `every` codecs, so a long run over a whole repository shows it is alive."""
    def show(i: int, n: int, name: str) -> None:
        if i == 1 or i == n or i % every == 0:
            print(f"[{i}/{n}] {name}", file=sys.stderr, flush=True)
    return show
