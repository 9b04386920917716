"""How detector state becomes bytes, and back, without pickle.

Why not pickle: a row of the `detector_state` table is read back into the running process, and unpickling bytes is
running code chosen by whoever could write them (a restricted unpickler is still an attack surface). Both codecs
here only ever build plain containers, numbers and strings, and the classes a detector declares.

- `StructCodec`, for detectors with many subjects (the water meters): every state map declares the type of its
  values (`StateMap.value`, msgspec Structs and builtin containers), a row is a msgpack array with one item per map
  (nil where the subject has no entry), encoded and decoded by msgspec in C against that typed schema
  (≈ 1 µs a meter, no Python per object). A field may be an `array('d')` (a sliding window of samples): it is
  saved as its raw bytes (little-endian doubles), one copy where a list of tuples is a walk of every float
  (24 (time, flow) pairs of a meter's day: 0.2 µs against 3.7 µs, and a third of the memory). A map may declare
  such a field a window (`StateMap.window`): its rows are then `[rest, (cut, tail)…]`, the row without its
  windows and, per window, how many items of the committed one to drop from its front (-1: all of it, a full row)
  and the items that follow; a row that drops or adds to a committed window starts with `DELTA`
  (`clapas.detectors.state` folds them).
- `TreeCodec`, for detectors with a few dozen subjects and rich objects (heat, air, floods, museums): a walk of the
  objects into msgpack where tuples, sets, deques (with their maximum length), dates, time-zone-aware datetimes,
  enums and objects are extensions; an object or enum is rebuilt only if its class is one of the detector's own
  modules' (named by module and name), by setting its declared slots or fields. Objects shared between two places
  of a row come back as copies: a detector re-links them in `state_loaded`.
"""

from __future__ import annotations

import enum
import sys
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Optional
from zoneinfo import ZoneInfo

import msgspec

_TUPLE, _SET, _FROZENSET, _DEQUE, _OBJ, _ENUM, _DATE, _DATETIME, _DICT, _TIMEDELTA, _OBJ_DICT = range(1, 12)
_PLAIN = (int, float, str, bool, bytes, type(None))


def row_type(kinds: Sequence[tuple[bool, bool, Any]]) -> Any:
    """The typed schema of a row: per map (is a dict, tuple keys, declared value type) the type of its item."""
    items: list[Any] = []
    for is_dict, tuple_key, value in kinds:
        if value is None:
            raise TypeError("a StructCodec detector must declare the value type of every state map")
        if tuple_key:
            item = list[tuple[value[0], value[1]]] if is_dict else list[value[0]]  # type: ignore[index]
        else:
            item = value if is_dict else bool
        items.append(Optional[item])  # noqa: UP045 - a runtime type for msgspec
    return tuple.__class_getitem__(tuple(items))


_BIG_ENDIAN = sys.byteorder == "big"
DELTA = b"\xc1"  # the first byte of a delta row: msgpack never uses it (no full row starts with it)
EMPTY = array("d")  # an empty window (never changed)
NO_WINDOW = b""  # stands for a window while the rest of its row is encoded: saved as an empty window's bytes


def _array_bytes(obj: Any) -> Any:
    """msgspec's `enc_hook`: an `array('d')` as the bytes of its little-endian doubles."""
    if type(obj) is array and obj.typecode == "d":
        if _BIG_ENDIAN:
            obj = array("d", obj)
            obj.byteswap()
        return memoryview(obj).cast("B")
    raise TypeError(f"detector state cannot encode {type(obj).__module__}:{type(obj).__qualname__}")


def window_bytes(a: array) -> bytes:
    """An `array('d')`'s little-endian bytes (what `_array_bytes` saves), without msgspec's hook."""
    if _BIG_ENDIAN:
        a = array("d", a)
        a.byteswap()
    return a.tobytes()


def array_of(data: bytes) -> array:
    """The `array('d')` of `window_bytes`."""
    out = array("d")
    out.frombytes(data)
    if _BIG_ENDIAN:
        out.byteswap()
    return out


