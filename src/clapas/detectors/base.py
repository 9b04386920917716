"""The detector framework every use shares: observations in, alert transitions out.

Detectors see the stream *after* it is safely stored: `DetectorRunner.on_commit` is the `Pipeline(on_commit=…)`
hook, called from the writer thread with every committed `Batch`. The runner groups the batch's narrow rows back
into one call per uplink (device, time, {quantity id: value}) and hands them to each detector that wants the
device's kind. Detectors keep per-device state and never re-read history per uplink; rules over periods (a night,
a day, a district) are evaluated when the stream's watermark (the newest observation time seen) has passed the
period. The watermark is handed to the detectors (`advance`) in fixed steps of stream time (`WATERMARK_STEP_S`),
as soon as an uplink crosses a step, inside a batch as between batches: every uplink meets the detectors in the
state the stream before it left them, so the answers depend only on the observations and their order, not on the
wall clock or on how they were batched: live data, `clapas replay`, a CSV backfill (`run_observations`) and the
partitioned workers give the same detections for the same stream, even when readings come late. (The health rules,
which read the radio side of a batch after its observations, are advanced once per batch, at the step it reached:
they judge each event at its own time.)

What comes out are *transitions*, `Detection(state="open" | "clear")`, handed to an `AlertSink`. The alert
lifecycle (acknowledge, resolve by hand, comments, notifiers) belongs to the sink, not to the detectors.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from clapas.detectors.state import StateKeeper, StateMap, StateWrite
from clapas.i18n import EMPTY, Text, render
from clapas.registry.live import DeviceMeta, Registry
from clapas.store.base import Batch, Store

log = logging.getLogger("clapas.detectors")

OPEN = "open"
CLEAR = "clear"

# design: the stream time between two `advance` calls. Periods are whole minutes (steps of museum rooms, hours, local
# days, `lateness_s`), so deciding them at the first minute past their end is deciding them on time; a shorter step
# only costs more `advance` calls in a replay (a week of stream: 10,080).
WATERMARK_STEP_S = 60.0


@dataclass(frozen=True, slots=True)
class Detection:
    """A rule changed state for a subject (a device EUI or a zone id) at an observation time."""

    rule: str
    subject: str
    state: str  # OPEN or CLEAR
    at: datetime  # observation time (UTC) that made the transition, never the wall clock
    severity: str = "warning"  # info, warning, major, critical
    evidence: dict[str, Any] = field(default_factory=dict)
    text: Text = EMPTY  # what to tell people: a catalog key and its parameters, rendered in each reader's language

    @property
    def message(self) -> str:
        """The text in English (logs, scores, tests); the alert sink writes it in the city's language."""
        return render(self.text, "en")


class AlertSink(Protocol):
    """Where detections go. The persistent alert lifecycle implements this same protocol."""

    def handle(self, detections: list[Detection]) -> None: ...


class MemorySink:
    """Keeps one open alert per (rule, subject) and every transition: enough for scoring and tests.

    Repeated opens of an open alert and clears of an alert that is not open are ignored, so detectors may be
    re-fed overlapping data without duplicating alerts.
    """

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], Detection] = {}
        self.transitions: list[Detection] = []
        self._lock = threading.Lock()

    def handle(self, detections: list[Detection]) -> None:
        with self._lock:
            for d in detections:
                k = (d.rule, d.subject)
                if d.state == OPEN:
                    if k in self.open:
                        continue
                    self.open[k] = d
                elif k in self.open:
                    del self.open[k]
                else:
                    continue
                self.transitions.append(d)

    def opened(self, rule: str | None = None) -> list[Detection]:
        return [d for d in self.transitions if d.state == OPEN and (rule is None or d.rule == rule)]


