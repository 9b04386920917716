"""Examples are run and compared as The Things Stack's device-repository check does, one class at a time.

What the check does (the device repository's `bin/validate.js` and `tools/runscript`, on The Things Stack's goja
engine): a fresh runtime per example, only the section's own file, the routine called with the example's `input`
as written, the whole returned object exported by goja and compared with the example by deep equality; for a
`normalizedOutput`, `normalizeUplink({version, data: <the example's output.data>})` once per device version, a
single measurement object counted as a list of one.
"""

from __future__ import annotations

from pathlib import Path

from clapas.codecs.check import run, utc_process
from clapas.codecs.compare import as_measurements, difference
from clapas.codecs.engine import Limits
from clapas.codecs.runner import check_repository

REPO = Path(__file__).parents[1] / "fixtures" / "codecs" / "repo"
L = Limits()

DEVICE = """firmwareVersions:
  - version: '1.0'
    hardwareVersions: ['A', 'B']
    profiles:
      EU863-870: {id: p, codec: x-codec}
"""


def repo(tmp: Path, js: str, codec_yaml: str, device: bool = False) -> Path:
    """A one-codec repository `vendor/v/x-codec.yaml` (+ a device of hardware versions A and B using it)."""
    d = tmp / "vendor" / "v"
    d.mkdir(parents=True)
    (d / "x.js").write_text(js)
    (d / "x-codec.yaml").write_text(codec_yaml)
    if device:
        (d / "index.yaml").write_text("endDevices: [dev]\n")
        (d / "dev.yaml").write_text(DEVICE)
    return tmp


def failures(root: Path) -> dict[str, str]:
    return {f"{f['class']}: {f['example']}": f["reason"] for f in check_repository(root, L).as_dict()["failures"]}


def uplink_yaml(*examples: str) -> str:
    return "uplinkDecoder:\n  fileName: x.js\n  examples:\n" + "".join(examples)


# --- uplink decode ------------------------------------------------------------------------------------------------

def test_the_uplink_input_is_the_examples_input_and_nothing_more(tmp_path):
    js = ("function decodeUplink(input) { return {data: {keys: Object.keys(input).sort(), "
          "recv: typeof input.recvTime, vars: typeof input.variables}}; }")
    root = repo(tmp_path, js, uplink_yaml(
        "    - description: bare\n      input: {fPort: 1, bytes: [1]}\n"
        "      output: {data: {keys: [bytes, fPort], recv: undefined, vars: undefined}}\n",
        "    - description: with a receive time\n      input: {bytes: [], recvTime: '2026-03-01T12:00:00Z'}\n"
        "      output: {data: {keys: [bytes, recvTime], recv: string, vars: undefined}}\n"))
    assert failures(root) == {}


def test_every_key_of_the_result_is_compared(tmp_path):
    js = "function decodeUplink(input) { return {data: {n: input.bytes[0]}, warnings: []}; }"
    root = repo(tmp_path, js, uplink_yaml(
        "    - description: states the empty warnings\n      input: {fPort: 1, bytes: [1]}\n"
        "      output: {data: {n: 1}, warnings: []}\n",
        "    - description: leaves them out\n      input: {fPort: 1, bytes: [1]}\n      output: {data: {n: 1}}\n",
        "    - description: expects an error\n      input: {fPort: 1, bytes: [1]}\n"
        "      output: {data: {n: 1}, warnings: [], errors: [bad]}\n"))
    assert failures(root) == {"uplink: leaves them out": "warnings: not expected (got [])",
                              "uplink: expects an error": "errors: missing (expected ['bad'])"}


def test_values_are_compared_in_the_form_the_example_states_them():
    assert difference({"a": 41, "b": [1, 2]}, {"b": [1.0, 2], "a": 41.0}) is None  # one number, key order free
    assert difference({"a": 0.3}, {"a": 0.1 + 0.2}) == "a: expected 0.3, got 0.30000000000000004"  # no tolerance
    assert difference({"a": "1"}, {"a": 1}) == "a: expected '1' (a string), got 1 (a number)"
    assert difference({"a": 1}, {"a": True}) == "a: expected 1 (a number), got True (a boolean)"
    assert difference({"a": None}, {}) == "a: missing (expected None)"
    assert difference([1, 2], [2, 1]) == "[0]: expected 1, got 2"


