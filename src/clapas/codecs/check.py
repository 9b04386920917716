"""Run one codec routine on one example the way The Things Stack's device-repository check runs it.

That check (the device repository's `bin/validate.js` driving its `runscript` tool, built on The Things Stack's
goja scripting engine) starts a fresh JavaScript runtime for every example, loads only the file the codec YAML
names for that section, calls the routine (`decodeUplink`, `normalizeUplink`, `encodeDownlink`,
`decodeDownlink`) with the example's `input` exactly as written, and exports whatever the routine returns as goja
exports it to Go, then to JSON. This module does the same in QuickJS:

- a fresh sandbox per run (no state carried from one example to the next), with the usual limits;
- the input is the example's JSON, nothing added (no `recvTime`, `variables` or port unless the example has them);
- the output is exported like goja: a property whose value is `undefined` is kept as `null` (JSON.stringify would
  drop it), `new Number(5)` is 5, a `Date` becomes Go's RFC 3339 text (`2026-03-01T12:00:00Z`, a fraction only
  when non-zero), and NaN, ±Infinity, a function or a cycle make the run fail as Go's JSON encoder does;
- the runtime's dates follow goja's in a UTC process: `toString()` ends in ` (UTC)`, the `toLocale…String()` forms
  are `01/16/2025, 17:29:37`, and a date string goja's parser does not accept (`2021/01/01 10:00`) is an invalid
  date.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import quickjs

from clapas.codecs.engine import Limits, new_context, reason

# Installed before the codec's own source, so that its top-level code sees them too: goja's dates.
_GOJA_DATES = r"""
(function (g) {
  var NativeDate = Date, D = NativeDate.prototype;
  var toS = D.toString, toT = D.toTimeString;
  function ok(d) { return !isNaN(NativeDate.prototype.getTime.call(d)); }
  function p2(n) { return (n < 10 ? '0' : '') + n; }
  D.toString = function () { return ok(this) ? toS.call(this) + ' (UTC)' : 'Invalid Date'; };
  D.toTimeString = function () { return ok(this) ? toT.call(this) + ' (UTC)' : 'Invalid Date'; };
  D.toLocaleDateString = function () {
    return ok(this) ? p2(this.getMonth() + 1) + '/' + p2(this.getDate()) + '/' + this.getFullYear() : 'Invalid Date';
  };
  D.toLocaleTimeString = function () {
    return ok(this) ? p2(this.getHours()) + ':' + p2(this.getMinutes()) + ':' + p2(this.getSeconds()) : 'Invalid Date';
  };
  D.toLocaleString = function () {
    return ok(this) ? this.toLocaleDateString() + ', ' + this.toLocaleTimeString() : 'Invalid Date';
  };
  // The numeric forms goja's Date parser accepts (ISO 8601 profiles and "YYYY-MM-DD hh:mm:ss"); text forms
  // (RFC 1123, "Mon Jan 02 2006 …") are left to QuickJS.
  var NUMERIC = [
    /^[+-]?\d{4,6}(-\d\d(-\d\d)?)?$/,
    /^[+-]?\d{4,6}(-\d\d(-\d\d)?)?T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$/,
    /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?(\+00)?$/
  ];
  function parse(s) {
    s = String(s);
    var c = s.charAt(0);
    if (c === '' ) return NaN;
    if ((c >= '0' && c <= '9') || c === '-' || c === '+') {
      for (var i = 0; i < NUMERIC.length; i++) if (NUMERIC[i].test(s)) return NativeDate.parse(s.replace(/\+00$/, 'Z'));
      return NaN;
    }
    return NativeDate.parse(s);
  }
  function GojaDate() {
    if (!(this instanceof GojaDate)) return NativeDate();
    var a = Array.prototype.slice.call(arguments);
    if (a.length === 1 && typeof a[0] === 'string') a = [parse(a[0])];
    return Reflect.construct(NativeDate, a, GojaDate);
  }
  GojaDate.prototype = D;
  D.constructor = GojaDate;
  GojaDate.parse = parse;
  GojaDate.UTC = NativeDate.UTC;
  GojaDate.now = NativeDate.now;
  g.Date = GojaDate;
  g.__clapas_NativeDate = NativeDate;
})(globalThis);
"""

# Installed after the codec's own source: goja's export and the single entry Python calls.
_GOJA_EXPORT = r"""
(function (g) {
  var NativeDate = g.__clapas_NativeDate;
  function ok(d) { return !isNaN(NativeDate.prototype.getTime.call(d)); }
  var WRAPPERS = /^\[object (Number|String|Boolean)\]$/;  // new Number(5): goja exports the primitive
  function Unexportable(m) { this.message = m; }
  function rfc3339(d) {  // Go's time.RFC3339Nano of a UTC time: trailing zeros of the fraction dropped
    return NativeDate.prototype.toISOString.call(d).replace(/\.?0+Z$/, 'Z');
  }
  function exportValue(v, path, stack) {
    var t = typeof v, out, i, keys;
    if (v === undefined || v === null) return null;
    if (t === 'number') {
      if (!isFinite(v)) throw new Unexportable(path + ' is ' + v);
      return v;
    }
    if (t === 'string' || t === 'boolean') return v;
    if (t === 'function') throw new Unexportable(path + ' is a function');
    if (t !== 'object') throw new Unexportable(path + ' is a ' + t);
    if (v instanceof NativeDate) return ok(v) ? rfc3339(v) : null;
    if (WRAPPERS.test(Object.prototype.toString.call(v))) return exportValue(v.valueOf(), path, stack);
    if (stack.indexOf(v) >= 0) throw new Unexportable(path + ' refers to itself');
    stack.push(v);
    if (Array.isArray(v)) {
      out = [];
      for (i = 0; i < v.length; i++) out.push(exportValue(v[i], path + '[' + i + ']', stack));
    } else {
      out = {};
      keys = Object.keys(v);
      for (i = 0; i < keys.length; i++) out[keys[i]] = exportValue(v[keys[i]], path + '.' + keys[i], stack);
    }
    stack.pop();
    return out;
  }
  function entry(name) {
    try { var f = g.eval(name); return typeof f === 'function' ? f : null; } catch (e) { return null; }
  }
  g.__clapas_check = function (routine, inputJson) {
    var input = JSON.parse(inputJson), versionRead = false, f = entry(routine), out;
    if (input && typeof input === 'object' && 'version' in input) {
      var version = input.version;
      Object.defineProperty(input, 'version', {
        get: function () { versionRead = true; return version; }, enumerable: true, configurable: true
      });
    }
    if (!f && routine === 'decodeUplink') {  // the legacy conventions clapas also runs (see the README)
      var legacy = entry('Decoder'), chirp = entry('Decode');
      if (legacy) f = function (i) { return {data: legacy(i.bytes, i.fPort)}; };
      else if (chirp) f = function (i) { return {data: chirp(i.fPort, i.bytes, i.variables || {})}; };
    }
    if (!f) return JSON.stringify({missing: routine});
    out = f(input);
    if (out === undefined || out === null) return JSON.stringify({empty: true});
    try {
      return JSON.stringify({value: exportValue(out, 'output', []), versionRead: versionRead});
    } catch (e) {
      if (e instanceof Unexportable) return JSON.stringify({unexportable: e.message});
      throw e;
    }
  };
})(globalThis);
"""

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


@dataclass
class Run:
    """One routine's outcome: its exported output, or why there is none (the example then fails)."""

    output: Any = None
    error: str | None = None
    version_read: bool = False  # the routine looked at `input.version` (normalizeUplink's device version)


