"""Fuzz targets: every parser and decoder of clapas as one function of bytes, with the property it must keep.

The property, for every target: no input crashes it or raises anything but the module's documented error
(`ParseError`, `DecodeError` and its `CodecError`, `RegistryError`, `ConfigError`), and what it returns is well
typed and within the bounds the rest of clapas relies on. A target raises `AssertionError` (or the unexpected
exception itself) when the property breaks: that is a finding.

The same targets are driven by two engines: hypothesis in the test suite (`tests/fuzz/test_fuzz.py`, structure-aware
strategies seeded from the reference samples, a fixed budget) and atheris, coverage-guided, in `bench/fuzz.py`
(longer runs that grow the corpora in `tests/fuzz/corpus/<target>/`). `seeds()` gives each target its starting
inputs: the reference samples (`CLAPAS_SAMPLES`), the codec fixtures, the example config and the simulator's
vendor frames.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
SAMPLES = Path(os.environ.get("CLAPAS_SAMPLES", ROOT.parent / "shared" / "samples"))
CODECS = ROOT / "tests" / "fixtures" / "codecs"
RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVENTS = ("up", "status", "join", "ack", "txack", "log", "location")


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]


# --- ChirpStack and The Things Stack -------------------------------------------------------------------------------
def _check_uplink(up: object) -> None:
    from clapas.connectors import limits
    from clapas.model import Uplink, normalize_eui

    assert isinstance(up, Uplink)
    assert normalize_eui(up.dev_eui) == up.dev_eui
    assert isinstance(up.time, datetime) and up.time.tzinfo is not None
    assert limits.MIN_TIME <= up.time <= RECEIVED + limits.MAX_CLOCK_AHEAD
    assert isinstance(up.payload, bytes) and len(up.payload) <= limits.MAX_PAYLOAD_BYTES
    assert up.event in EVENTS
    if up.info is not None:
        limits.check_info(up.info)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in up.info.tags.items())
    for tree in (up.obj, up.event_data):
        if tree is not None:
            assert isinstance(tree, dict)
            limits.check_tree(tree, "tree")
            msgspec.json.encode(tree)  # what the store will do with it
    if up.values is not None:
        assert all(isinstance(k, str) and isinstance(v, float) for k, v in up.values)


def _chirpstack(fmt: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from clapas.connectors import chirpstack
        from clapas.connectors.chirpstack import ParseError
        from clapas.model import Message

        event = EVENTS[data[0] % len(EVENTS)] if data else "up"
        m = Message(source="chirpstack", event=event, fmt=fmt, raw=data[1:], received_at=RECEIVED,
                    topic=f"application/a/device/0101010101010101/event/{event}")
        try:
            up = chirpstack.parse(m)
        except ParseError as e:
            assert str(e)
            return
        _check_uplink(up)
    return run


def _chirpstack_seeds(fmt: str) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        import json

        from google.protobuf import json_format

        from clapas.connectors.chirpstack import _PB_TYPES

        out = []
        for i, event in enumerate(EVENTS):
            path = SAMPLES / "chirpstack" / f"{event}.json"
            if not path.is_file():
                continue
            doc = json.loads(path.read_text())
            if fmt == "json":
                raw = json.dumps(doc, separators=(",", ":")).encode()
            else:
                raw = json_format.ParseDict(doc, _PB_TYPES[event](), ignore_unknown_fields=True).SerializeToString()
            out.append(bytes([i]) + raw)
        return out
    return seeds


def _tts(data: bytes) -> None:
    from clapas.connectors import ttn
    from clapas.connectors.chirpstack import ParseError

    try:
        up = ttn.parse(ttn.message(data, RECEIVED, topic="v3/app@tenant/devices/dev/up"))
    except ParseError as e:
        assert str(e)
        return
    _check_uplink(up)


def _tts_seeds() -> list[bytes]:
    p = SAMPLES / "ttn" / "uplink.json"
    return [p.read_bytes()] if p.is_file() else []


# --- payload decoders ----------------------------------------------------------------------------------------------
def _check_readings(out: object) -> None:
    assert isinstance(out, list)
    for item in out:
        assert isinstance(item, tuple) and len(item) == 2
        key, value = item
        assert isinstance(key, str)
        assert isinstance(value, int | float | str | bool)


def _decoder(name: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from clapas.decoders import DECODERS, DecodeError

        f_port, payload = (data[0], data[1:]) if data else (0, b"")
        try:
            out = DECODERS[name](payload, f_port)
        except DecodeError as e:
            assert str(e)
            return
        _check_readings(out)
    return run


def _decoder_seeds(name: str) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        from clapas.simulator.encoders import ENCODER_KEYS, ENCODERS

        keys = sorted(ENCODER_KEYS[name])
        out = []
        for n in (1, 3, len(keys)):
            readings = {k: 1.0 + i for i, k in enumerate(keys[:n])}
            try:
                port, frame = ENCODERS[name](readings)
            except Exception:  # an encoder that needs more readings: the full set below does
                continue
            out.append(bytes([port]) + frame)
        return out
    return seeds


def _object(data: bytes) -> None:
    """The network server's decoded object (ChirpStack `object`, TTS `decoded_payload`) into readings."""
    from clapas.decoders import DecodeError
    from clapas.decoders.chirpstack_object import FieldMap, map_object

    try:
        obj = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return  # not JSON: the connectors refuse it before any decoder sees it
    try:
        from clapas.connectors.limits import ParseError, check_tree

        check_tree(obj, "object")
    except ParseError:
        return  # the connectors refuse it (see the chirpstack targets)
    try:
        out = map_object(obj, {"level_cm": FieldMap("water.level", 0.01), "a.b": FieldMap("air.temperature")})
    except DecodeError as e:
        assert str(e)
        return
    _check_readings(out)