def test_each_example_gets_a_fresh_runtime(tmp_path):
    js = "var seen = 0;\nfunction decodeUplink(input) { seen += 1; return {data: {seen: seen}}; }"
    example = "    - description: {}\n      input: {{fPort: 1, bytes: []}}\n      output: {{data: {{seen: 1}}}}\n"
    assert failures(repo(tmp_path, js, uplink_yaml(example.format("one"), example.format("two")))) == {}


def test_the_output_is_exported_as_goja_exports_it():
    js = """function decodeUplink(input) {
      var o = {gone: undefined, list: [undefined, 1], at: new Date(Date.UTC(2026, 2, 1, 12)),
               ms: new Date(Date.UTC(2026, 2, 1, 12, 0, 0, 250)), bad: new Date('x'), u8: new Uint8Array([7]),
               boxed: [new Number(5), new String('ab'), new Boolean(false)]};
      if (input.fPort === 2) o.nan = 0 / 0;
      if (input.fPort === 3) o.f = function () {};
      return {data: o};
    }"""
    assert run(js, "decodeUplink", {"fPort": 1}, L).output == {"data": {
        "gone": None, "list": [None, 1], "at": "2026-03-01T12:00:00Z", "ms": "2026-03-01T12:00:00.25Z", "bad": None,
        "u8": {"0": 7}, "boxed": [5, "ab", False]}}
    assert run(js, "decodeUplink", {"fPort": 2}, L).error == (
        "output cannot be encoded as JSON by The Things Stack: output.data.nan is NaN")
    assert run(js, "decodeUplink", {"fPort": 3}, L).error.endswith("output.data.f is a function")
    assert run("function decodeUplink() {}", "decodeUplink", {}, L).error.startswith("returned nothing")


def test_dates_behave_as_in_goja_in_a_utc_process():
    js = """function decodeUplink(input) {
      var d = new Date(Date.UTC(2025, 0, 16, 17, 29, 37));
      return {data: {s: String(d), t: d.toTimeString(), l: d.toLocaleString(), local: new Date(2025, 0, 16).getTime(),
                     iso: Date.parse('2025-01-16T17:29:37+02:00'), space: Date.parse('2025-01-16 17:29:37'),
                     slash: isNaN(Date.parse('2025/01/16 17:29:37')), isDate: d instanceof Date}};
    }"""
    with utc_process():
        data = run(js, "decodeUplink", {}, L).output["data"]
    assert data == {"s": "Thu Jan 16 2025 17:29:37 GMT+0000 (UTC)", "t": "17:29:37 GMT+0000 (UTC)",
                    "l": "01/16/2025, 17:29:37", "local": 1736985600000, "iso": 1737041377000,
                    "space": 1737048577000, "slash": True, "isDate": True}


def test_a_codecs_top_level_code_sees_the_same_dates():
    js = ("var EPOCH = Date.parse('2020/01/01'), LABEL = String(new Date(0));\n"
          "function decodeUplink(input) { return {data: {epoch: isNaN(EPOCH), label: LABEL}}; }")
    assert run(js, "decodeUplink", {}, L).output == {
        "data": {"epoch": True, "label": "Thu Jan 01 1970 00:00:00 GMT+0000 (UTC)"}}


def test_legacy_decoders_still_run_through_decode_uplink():
    assert run("function Decoder(b, p) { return {n: b[0], p: p}; }", "decodeUplink",
               {"bytes": [4], "fPort": 3}, L).output == {"data": {"n": 4, "p": 3}}


# --- normalize ----------------------------------------------------------------------------------------------------

NORMALIZING = """function decodeUplink(input) { return {data: {t: input.bytes[0]}}; }
function normalizeUplink(input) {
  var where = input.version.hardwareVersion === 'A' ? 'indoor' : 'outdoor';
  return {data: {air: {temperature: input.data.t, location: where}}};
}"""