def compile_error(source: str, limits: Limits) -> str | None:
    """Why `source` cannot even be loaded (a syntax error, a top-level throw or limit), else None."""
    try:
        ctx = new_context(limits)
        ctx.eval(_GOJA_DATES)
        ctx.eval(source)
    except (quickjs.JSException, MemoryError) as e:
        return f"cannot load: {reason(e, limits)}"
    return None


def run(source: str, routine: str, input_: Any, limits: Limits) -> Run:
    """`routine(input_)` of `source` in a fresh sandbox, its result exported as goja exports it."""
    try:
        ctx = new_context(limits)
        ctx.eval(_GOJA_DATES)
        ctx.eval(source)
        ctx.eval(_GOJA_EXPORT)
        out = ctx.get("__clapas_check")(routine, _encode(input_).decode())
    except (quickjs.JSException, MemoryError) as e:
        return Run(error=reason(e, limits))
    got = _decode(out)
    if "missing" in got:
        return Run(error=f"has no {routine} function")
    if "empty" in got:
        return Run(error="returned nothing (The Things Stack: no script output)")
    if "unexportable" in got:
        return Run(error=f"output cannot be encoded as JSON by The Things Stack: {got['unexportable']}")
    return Run(output=got["value"], version_read=bool(got.get("versionRead")))


@contextmanager
def utc_process() -> Iterator[None]:
    """Local time is UTC while examples run, as on the machines that run The Things Stack's check: a codec that
    builds a date from local fields (`new Date(y, m, d)`, `getHours()`) must give the same answer everywhere."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()