def _object_seeds() -> list[bytes]:
    return [b'{"temperature": 21.5, "humidity": 40, "nested": {"a": 1, "b": [1, 2]}}',
            b'{"level_cm": 120, "a": {"b": 19.5}, "battery": true, "status": null, "x": "ok"}']


# --- vendor JavaScript codecs (the sandbox's inputs) ---------------------------------------------------------------
_CODECS: dict[str, object] = {}


def _js(name: str) -> object:
    """A compiled fixture codec, once per process (compiling is ~ms; fuzzing calls it thousands of times)."""
    from clapas.codecs.engine import JsCodec, Limits
    from clapas.codecs.repository import load_spec
    from clapas.decoders.javascript import JsDecoder

    if name not in _CODECS:
        limits = Limits(time_limit_ms=200, memory_limit_mb=16, stack_limit_kb=128)
        if name == "echo":  # returns whatever JSON the payload holds: fuzzes the mapping of any codec output
            source = ("function decodeUplink(input) { return JSON.parse(String.fromCharCode.apply(null, "
                      "input.bytes)); }\nfunction normalizeUplink(input) { return input.data && input.data.n; }")
            codec = JsCodec(source, "echo", limits)
        else:
            spec = load_spec(CODECS / name)
            codec = JsCodec(spec.source, spec.name, limits)
        _CODECS[name] = JsDecoder(codec, {})
    return _CODECS[name]


