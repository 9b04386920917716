"""Run one vendor JavaScript codec in a sandboxed QuickJS runtime, compiled once and called many times.

Why QuickJS (the `quickjs-ng` binding, maintained, unlike the archived `quickjs` one): measured in `bench/codec.py`,
a typical `decodeUplink` costs ~10 µs a call through it, against ~27 µs for dukpy and 150–290 µs for V8 through
mini-racer, and it sets the three limits a city needs for code it did not write: CPU time per call, memory and
stack per runtime. The archived `quickjs` binding was also measured (a little faster) but cuts Python strings at
the first NUL byte, which a binary payload passed as a string always risks.

The sandbox is the bare ECMAScript realm: no `std`/`os` modules, no module loader (an `import` of a file fails),
no `require`, network or process; `console` is a no-op so that codecs which log still run. Every codec gets its
own runtime (codecs all define `decodeUplink`, and a codec must not see another's globals), one per thread that
calls it (a QuickJS runtime must not be shared between threads). A codec stopped by a limit gets a fresh runtime
for its next call, so nothing it left half-done leaks into the next uplink.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import quickjs

from clapas.decoders.base import DecodeError

# Defaults of the `[codecs]` settings (see `clapas.config.CodecSettings`).
DEFAULT_TIME_LIMIT_MS = 100.0
DEFAULT_MEMORY_LIMIT_MB = 32
DEFAULT_STACK_LIMIT_KB = 256


class CodecError(DecodeError):
    """A codec failed on one message (threw, ran out of time or memory, returned nonsense): quarantine it."""


class CodecLoadError(CodecError):
    """A codec cannot be used at all (missing file, syntax error, no known entry point)."""


@dataclass(frozen=True)
class Limits:
    """What one codec may use. Time is CPU time per call (the binding measures it with `clock()`)."""

    time_limit_ms: float = DEFAULT_TIME_LIMIT_MS
    memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB
    stack_limit_kb: int = DEFAULT_STACK_LIMIT_KB


# Conventions, by the entry point a codec defines, in the order they are looked for.
TTS = "decodeUplink"  # The Things Stack and ChirpStack v4: decodeUplink(input) → {data, warnings, errors}
TTN_V2 = "Decoder"  # The Things Network v2: Decoder(bytes, port) → data
CHIRPSTACK_V3 = "Decode"  # ChirpStack v3: Decode(fPort, bytes, variables) → data

_PRELUDE = """
var console = (function () { var f = function () {}; return {log: f, info: f, warn: f, error: f, debug: f}; })();
"""

# Called after the codec's own source: the only functions Python calls. Bytes come in as a Latin-1 string (one
# char per byte, the cheapest crossing measured) and results go out as JSON (a codec's output is plain data).
_HARNESS = """
(function (g) {
  function bytesOf(s) {
    var n = s.length, b = new Array(n);
    for (var i = 0; i < n; i++) b[i] = s.charCodeAt(i);
    return b;
  }
  function vars(v) { return v ? JSON.parse(v) : {}; }
  function finish(r, normalize) {
    var n;
    if (normalize && typeof normalizeUplink === 'function' && r && typeof r === 'object' && r.data !== undefined
        && !(r.errors && r.errors.length)) {
      n = normalizeUplink({data: r.data});
    }
    return JSON.stringify(n === undefined ? [r === undefined ? null : r] : [r === undefined ? null : r, n]);
  }
  g.__clapas_decodeUplink = function (s, fPort, t, v, normalize) {
    var input = {bytes: bytesOf(s), fPort: fPort, recvTime: new Date(t), variables: vars(v)};
    return finish(decodeUplink(input), normalize);
  };
  g.__clapas_Decoder = function (s, fPort, t, v, normalize) {
    return finish({data: Decoder(bytesOf(s), fPort)}, normalize);
  };
  g.__clapas_Decode = function (s, fPort, t, v, normalize) {
    return finish({data: Decode(fPort, bytesOf(s), vars(v))}, normalize);
  };
  g.__clapas_normalizeUplink = function (j) { return JSON.stringify(normalizeUplink({data: JSON.parse(j)})); };
  g.__clapas_encodeDownlink = function (j) { return JSON.stringify(encodeDownlink(JSON.parse(j))); };
  g.__clapas_decodeDownlink = function (s, fPort) {
    return JSON.stringify(decodeDownlink({bytes: bytesOf(s), fPort: fPort}));
  };
  g.__clapas_entry = function () {
    var names = ['decodeUplink', 'Decoder', 'Decode', 'normalizeUplink', 'encodeDownlink', 'decodeDownlink'];
    return names.filter(function (n) {
      try { return typeof g.eval(n) === 'function'; } catch (e) { return false; }
    }).join(',');
  };
})(globalThis);
"""

_decode_json = msgspec.json.Decoder().decode


def new_context(limits: Limits) -> quickjs.Context:
    """A bare sandbox with `limits` set and the no-op `console`: the only way this package makes a runtime."""
    ctx = quickjs.Context()
    ctx.set_memory_limit(int(limits.memory_limit_mb * 1024 * 1024))
    ctx.set_max_stack_size(int(limits.stack_limit_kb * 1024))
    ctx.set_time_limit(limits.time_limit_ms / 1000.0)
    ctx.eval(_PRELUDE)
    return ctx


def reason(e: Exception, limits: Limits) -> str:
    """A quarantine reason a human understands, naming the limit that stopped the codec."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    if isinstance(e, quickjs.StackOverflow) or "Maximum call stack size exceeded" in first:
        return f"stack limit exceeded ({limits.stack_limit_kb} KB)"
    if first == "InternalError: interrupted":
        return f"time limit exceeded ({limits.time_limit_ms:g} ms)"
    if first == "InternalError: out of memory" or isinstance(e, MemoryError):
        return f"memory limit exceeded ({limits.memory_limit_mb} MB)"
    where = next((ln.strip() for ln in text.splitlines()[1:] if ln.strip().startswith("at ")), "")
    return f"threw {first}" + (f" ({where})" if where else "")


