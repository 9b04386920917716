"""Detector state that survives restarts: what each detector remembers, per subject, saved with its batch.

Why: an alert opened before a restart must be cleared by the detector after it, so the detectors' memory (a meter's
last index, its 24-hour window of flows, a zone's IBM days, a room's episode…) has to be where the alerts are. Each
detector declares where its memory lives (`Detector.state_maps`: dicts or sets keyed by a subject, a device EUI or a
zone id, or by tuples that start with one; `state_attrs`: a few scalars). After each batch the `StateKeeper` encodes,
per subject, what changed and the writer commits it in the batch's own transaction (`StateWrite`), with the alert
changes it caused; if that transaction fails, the subjects it touched are put back as they were committed, so a
retry never applies the batch twice.

Only what may have changed is encoded: for maps whose entries change only when their device is observed
(`DEVICE`, the water meters: tens of thousands of them) the devices of the batch; for the others (`ANY`: zones,
pending periods, a few dozen subjects) every subject, whose bytes are compared with the committed ones. A row holds
one subject's entries of every map of one detector, so objects shared within a subject stay shared.

Encoding: pickle (protocol 5), read back through an unpickler that only builds clapas classes and a few standard
containers. msgspec would need a typed schema of every detector's internal classes (deques with a maximum length,
sets, tuple keys, enums, objects shared between maps); pickle keeps them exactly, in C, for ≈ 3 µs a meter. Rows
are tagged with a version per detector: its declared `state_version` and a digest of its state layout (the maps
and the slots of the classes of its modules). A version that does not match this code is never loaded:
`clapas state rebuild` computes the state again from the journal.
"""

from __future__ import annotations

import enum
import hashlib
import io
import pickle
import sys
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from clapas.store.base import StoreError

if TYPE_CHECKING:
    from clapas.detectors.base import Detection, Detector
    from clapas.store.alerts import AlertChange, Route

DEVICE = "device"  # keyed by device EUI; an entry changes only when its device is observed
ANY = "any"  # keyed by any subject; may change on any batch (periods closing): compared whole each batch
GLOBAL = ""  # the subject of a detector's scalars (`state_attrs`), and of the runner's watermark
RUNNER = "runner"  # the runner's own row
RUNNER_VERSION = "1"
_PROTOCOL = 5
_MISSING = object()


class StateMap(NamedTuple):
    """Where a detector keeps per-subject memory: an attribute path (`leak.state`) to a dict or a set."""

    path: str
    scope: str = DEVICE
    tuple_key: bool = False  # keys are tuples whose first item is the subject


class StateIncompatible(StoreError):
    """Saved detector state written by another layout of the detectors: rebuild it, never load it."""


# the only globals saved state may name: clapas classes and these
_SAFE = {("builtins", n) for n in ("set", "frozenset", "complex", "bytearray", "slice", "range")} | {
    ("collections", "deque"), ("collections", "OrderedDict"), ("collections", "defaultdict"),
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "timedelta"), ("datetime", "timezone"),
    ("zoneinfo", "ZoneInfo"), ("copyreg", "_reconstructor"), ("builtins", "object"), ("msgspec._utils", "rebuild")}


def _enum_member(cls: type, name: str) -> Any:
    """The `getattr` pickle uses for enum members and time zones, refusing anything else."""
    if cls is ZoneInfo and name == "_unpickle":
        return ZoneInfo._unpickle
    if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
        raise pickle.UnpicklingError(f"detector state asks for {name!r} of {cls!r}, which is not an enum")
    return cls[name]


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("builtins", "getattr"):
            return _enum_member
        if module == "clapas" or module.startswith("clapas.") or (module, name) in _SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"detector state names {module}.{name}, which it may not")


def dumps(v: Any) -> bytes:
    return pickle.dumps(v, _PROTOCOL)


def loads(b: bytes) -> Any:
    return _Unpickler(io.BytesIO(b)).load()