def _codec(name: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        from clapas.decoders import DecodeError

        f_port, payload = (data[0], data[1:]) if data else (0, b"")
        try:
            out = _js(name)(payload, f_port)  # type: ignore[operator]
        except DecodeError as e:
            assert str(e)
            return
        _check_readings(out)
    return run


def _codec_seeds(name: str) -> Callable[[], list[bytes]]:
    def seeds() -> list[bytes]:
        if name == "echo":
            return [b"\x01" + b'{"data": {"temperature": 20, "n": {"data": {"air": {"temperature": 20}}}}}',
                    b"\x01" + b'{"data": {}, "errors": ["bad"]}', b"\x01" + b'{"data": {"a": [1, {"b": null}]}}']
        from clapas.codecs.repository import load_spec

        out = []
        for ex in load_spec(CODECS / name).examples:
            if ex.kind == "uplink" and isinstance(ex.input.get("bytes"), list):
                try:
                    out.append(bytes([int(ex.input.get("fPort") or 1) & 0xFF, *ex.input["bytes"]]))
                except (TypeError, ValueError):
                    continue
        return out or [b"\x01\x00\xe7\x64\x0e\x10\x01\xc2"]
    return seeds


def _codec_spec(data: bytes) -> None:
    """A codec file as a city would drop it in its repository: YAML, ChirpStack profile JSON or JavaScript."""
    from clapas.codecs.engine import CodecLoadError, JsCodec, Limits
    from clapas.codecs.repository import load_spec

    suffix = (".yaml", ".json", ".js")[data[0] % 3] if data else ".yaml"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"codec{suffix}"
        path.write_bytes(data[1:])
        try:
            spec = load_spec(path)
            JsCodec(spec.source, spec.name, Limits(time_limit_ms=200, memory_limit_mb=16, stack_limit_kb=128))
        except CodecLoadError as e:
            assert str(e)
            return
    assert isinstance(spec.source, str)


def _codec_spec_seeds() -> list[bytes]:
    out = []
    for p in sorted(CODECS.rglob("*")):
        if p.suffix in (".yaml", ".json", ".js") and p.stat().st_size < 8192:
            out.append(bytes([(".yaml", ".json", ".js").index(p.suffix)]) + p.read_bytes())
    return out


# --- registry imports and the config loader ------------------------------------------------------------------------
def _registry_csv(data: bytes) -> None:
    from clapas.model import DATA_CLASSES, DEVICE_KINDS, Device, normalize_eui
    from clapas.registry.devices_csv import RegistryError, read_devices

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # the CLI opens the file as UTF-8: a decoding error is its own, clear, message
    try:
        devices = read_devices(io.StringIO(text, newline=""))
    except RegistryError as e:
        assert str(e)
        return
    for d in devices:
        assert isinstance(d, Device) and normalize_eui(d.eui) == d.eui
        assert d.kind in DEVICE_KINDS and d.data_class in DATA_CLASSES
        assert d.lat is None or (isinstance(d.lat, float) and -90 <= d.lat <= 90)
        assert d.lon is None or (isinstance(d.lon, float) and -180 <= d.lon <= 180)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in d.tags.items())


def _registry_csv_seeds() -> list[bytes]:
    return [b"eui,name,kind,decoder,zone,lat,lon,tags\n"
            b"0101010101010101,Meter 1,water_meter,kamstrup,dma-1,43.61,3.87,premises=habitation;pulse_factor=10\n"
            b"70b3d5e75e000001,Station,weather_station,elsys,ecusson,,,\n"]


def _zones(data: bytes) -> None:
    from clapas.model import Zone
    from clapas.registry.devices_csv import RegistryError
    from clapas.registry.zones import read_zones

    try:
        zones = read_zones(data)
    except RegistryError as e:
        assert str(e)
        return
    for z in zones:
        assert isinstance(z, Zone) and isinstance(z.id, str) and z.id
        assert z.geometry is None or (isinstance(z.geometry, dict) and "type" in z.geometry)
        assert isinstance(z.properties, dict)
        msgspec.json.encode(z)  # what the store does with it


def _zones_seeds() -> list[bytes]:
    return [b'{"type": "FeatureCollection", "features": [{"type": "Feature", "id": "ecusson", "geometry": '
            b'{"type": "Polygon", "coordinates": [[[3.87, 43.61], [3.88, 43.61], [3.88, 43.62], [3.87, 43.61]]]}, '
            b'"properties": {"name": "\xc3\x89cusson", "kind": "district", "parent": "montpellier"}}, '
            b'{"type": "Feature", "geometry": null, "properties": {"id": "fabre-12", "kind": "museum_room"}}]}']


def _config(data: bytes) -> None:
    from clapas.codecs.library import LIBRARY
    from clapas.config import ConfigError, Settings, load_settings

    saved = (LIBRARY.repository, LIBRARY.profiles_folder, LIBRARY.limits)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "city.toml"
        path.write_bytes(data)
        try:
            s = load_settings(path, env={})
        except ConfigError as e:
            assert str(e)
            return
        finally:  # the loader configures the process's codec library: put back what the tests use
            LIBRARY.configure(str(saved[0] or ""), str(saved[1] or ""), saved[2])
    assert isinstance(s, Settings)
    _check_settings(s)