class Detector:
    """A family of rules over the devices of some kinds. Subclasses override `observe` and maybe `advance`.

    What a detector remembers between uplinks is declared for `clapas.detectors.state`: `state_maps` (dicts or sets
    keyed by subject), `state_attrs` (scalars), `state_modules` (other modules whose classes it keeps); bump
    `state_version` when the meaning of saved state changes without its layout changing."""

    kinds: frozenset[str] = frozenset()
    state_name: str = ""  # default: the class name without "Detector", lower case
    state_version: int = 1
    state_maps: tuple[StateMap, ...] = ()
    state_attrs: tuple[str, ...] = ()
    state_modules: tuple[str, ...] = ()
    state_codec: str = "tree"  # or "struct": typed (every map declares `StateMap.value`), for many subjects

    def state_loaded(self) -> None:
        """Called after saved state was loaded: re-link what the saved subjects share."""

    # The `Settings` sections a detector was built from, as (attribute holding it, section), e.g. (("s", "flood"),):
    # `reconfigure` hands it their new values when a department changed them at run time (issue 16).
    settings_attrs: tuple[tuple[str, str], ...] = ()

    def settings_of(self, settings: Any) -> dict[str, Any]:
        """attribute → its new value in `settings` (a `clapas.config.Settings`)."""
        return {attr: getattr(settings, section) for attr, section in self.settings_attrs}

    def reconfigure(self, settings: Any) -> None:
        """New settings, between two batches: every reference to an old section (the detector's, its parts', its
        subjects') now points at the new one, then `settings_changed` re-derives what was computed from them."""
        for attr, new in self.settings_of(settings).items():
            old = getattr(self, attr)
            if old is not new and old != new:
                swap_refs(self, old, new)
        self.settings_changed()

    def settings_changed(self) -> None:
        """After `reconfigure`: recompute what was derived from the settings (per-subject thresholds…)."""

    def bind(self, registry: Registry) -> None:
        """Called once by the runner before any observation."""
        self.registry = registry

    def observe(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        """One uplink's values (quantity id → value) at epoch time `t`, in time order per device."""

    def advance(self, watermark: float, out: list[Detection]) -> None:
        """The stream has reached `watermark` (epoch s): evaluate the periods that are now complete."""

    # optional: detectors that read the radio side of the stream (the health rules) set `reads_links`
    reads_links: bool = False

    def observe_links(self, links: list[tuple[Any, ...]], gw_events: list[tuple[float, str, str, bool]],
                      out: list[Detection]) -> None:
        """A batch's `Batch.links` (every uplink and status heard) and `Batch.gw_events`, after its observations."""

    def take_flags(self) -> list[tuple[float, str, int, str]]:
        """Data-quality flags raised since the last call: (epoch s, eui, quantity id, flag), stored with the batch."""
        return []

    def screen(self, dev: DeviceMeta, t: float, values: dict[int, float], out: list[Detection]) -> None:
        """Before any detector sees an uplink: remove the values that must not feed the rules (data quality)."""


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def swap_refs(root: Any, old: Any, new: Any) -> None:
    """Replace every reference to `old` by `new` in the object graph of `root` (clapas objects, their dicts, lists
    and deques), each object visited once."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            for k, v in obj.items():
                if v is old:
                    obj[k] = new
                elif _walkable(v):
                    stack.append(v)
            continue
        if isinstance(obj, (list, deque)):
            for i, v in enumerate(obj):
                if v is old:
                    obj[i] = new
                elif _walkable(v):
                    stack.append(v)
            continue
        names = list(getattr(obj, "__dict__", ()))
        for cls in type(obj).__mro__:
            names += [n for n in getattr(cls, "__slots__", ()) if n not in ("__dict__", "__weakref__")]
        for n in names:
            try:
                v = getattr(obj, n)
            except AttributeError:
                continue
            if v is old:
                setattr(obj, n, new)
            elif _walkable(v):
                stack.append(v)


def _walkable(v: Any) -> bool:
    if isinstance(v, (dict, list, deque)):
        return True
    module = type(v).__module__
    return module.startswith("clapas.") and not module.startswith("clapas.store") and not isinstance(v, msgspec.Struct)


class DetectorRunner:
    """Feeds detectors from committed batches (live, replay) or from any time-ordered observation rows (backfill).

    Two ways to run: `on_commit` (the `Pipeline(on_commit=…)` hook, after the batch is committed: memory only, as
    `clapas score` and the tests use it), or `prepare`/`committed`/`rolled_back` (the `Pipeline(detectors=…)`
    protocol of `clapas run`): the writer thread runs the detectors on the batch *before* its transaction, which
    then commits the batch with the state it changed and the alert changes it caused; a failed transaction puts
    the detectors back as committed (see `clapas.detectors.state`)."""

    def __init__(self, detectors: list[Detector], sink: AlertSink, registry: Registry) -> None:
        self.detectors = detectors
        self.sink = sink
        self.registry = registry
        self.watermark = float("-inf")  # the newest observation time seen
        self.advanced = float("-inf")  # the watermark the detectors were last advanced to (a step, or `finish`)
        self.links_advanced = float("-inf")  # the same, for the detectors that read the radio side (`reads_links`)
        self.uplinks = 0
        self.seq = 0  # batches prepared (and committed): orders the saved rows
        self.flags: list[tuple[float, str, int, str]] = []  # the data-quality flags of the last batch run
        self.keeper: StateKeeper | None = None  # set by `load_state` (or the first `prepare`)
        # run-time settings (issue 16): a `clapas.selfservice.holder.SettingsHolder` whose version is compared at
        # each batch; the detectors get its settings when it moved (and at the first batch, after saved state)
        self.holder: Any = None
        self._settings_version: int | None = None
        self.disabled: frozenset[str] = frozenset()  # rules switched off ([alerts.rule_enabled])
        self._by_kind: dict[str, list[Detector]] = {}
        self._screens = [d for d in detectors if type(d).screen is not Detector.screen]
        # the detectors that read the radio side (the health rules) see it per batch, after its observations: they
        # are advanced then, at the step the batch reached (their rules judge each event at its own time); the
        # others at every step their observations cross, inside the batch
        self._link_readers = [d for d in detectors if d.reads_links]
        self._stepped = [d for d in detectors if not d.reads_links]
        for d in detectors:
            d.bind(registry)
            for k in d.kinds:
                self._by_kind.setdefault(k, []).append(d)

    def on_commit(self, batch: Batch) -> None:
        """The `Pipeline(on_commit=…)` hook."""
        self.feed(zip(batch.o_time, batch.o_eui, batch.o_quantity, batch.o_value, strict=True), batch)

    def feed(self, rows: Iterable[tuple[datetime, str, int, float]], batch: Batch | None = None) -> None:
        """Rows (time, eui, quantity id, value); the rows of one uplink are contiguous, as the pipeline writes them."""
        out = self._run(rows, batch)
        if out:
            try:
                self.sink.handle(out)
            except Exception:  # a failing sink must never stop detection (nor ingestion, upstream)
                log.exception("alert sink failed on %d detections", len(out))

    def follow(self) -> None:
        """Before a batch: if the settings holder has new settings, hand them to the detectors."""
        h = self.holder
        if h is None:
            return
        h.maybe_reload()
        version = h.version
        if version == self._settings_version:
            return
        self.reconfigure(h.current)
        self._settings_version = version

    def reconfigure(self, settings: Any) -> None:
        """The detectors (and the rule switches) from new `Settings`, between two batches."""
        for det in self.detectors:
            det.reconfigure(settings)
        self.disabled = frozenset(r for r, on in settings.alerts.rule_enabled.items() if not on)

    def _run(self, rows: Iterable[tuple[datetime, str, int, float]], batch: Batch | None = None,
             observed: dict[str, set[str]] | None = None) -> list[Detection]:
        """Rows through the detectors; `observed` collects the EUIs seen per device kind."""
        self.follow()
        out: list[Detection] = []
        by_kind, registry = self._by_kind, self.registry
        cur_t: datetime | None = None
        cur_e = ""
        values: dict[int, float] = {}
        wanted: list[Detector] | None = None
        meta: DeviceMeta | None = None
        seen: set[str] | None = None
        screens = self._screens
        step = WATERMARK_STEP_S
        next_step = self._next_step()

        def observe_uplink() -> None:  # hand one uplink's values to the detectors of its device's kind
            nonlocal next_step
            ts = cur_t.timestamp()  # type: ignore[union-attr]
            for s in screens:
                s.screen(meta, ts, values, out)  # type: ignore[arg-type]
            for det in wanted:  # type: ignore[union-attr]
                det.observe(meta, ts, values, out)  # type: ignore[arg-type]
            if seen is not None:
                seen.add(cur_e)
            self.uplinks += 1
            if ts > self.watermark:
                self.watermark = ts
            if ts >= next_step:  # the stream crossed a step: the detectors decide what it completed
                self._advance(math.floor(ts / step) * step, out)
                next_step = self._next_step()

        for t, e, q, v in rows:
            if e != cur_e or t != cur_t:
                if values and wanted:
                    observe_uplink()
                cur_t, cur_e, values = t, e, {}
                meta = registry.get(e, batch)
                wanted = by_kind.get(meta.kind) if meta is not None else None
                if wanted and observed is not None:
                    seen = observed.setdefault(meta.kind, set())  # type: ignore[union-attr]
            if wanted:
                values[q] = v
        if values and wanted:
            observe_uplink()
        if self._link_readers:
            if batch is not None and (batch.links or batch.gw_events):
                self.watermark = max(self.watermark, self._run_links(batch, observed, out))
            reached = _step_of(self.watermark)
            if reached > self.links_advanced:
                self.links_advanced = reached
                for det in self._link_readers:
                    det.advance(reached, out)
        self.flags = [f for det in self._screens for f in det.take_flags()]
        if self.disabled:  # a rule switched off opens nothing; its clears still close what it had opened
            out = [d for d in out if d.state != OPEN or d.rule not in self.disabled]
        return out

    def _next_step(self) -> float:
        """The first step of stream time the detectors were not advanced to (the first uplink's, at the start)."""
        a = self.advanced
        return a if math.isinf(a) else (math.floor(a / WATERMARK_STEP_S) + 1) * WATERMARK_STEP_S

    def restored(self) -> None:
        """After the watermark was restored (saved state, a failed transaction): the step it had reached."""
        self.advanced = self.links_advanced = _step_of(self.watermark)

    def _advance(self, watermark: float, out: list[Detection]) -> None:
        self.advanced = watermark
        for det in self._stepped:
            det.advance(watermark, out)

    def _run_links(self, batch: Batch, observed: dict[str, set[str]] | None, out: list[Detection]) -> float:
        """The batch's radio side through the detectors that read it; returns its newest time."""
        for det in self._link_readers:
            det.observe_links(batch.links, batch.gw_events, out)
        newest = max((row[0] for row in batch.links), default=float("-inf"))
        newest = max(newest, max((row[0] for row in batch.gw_events), default=float("-inf")))
        if observed is not None:
            for row in batch.links:
                meta = self.registry.get(row[1], batch)
                if meta is not None:
                    observed.setdefault(meta.kind, set()).add(row[1])
        return newest

    # state kept in the store ---------------------------------------------------------------------------
    def load_state(self, store: Store) -> bool:
        """Start from the state saved in the store instead of blind; True if there was some. Raises
        `state.StateIncompatible` (saying to run `clapas state rebuild`) if it was saved by other detectors."""
        self.keeper = StateKeeper(self.detectors)
        saved = self.keeper.load(store.detector_state())
        if saved is not None:
            self.watermark, self.uplinks, self.seq = saved
            self.restored()
        return saved is not None

    def prepare(self, batch: Batch) -> None:
        """Writer thread, before the batch's transaction: detect, and hang on the batch (`detector_state`) the
        state rows it changed and the alert changes it caused, for the store to commit with it."""
        if self.keeper is None:
            self.keeper = StateKeeper(self.detectors)
        w = StateWrite(watermark=self.watermark, uplinks=self.uplinks, seq=self.seq + 1)
        observed: dict[str, set[str]] = {}
        batch.detector_state = None
        try:
            w.detections = self._run(zip(batch.o_time, batch.o_eui, batch.o_quantity, batch.o_value, strict=True),
                                     batch, observed)
        except Exception:  # a detector bug must not stop ingestion: this batch is stored undetected
            log.exception("detectors failed on a batch of %d messages; it is stored without detection", len(batch))
            self._put_back(w, self.keeper.encode(observed))
            return
        self.seq = w.seq
        w.flags = self.flags
        w.rows = self.keeper.encode(observed)
        w.rows.append(self.keeper.runner_row(self.watermark, self.uplinks, self.seq))
        if getattr(self.sink, "in_transaction", False):  # PersistentAlerts: written in the batch's transaction
            w.alerts = [self.sink.change(d) for d in w.detections]  # type: ignore[attr-defined]
            w.route = self.sink.route  # type: ignore[attr-defined]
        batch.detector_state = w

    def committed(self, batch: Batch) -> None:
        """The batch's transaction committed (with its `detector_state`)."""
        w: StateWrite | None = batch.detector_state
        if w is None:
            return
        self.keeper.accept(w.rows)  # type: ignore[union-attr]
        if w.alerts:
            self.sink.committed(len(w.alerts))  # type: ignore[attr-defined]
        elif w.detections and not getattr(self.sink, "in_transaction", False):
            try:
                self.sink.handle(w.detections)
            except Exception:
                log.exception("alert sink failed on %d detections", len(w.detections))

    def rolled_back(self, batch: Batch) -> None:
        """The batch's transaction failed: the detectors are put back as committed, ready for a retry."""
        w: StateWrite | None = batch.detector_state
        if w is not None:
            self._put_back(w, w.rows)
            batch.detector_state = None

    def _put_back(self, w: StateWrite, rows: list) -> None:
        self.keeper.restore(rows)  # type: ignore[union-attr]
        self.watermark, self.uplinks, self.seq = w.watermark, w.uplinks, w.seq - 1
        self.restored()

    def finish(self, until: float) -> None:
        """End of a replay or backfill: let period rules evaluate up to `until` (epoch s)."""
        out: list[Detection] = []
        if until > self.advanced:
            self._advance(until, out)
        if until > self.links_advanced:
            self.links_advanced = until
            for det in self._link_readers:
                det.advance(until, out)
        self.watermark = max(self.watermark, until)
        if out:
            self.sink.handle(out)


def _step_of(t: float) -> float:
    """The step of stream time `t` is in (-inf before any)."""
    return t if math.isinf(t) else math.floor(t / WATERMARK_STEP_S) * WATERMARK_STEP_S


def run_observations(runner: DetectorRunner, rows: Iterable[tuple[datetime, str, int, float]],
                     chunk: int = 50_000) -> None:
    """A backfill: time-ordered observation rows (from a CSV, a store query…) through the same detectors."""
    buf: list[tuple[datetime, str, int, float]] = []
    for r in rows:
        buf.append(r)
        if len(buf) >= chunk:
            # never split an uplink between two chunks: cut where (time, eui) changes
            k = len(buf) - 1
            while k > 0 and buf[k][:2] == buf[k - 1][:2]:
                k -= 1
            runner.feed(buf[:k])
            buf = buf[k:]
    if buf:
        runner.feed(buf)