class Msgpack:
    """A faster codec for detectors whose state is made of slotted classes, deques, dicts, lists and numbers (the
    water meters: ≈ 4 µs a meter where pickle takes ≈ 18): msgpack through msgspec, each object an extension
    naming its class among those of the detector's modules (nothing else can be built). Tuples come back as lists
    and sets are not supported: for state that only reads its tuples (and keeps its sets as `state_maps`)."""

    _OBJ, _DEQUE = 1, 2

    def __init__(self, modules: Iterable[str]) -> None:
        import msgspec

        self._msgspec = msgspec
        self.classes: dict[str, type] = {}
        for mod_name in modules:
            for name, cls in vars(sys.modules[mod_name]).items():
                if isinstance(cls, type) and cls.__module__ == mod_name and "__slots__" in vars(cls):
                    self.classes[name] = cls
        self._enc = msgspec.msgpack.Encoder(enc_hook=self._hook)
        self._dec = msgspec.msgpack.Decoder(ext_hook=self._ext)

    def _hook(self, obj: Any) -> Any:
        Ext = self._msgspec.msgpack.Ext
        if isinstance(obj, deque):
            return Ext(self._DEQUE, self._enc.encode([obj.maxlen, list(obj)]))
        name = type(obj).__name__
        if self.classes.get(name) is type(obj):
            return Ext(self._OBJ, self._enc.encode([name, *(getattr(obj, s) for s in type(obj).__slots__)]))
        raise TypeError(f"detector state cannot encode {type(obj).__name__}")

    def _ext(self, code: int, data: memoryview) -> Any:
        v = self._dec.decode(data)
        if code == self._DEQUE:
            return deque(v[1], v[0])
        cls = self.classes.get(v[0]) if code == self._OBJ else None
        if cls is None:
            raise ValueError(f"detector state names an unknown class {v[0]!r}")
        obj = cls.__new__(cls)
        for slot, value in zip(cls.__slots__, v[1:], strict=True):
            setattr(obj, slot, value)
        return obj

    def dumps(self, v: Any) -> bytes:
        return self._enc.encode(v)

    def loads(self, b: bytes) -> Any:
        return self._dec.decode(b)


class Pickle:
    """The general codec: anything the detectors keep (dataclasses, enums, sets, shared objects)."""

    dumps = staticmethod(dumps)
    loads = staticmethod(loads)


