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

Windows (`StateMap.window`: an `array('d')` field of a map's values that slides, appended at its end and cut at its
front, the water meters' 24 h of flows): a row saves what changed since the committed row, the rest of the row
whole and per window the items cut from its front and the items appended (`state_codec.DELTA` rows: a meter's
≈ 170 bytes where its whole row is ≈ 500); every `SNAPSHOT_EVERY` deltas of a subject, and whenever the window
did not slide (cleared, or changed inside), the row is whole again. Loading folds a subject's whole row and the
deltas after it (the store returns them in batch order); the store's compaction keeps each subject's rows from its
newest whole one.

Encoding (`clapas.detectors.state_codec`, no pickle): typed msgspec rows for detectors with many subjects (the
water meters: each map declares the type of its values), tagged msgpack trees of the detector's own classes for the
others. Rows are tagged with a version per detector: its declared `state_version`, its codec and a digest of its state
layout (the maps and the slots of the classes of its modules). A version that does not match this code is never
loaded: `clapas state rebuild` computes the state again from the journal (which is also how rows saved by the earlier,
pickled format are replaced).
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from clapas.detectors.state_codec import EMPTY, NO_WINDOW, StructCodec, TreeCodec, array_of, window_bytes
from clapas.store.base import StoreError

if TYPE_CHECKING:
    from clapas.detectors.base import Detection, Detector
    from clapas.store.alerts import AlertChange, Route

DEVICE = "device"  # keyed by device EUI; an entry changes only when its device is observed
ANY = "any"  # keyed by any subject; may change on any batch (periods closing): compared whole each batch
GLOBAL = ""  # the subject of a detector's scalars (`state_attrs`), and of the runner's watermark
RUNNER = "runner"  # the runner's own row
RUNNER_VERSION = "2"  # 1: pickled
# design choice: a subject's row is whole again after this many deltas (a load folds at most this many rows per
# subject; the whole window is written once every this many batches the subject is in: 384 / 16 = 24 bytes a batch
# for a meter's day of flows)
SNAPSHOT_EVERY = 16
_runner_enc = msgspec.msgpack.Encoder()


class StateMap(NamedTuple):
    """Where a detector keeps per-subject memory: an attribute path (`leak.state`) to a dict or a set."""

    path: str
    scope: str = DEVICE
    tuple_key: bool = False  # keys are tuples whose first item is the subject
    # the type of the values, for a "struct" codec detector: of a dict's values; with tuple keys (key type, value
    # type) for a dict, (key type,) for a set; a set without tuple keys needs none
    value: Any = None
    # a "struct" dict's values: the name of their `array('d')` field that slides (saved as deltas, see above)
    window: str = ""


class StateIncompatible(StoreError):
    """Saved detector state written by another layout of the detectors: rebuild it, never load it."""


def _resolve(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _set_path(obj: Any, path: str, value: Any) -> None:
    head, _, last = path.rpartition(".")
    setattr(_resolve(obj, head) if head else obj, last, value)


class _Shown(str):
    """A map without a window shown as before windows were added: the other detectors' saved state stays valid."""

    def __repr__(self) -> str:
        return str(self)


def state_name(det: Detector) -> str:
    return det.state_name or type(det).__name__.removesuffix("Detector").lower()


def state_version(det: Detector) -> str:
    """The declared version and a digest of the state layout: maps, scalars and the slots (or dataclass fields) of
    every class of the detector's modules. A renamed field, a new one, a map added: another version."""
    maps = tuple(m if m.window else _Shown(repr(m).replace(", window=''", "")) for m in det.state_maps)
    h = hashlib.sha256(repr((det.state_version, det.state_codec, maps, det.state_attrs)).encode())
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
        self.codecs = {n: self._codec(d) for n, d in zip(self.names, detectors, strict=True)}
        self.committed: dict[str, dict[str, bytes]] = {}  # detector → subject → bytes (with windows: the rest)
        self._any_seen: dict[str, set[str]] = defaultdict(set)  # subjects of ANY maps at the last encoding
        # detectors with windows: (map index, field) of each, and per subject the committed windows (copies), the
        # deltas written since its whole row, and what the rows being committed will make them
        self.windows = {n: [(i, m.window) for i, m in enumerate(d.state_maps) if m.window]
                        for n, d in zip(self.names, detectors, strict=True)}
        for n, d in zip(self.names, detectors, strict=True):
            if self.windows[n] and d.state_codec != "struct":
                raise ValueError(f"{type(d).__name__}: state windows need the struct codec")
        # (windows as their bytes, tuples of bytes: no object for the garbage collector to follow, per meter)
        self.wins: dict[str, dict[str, tuple[bytes, ...]]] = defaultdict(dict)
        self.chain: dict[str, dict[str, int]] = defaultdict(dict)
        self._pending: dict[str, dict[str, tuple[bytes, tuple[bytes, ...], bool]]] = defaultdict(dict)

    @staticmethod
    def _codec(det: Detector) -> StructCodec | TreeCodec:
        if det.state_codec == "struct":
            return StructCodec([(isinstance(_resolve(det, m.path), dict), m.tuple_key, m.value or (bool,))
                                for m in det.state_maps])
        if det.state_codec == "tree":
            return TreeCodec({type(det).__module__, *det.state_modules})
        raise ValueError(f"{type(det).__name__}: unknown state codec {det.state_codec!r} (struct or tree)")

    # encoding ----------------------------------------------------------------------------------------
    def encode(self, observed: dict[str, set[str]]) -> list[Row]:
        """Rows of the subjects whose state differs from the committed one. `observed`: device kind → EUIs of the
        batch."""
        rows: list[Row] = []
        committed = self.committed
        for det, name, version in zip(self.detectors, self.names, self.versions, strict=True):
            codec = self.codecs[name]
            dump = codec.dump_row
            # one lookup per map and subject, each a dict's `get`: sets and tuple-keyed maps are indexed by subject
            # first (they are small: open alarms, zones, pending periods)
            getters: list[Any] = []
            any_subjects: set[str] = set()
            for spec in det.state_maps:
                container = _resolve(det, spec.path)
                if spec.tuple_key:
                    groups: dict[str, list[Any]] = defaultdict(list)
                    if isinstance(container, dict):
                        for k, v in container.items():
                            groups[k[0]].append((k, v))
                    else:
                        for k in container:
                            groups[k[0]].append(k)
                    getters.append(dict(groups).get)
                    if spec.scope == ANY:
                        any_subjects.update(groups)
                elif isinstance(container, dict):
                    getters.append(container.get)
                    if spec.scope == ANY:
                        any_subjects.update(container)
                else:
                    getters.append(dict.fromkeys(container, True).get)
                    if spec.scope == ANY:
                        any_subjects.update(container)
            # (an ANY map's subjects are all in `full`, so looking every subject up in every map is the same)
            full = any_subjects | self._any_seen[name]  # (a subject that left every ANY map is forgotten)
            self._any_seen[name] = any_subjects
            candidates = set(full)
            for kind in det.kinds:
                candidates.update(observed.get(kind, ()))
            n = len(getters)
            mine = committed.setdefault(name, {})
            if self.windows[name]:
                self._encode_windows(name, version, codec, getters, candidates, mine, rows)  # type: ignore[arg-type]
                candidates = set()
            for subject in candidates:
                values = [get(subject) for get in getters]  # None: no entry (a None value is not kept)
                data = dump(values) if values.count(None) != n else None
                if mine.get(subject) != data:
                    rows.append((name, subject, version, data))
            if det.state_attrs:
                data = codec.dump_attrs({a: _resolve(det, a) for a in det.state_attrs})
                if mine.get(GLOBAL) != data:
                    rows.append((name, GLOBAL, version, data))
        return rows

    def _encode_windows(self, name: str, version: str, codec: StructCodec, getters: list[Any], candidates: set[str],
                        mine: dict[str, bytes], rows: list[Row]) -> None:
        """The rows of a detector with windows: the rest of each subject's row, and its windows' deltas."""
        spec = self.windows[name]
        wins, chain, pending = self.wins[name], self.chain[name], self._pending[name]
        pending.clear()
        dump = codec.dump_row
        n = len(getters)
        for subject in candidates:
            values = [get(subject) for get in getters]
            if values.count(None) == n:
                if subject in mine:
                    rows.append((name, subject, version, None))
                continue
            arrs: list[array] = []
            for i, f in spec:
                holder = values[i]
                if holder is None:
                    arrs.append(EMPTY)
                else:
                    arrs.append(getattr(holder, f))
                    setattr(holder, f, NO_WINDOW)
            try:
                rest = dump(values)
            finally:
                for (i, f), a in zip(spec, arrs, strict=True):
                    if values[i] is not None:
                        setattr(values[i], f, a)
            now = tuple(window_bytes(a) for a in arrs)
            old = wins.get(subject)
            parts: list[Any] = []
            if old is not None:
                same = rest == mine.get(subject)
                slid = False  # some window kept items of the committed one
                for o, b in zip(old, now, strict=True):
                    cut, tail = _slide(o, b)
                    same = same and cut == 0 and not tail
                    slid = slid or cut * 8 != len(o)
                    parts += (cut, tail)
                if same:
                    continue
                delta = slid and chain.get(subject, 0) < SNAPSHOT_EVERY
            else:
                delta = False
            if not delta:
                parts = [x for b in now for x in (-1, b)]
            pending[subject] = (rest, now, delta)
            rows.append((name, subject, version, codec.dump_windows(rest, parts, delta)))

    @staticmethod
    def runner_row(watermark: float, uplinks: int, seq: int) -> Row:
        return (RUNNER, GLOBAL, RUNNER_VERSION, _runner_enc.encode((watermark, uplinks, seq)))

    def snapshot(self, watermark: float, uplinks: int) -> list[Row]:
        """Every subject's rows (a rebuild writes them all), whole."""
        self.committed.clear()
        self._any_seen.clear()
        self.wins.clear()
        self.chain.clear()
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
                self.committed.get(name, {}).pop(subject, None)
                self.wins[name].pop(subject, None)
                self.chain[name].pop(subject, None)
                continue
            done = self._pending[name].pop(subject, None) if subject != GLOBAL else None
            if done is None:
                self.committed.setdefault(name, {})[subject] = data
                continue
            rest, wins, delta = done
            self.committed.setdefault(name, {})[subject] = rest
            self.wins[name][subject] = wins
            chain = self.chain[name]
            chain[subject] = chain.get(subject, 0) + 1 if delta else 0

    def restore(self, rows: Iterable[Row]) -> None:
        """The rows were not committed: put their subjects back as they were committed."""
        by_name = dict(zip(self.names, self.detectors, strict=True))
        touched: dict[str, Detector] = {}
        for pending in self._pending.values():
            pending.clear()
        for name, subject, _, _ in rows:
            det = by_name.get(name)
            if det is None:
                continue
            touched[name] = det
            codec = self.codecs[name]
            if subject == GLOBAL:
                old = self.committed.get(name, {}).get(GLOBAL)
                if old is not None:
                    for a, v in codec.load_attrs(old).items():
                        _set_path(det, a, v)
                continue
            self._forget(det, subject)
            old = self.committed.get(name, {}).get(subject)
            if old is not None:
                self._put(det, subject, self._with_windows(name, codec.load_row(old), self.wins[name].get(subject)))
        for det in touched.values():
            det.state_loaded()

    def _with_windows(self, name: str, values: Sequence[Any], wins: tuple[bytes, ...] | None) -> Sequence[Any]:
        """A row's values (decoded from its rest) with its windows put back."""
        for (i, f), b in zip(self.windows[name], wins or (), strict=False):
            if values[i] is not None:
                setattr(values[i], f, array_of(b))
        return values

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
    def _put(det: Detector, subject: str, values: Sequence[Any]) -> None:
        for spec, value in zip(det.state_maps, values, strict=True):
            if value is None:
                continue
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
                        if (name in by_name and version != by_name[name][1])
                        or (name == RUNNER and version != RUNNER_VERSION)})
        if stale:
            which = ", ".join(f"{n} (saved {v}, this clapas {by_name[n][1] if n in by_name else RUNNER_VERSION})"
                              for n, v in stale)
            raise StateIncompatible(
                f"the saved detector state was written by another version of the detectors: {which}. "
                "It is not loaded: run `clapas state rebuild` (with the same --config) to compute it again from the "
                "journal, then start clapas again")
        runner: tuple[float, int, int] | None = None
        folded: dict[str, dict[str, tuple[bytes, tuple[bytes, ...], int] | None]] = defaultdict(dict)
        for name, subject, _, data in rows:
            if name in by_name and self.windows[name] and subject != GLOBAL:
                self._fold(name, subject, data, folded[name])
                continue
            if data is None:
                continue
            if name == RUNNER:
                wm, uplinks, seq = msgspec.msgpack.decode(data)
                runner = (float(wm), int(uplinks), int(seq))
            elif name in by_name:
                det = by_name[name][0]
                codec = self.codecs[name]
                if subject == GLOBAL:
                    for a, v in codec.load_attrs(data).items():
                        _set_path(det, a, v)
                else:
                    self._put(det, subject, codec.load_row(data))
            else:
                continue
            self.committed.setdefault(name, {})[subject] = data
        for name, subjects in folded.items():
            det, codec = by_name[name][0], self.codecs[name]
            for subject, got in subjects.items():
                if got is None:
                    continue
                rest, wins, chain = got
                self._put(det, subject, self._with_windows(name, codec.load_row(rest), wins))
                self.committed.setdefault(name, {})[subject] = rest
                self.wins[name][subject] = wins
                self.chain[name][subject] = chain
        for det in self.detectors:
            det.state_loaded()
        for name in self.names:
            self._any_seen[name] = {s for s in self.committed.get(name, ()) if s != GLOBAL}
        return runner

    def _fold(self, name: str, subject: str, data: bytes | None,
              into: dict[str, tuple[bytes, tuple[bytes, ...], int] | None]) -> None:
        """One saved row of a detector with windows onto what the subject's earlier rows (batch order) left."""
        if data is None:
            into[subject] = None
            return
        delta, rest, parts = self.codecs[name].load_windows(data)  # type: ignore[union-attr]
        if not delta:
            into[subject] = (rest, tuple(tail for _, tail in parts), 0)
            return
        base = into.get(subject)
        if base is None or len(parts) != len(base[1]):
            raise StateIncompatible(f"the saved state of {name} {subject} is a delta without its whole row: run "
                                    "`clapas state rebuild`")
        wins = tuple((old[cut * 8:] if cut >= 0 else b"") + tail for old, (cut, tail) in zip(base[1], parts,
                                                                                               strict=True))
        into[subject] = (rest, wins, base[2] + 1)


def _slide(old: bytes, new: bytes) -> tuple[int, bytes]:
    """How the window `new` follows from `old` (their doubles' bytes): (items cut from the front of `old`, the bytes
    appended after what is left), to the bit (all of `old` cut when nothing else fits)."""
    if not new:
        return len(old) // 8, b""
    head = new[:8]
    at = old.find(head)
    while at >= 0:
        if at % 8 == 0 and new.startswith(old[at:]):
            return at // 8, new[len(old) - at:]
        at = old.find(head, at + 1)
    return len(old) // 8, new
