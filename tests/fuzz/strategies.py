"""Structure-aware hypothesis strategies for the fuzz targets, seeded from the real inputs (`targets.Target.seeds`).

Three layers, mixed in every strategy: a real input as it is; a JSON (or TOML, CSV) document whose values are
replaced, deleted or swapped for hostile ones (nulls, wrong types, absurd sizes, deep nesting); and byte-level
mutations of either (flips, insertions of interesting tokens, truncations) — what a coverage-guided fuzzer does,
but reproducible and shrinkable.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.targets import TARGETS

_TOKENS = [b"", b"\x00", b"null", b"[]", b"{}", b'"', b"\\", b"\xff", b"\xef\xbb\xbf", b"-1", b"1e400", b"NaN",
           b"99999999999999999999999", b"\n", b",", b":", b"=", b";", b"[[[[[[[[", b"\x0a\xff\xff\xff\xff\x0f"]

# Values that broke (or would break) something downstream: types, sizes, depths a network server never sends.
_HOSTILE: list[Any] = [None, "", 0, -1, 2**63, -(2**63) - 1, 1e308, True, [], {}, "\x00", "\ud800",
                       "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2022-07-18T09:34:15", "***"]


def _deep(n: int) -> Any:
    v: Any = 1
    for _ in range(n):
        v = {"a": v}
    return v


def _big(kind: str, n: int) -> Any:
    """Absurd sizes, built on demand (so that they never show in a strategy's repr)."""
    if kind == "text":
        return "x" * n
    if kind == "base64":
        return "AAAA" * (n // 3)
    if kind == "map":
        return {f"k{i}": "v" for i in range(n // 50)}
    return list(range(n // 10))


_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(_json_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                             max_size=4),
                           max_leaves=12)
hostile_values = (json_values | st.sampled_from(_HOSTILE) | st.sampled_from([40, 200, 900]).map(_deep)
                  | st.tuples(st.sampled_from(["text", "base64", "map", "list"]),
                              st.sampled_from([101, 5_000, 100_000, 300_000])).map(lambda a: _big(*a)))


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> None:
    node = doc
    for p in path[:-1]:
        node = node[p]
    if delete and isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@st.composite
def mutated_json(draw: st.DrawFn, doc: Any) -> bytes:
    """A copy of `doc` with a few values replaced by hostile ones or deleted, encoded as JSON."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        _set(doc, path, draw(hostile_values), draw(st.booleans()) and draw(st.booleans()))
    if not isinstance(doc, dict) and draw(st.booleans()):
        doc = {"wrapped": doc}
    if draw(st.booleans()):  # strict JSON where the hostile values allow it, else Python's NaN/Infinity tokens
        try:
            return json.dumps(doc, allow_nan=False).encode()
        except ValueError:
            pass
    return json.dumps(doc).encode()


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few byte-level mutations (the ones libFuzzer applies first)."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "token", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(b), 1) * 4)) % (len(b) + 1)
        if op == "flip" and b:
            b[min(pos, len(b) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            b[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "token":
            b[pos:pos] = draw(st.sampled_from(_TOKENS))
        elif op == "delete":
            del b[pos:pos + draw(st.integers(1, 16))]
        else:
            del b[pos:]
    return bytes(b)


def _seeded(name: str, structured: st.SearchStrategy[bytes] | None = None) -> st.SearchStrategy[bytes]:
    """A target's inputs: its seeds, their structured mutations, byte mutations of both, and random bytes."""
    seeds = TARGETS[name].seeds()
    base = st.sampled_from(seeds) if seeds else st.just(b"")
    if structured is not None:
        base = base | structured
    return base | base.flatmap(mutated_bytes) | st.binary(max_size=300)


def _prefixed(prefix: int, body: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return body.map(lambda b: bytes([prefix]) + b)


def _chirpstack_json() -> st.SearchStrategy[bytes]:
    docs = [(s[0], json.loads(s[1:])) for s in TARGETS["chirpstack_json"].seeds()]
    if not docs:
        return st.nothing()
    return st.sampled_from(docs).flatmap(lambda d: _prefixed(d[0], mutated_json(d[1])))


@st.composite
def _chirpstack_protobuf(draw: st.DrawFn) -> bytes:
    """A mutated event serialized as protobuf (when the mutation still fits the schema), byte-mutated or not."""
    from google.protobuf import json_format

    from clapas.connectors.chirpstack import _PB_TYPES
    from tests.fuzz.targets import EVENTS

    docs = [(s[0], json.loads(s[1:])) for s in TARGETS["chirpstack_json"].seeds()]
    i, doc = draw(st.sampled_from(docs))
    raw = json.loads(draw(mutated_json(doc)))
    try:
        pb = json_format.ParseDict(raw, _PB_TYPES[EVENTS[i]](), ignore_unknown_fields=True).SerializeToString()
    except Exception:  # the mutation does not fit the schema: the plain sample then
        pb = json_format.ParseDict(doc, _PB_TYPES[EVENTS[i]](), ignore_unknown_fields=True).SerializeToString()
    return bytes([i]) + pb


def _tts() -> st.SearchStrategy[bytes]:
    seeds = TARGETS["tts"].seeds()
    return st.sampled_from(seeds).flatmap(lambda s: mutated_json(json.loads(s))) if seeds else st.nothing()


_CSV_COLUMNS = ["eui", "name", "kind", "decoder", "profile", "zone", "lat", "lon", "data_class",
                "expected_interval_s", "subscriber", "premises_use", "tags", "bogus"]
_csv_cell = (st.text(max_size=20) | st.sampled_from(["0101010101010101", "01-01-01-01-01-01-01-01", "water_meter",
                                                      "91", "-180.5", "nan", "inf", "1e999", "a=b;c", "=x", ";;",
                                                      "open", "personal", '"', "\r\n", "12.5"]))


@st.composite
def _csv(draw: st.DrawFn) -> bytes:
    cols = draw(st.lists(st.sampled_from(_CSV_COLUMNS), min_size=1, max_size=6, unique=True))
    if draw(st.integers(0, 4)):
        cols = ["eui", *[c for c in cols if c != "eui"]]
    rows = draw(st.lists(st.lists(_csv_cell, min_size=len(cols), max_size=len(cols)), max_size=4))
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogatepass")


def _zones() -> st.SearchStrategy[bytes]:
    doc = json.loads(TARGETS["zones_geojson"].seeds()[0])
    return mutated_json(doc)


_TOML_VALUES = ['""', '"x"', "0", "-1", "1e400", "nan", "inf", "true", "[]", "{}", "[1, \"a\"]", '{ a = 1 }',
                "1979-05-27T07:32:00Z", '"mqtt://"', '"duckdb://"', '"Not/AZone"', "99999999999999999999",
                '"\\u0000"', "65536", "0.0"]


@st.composite
def _toml(draw: st.DrawFn) -> bytes:
    """The example config with some settings (commented ones too) given hostile values."""
    lines = TARGETS["config"].seeds()[0].decode().splitlines()
    settable = [i for i, ln in enumerate(lines) if "=" in ln and not ln.lstrip().startswith("[")]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.sampled_from(settable))
        key = lines[i].lstrip("# ").split("=", 1)[0].strip()
        lines[i] = f"{key} = {draw(st.sampled_from(_TOML_VALUES))}"
    return "\n".join(lines).encode()


_ENV_NAMES = ["CLAPAS_STORE", "CLAPAS_TIMEZONE", "CLAPAS_HTTP_PORT", "CLAPAS_HTTP_HOST", "CLAPAS_CHIRPSTACK_QOS",
              "CLAPAS_CHIRPSTACK_MQTT_URL", "CLAPAS_CHIRPSTACK_HTTP_INGEST", "CLAPAS_PIPELINE_BATCH_SIZE",
              "CLAPAS_PIPELINE_FLUSH_INTERVAL_S", "CLAPAS_CODECS_TIME_LIMIT_MS", "CLAPAS_CODECS_MEMORY_LIMIT_MB",
              "CLAPAS_ALERTS_MAX_ATTEMPTS", "CLAPAS_ALERTS_WEBHOOK_URL", "CLAPAS_ALERTS_EMAIL_HOST",
              "CLAPAS_ALERTS_EMAIL_TO", "CLAPAS_HEAT_DEPARTMENT", "CLAPAS_WATER_METER_Q3_M3H", "CLAPAS_BOGUS"]
_env_value = st.text(max_size=20) | st.sampled_from(["", "0", "-1", "nan", "inf", "1e999", "true", "yes", "[]", "{}",
                                                     "99999999999999999999", "mqtt://", "Not/AZone", "0.0"])


@st.composite
def _env(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(st.sampled_from(_ENV_NAMES), _env_value), min_size=1, max_size=5))
    return "\n".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")


def strategies() -> dict[str, st.SearchStrategy[bytes]]:
    structured: dict[str, st.SearchStrategy[bytes] | None] = {
        "chirpstack_json": _chirpstack_json(),
        "chirpstack_protobuf": _chirpstack_protobuf(),
        "tts": _tts(),
        "decoder_chirpstack_object": json_values.map(lambda v: json.dumps(v).encode()) | hostile_values.map(
            lambda v: json.dumps({"v": v}).encode()),
        "codec_output": _prefixed(1, (json_values | hostile_values).map(
            lambda v: json.dumps({"data": v, "warnings": v} if isinstance(v, dict) else {"data": {"v": v}})
            .encode())),
        "registry_csv": _csv(),
        "zones_geojson": _zones(),
        "config": _toml(),
        "config_env": _env(),
    }
    return {name: _seeded(name, structured.get(name)) for name in TARGETS}
