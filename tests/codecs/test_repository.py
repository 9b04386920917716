"""Codecs from a device-repository folder: YAML 1.2, sections and examples, device versions, `clapas codecs test`
and its figures per class."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from clapas.cli import main
from clapas.codecs.engine import CodecLoadError, Limits
from clapas.codecs.library import CodecLibrary
from clapas.codecs.repository import codec_files, device_versions, js_json, load_spec, read_yaml
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
    assert names == ["acme/th-sensor-codec", "meterco/wm2-codec", "oldco/gauge-codec", "oldco/pulse-codec",
                     "pumpco/p100-codec", "riverco/level-codec", "windco/vane-codec"]


def test_codec_yaml_examples_are_read():
    spec = load_spec(REPO / "vendor" / "acme" / "th-sensor-codec.yaml")
    kinds = [e.kind for e in spec.examples]
    assert kinds.count("uplink") == 5 and kinds.count("downlink-encode") == 2 and kinds.count("downlink-decode") == 1
    valve = next(e for e in spec.examples if e.description.startswith("valve state"))
    assert valve.output["data"] == {"valve": "on", "manual": "no", "seen": "2026-03-01T12:00:00.000Z"}
    wind = load_spec(REPO / "vendor" / "windco" / "vane-codec.yaml").examples
    assert [e.hardware_versions for e in wind] == [["1-2M"], ["1-5M"], ["1-10M"], None]


def test_each_section_keeps_its_own_file():
    spec = load_spec(REPO / "vendor" / "pumpco" / "p100-codec.yaml")
    assert {k: p.name for k, p in spec.sources.items()} == {
        "uplinkDecoder": "p100-uplink.js", "downlinkEncoder": "p100-encode.js", "downlinkDecoder": "p100-decode.js"}
    assert "function decodeUplink" in spec.source and "encodeDownlink" not in spec.source  # live uplinks
    assert "var COMMANDS = { start: 1" in spec.section_sources["downlinkEncoder"]


def test_timestamps_reach_the_codec_as_javascript_text_and_never_equal_an_output(tmp_path):
    spec = load_spec(REPO / "vendor" / "meterco" / "wm2-codec.yaml")
    assert spec.examples[1].input["recvTime"] == "2026-03-01T12:30:00.000Z"  # unquoted in the YAML
    assert js_json({"a": date(2026, 3, 1), "b": [datetime(2026, 3, 1, 12, 0, 0, 120000)], "c": float("nan")}) == {
        "a": "2026-03-01T00:00:00.000Z", "b": ["2026-03-01T12:00:00.120Z"], "c": None}
    f = tmp_path / "x.yaml"
    f.write_text("t: 2026-03-01T12:30:00Z\n2: two\ntrue: yes\n")
    assert read_yaml(f, timestamps=True) == {"t": datetime(2026, 3, 1, 12, 30, tzinfo=UTC), "2": "two",
                                             "true": "yes"}


def test_device_versions_come_from_the_vendor_index():
    versions = device_versions(REPO / "vendor" / "windco")["vane-codec"]
    assert [(v.hardware_version, v.region) for v in versions] == [
        ("1-2M", "EU863-870"), ("1-5M", "EU863-870"), ("1-2M", "US902-928"), ("1-5M", "US902-928")]
    assert versions[0].as_input() == {"vendorID": "./vendor/windco", "endDeviceID": "vane",
                                      "hardwareVersion": "1-2M", "firmwareVersion": "1.0", "region": "EU863-870"}
    assert device_versions(REPO / "vendor" / "oldco") == {}  # no index: the check looks at no device


def test_the_fixture_repository_figures_per_class():
    report = check_repository(REPO, Limits()).as_dict()
    assert report["classes"] == {
        "uplink": {"examples": 15, "passed": 14, "failed": 1, "skipped": 1},
        "normalize": {"examples": 4, "passed": 4, "failed": 0, "skipped": 1},
        "downlink-encode": {"examples": 6, "passed": 6, "failed": 0, "skipped": 0},
        "downlink-decode": {"examples": 3, "passed": 3, "failed": 0, "skipped": 0}}
    assert (report["examples"], report["passed"], report["failed"], report["skipped"]) == (28, 27, 1, 2)
    assert report["failures"] == [{"codec": "acme/th-sensor-codec", "class": "uplink", "example": "wrong on purpose",
                                   "reason": "data.temperature: expected 22.5, got 23.1"}]
    assert report["unreferenced_codecs"] == 3  # oldco and riverco have no vendor index
    assert {s["example"] for s in report["skipped_examples"]} == {
        "on a 10 m mast no device has", "on a 10 m mast no device has (normalized)"}


def test_a_codec_that_cannot_load_fails_its_examples(tmp_path):
    d = tmp_path / "vendor" / "x"
    d.mkdir(parents=True)
    (d / "broken.js").write_text("function decodeUplink(input) { return {data: {}} ")
    (d / "broken-codec.yaml").write_text("uplinkDecoder:\n  fileName: broken.js\n  examples:\n"
                                         "    - description: one\n      input: {fPort: 1, bytes: [1]}\n"
                                         "      output: {data: {}}\n"
                                         "    - description: two\n      input: {fPort: 1, bytes: [2]}\n"
                                         "      output: {data: {}}\n")
    (d / "gone-codec.yaml").write_text("uplinkDecoder:\n  fileName: gone.js\n")
    report = check_repository(tmp_path).as_dict()
    reasons = {(f["codec"], f["class"], f["example"]): f["reason"] for f in report["failures"]}
    assert reasons[("x/broken-codec", "uplink", "two")].startswith("cannot load: threw SyntaxError")
    assert "codec file not found: gone.js" in reasons[("x/gone-codec", "load", "(load)")]
    assert report["failed"] == 3 and report["classes"]["load"]["failed"] == 1


def test_cli_json(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["codecs", "test", str(REPO), "--json"])
    assert exit_.value.code == 1
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert (result["examples"], result["passed"], result["failed"], result["skipped"]) == (28, 27, 1, 2)
    assert result["classes"]["normalize"] == {"examples": 4, "passed": 4, "failed": 0, "skipped": 1}
    assert result["failures"][0]["example"] == "wrong on purpose"
    assert "[1/7] acme/th-sensor-codec" in out.err  # progress goes to stderr


def test_cli_text(capsys):
    with pytest.raises(SystemExit):
        main(["codecs", "test", str(REPO), "-q"])
    out = capsys.readouterr().out
    assert "FAIL acme/th-sensor-codec: 8/9" in out and "PASS windco/vane-codec: 6/6 (2 skipped)" in out
    assert "PASS riverco/level-codec: 1/1 (no device profile uses it)" in out
    assert "acme/th-sensor-codec — uplink — wrong on purpose: data.temperature: expected 22.5, got 23.1" in out
    assert "windco/vane-codec — normalize — on a 10 m mast no device has (normalized): hardware versions" in out
    lines = [ln.split() for ln in out.splitlines()]
    assert ["uplink", "decode", "15", "14", "1", "1"] in lines and ["normalize", "4", "4", "0", "1"] in lines
    assert ["downlink", "encode", "6", "6", "0", "0"] in lines and ["downlink", "decode", "3", "3", "0", "0"] in lines
    assert "7 codecs (3 used by no device profile), 28 examples: 27 passed, 1 failed, 2 skipped" in out


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
