"""The NGSI-LD query language (ETSI GS CIM 009 §4.9), scope queries (§4.19) and entity type selections (§4.17).

`parse_q(text, ctx)` → a predicate on an expanded entity: terms `attr`, `attr op value` (`==`, `!=`, `>`, `>=`,
`<`, `<=`, `~=`, `!~=`), values as numbers, booleans, "quoted strings", date-times, URIs, lists `a,b,c` and ranges
`a..b`; attribute paths `attr.subAttr` (or `attr.observedAt`, `.unitCode`, ...) and `attr[key][key]` into compound
values; `;` AND (binds tighter), `|` OR, parentheses; `!attr` (not present). A multi-attribute or an array value
matches when one of its values does. Syntax errors are 400 InvalidRequest.

`parse_scope_q(text)` → a predicate on an entity's scopes (`/a/b`, `/a/+` one level, `/a/#` the scope and below,
`,`/`|` OR, `;` AND). `parse_types(text, ctx)` → (predicate on an entity's expanded types, every type named).

Public API (stable): `parse_q`, `parse_scope_q`, `parse_types`, `Predicate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from clapas.api.ngsi_ld.context import Context
from clapas.api.ngsi_ld.entity import MEMBERS
from clapas.api.ngsi_ld.errors import invalid_request
from clapas.api.ngsi_ld.source import Entity

Predicate = Callable[[Entity], bool]
_OPS = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")
_NAME = re.compile(r"[^\s=!<>~;|()\[\].\"',]+")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.s, self.i, self.what = text, 0, what

    def fail(self, why: str) -> Exception:
        return invalid_request(f"{self.what}: {why} at character {self.i + 1} of {self.s!r}")

    def peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def skip_ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1

    def done(self) -> bool:
        self.skip_ws()
        return self.i >= len(self.s)


def _boolean(p: _Parser, term: Callable[[_Parser], Predicate], ors: tuple[str, ...], ands: tuple[str, ...]
             ) -> Predicate:
    """OR of ANDs of terms (AND binds tighter), with parentheses handled by `term`."""

    def parse_and() -> Predicate:
        parts = [term(p)]
        while not p.done() and p.peek() in ands:
            p.i += 1
            parts.append(term(p))
        return parts[0] if len(parts) == 1 else (lambda e, ps=tuple(parts): all(x(e) for x in ps))

    parts = [parse_and()]
    while not p.done() and p.peek() in ors:
        p.i += 1
        parts.append(parse_and())
    return parts[0] if len(parts) == 1 else (lambda e, ps=tuple(parts): any(x(e) for x in ps))


def _parse(text: str, what: str, leaf: Callable[[_Parser], Predicate], ors: tuple[str, ...],
           ands: tuple[str, ...]) -> Predicate:
    """A whole expression of `leaf` terms, OR'ed and AND'ed, with parentheses (400 InvalidRequest if malformed)."""

    def term(p: _Parser) -> Predicate:
        p.skip_ws()
        if p.peek() != "(":
            return leaf(p)
        p.i += 1
        inner = _boolean(p, term, ors, ands)
        p.skip_ws()
        if p.peek() != ")":
            raise p.fail("missing )")
        p.i += 1
        return inner

    p = _Parser(text, what)
    if p.done():
        raise p.fail("empty expression")
    pred = _boolean(p, term, ors, ands)
    if not p.done():
        raise p.fail("unexpected text")
    return pred


# q ---------------------------------------------------------------------------------------------------------------
def _values(entity: Entity, path: list[str], keys: list[str]) -> list[Any]:
    """The values a path designates in an entity (several for a multi-attribute or an array)."""
    attrs: list[Any] = [entity.get(path[0])] if path[0] in entity else []
    for seg in path[1:]:
        nxt: list[Any] = []
        for a in attrs:
            for inst in a if isinstance(a, list) else [a]:
                if isinstance(inst, dict) and seg in inst:
                    nxt.append(inst[seg])
        attrs = nxt
    out: list[Any] = []
    last_is_member = len(path) > 1 and path[-1] in MEMBERS
    for a in attrs:
        for inst in a if isinstance(a, list) else [a]:
            if last_is_member or not isinstance(inst, dict):
                v = inst
            elif "object" in inst:
                v = inst["object"]
            elif "languageMap" in inst:
                v = list((inst["languageMap"] or {}).values())
            elif "vocab" in inst:
                v = inst["vocab"]
            elif "json" in inst:
                v = inst["json"]
            elif "valueList" in inst:
                v = inst["valueList"]
            else:
                v = inst.get("value")
            for k in keys:
                v = v.get(k) if isinstance(v, dict) else None
            if v is None:
                continue
            out.extend(v if isinstance(v, list) else [v])
    return out


class _Lit:
    """A comparable value of a query: its raw text and what it is."""

    __slots__ = ("text", "value", "when")

    def __init__(self, raw: str) -> None:
        self.text = raw
        self.when: datetime | None = None
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            self.value: Any = raw[1:-1]
        elif raw in ("true", "false"):
            self.value = raw == "true"
        elif _NUMBER.match(raw):
            self.value = float(raw) if any(c in raw for c in ".eE") else int(raw)
        else:
            self.value = raw
        s = self.value if isinstance(self.value, str) else None
        if s and _DATETIME.match(s):
            try:
                self.when = _when(s)
            except ValueError:
                self.when = None


def _when(s: str) -> datetime:
    from clapas.api.ngsi_ld.entity import parse_time

    return parse_time(s, "value")


def _comparable(v: Any, lit: _Lit) -> tuple[Any, Any] | None:
    """(entity value, query value) in one comparable kind, or None when they cannot be compared."""
    if lit.when is not None and isinstance(v, str) and _DATETIME.match(v):
        try:
            return _when(v), lit.when
        except Exception:
            return None
    q = lit.value
    if isinstance(q, bool) or isinstance(v, bool):
        return (v, q) if isinstance(v, bool) and isinstance(q, bool) else None
    if isinstance(q, int | float) and isinstance(v, int | float):
        return v, q
    if isinstance(q, str) and isinstance(v, str):
        return v, q
    return None


def _equal(v: Any, lit: _Lit, ctx_expand: Callable[[str], str]) -> bool:
    c = _comparable(v, lit)
    if c is not None:
        return c[0] == c[1]
    return isinstance(v, str) and isinstance(lit.value, str) and ctx_expand(lit.value) == v


def _q_term(ctx: Context) -> Callable[[_Parser], Predicate]:
    def term(p: _Parser) -> Predicate:
        negate = False
        if p.peek() == "!":
            negate = True
            p.i += 1
        path, keys = _path(p, ctx)
        p.skip_ws()
        op = next((o for o in _OPS if p.s.startswith(o, p.i)), None)
        if op is None:
            exists: Predicate = lambda e: bool(_values(e, path, keys)) or (len(path) == 1 and path[0] in e)  # noqa: E731
            return (lambda e: not exists(e)) if negate else exists
        if negate:
            raise p.fail("! only applies to an attribute alone")
        p.i += len(op)
        raw = _raw_value(p)
        return _comparison(path, keys, op, raw, ctx, p)

    return term


def _path(p: _Parser, ctx: Context) -> tuple[list[str], list[str]]:
    p.skip_ws()
    m = _NAME.match(p.s, p.i)
    if not m:
        raise p.fail("an attribute name was expected")
    path = [ctx.expand(m.group())]
    p.i = m.end()
    while p.peek() == ".":
        m = _NAME.match(p.s, p.i + 1)
        if not m:
            raise p.fail("a sub-attribute name was expected after .")
        seg = m.group()
        path.append(seg if seg in MEMBERS else ctx.expand(seg))
        p.i = m.end()
    keys: list[str] = []
    while p.peek() == "[":
        end = p.s.find("]", p.i)
        if end < 0:
            raise p.fail("missing ]")
        inner = p.s[p.i + 1:end]
        if not inner:
            raise p.fail("empty []")
        keys.extend(inner.split("."))
        p.i = end + 1
    return path, keys


def _raw_value(p: _Parser) -> str:
    start, quoted = p.i, False
    while p.i < len(p.s):
        c = p.s[p.i]
        if c == '"':
            quoted = not quoted
        elif not quoted and c in ";|)":
            break
        elif not quoted and c == "(":
            raise p.fail("( inside a value (quote the string)")
        p.i += 1
    if quoted:
        raise p.fail("unterminated string")
    raw = p.s[start:p.i].strip()
    if not raw or raw[0] in "=<>!~":
        raise p.fail("a value was expected")
    return raw


def _split_list(raw: str) -> list[str]:
    parts, cur, quoted = [], "", False
    for c in raw:
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return [x.strip() for x in parts]


def _comparison(path: list[str], keys: list[str], op: str, raw: str, ctx: Context, p: _Parser) -> Predicate:
    if op in ("~=", "!~="):
        pattern = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise p.fail(f"invalid regular expression ({e})") from None
        hit = lambda e: any(isinstance(v, str) and rx.search(v) for v in _values(e, path, keys))  # noqa: E731
        if op == "~=":
            return hit
        return lambda e: bool(_values(e, path, keys)) and not hit(e)
    items = _split_list(raw)
    if len(items) > 1:
        if op not in ("==", "!="):
            raise p.fail(f"a list of values only goes with == or !=, not {op}")
        lits = [_Lit(x) for x in items]
        eq = lambda e: any(_equal(v, lit, ctx.expand) for v in _values(e, path, keys) for lit in lits)  # noqa: E731
        return eq if op == "==" else (lambda e: bool(_values(e, path, keys)) and not eq(e))
    quoted_free = raw.replace('"', "")
    if ".." in quoted_free and not (raw.startswith('"') and raw.endswith('"')):
        lo_raw, _, hi_raw = raw.partition("..")
        if not lo_raw or not hi_raw:
            raise p.fail("a range needs both ends")
        if op not in ("==", "!="):
            raise p.fail(f"a range only goes with == or !=, not {op}")
        lo, hi = _Lit(lo_raw.strip()), _Lit(hi_raw.strip())

        def in_range(e: Entity) -> bool:
            for v in _values(e, path, keys):
                a, b = _comparable(v, lo), _comparable(v, hi)
                if a is not None and b is not None and a[1] <= a[0] <= b[1]:
                    return True
            return False

        return in_range if op == "==" else (lambda e: bool(_values(e, path, keys)) and not in_range(e))
    lit = _Lit(raw)
    if op == "==":
        return lambda e: any(_equal(v, lit, ctx.expand) for v in _values(e, path, keys))
    if op == "!=":
        return lambda e: bool(vs := _values(e, path, keys)) and not any(_equal(v, lit, ctx.expand) for v in vs)
    compare = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
               "<=": lambda a, b: a <= b}[op]

    def ordered(e: Entity) -> bool:
        for v in _values(e, path, keys):
            c = _comparable(v, lit)
            if c is not None and not isinstance(c[0], bool) and compare(c[0], c[1]):
                return True
        return False

    return ordered


def parse_q(text: str, ctx: Context) -> Predicate:
    return _parse(text, "q", _q_term(ctx), ("|",), (";",))


# scopeQ ----------------------------------------------------------------------------------------------------------
_SCOPE = re.compile(r"/(?:(?:[^\s/;,|()#+]+|\+)/)*(?:[^\s/;,|()#+]+|#|\+)?")


def _scope_matches(pattern: str, scopes: list[str]) -> bool:
    segs = [s for s in pattern.split("/") if s]
    for scope in scopes:
        have = [s for s in scope.split("/") if s]
        if segs and segs[-1] == "#":
            if have[:len(segs) - 1] == segs[:-1]:
                return True
            continue
        if len(have) != len(segs):
            continue
        if all(a == b or a == "+" for a, b in zip(segs, have, strict=True)):
            return True
    return False


def _scope_term(p: _Parser) -> Predicate:
    m = _SCOPE.match(p.s, p.i)
    if not m or not m.group():
        raise p.fail("a scope like /City/District was expected")
    p.i = m.end()
    pattern = m.group()
    return lambda e: _scope_matches(pattern, list(e.get("scope") or []))


def parse_scope_q(text: str) -> Predicate:
    return _parse(text, "scopeQ", _scope_term, (",", "|"), (";",))


# type ------------------------------------------------------------------------------------------------------------
_TYPE_NAME = re.compile(r"[^\s;,|()]+")


def parse_types(text: str, ctx: Context) -> tuple[Predicate, frozenset[str]]:
    """`A,B` or `A|B` (either), `A;B` (both), parentheses; names expanded with `ctx`."""
    named: set[str] = set()

    def term(p: _Parser) -> Predicate:
        m = _TYPE_NAME.match(p.s, p.i)
        if not m:
            raise p.fail("a type name was expected")
        p.i = m.end()
        iri = ctx.expand(m.group())
        named.add(iri)

        def has(e: Entity) -> bool:
            t = e.get("type")
            return iri in t if isinstance(t, list) else iri == t

        return has

    pred = _parse(text, "type", term, (",", "|"), (";",))
    return pred, frozenset(named)


# projections (§4.21: pick / omit, nested on linked entities) -------------------------------------------------------
Tree = dict[str, "Tree | None"]
_MEMBER = re.compile(r"[^\s,{}]+")


def parse_projection(text: str, what: str) -> Tree:
    """`id,locatedAt{id,name,isInCountry{id}}` → {"id": None, "locatedAt": {"id": None, "name": None, ...}}: the
    members named, each with the projection of the entities its Relationship links to (joins)."""

    def items(p: _Parser) -> Tree:
        out: Tree = {}
        while True:
            p.skip_ws()
            m = _MEMBER.match(p.s, p.i)
            if not m:
                raise p.fail("a name was expected")
            p.i = m.end()
            sub = None
            if p.peek() == "{":
                p.i += 1
                sub = items(p)
                if p.peek() != "}":
                    raise p.fail("missing }")
                p.i += 1
            out[m.group()] = sub
            if p.peek() != ",":
                return out
            p.i += 1

    p = _Parser(text, what)
    if p.done():
        raise p.fail("empty list")
    tree = items(p)
    if not p.done():
        raise p.fail("unexpected text")
    return tree