def _check_settings(s: object) -> None:
    """What the rest of clapas takes for granted once the settings are loaded."""
    from zoneinfo import ZoneInfo

    assert s.pipeline.batch_size >= 1 and s.pipeline.flush_interval_s > 0  # type: ignore[attr-defined]
    assert 0 < s.http.port < 65536  # type: ignore[attr-defined]
    assert math.isfinite(s.pipeline.flush_interval_s)  # type: ignore[attr-defined]
    for tz in (s.timezone, s.heat.timezone, s.heat.window_timezone, s.islands.timezone):  # type: ignore[attr-defined]
        if tz:
            ZoneInfo(tz)  # the heat and island computations call it


def _config_seeds() -> list[bytes]:
    return [(ROOT / "city.example.toml").read_bytes(), b'store = "duckdb:///x.duckdb"\n[http]\nport = 8080\n']


def _config_env(data: bytes) -> None:
    """The environment half of the loader: `CLAPAS_*` variables, one `NAME=value` a line, over no file."""
    from clapas.codecs.library import LIBRARY
    from clapas.config import ConfigError, Settings, load_settings

    env = {}
    for line in data.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        env[name.strip()] = value.replace("\x00", "")  # an environment cannot hold NUL characters
    saved = (LIBRARY.repository, LIBRARY.profiles_folder, LIBRARY.limits)
    try:
        s = load_settings(None, env=env)
    except ConfigError as e:
        assert str(e)
        return
    finally:
        LIBRARY.configure(str(saved[0] or ""), str(saved[1] or ""), saved[2])
    assert isinstance(s, Settings)
    _check_settings(s)


def _config_env_seeds() -> list[bytes]:
    return [b"CLAPAS_STORE=duckdb:///x.duckdb\nCLAPAS_HTTP_PORT=8080\nCLAPAS_CHIRPSTACK_QOS=1\n"
            b"CLAPAS_PIPELINE_FLUSH_INTERVAL_S=0.5\nCLAPAS_ALERTS_EMAIL_TO=a@b\nCLAPAS_TIMEZONE=Europe/Paris\n"
            b"CLAPAS_CODECS_TIME_LIMIT_MS=50\nCLAPAS_HEAT_DEPARTMENT=34\n"]


# --- the list --------------------------------------------------------------------------------------------------------
def _targets() -> dict[str, Target]:
    from clapas.decoders import DECODERS

    out = [Target("chirpstack_json", _chirpstack("json"), _chirpstack_seeds("json")),
           Target("chirpstack_protobuf", _chirpstack("protobuf"), _chirpstack_seeds("protobuf")),
           Target("tts", _tts, _tts_seeds)]
    out += [Target(f"decoder_{name}", _decoder(name), _decoder_seeds(name)) for name in sorted(DECODERS)]
    out += [Target("decoder_chirpstack_object", _object, _object_seeds),
            Target("codec_tts", _codec("repo/vendor/acme/th-sensor-codec.yaml"),
                   _codec_seeds("repo/vendor/acme/th-sensor-codec.yaml")),
            Target("codec_chirpstack", _codec("chirpstack/radar-level-gauge.json"),
                   _codec_seeds("chirpstack/radar-level-gauge.json")),
            Target("codec_output", _codec("echo"), _codec_seeds("echo")),
            Target("codec_spec", _codec_spec, _codec_spec_seeds),
            Target("registry_csv", _registry_csv, _registry_csv_seeds),
            Target("zones_geojson", _zones, _zones_seeds),
            Target("config", _config, _config_seeds),
            Target("config_env", _config_env, _config_env_seeds)]
    return {t.name: t for t in out}


TARGETS: dict[str, Target] = _targets()


def corpus(name: str) -> list[tuple[str, bytes]]:
    """The kept inputs of a target (regressions and the coverage corpus), by file name."""
    folder = CORPUS / name
    if not folder.is_dir():
        return []
    return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]
