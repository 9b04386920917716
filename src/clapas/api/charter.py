"""What one caller gets: the store as the caller may read it, and the reduced forms of what it may not.

`clapas.api.access` says who calls and refuses what a route's declaration does not allow; this module decides,
per row, what of a listing the caller sees (`clapas.charter.classes` gives each row its class):
- a device the caller may not read is left out of listings and counted per zone and kind (`withheld`): its zone
  and kind are open, its EUI, name, position and subscriber are not; its own routes answer 403;
- a quantity the caller may not read is left out of a device's latest values and histories;
- an alert the caller may not read is reduced to what is open: rule, zone, state and times;
- a journal frame the caller may not read is left out and counted.
Reports read the store through `CallerView`, which only offers the reads it filters: a report that needs
another store method fails loudly instead of reading past the charter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from fastapi import Request

from clapas.api.errors import ApiError
from clapas.api.identity import REALM
from clapas.charter import OPEN, PERSONAL, Caller, most_restrictive
from clapas.charter.classes import Classifier
from clapas.store.base import Store

ALL_DEVICES = 1_000_000  # one registry read when a bulk read names no devices

# What of an alert is open whatever its class (issue 10: "reduced to what is open (zone, rule, times)").
ALERT_OPEN_FIELDS = ("id", "rule", "subject_kind", "zone", "state", "opened_at", "acked_at", "resolved_at")
NOTIFICATION_OPEN_FIELDS = ("id", "alert_id", "event_id", "event", "notifier", "status", "attempts", "created_at",
                            "next_at", "delivered_at")


def classifier(request: Request) -> Classifier:
    """The city's classes, built once per app from its live settings (`[charter]`)."""
    state = request.app.state
    c = getattr(state, "classifier", None)
    if c is None:
        c = state.classifier = Classifier(getattr(state.settings, "charter", None))
    return c