def _array_of(kind: type, data: Any) -> Any:
    """msgspec's `dec_hook`: the bytes of `_array_bytes` back into an `array('d')`."""
    if kind is array and isinstance(data, bytes) and len(data) % 8 == 0:
        out = array("d")
        out.frombytes(data)
        if _BIG_ENDIAN:
            out.byteswap()
        return out
    raise ValueError(f"detector state holds a {type(data).__name__} where a {kind.__name__} is declared")


class StructCodec:
    """Typed msgpack rows (see the module docstring); `kinds`: per map (is a dict, tuple keys, value type)."""

    def __init__(self, kinds: Sequence[tuple[bool, bool, Any]]) -> None:
        self._enc = msgspec.msgpack.Encoder(enc_hook=_array_bytes)
        self._row = msgspec.msgpack.Decoder(row_type(kinds), dec_hook=_array_of)
        self._any = msgspec.msgpack.Decoder()

    def dump_row(self, values: list[Any]) -> bytes:
        return self._enc.encode(values)

    def load_row(self, data: bytes) -> Sequence[Any]:
        return self._row.decode(data)

    def dump_attrs(self, attrs: dict[str, Any]) -> bytes:
        return self._enc.encode(attrs)

    def load_attrs(self, data: bytes) -> dict[str, Any]:
        return self._any.decode(data)

    def dump_windows(self, rest: bytes, parts: list[Any], delta: bool) -> bytes:
        """A row of a detector with windows: `rest` (its row without them) and per window (cut, tail bytes:
        `window_bytes`)."""
        data = self._enc.encode([rest, *parts])
        return DELTA + data if delta else data

    def load_windows(self, data: bytes) -> tuple[bool, bytes, list[tuple[int, bytes]]]:
        """(is a delta, rest, per window (cut, tail)) of a `dump_windows` row."""
        delta = data[:1] == DELTA
        items = self._any.decode(data[1:] if delta else data)
        if (not isinstance(items, list) or len(items) % 2 != 1
                or not isinstance(items[0], bytes)
                or not all(isinstance(b, bytes) and len(b) % 8 == 0 for b in items[2::2])):
            raise ValueError("detector state: not a row of windows")
        return delta, items[0], [(int(items[k]), items[k + 1]) for k in range(1, len(items), 2)]