def _resolve(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set_path(obj: Any, path: str, value: Any) -> None:
    head, _, last = path.rpartition(".")
    setattr(_resolve(obj, head) if head else obj, last, value)


def state_name(det: Detector) -> str:
    return det.state_name or type(det).__name__.removesuffix("Detector").lower()


def state_version(det: Detector) -> str:
    """The declared version and a digest of the state layout: maps, scalars and the slots (or dataclass fields) of
    every class of the detector's modules. A renamed field, a new one, a map added: another version."""
    h = hashlib.sha256(repr((det.state_version, det.state_codec, det.state_maps, det.state_attrs)).encode())
    for mod_name in sorted({type(det).__module__, *det.state_modules}):
        mod = sys.modules.get(mod_name)
        for name, cls in sorted(vars(mod).items()) if mod else ():
            if isinstance(cls, type) and cls.__module__ == mod_name:
                layout = ([f.name for f in fields(cls)] if is_dataclass(cls)
                          else getattr(cls, "__slots__", None) or getattr(cls, "__struct_fields__", None))
                if layout:
                    h.update(f"{name}:{sorted(layout) if not isinstance(layout, str) else layout}".encode())
    return f"{det.state_version}.{h.hexdigest()[:12]}"


Row = tuple[str, str, str, bytes | None]  # (detector, subject, version, state; None: forget the subject)


@dataclass
class StateWrite:
    """What one batch changed in the detectors, committed in the batch's transaction by the store."""

    rows: list[Row] = field(default_factory=list)
    alerts: list[AlertChange] = field(default_factory=list)
    route: Route | None = None
    detections: list[Detection] = field(default_factory=list)  # for a sink that is not written in the transaction
    watermark: float = float("-inf")  # the runner's, before the batch (restored if the transaction fails)
    uplinks: int = 0
    seq: int = 0  # the runner's batch number: the rows' version order in the store
    flags: list[tuple[float, str, int, str]] = field(default_factory=list)  # data-quality flags (health rules)


class StateKeeper:
    """The committed bytes of every (detector, subject), and the encoding of what a batch changed."""

    def __init__(self, detectors: list[Detector]) -> None:
        self.detectors = detectors
        self.names = [state_name(d) for d in detectors]
        self.versions = [state_version(d) for d in detectors]
        self.codecs = {n: Msgpack({type(d).__module__, *d.state_modules}) if d.state_codec == "msgpack" else Pickle
                       for n, d in zip(self.names, detectors, strict=True)}
        self.committed: dict[tuple[str, str], bytes] = {}
        self._any_seen: dict[str, set[str]] = defaultdict(set)  # subjects of ANY maps at the last encoding

    # encoding ----------------------------------------------------------------------------------------
    def encode(self, observed: dict[str, set[str]]) -> list[Row]:
        """Rows of the subjects whose state differs from the committed one. `observed`: device kind → EUIs of the
        batch."""
        rows: list[Row] = []
        committed = self.committed
        for det, name, version in zip(self.detectors, self.names, self.versions, strict=True):
            dumps = self.codecs[name].dumps
            device_maps: list[tuple[int, Any, bool]] = []  # (index, container, is a dict): looked up by subject
            any_maps: list[tuple[int, Any, bool]] = []
            tuple_maps: list[tuple[int, Any, bool, dict[str, list[Any]]]] = []  # with their subject → keys index
            any_subjects: set[str] = set()
            for i, spec in enumerate(det.state_maps):
                container = _resolve(det, spec.path)
                if spec.tuple_key:
                    groups: dict[str, list[Any]] = defaultdict(list)
                    for k in container:
                        groups[k[0]].append(k)
                    tuple_maps.append((i, container, isinstance(container, dict), groups))
                    if spec.scope == ANY:
                        any_subjects.update(groups)
                elif spec.scope == ANY:
                    any_maps.append((i, container, isinstance(container, dict)))
                    any_subjects.update(container)
                else:
                    device_maps.append((i, container, isinstance(container, dict)))
            full = any_subjects | self._any_seen[name]  # (a subject that left every ANY map is forgotten)
            self._any_seen[name] = any_subjects
            candidates = set(full)
            for kind in det.kinds:
                candidates.update(observed.get(kind, ()))
            for subject in candidates:
                payload: list[tuple[int, Any]] = []
                for i, container, is_dict in (device_maps + any_maps if subject in full else device_maps):
                    if is_dict:
                        v = container.get(subject, _MISSING)
                        if v is not _MISSING:
                            payload.append((i, v))
                    elif subject in container:
                        payload.append((i, True))
                for i, container, is_dict, groups in tuple_maps:
                    keys = groups.get(subject)
                    if keys:
                        payload.append((i, [(k, container[k]) for k in keys] if is_dict else keys))
                data = dumps(payload) if payload else None
                if committed.get((name, subject)) != data:
                    rows.append((name, subject, version, data))
            if det.state_attrs:
                data = dumps({a: _resolve(det, a) for a in det.state_attrs})
                if committed.get((name, GLOBAL)) != data:
                    rows.append((name, GLOBAL, version, data))
        return rows

    @staticmethod
    def runner_row(watermark: float, uplinks: int, seq: int) -> Row:
        return (RUNNER, GLOBAL, RUNNER_VERSION, dumps((watermark, uplinks, seq)))

    def snapshot(self, watermark: float, uplinks: int) -> list[Row]:
        """Every subject's rows (a rebuild writes them all)."""
        self.committed.clear()
        self._any_seen.clear()
        everything: dict[str, set[str]] = defaultdict(set)
        for det in self.detectors:
            for m in det.state_maps:
                container = _resolve(det, m.path)
                for kind in det.kinds:
                    everything[kind].update(k[0] if m.tuple_key else k for k in container)
        return [*self.encode(everything), self.runner_row(watermark, uplinks, 1)]

    # after the transaction ---------------------------------------------------------------------------
    def accept(self, rows: Iterable[Row]) -> None:
        """The rows are committed."""
        for name, subject, _, data in rows:
            if data is None:
                self.committed.pop((name, subject), None)
            else:
                self.committed[(name, subject)] = data

    def restore(self, rows: Iterable[Row]) -> None:
        """The rows were not committed: put their subjects back as they were committed."""
        by_name = dict(zip(self.names, self.detectors, strict=True))
        touched: dict[str, Detector] = {}
        for name, subject, _, _ in rows:
            det = by_name.get(name)
            if det is None:
                continue
            touched[name] = det
            codec = self.codecs[name]
            if subject == GLOBAL:
                old = self.committed.get((name, GLOBAL))
                if old is not None:
                    for a, v in codec.loads(old).items():
                        _set_path(det, a, v)
                continue
            self._forget(det, subject)
            old = self.committed.get((name, subject))
            if old is not None:
                self._put(det, subject, codec.loads(old))
        for det in touched.values():
            det.state_loaded()

    @staticmethod
    def _forget(det: Detector, subject: str) -> None:
        for spec in det.state_maps:
            container = _resolve(det, spec.path)
            if spec.tuple_key:
                for k in [k for k in container if k[0] == subject]:
                    container.discard(k) if isinstance(container, set) else container.pop(k)
            elif isinstance(container, dict):
                container.pop(subject, None)
            else:
                container.discard(subject)

    @staticmethod
    def _put(det: Detector, subject: str, payload: list[tuple[int, Any]]) -> None:
        for i, value in payload:
            spec = det.state_maps[i]
            container = _resolve(det, spec.path)
            if spec.tuple_key:  # (key, value) pairs into a dict, keys into a set (as tuples, whatever the codec)
                if isinstance(container, dict):
                    container.update((tuple(k), v) for k, v in value)
                else:
                    container.update(tuple(k) for k in value)
            elif isinstance(container, dict):
                container[subject] = value
            else:
                container.add(subject)

    # loading -----------------------------------------------------------------------------------------
    def load(self, rows: Iterable[Row]) -> tuple[float, int, int] | None:
        """Saved rows into the detectors; returns the runner's (watermark, uplinks, batch number), None if nothing
        was saved.
        Raises `StateIncompatible` if any row of a configured detector has another version."""
        rows = list(rows)
        by_name = {n: (d, v) for n, d, v in zip(self.names, self.detectors, self.versions, strict=True)}
        stale = sorted({(name, version) for name, _, version, _ in rows
                        if name in by_name and version != by_name[name][1]})
        if stale:
            which = ", ".join(f"{n} (saved {v}, this clapas {by_name[n][1]})" for n, v in stale)
            raise StateIncompatible(
                f"the saved detector state was written by another version of the detectors: {which}. "
                "It is not loaded: run `clapas state rebuild` (with the same --config) to compute it again from the "
                "journal, then start clapas again")
        runner: tuple[float, int, int] | None = None
        for name, subject, _, data in rows:
            if data is None:
                continue
            if name == RUNNER:
                runner = loads(data)
            elif name in by_name:
                det = by_name[name][0]
                value = self.codecs[name].loads(data)
                if subject == GLOBAL:
                    for a, v in value.items():
                        _set_path(det, a, v)
                else:
                    self._put(det, subject, value)
            else:
                continue
            self.committed[(name, subject)] = data
        for det in self.detectors:
            det.state_loaded()
        for name in self.names:
            self._any_seen[name] = {s for (n, s) in self.committed if n == name and s != GLOBAL}
        return runner