class CallerView:
    """The store as one caller may read it, for one request; counts what it serves and withholds."""

    def __init__(self, store: Store, caller: Caller, classes: Classifier) -> None:
        self.store, self.caller, self.classes = store, caller, classes
        self._known: dict[str, dict[str, Any] | None] = {}
        self._all_loaded = False
        self._since: dict[str, datetime | None] = {}
        self._latest: dict[str, list[dict[str, Any]]] = {}  # Store.latest_many rows by EUI, read once a request
        self._classes: dict[str, str] = {}  # device class by EUI (a listing asks it several times a device)
        self._quantities: dict[tuple[str, str], bool] = {}  # (device class, quantity) → readable
        self.withheld = 0  # devices or rows left out
        self.served_devices = 0
        self.served_class = OPEN  # the most restrictive class served
        self.subjects: set[str] = set()  # EUIs of restricted or personal devices served (the audit log's)
        # EUIs of devices an answer left out because the caller may not read them, when its reader says which
        # (the NGSI-LD city source: `withheld` then counts them for the audit log, `CitySource.served`)
        self.withheld_devices: set[str] = set()

    @classmethod
    def of(cls, request: Request, caller: Caller) -> CallerView:
        view = cls(request.app.state.store, caller, classifier(request))
        request.state.charter_view = view
        return view

    # classes ---------------------------------------------------------------------------------------------
    def device(self, eui: str) -> dict[str, Any] | None:
        """A registry device by EUI (read once per request)."""
        if eui not in self._known:
            if self._all_loaded:
                return None
            self._known[eui] = self.store.device(eui)
        return self._known[eui]

    def named_devices(self, euis: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """`device` of many EUIs, those not yet read in one store query (None: unknown)."""
        missing = [e for e in euis if e not in self._known]
        if missing and not self._all_loaded:
            self._remember(self.store.devices(euis=missing, limit=len(missing)))
        return {e: self._known.get(e) for e in euis}

    def _remember(self, rows: Iterable[dict[str, Any]]) -> None:
        for d in rows:
            self._known[d["eui"]] = d

    def _load_all(self) -> None:
        if not self._all_loaded:
            self._remember(self.store.devices(limit=ALL_DEVICES))
            self._all_loaded = True

    def unreadable_known(self) -> list[dict[str, Any]]:
        """The registry devices this request has read that the caller may not read (what a listing withheld)."""
        return [d for d in self._known.values() if d is not None and not self.readable(d)]

    def may(self, data_class: str) -> bool:
        return self.caller.may_read(data_class)

    def device_class(self, d: dict[str, Any]) -> str:
        """`Classifier.device` of a registry device, once per request."""
        c = self._classes.get(d["eui"])
        if c is None:
            c = self._classes[d["eui"]] = self.classes.device(d)
        return c

    def readable(self, d: dict[str, Any]) -> bool:
        return self.may(self.device_class(d))

    def serve(self, d: dict[str, Any], data_class: str | None = None) -> None:
        """Count a device as served (its class, its EUI for the audit log when not open)."""
        c = data_class or self.device_class(d)
        self.served_devices += 1
        self.served_class = most_restrictive(self.served_class, c)
        if c != OPEN:
            self.subjects.add(d["eui"])

    def readable_device(self, eui: str) -> dict[str, Any] | None:
        """The device if the caller may read it; None when unknown *or* withheld (a filter by a withheld device
        finds nothing, so that listings never confirm that an EUI is somebody's meter)."""
        d = self.device(eui)
        return d if d is not None and self.readable(d) else None

    def require_device(self, eui: str) -> dict[str, Any] | None:
        """For a device's own routes: the device, None when unknown, 403 when the caller may not read it. The
        message never repeats the EUI."""
        d = self.device(eui)
        if d is not None and not self.readable(d):
            raise refused(self.classes.device(d), self.caller)
        return d

    def quantity_readable(self, d: dict[str, Any], quantity: str) -> bool:
        """Whether the caller may read this quantity of this device (`Classifier.value`: the most restrictive of
        the device's class and the quantity's)."""
        key = (self.device_class(d), quantity)
        ok = self._quantities.get(key)
        if ok is None:
            ok = self._quantities[key] = self.may(most_restrictive(key[0], self.classes.quantity(quantity)))
        return ok

    # the reads the reports use ---------------------------------------------------------------------------
    def devices(self, *, kind: str | None = None, zone: str | None = None, limit: int = 1000,
                offset: int = 0) -> list[dict[str, Any]]:
        rows = self.store.devices(kind=kind, zone=zone, limit=limit, offset=offset)
        self._remember(rows)
        out = [d for d in rows if self.readable(d)]
        self.withheld += len(rows) - len(out)
        for d in out:
            self.serve(d)
        return out

    def zones(self) -> list[dict[str, Any]]:
        return self.store.zones()

    def series(self, quantity: str, start: datetime, end: datetime, *, euis: Sequence[str] | None = None,
               kind: str | None = None, resolution: str = "raw") -> list[dict[str, Any]]:
        """`Store.series` of the devices and quantity the caller may read."""
        if euis is not None:
            mine = [e for e in euis if self._value_readable(e, quantity)]
            return self.store.series(quantity, start, end, euis=mine, kind=kind, resolution=resolution) \
                if mine else []
        self._load_all()
        rows = self.store.series(quantity, start, end, kind=kind, resolution=resolution)
        return [r for r in rows if self._value_readable(r["eui"], quantity)]

    def _value_readable(self, eui: str, quantity: str) -> bool:
        d = self.device(eui)
        return d is not None and self.quantity_readable(d, quantity)

    def occupant_since(self, d: dict[str, Any]) -> datetime | None:
        """Where a personal device's history starts for the API: its current occupant's period (a change of
        occupant, `clapas devices reassign`), so that nobody reads the previous occupant's history through it."""
        if self.device_class(d) != PERSONAL:
            return None
        if d["eui"] not in self._since:
            since = getattr(self.store, "occupant_since", None)
            self._since[d["eui"]] = since(d["eui"]) if since is not None else None
        return self._since[d["eui"]]

    def current(self, d: dict[str, Any], rows: list[dict[str, Any]], key: str = "time") -> list[dict[str, Any]]:
        """The rows of a device's history from its current occupant's period on."""
        since = self.occupant_since(d)
        return rows if since is None else [r for r in rows if r[key] is not None and r[key] >= since]

    def latest(self, d: dict[str, Any]) -> list[dict[str, Any]]:
        """A readable device's latest values, without the quantities the caller may not read (nor the previous
        occupant's)."""
        return self.latest_many([d])[d["eui"]]

    def latest_many(self, devices: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """`latest` of readable devices: two store queries for the page (values, occupants), not two per device;
        a device's values are read once per view (one request)."""
        personal = [d["eui"] for d in devices if d["eui"] not in self._since and self.device_class(d) == PERSONAL]
        bulk = getattr(self.store, "occupants_since", None)
        if personal and bulk is not None:
            since = bulk(personal)
            self._since.update({e: since.get(e) for e in personal})
        missing = [d["eui"] for d in devices if d["eui"] not in self._latest]
        if missing:  # read once per request (a listing, then its order's values, then its page)
            values = self.store.latest_many(missing)
            self._latest.update((e, values.get(e, [])) for e in missing)
        return {d["eui"]: self.current(d, [r for r in self._latest[d["eui"]]
                                           if self.quantity_readable(d, r["quantity"])]) for d in devices}

    def reported(self, request: Request, what: str) -> None:
        """After a report: 403 if it was made of nothing but withheld devices, else what it served (audit)."""
        self.refuse_if_nothing_readable(what)
        self.report(request, self.served_devices)

    def refuse_if_nothing_readable(self, what: str) -> None:
        """A report over devices of which the caller may read none: 403 rather than an empty report."""
        if self.withheld and not self.served_devices:
            raise denied(self.caller, f"{what} comes from devices whose data is not open: it needs a key with the "
                                      "scope to read their class (restricted:read or personal:read)")

    # listings --------------------------------------------------------------------------------------------
    def device_listing(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The devices the caller may read (each given its `class`, in place: the rows are the store's fresh
        dicts), and the others counted per zone, kind and class. A class is decided once per (registry class, kind,
        premises use), not per row (10,000 rows a page)."""
        self._remember(rows)
        served, withheld = [], Counter()
        known: dict[tuple[Any, Any, Any], str] = {}
        for d in rows:
            key = (d.get("data_class"), d.get("kind"), d.get("premises_use"))
            c = known.get(key)
            if c is None:
                c = known[key] = self.classes.device(d)
            if self.may(c):
                d["class"] = c  # the route counts what it serves of them (`serve`)
                served.append(d)
            else:
                withheld[(d.get("zone") or "", d.get("kind") or "", c)] += 1
        self.withheld += sum(withheld.values())
        return served, withheld_counts(withheld)

    def readable_groups(self, groups: list[dict[str, Any]]) -> tuple[list[tuple[str, str, str]], list[dict[str, Any]]]:
        """Of the store's device groups (`device_groups`: zone, kind, data_class, premises_use → devices), the
        (data_class, kind, premises_use) keys the caller may read, and the others' devices counted per zone, kind
        and class (what `device_listing` would give, without reading a row of them)."""
        readable, withheld = set(), Counter()
        for g in groups:
            c = self.classes.device(g)
            if self.may(c):
                readable.add((g["data_class"], g["kind"], g["premises_use"]))
            else:
                withheld[(g["zone"], g["kind"], c)] += g["devices"]
        self.withheld += sum(withheld.values())
        return sorted(readable), withheld_counts(withheld)

    def _subject(self, a: dict[str, Any]) -> dict[str, Any] | None:
        return self.device(a["subject"]) if a.get("subject_kind") == "device" and a.get("subject") else None

    def alert_class(self, a: dict[str, Any]) -> str:
        return self.classes.alert(a, self._subject(a))

    def alert(self, a: dict[str, Any]) -> dict[str, Any]:
        """An alert as the caller may see it: whole, or reduced to its open fields (`withheld: true`)."""
        device = self._subject(a)
        c = self.classes.alert(a, device)
        if self.may(c):
            self.served_class = most_restrictive(self.served_class, c)
            if device is not None and c != OPEN:
                self.subjects.add(device["eui"])
            return {**a, "class": c}
        self.withheld += 1
        reduced = {k: a.get(k) for k in ALERT_OPEN_FIELDS}
        # a zone is open; a device subject is its EUI
        reduced["subject"] = a.get("subject") if a.get("subject_kind") != "device" else None
        return {**reduced, "class": c, "withheld": True}

    def alerts(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`alert` of each row, their device subjects read in one store query (not one a row: a listing of a
        hundred alerts was a hundred registry reads)."""
        self.named_devices(list(dict.fromkeys(a["subject"] for a in rows
                                              if a.get("subject_kind") == "device" and a.get("subject"))))
        return [self.alert(a) for a in rows]

    def notification(self, n: dict[str, Any]) -> dict[str, Any]:
        """An outbox row: whole when the caller may read its alert (the payload holds it), else its delivery
        state only."""
        payload = n.get("payload") or {}
        a = payload.get("alert") or {}
        # an NGSI-LD notification says the class of the entities it carries (`clapas.api.ngsi_ld.matching`)
        c = self.alert_class(a) if a else most_restrictive(self.classes.rule(""), payload.get("class") or OPEN)
        if self.may(c):
            return {**n, "class": c}
        self.withheld += 1
        return {**{k: n.get(k) for k in NOTIFICATION_OPEN_FIELDS}, "class": c, "withheld": True}

    def frames(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The journal frames the caller may read (each with its `class`); the others are counted."""
        out = []
        for r in rows:
            eui = r.get("dev_eui")
            device = self.device(eui) if eui else None
            c = self.classes.frame(device)
            if self.may(c):
                self.served_class = most_restrictive(self.served_class, c)
                if eui:
                    self.subjects.add(eui)
                out.append({**r, "class": c})
            else:
                self.withheld += 1
        return out

    # audit -----------------------------------------------------------------------------------------------
    def report(self, request: Request, rows: int) -> None:
        """Tell the access layer what was served (it writes the audit log: rows, class, subjects — no values)."""
        request.state.audit_rows = rows
        request.state.audit_subjects = sorted(self.subjects)
        request.state.audit_class = self.served_class
        request.state.audit_withheld = self.withheld


def withheld_counts(counter: Counter[tuple[str, str, str]]) -> list[dict[str, Any]]:
    return [{"zone": z, "kind": k, "class": c, "devices": n} for (z, k, c), n in sorted(counter.items())]


def denied(caller: Caller, message: str) -> ApiError:
    """401 for an anonymous caller (a credential would help, §8.5), 403 for a credential without the scope."""
    if caller.anonymous:
        return ApiError(401, message, {"WWW-Authenticate": REALM})
    return ApiError(403, message)


def refused(data_class: str, caller: Caller) -> ApiError:
    """The refusal of a device's own route: says what is missing, never which device."""
    if data_class == "personal":
        return denied(caller, "this device's data is personal (a dwelling's meter): it needs a key with the "
                              "personal:read scope; the open aggregates per district are what others get")
    return denied(caller, f"this device's data is {data_class}: it needs a key with the {data_class}:read scope")
