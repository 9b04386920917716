"""Codecs from a device-repository folder: YAML 1.2, examples, the careful comparison, `clapas codecs test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clapas.cli import main
from clapas.codecs.compare import difference, normalized_difference, result_difference
from clapas.codecs.engine import CodecLoadError, Limits
from clapas.codecs.library import CodecLibrary
from clapas.codecs.repository import codec_files, load_spec, read_yaml
from clapas.codecs.runner import check_repository

CODECS = Path(__file__).parents[1] / "fixtures" / "codecs"
REPO = CODECS / "repo"


def test_yaml_is_read_as_yaml_1_2(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("a: on\nb: off\nc: no\nd: yes\ne: y\nf: true\ng: 0x1F\nh: 010\ni: 2026-03-01\n")
    assert read_yaml(f) == {"a": "on", "b": "off", "c": "no", "d": "yes", "e": "y", "f": True, "g": 31,
                            "h": 10, "i": "2026-03-01"}


def test_codec_files_of_a_repository():
    names = [n for n, _ in codec_files(REPO)]
    assert names == ["acme/th-sensor-codec", "oldco/gauge-codec", "oldco/pulse-codec", "riverco/level-codec"]


def test_codec_yaml_examples_are_read():
    spec = load_spec(REPO / "vendor" / "acme" / "th-sensor-codec.yaml")
    kinds = [e.kind for e in spec.examples]
    assert kinds.count("uplink") == 5 and kinds.count("downlink-encode") == 2 and kinds.count("downlink-decode") == 1
    valve = next(e for e in spec.examples if e.description.startswith("valve state"))
    assert valve.output["data"] == {"valve": "on", "manual": "no", "seen": "2026-03-01T12:00:00.000Z"}


def test_every_example_runs_and_the_wrong_one_is_reported():
    report = check_repository(REPO, Limits()).as_dict()
    assert (report["examples"], report["passed"], report["failed"]) == (12, 11, 1)
    assert report["failures"] == [{"codec": "acme/th-sensor-codec", "example": "wrong on purpose",
                                   "reason": "data.temperature: expected 22.5, got 23.1"}]


def test_a_codec_that_cannot_load_fails_its_examples(tmp_path):
    d = tmp_path / "vendor" / "x"
    d.mkdir(parents=True)
    (d / "broken.js").write_text("function decodeUplink(input) { return {data: {}} ")
    (d / "broken-codec.yaml").write_text("uplinkDecoder:\n  fileName: broken.js\n  examples:\n"
                                         "    - description: one\n      input: {fPort: 1, bytes: [1]}\n"
                                         "      output: {data: {}}\n")
    (d / "gone-codec.yaml").write_text("uplinkDecoder:\n  fileName: gone.js\n")
    report = check_repository(tmp_path).as_dict()
    reasons = {f["codec"]: f["reason"] for f in report["failures"]}
    assert "cannot load: threw SyntaxError" in reasons["x/broken-codec"]
    assert "codec file not found: gone.js" in reasons["x/gone-codec"]
    assert report["failed"] == 2


def test_comparison_is_a_careful_humans():
    assert difference({"a": 22.6, "b": [1, 2]}, {"b": [1.0, 2], "a": 22.599999999999998}) is None
    assert difference({"a": 1}, {"a": True}) == "a: expected 1, got True"
    assert difference({"a": "1"}, {"a": 1}) == "a: expected '1', got 1"
    assert difference([1, 2], [2, 1]) == "[0]: expected 1, got 2"
    assert difference({"a": {"b": 1}}, {"a": {}}) == "a.b: missing (expected 1)"
    assert difference({"a": 1}, {"a": 1, "c": None}) == "c: not expected (got None)"
    assert difference({"x": 16.4608}, {"x": 32 * 0.5144}) is None
    assert difference({"x": 16.46}, {"x": 16.4608}) == "x: expected 16.46, got 16.4608"
    assert result_difference({"data": {"a": 1}}, {"data": {"a": 1}, "warnings": [], "errors": []}) is None
    assert normalized_difference({"data": [{"air": {"co2": 4}}]}, {"data": {"air": {"co2": 4}}}) is None


def test_cli_json(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["codecs", "test", str(REPO), "--json"])
    assert exit_.value.code == 1
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert (result["examples"], result["passed"], result["failed"]) == (12, 11, 1)
    assert result["failures"][0]["example"] == "wrong on purpose"
    assert "[1/4] acme/th-sensor-codec" in out.err  # progress goes to stderr


def test_cli_text(capsys):
    with pytest.raises(SystemExit):
        main(["codecs", "test", str(REPO), "-q"])
    out = capsys.readouterr().out
    assert "FAIL acme/th-sensor-codec: 7/8" in out and "PASS riverco/level-codec: 1/1" in out
    assert "wrong on purpose: data.temperature: expected 22.5, got 23.1" in out
    assert "4 codecs, 12 examples: 11 passed, 1 failed" in out


def test_library_resolves_references():
    lib = CodecLibrary(str(REPO), str(CODECS / "chirpstack"))
    assert lib.codec("acme/th-sensor").name == "acme/th-sensor"
    assert lib.resolve("acme/th-sensor") == (REPO / "vendor" / "acme" / "th-sensor-codec.yaml").resolve()
    assert lib.resolve("vendor/acme/th-sensor.yaml").name == "th-sensor-codec.yaml"  # a device follows its codec
    assert lib.codec("vendor/oldco/gauge-codec.yaml").convention == "Decode"
    assert lib.codec(str(CODECS / "single" / "throws.js")).convention == "decodeUplink"
    assert lib.codec("acme/th-sensor") is lib.codec("acme/th-sensor")  # compiled once
    assert lib.profile_codec("Radar level gauge") == str(CODECS / "chirpstack" / "radar-level-gauge.json")
    assert lib.profile_codec("Unknown") is None
    with pytest.raises(CodecLoadError, match=r"not found \(looked at .*acme/nope"):
        lib.codec("acme/nope")


def test_settings_configure_the_process_codecs(tmp_path):
    from clapas.codecs.library import LIBRARY
    from clapas.config import ConfigError, load_settings

    f = tmp_path / "city.toml"
    f.write_text(f'[codecs]\nrepository = "{REPO}"\ntime_limit_ms = 20\n\n'
                 '[profiles."TH-1"]\ncodec = "acme/th-sensor"\n')
    try:
        s = load_settings(f, env={})
        assert s.profiles["TH-1"].codec == "acme/th-sensor"
        assert LIBRARY.repository == REPO and LIBRARY.limits.time_limit_ms == 20
        with pytest.raises(ConfigError, match="time_limit_ms must be > 0"):
            load_settings(f, env={"CLAPAS_CODECS_TIME_LIMIT_MS": "0"})
    finally:
        LIBRARY.configure()
