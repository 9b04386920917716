"""Speed of vendor JavaScript codecs: prints one JSON object.

    python bench/codec.py --calls 50000 --uplinks 20000

Measures, on the TH-1 test codec (tests/fixtures/codecs: a 7-byte frame of 4 values, TTS `decodeUplink` plus
`normalizeUplink`) and the legacy `Decoder` one:
- `call_us`: one codec call (bytes in, decoded object out), median of 5 runs;
- `decoder_us`: the call plus the mapping to quantities (what the pipeline runs per uplink);
- `pipeline_uplinks_per_s`: ChirpStack JSON uplinks through a real `Pipeline` into DuckDB with that codec, against
  the built-in Cayenne LPP decoder on the same store (parsing, journal, dedupe and writing included).
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clapas.codecs.engine import JsCodec  # noqa: E402
from clapas.codecs.library import LIBRARY  # noqa: E402
from clapas.codecs.repository import load_spec  # noqa: E402
from clapas.config import PipelineSettings  # noqa: E402
from clapas.connectors import chirpstack  # noqa: E402
from clapas.decoders.javascript import JsDecoder  # noqa: E402
from clapas.pipeline import Pipeline  # noqa: E402
from clapas.store.base import open_store  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "codecs" / "repo"
TH = bytes.fromhex("00e7640e1001c2")
LPP = bytes.fromhex("0167011002682A")
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def per_call_us(fn, calls: int) -> float:
    for _ in range(min(calls, 2000)):
        fn()
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - t) / calls * 1e6)
    return round(statistics.median(runs), 2)


def messages(n: int, payload: bytes, tags: dict[str, str]) -> list:
    base = {"deviceInfo": {"tenantId": "t", "applicationId": "a", "deviceProfileName": "p", "deviceName": "d",
                           "tags": tags}, "fPort": 1, "rxInfo": [{"rssi": -80, "snr": 7.5}],
            "txInfo": {"frequency": 868100000}}
    out = []
    for i in range(n):
        eui = f"{i % 10_000:016x}"
        ev = dict(base, deviceInfo=dict(base["deviceInfo"], devEui=eui), data=base64.b64encode(payload).decode(),
                  fCnt=i, deduplicationId=f"b-{i}", time=(T0 + timedelta(seconds=i)).isoformat())
        out.append(chirpstack.message(json.dumps(ev).encode(), T0,
                                      topic=f"application/a/device/{eui}/event/up"))
    return out


def pipeline_rate(n: int, payload: bytes, tags: dict[str, str]) -> float:
    msgs = messages(n, payload, tags)
    with tempfile.TemporaryDirectory() as d:
        store = open_store(f"duckdb:///{Path(d) / 'bench.duckdb'}")
        try:
            p = Pipeline(store, PipelineSettings())
            t = time.perf_counter()
            p.submit_many(msgs)
            p.close()
            elapsed = time.perf_counter() - t
            counts = store.counts()
            assert counts["stored"] == n, counts
        finally:
            store.close()
    return round(n / elapsed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=50_000)
    ap.add_argument("--uplinks", type=int, default=20_000)
    args = ap.parse_args()

    spec = load_spec(FIXTURES / "vendor" / "acme" / "th-sensor-codec.yaml")
    th = JsCodec(spec.source, spec.name)
    legacy = JsCodec(load_spec(FIXTURES / "vendor" / "oldco" / "pulse.js").source, "pulse")
    decoder = JsDecoder(th)
    result = {
        "engine": "quickjs-ng",
        "call_us": {
            "tts_decodeUplink": per_call_us(lambda: th.decode_uplink(TH, 1, T0, normalize=False), args.calls),
            "tts_decodeUplink_normalizeUplink": per_call_us(lambda: th.decode_uplink(TH, 1, T0), args.calls),
            "legacy_Decoder": per_call_us(lambda: legacy.decode_uplink(bytes([1, 44, 87]), 3), args.calls),
        },
        "decoder_us": per_call_us(lambda: decoder(TH, 1), args.calls),
    }
    LIBRARY.configure(str(FIXTURES))
    result["pipeline_uplinks_per_s"] = {
        "js_codec": pipeline_rate(args.uplinks, TH, {"codec": "acme/th-sensor"}),
        "builtin_cayenne_lpp": pipeline_rate(args.uplinks, LPP, {"decoder": "cayenne_lpp"}),
    }
    result["uplinks"] = args.uplinks
    print(json.dumps(result))


if __name__ == "__main__":
    main()
