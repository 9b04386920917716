"""`clapas codecs test`: run every example of every codec of a repository-layout folder.

Each example is run through the same engine and limits as live uplinks, so a codec that passes here behaves the
same in ingestion. A codec that cannot load fails all its examples with the load error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clapas.codecs.compare import normalized_difference, result_difference
from clapas.codecs.engine import CodecError, JsCodec, Limits
from clapas.codecs.repository import CodecSpec, Example, codec_files, load_spec


@dataclass
class CodecReport:
    codec: str
    examples: int = 0
    passed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Report:
    codecs: list[CodecReport] = field(default_factory=list)

    @property
    def examples(self) -> int:
        return sum(c.examples for c in self.codecs)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.codecs)

    def as_dict(self) -> dict[str, Any]:
        return {"codecs": len(self.codecs), "examples": self.examples, "passed": self.passed,
                "failed": self.examples - self.passed,
                "failures": [f for c in self.codecs for f in c.failures],
                "per_codec": [{"codec": c.codec, "examples": c.examples, "passed": c.passed,
                               "failed": c.examples - c.passed} for c in self.codecs]}


def _bytes(v: Any) -> bytes:
    if isinstance(v, str):  # some examples give hex
        return bytes.fromhex(v.replace(" ", ""))
    if not isinstance(v, list) or not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256
                                          for b in v):
        raise ValueError(f"input bytes are not a list of bytes: {v!r}")
    return bytes(v)


def run_example(codec: JsCodec, ex: Example) -> str | None:
    """None when the example passes, else why not."""
    inp = ex.input if isinstance(ex.input, dict) else {}
    try:
        if ex.kind == "uplink":
            want_normalized = ex.normalized_output is not None
            got, normalized = codec.decode_uplink(_bytes(inp.get("bytes", [])), int(inp.get("fPort") or 0),
                                                  inp.get("recvTime"), inp.get("variables"),
                                                  normalize=want_normalized)
            diff = result_difference(ex.output, got)
            if diff:
                return diff
            if want_normalized:
                if not codec.normalizes:
                    return "normalizedOutput given but the codec has no normalizeUplink"
                got_n = normalized if isinstance(normalized, dict) else {"data": normalized}
                diff = normalized_difference(ex.normalized_output, got_n)
                return f"normalized {diff}" if diff else None
            return None
        if ex.kind == "downlink-encode":
            return result_difference(ex.output, codec.encode_downlink(inp.get("data")))
        if ex.kind == "downlink-decode":
            return result_difference(ex.output, codec.decode_downlink(_bytes(inp.get("bytes", [])),
                                                                      int(inp.get("fPort") or 0)))
        return f"unknown example type {ex.kind!r}"
    except CodecError as e:
        return str(e)
    except (ValueError, TypeError) as e:
        return f"bad example input: {e}"


def check_codec(spec: CodecSpec, limits: Limits) -> CodecReport:
    rep = CodecReport(spec.name, examples=len(spec.examples))
    try:
        codec = JsCodec(spec.source, spec.name, limits)
    except CodecError as e:
        rep.failures = [{"codec": spec.name, "example": ex.description, "reason": str(e)} for ex in spec.examples]
        return rep
    for ex in spec.examples:
        reason = run_example(codec, ex)
        if reason is None:
            rep.passed += 1
        else:
            rep.failures.append({"codec": spec.name, "example": ex.description, "reason": reason})
    return rep


def check_repository(root: Path, limits: Limits | None = None,
                    progress: Callable[[int, int, str], None] | None = None) -> Report:
    limits = limits or Limits()
    report = Report()
    files = codec_files(root)
    for i, (name, path) in enumerate(files):
        if progress:
            progress(i + 1, len(files), name)
        try:
            spec = load_spec(path, name)
        except CodecError as e:
            report.codecs.append(CodecReport(name, examples=1, failures=[{"codec": name, "example": "(load)",
                                                               "reason": str(e)}]))
            continue
        report.codecs.append(check_codec(spec, limits))
    return report


def stderr_progress(every: int = 25) -> Callable[[int, int, str], None]:
    """Progress on stderr every `every` codecs, so a long run over a whole repository shows it is alive."""
    def show(i: int, n: int, name: str) -> None:
        if i == 1 or i == n or i % every == 0:
            print(f"[{i}/{n}] {name}", file=sys.stderr, flush=True)
    return show