def test_normalize_runs_on_the_expected_data_for_every_device_version(tmp_path):
    root = repo(tmp_path, NORMALIZING, uplink_yaml(
        "    - description: on A\n      hardwareVersions: [A]\n      input: {fPort: 1, bytes: [20]}\n"
        "      output: {data: {t: 20}}\n"
        "      normalizedOutput: {data: [{air: {temperature: 20, location: indoor}}]}\n",
        # the decoder gives t: 21 here, but normalizeUplink gets the example's stated t: 22
        "    - description: wrong decode, right normalization\n      hardwareVersions: [B]\n"
        "      input: {fPort: 1, bytes: [21]}\n      output: {data: {t: 22}}\n"
        "      normalizedOutput: {data: [{air: {temperature: 22, location: outdoor}}]}\n",
        "    - description: on every version\n      input: {fPort: 1, bytes: [5]}\n      output: {data: {t: 5}}\n"
        "      normalizedOutput: {data: [{air: {temperature: 5, location: indoor}}]}\n",
        "    - description: on C\n      hardwareVersions: [C]\n      input: {fPort: 1, bytes: [5]}\n"
        "      output: {data: {t: 5}}\n      normalizedOutput: {data: [{air: {temperature: 5}}]}\n"), device=True)
    report = check_repository(root, L).as_dict()
    assert {f"{f['class']}: {f['example']}": f["reason"] for f in report["failures"]} == {
        "uplink: wrong decode, right normalization": "data.t: expected 22, got 21",
        "normalize: on every version (normalized)": "data[0].air.location: expected 'indoor', got 'outdoor' "
                                                    "(device dev, hardware B, firmware 1.0, EU863-870)"}
    assert report["classes"]["normalize"] == {"examples": 3, "passed": 2, "failed": 1, "skipped": 1}


def test_a_single_measurement_counts_as_a_list_of_one():
    assert as_measurements({"data": {"air": {"co2": 4}}}) == {"data": [{"air": {"co2": 4}}]}
    assert as_measurements({"data": [{"a": 1}], "warnings": []}) == {"data": [{"a": 1}], "warnings": []}
    assert as_measurements({"errors": ["x"]}) == {"errors": ["x"]}
    assert difference({"data": [{"air": {"co2": 4}}]}, as_measurements({"data": {"air": {"co2": 4}}})) is None


def test_a_normalized_output_needs_a_normalizer(tmp_path):
    js = "function decodeUplink(input) { return {data: {t: 1}}; }"
    root = repo(tmp_path, js, uplink_yaml(
        "    - description: one\n      input: {fPort: 1, bytes: []}\n      output: {data: {t: 1}}\n"
        "      normalizedOutput: {data: [{air: {temperature: 1}}]}\n"))
    assert failures(root) == {"normalize: one (normalized)": "has no normalizeUplink function"}


# --- downlink encode and decode -----------------------------------------------------------------------------------

def test_each_file_of_a_codec_family_runs_alone():
    files = REPO / "vendor" / "pumpco"
    encoder = (files / "p100-encode.js").read_text()
    joined = "\n".join((files / f).read_text() for f in ("p100-uplink.js", "p100-encode.js", "p100-decode.js"))
    request = {"data": {"command": "start"}}
    assert run(encoder, "encodeDownlink", request, L).output == {"bytes": [1], "fPort": 10, "warnings": []}
    # joined, the decoder file's COMMANDS table wins and the encoder no longer knows its commands
    assert run(joined, "encodeDownlink", request, L).output == {"errors": ["unknown command start"]}


def test_the_encode_input_is_passed_as_written_and_errors_come_back_next_to_data():
    report = check_repository(REPO, L).as_dict()
    p100 = next(c for c in report["per_codec"] if c["codec"] == "pumpco/p100-codec")
    assert (p100["examples"], p100["passed"]) == (7, 7)  # fPort 11 from the input; null next to errors
    decoder = (REPO / "vendor" / "pumpco" / "p100-decode.js").read_text()
    assert run(decoder, "decodeDownlink", {"fPort": 10, "bytes": [9]}, L).output == {
        "data": {"command": None, "code": 9}, "errors": ["unknown command code 9"]}