class JsCodec:
    """One codec's source, compiled per thread on first use; every call is bounded by `limits`."""

    def __init__(self, source: str, name: str, limits: Limits | None = None) -> None:
        self.source = source
        self.name = name
        self.limits = limits or Limits()
        self._local = threading.local()
        functions = self._runtime()[1]  # compile now: a syntax error is a load error, found at startup
        self.functions = frozenset(functions)
        self.convention = next((c for c in (TTS, TTN_V2, CHIRPSTACK_V3) if c in self.functions), "")
        self.normalizes = "normalizeUplink" in self.functions

    def _runtime(self) -> tuple[quickjs.Context, list[str]]:
        rt = getattr(self._local, "rt", None)
        if rt is None:
            lim = self.limits
            ctx = new_context(lim)
            try:
                ctx.eval(self.source)
                ctx.eval(_HARNESS)
                functions = [f for f in ctx.eval("__clapas_entry()").split(",") if f]
            except quickjs.JSException as e:
                raise CodecLoadError(f"cannot load: {reason(e, lim)}") from None
            except ValueError as e:  # the binding refuses a source with a NUL character (found by tests/fuzz)
                raise CodecLoadError(f"cannot load: {e}") from None
            rt = self._local.rt = (ctx, functions, {})
        return rt[0], rt[1]

    def _call(self, fn: str, *args: Any) -> Any:
        ctx, _ = self._runtime()
        cache: dict[str, Any] = self._local.rt[2]
        f = cache.get(fn)
        if f is None:
            f = cache[fn] = ctx.get(fn)
        try:
            out = f(*args)
        except (quickjs.JSException, MemoryError) as e:
            why = reason(e, self.limits)
            if not why.startswith("threw"):
                self._local.rt = None  # stopped by a limit: whatever state it left is dropped
            raise CodecError(why) from None
        if not isinstance(out, str):
            raise CodecError("returned something that is not plain data")
        try:
            return _decode_json(out)
        except (msgspec.DecodeError, RecursionError):  # e.g. a lone surrogate in a string (found by tests/fuzz)
            raise CodecError("returned data that is not valid JSON text (a lone UTF-16 surrogate, or nested "
                             "too deep)") from None

    def decode_uplink(self, payload: bytes, f_port: int, recv_time: datetime | str | float | None = None,
                      variables: dict[str, str] | None = None, normalize: bool = True) -> tuple[Any, Any]:
        """The codec's raw result and its normalized one (None when it has no `normalizeUplink`)."""
        if not self.convention:
            raise CodecLoadError("defines none of decodeUplink, Decoder, Decode")
        if isinstance(recv_time, datetime):
            t: float | str = recv_time.timestamp() * 1000.0
        else:
            t = recv_time if recv_time is not None else 0.0
        v = msgspec.json.encode(variables).decode() if variables else ""
        out = self._call("__clapas_" + self.convention, payload.decode("latin-1"), f_port, t, v, normalize)
        return out[0], (out[1] if len(out) > 1 else None)

    def normalize_uplink(self, data: Any) -> Any:
        self._need("normalizeUplink")
        return self._call("__clapas_normalizeUplink", msgspec.json.encode(data).decode())

    def encode_downlink(self, data: Any) -> Any:
        """The codec's `encodeDownlink({data})` result: `{bytes, fPort, warnings, errors}`."""
        self._need("encodeDownlink")
        return self._call("__clapas_encodeDownlink", msgspec.json.encode({"data": data}).decode())

    def decode_downlink(self, payload: bytes, f_port: int) -> Any:
        self._need("decodeDownlink")
        return self._call("__clapas_decodeDownlink", payload.decode("latin-1"), f_port)

    def _need(self, fn: str) -> None:
        if fn not in self.functions:
            raise CodecError(f"has no {fn} function")