class TreeCodec:
    """Tagged msgpack trees (see the module docstring); `modules`: where the classes it may build are defined."""

    def __init__(self, modules: Iterable[str]) -> None:
        self.classes: dict[str, type] = {}
        for mod_name in modules:
            for cls in vars(sys.modules[mod_name]).values():
                if isinstance(cls, type) and cls.__module__ == mod_name:
                    self.classes[f"{mod_name}:{cls.__qualname__}"] = cls
        self._slots: dict[type, tuple[str, ...]] = {}
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder(ext_hook=self._ext)

    # encoding ------------------------------------------------------------------------------------------------
    def _attrs(self, cls: type) -> tuple[str, ...]:
        names = self._slots.get(cls)
        if names is None:
            if hasattr(cls, "__struct_fields__"):
                names = tuple(cls.__struct_fields__)  # type: ignore[attr-defined]
            elif is_dataclass(cls):
                names = tuple(f.name for f in fields(cls))
            else:
                names = tuple(s for k in reversed(cls.__mro__) for s in vars(k).get("__slots__", ()))
            self._slots[cls] = names  # () for a class of plain instances: their `__dict__`
        return names

    def _tag(self, code: int, items: Any) -> msgspec.msgpack.Ext:
        return msgspec.msgpack.Ext(code, self._enc.encode(items))

    def _pack(self, v: Any) -> Any:
        t = type(v)
        if t in _PLAIN:
            return v
        if t is list:
            return [self._pack(x) for x in v]
        if t is dict:
            if all(type(k) is str for k in v):
                return {k: self._pack(x) for k, x in v.items()}
            return self._tag(_DICT, [[self._pack(k), self._pack(x)] for k, x in v.items()])
        if t is tuple:
            return self._tag(_TUPLE, [self._pack(x) for x in v])
        if t is set or t is frozenset:
            return self._tag(_SET if t is set else _FROZENSET, [self._pack(x) for x in v])
        if t is deque:
            return self._tag(_DEQUE, [v.maxlen, [self._pack(x) for x in v]])
        if t is datetime:
            return self._tag(_DATETIME, [v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond,
                                         _tz_name(v.tzinfo), v.fold])
        if t is date:
            return self._tag(_DATE, v.toordinal())
        if t is timedelta:
            return self._tag(_TIMEDELTA, v.total_seconds())
        name = f"{t.__module__}:{t.__qualname__}"
        if self.classes.get(name) is not t:
            raise TypeError(f"detector state cannot encode {name}: not a class of the detector's modules")
        if isinstance(v, enum.Enum):
            return self._tag(_ENUM, [name, self._pack(v.value)])
        names = self._attrs(t)
        if not names:
            return self._tag(_OBJ_DICT, [name, {a: self._pack(x) for a, x in vars(v).items()}])
        return self._tag(_OBJ, [name, *(self._pack(getattr(v, a)) for a in names)])

    def dump_row(self, values: list[Any]) -> bytes:
        return self._enc.encode(self._pack(values))

    dump_attrs = dump_row

    # decoding ------------------------------------------------------------------------------------------------
    def _ext(self, code: int, data: memoryview) -> Any:
        v = msgspec.msgpack.decode(data, ext_hook=self._ext)  # (a decoder is not re-entered from its own hook)
        if code == _TUPLE:
            return tuple(v)
        if code == _SET:
            return set(v)
        if code == _FROZENSET:
            return frozenset(v)
        if code == _DEQUE:
            return deque(v[1], v[0])
        if code == _DICT:
            return {k: x for k, x in v}
        if code == _DATE:
            return date.fromordinal(v)
        if code == _TIMEDELTA:
            return timedelta(seconds=v)
        if code == _DATETIME:
            return datetime(*v[:7], tzinfo=_tz(v[7]), fold=v[8])
        if code not in (_ENUM, _OBJ, _OBJ_DICT):
            raise ValueError(f"detector state holds an unknown extension {code}")
        cls = self.classes.get(v[0])
        if cls is None:
            raise ValueError(f"detector state names {v[0]!r}, which is not a class of the detector's modules")
        if code == _ENUM:
            if not issubclass(cls, enum.Enum):
                raise ValueError(f"detector state names {v[0]!r} as an enum")
            return cls(v[1])
        names = self._attrs(cls)
        if code == _OBJ_DICT:
            if names or not isinstance(v[1], dict):
                raise ValueError(f"detector state of {v[0]!r} does not match its class")
            obj = cls.__new__(cls)
            vars(obj).update(v[1])
            return obj
        if len(names) != len(v) - 1:
            raise ValueError(f"detector state of {v[0]!r} has {len(v) - 1} fields where the class has {len(names)}")
        if hasattr(cls, "__struct_fields__"):
            return cls(**dict(zip(names, v[1:], strict=True)))
        obj = cls.__new__(cls)
        for a, x in zip(names, v[1:], strict=True):
            object.__setattr__(obj, a, x)  # (frozen dataclasses too)
        return obj

    def load_row(self, data: bytes) -> Sequence[Any]:
        return self._dec.decode(data)

    load_attrs = load_row


def _tz_name(tz: Any) -> Any:
    """A datetime's time zone as data: None (naive), a ZoneInfo key, or a fixed offset in seconds."""
    if tz is None:
        return None
    if isinstance(tz, ZoneInfo):
        return tz.key
    off = tz.utcoffset(None)
    if off is None:
        raise TypeError(f"detector state cannot encode the time zone {tz!r}")
    return off.total_seconds()


def _tz(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str):
        return ZoneInfo(v)
    return UTC if v == 0 else timezone(timedelta(seconds=v))
