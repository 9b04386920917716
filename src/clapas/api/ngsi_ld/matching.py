"""The subscription matching engine: which subscriptions a committed batch concerns, and their notifications.

Fed once per committed batch (`on_commit`, the pipeline's after-commit hook, in the writer thread: it only queues
the batch's devices and quantities), never per message. A worker thread takes what was queued since its last round,
reads the active subscriptions once, and for each builds the changed entities *as its subscriber may read them*
(the charter view of the subscriber's key: a key revoked or expired stops its subscriptions), keeps those that match
`entities` (type, id, idPattern), `watchedAttributes` (an attribute that the batch changed) and `q`, honours
`throttling` and `expiresAt`, and queues one notification per subscription in the outbox (`store.queue_notifications`,
one transaction per round), which delivers it (`clapas.alerts.notifiers.ngsi_ld`). Periodic subscriptions
(`timeInterval`) are notified by the same thread when due, with every matching entity.

Tenant-blind except for `sources`: the city's tenant gives entities by device (`CitySource.of_devices`); another
tenant (the sandbox) calls `changed(tenant, entities)` itself after its writes.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from clapas.api.ngsi_ld.city import models
from clapas.api.ngsi_ld.city.context import compact, expand
from clapas.api.ngsi_ld.city.entities import iso
from clapas.api.ngsi_ld.source import Entity, Hint
from clapas.charter import CLASSES, LOCAL, OPEN, Caller, most_restrictive
from clapas.model import QUANTITY_BY_ID
from clapas.store.base import Batch, Store

log = logging.getLogger("clapas.ngsi_ld.matching")

CITY = "city"  # the city's tenant name in the subscription table
# notificationTrigger (ETSI GS CIM 009 v1.8 §5.2.12): what kind of change notifies; absent, attributes created or
# updated (the spec's default, as Stellio reads it too)
TRIGGERS = ("entityCreated", "entityUpdated", "entityDeleted", "attributeCreated", "attributeUpdated",
            "attributeDeleted")
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
# showChanges (§5.2.14): an updated attribute's previous value, under the member its type's value has
PREVIOUS = {"value": "previousValue", "object": "previousObject", "languageMap": "previousLanguageMap",
            "vocab": "previousVocab", "json": "previousJson", "valueList": "previousValueList",
            "objectList": "previousObjectList"}
PERIODIC_TICK_S = 1.0  # how often due periodic subscriptions are looked for
NOTIFICATION_URN = "urn:ngsi-ld:Notification:"


class Selector(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One EntitySelector of a subscription, its type expanded."""

    type: str | None = None
    id: str | None = None
    id_pattern: str | None = None


class Spec(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the engine needs of a subscription, expanded by the routes (`subscriptions.py`) when it is stored."""

    endpoint: str
    entities: list[Selector] = []
    watched: list[str] | None = None  # expanded attribute IRIs
    q: str | None = None
    attrs: list[str] | None = None  # notification.attributes, expanded
    format: str = "normalized"  # normalized | keyValues | concise
    accept: str = "application/json"
    receiver_info: dict[str, str] = {}
    throttling_s: float = 0.0
    time_interval_s: float = 0.0
    context: Any = None  # the subscription's @context (compaction of the notified entities)
    scope_q: str | None = None
    triggers: list[str] | None = None  # notificationTrigger (None: DEFAULT_TRIGGERS)
    show_changes: bool = False  # notification.showChanges


class Change(msgspec.Struct, frozen=True):
    """One entity's change as the engine weighs it: the entity (as it is now; as it was for a deletion), the
    kind of change of each attribute (`attributeCreated` / `attributeUpdated` / `attributeDeleted`, expanded
    names), the entity's (`entityCreated` / `entityUpdated` / `entityDeleted`), and the entity before (the
    writable tenants', for showChanges; None from the city, whose batches say only what changed)."""

    entity: dict[str, Any]
    attrs: dict[str, str]
    event: str = "entityUpdated"
    before: dict[str, Any] | None = None


def change_of(before: Entity | None, after: Entity | None) -> Change | None:
    """A writable tenant's write as a Change (None when nothing changed)."""
    skip = ("id", "type", "scope", "createdAt", "modifiedAt")
    if after is None:
        return None if before is None else Change(before, {k: "attributeDeleted" for k in before if k not in skip},
                                                  "entityDeleted", before)
    if before is None:
        return Change(after, {k: "attributeCreated" for k in after if k not in skip}, "entityCreated")
    attrs = {k: "attributeCreated" if k not in before else "attributeUpdated" for k, v in after.items()
             if k not in skip and before.get(k) != v}
    attrs.update({k: "attributeDeleted" for k in before if k not in skip and k not in after})
    return Change(after, attrs, "entityUpdated", before) if attrs else None


def with_previous(e: Entity, before: Entity, attrs: Iterable[str]) -> Entity:
    """A copy of `e` whose updated attributes carry their previous value (showChanges): the instance of the same
    datasetId before, under `previousValue` (`previousObject`, `previousLanguageMap`... by the value's member)."""
    out = dict(e)
    for name in attrs:
        old, new = before.get(name), e.get(name)
        if old is None or new is None:
            continue
        olds = {i.get("datasetId"): i for i in (old if isinstance(old, list) else [old]) if isinstance(i, dict)}
        insts = []
        for inst in new if isinstance(new, list) else [new]:
            prev = olds.get(inst.get("datasetId")) if isinstance(inst, dict) else None
            member = next((m for m in PREVIOUS if prev is not None and m in prev), None)
            if member is not None and prev is not None and prev.get(member) != inst.get(member):
                inst = {**inst, PREVIOUS[member]: prev[member]}
            insts.append(inst)
        out[name] = insts if isinstance(new, list) else insts[0]
    return out


Compactor = Callable[[Entity, Any, str, list[str] | None], dict[str, Any]]
QFilter = Callable[[str, Entity, Any], bool]


def simple_compact(entity: Entity, context: Any, fmt: str, attrs: list[str] | None) -> dict[str, Any]:
    """The city's entities compacted with the clapas terms (the protocol layer's compaction replaces it once
    wired): `attrs` keeps only those attributes; keyValues keeps only values (objects for relationships)."""
    out: dict[str, Any] = {}
    for k, v in entity.items():
        if k == "type":
            out["type"] = compact(v) if isinstance(v, str) else [compact(t) for t in v]
        elif k in ("id", "scope"):
            out[k] = v
        elif attrs is None or k in attrs:
            if fmt == "keyValues":
                value = v.get("object", v.get("value")) if isinstance(v, dict) else v
                out[compact(k)] = value
            else:
                out[compact(k)] = v
    return out


def selected(spec: Spec, entity: Entity) -> bool:
    """Whether an entity is one of the subscription's `entities` (none: any entity)."""
    if not spec.entities:
        return True
    types = entity["type"] if isinstance(entity["type"], list) else [entity["type"]]
    for s in spec.entities:
        if s.type is not None and s.type not in types:
            continue
        if s.id is not None and s.id != entity["id"]:
            continue
        if s.id_pattern is not None and not re.fullmatch(s.id_pattern, entity["id"]):
            continue
        return True
    return False


def entity_class(entity: Entity) -> str:
    """The data class of an entity of the city (its scope), open otherwise."""
    scopes = [s.lstrip("/") for s in entity.get("scope") or ()]
    return most_restrictive(OPEN, *(s for s in scopes if s in CLASSES))


def notification(sub_id: str, data: list[dict[str, Any]], now: datetime,
                 reason: str | None = None) -> dict[str, Any]:
    """The spec's Notification (ETSI GS CIM 009 §5.3.1): id, type, subscriptionId, notifiedAt, data, and (v1.8)
    `triggerReason`, the notificationTrigger that fired; a periodic notification (`timeInterval`) has none, no
    change fired it."""
    body = {"id": f"{NOTIFICATION_URN}{uuid.uuid4()}", "type": "Notification", "subscriptionId": sub_id,
            "notifiedAt": iso(now), "data": data}
    if reason is not None:
        body["triggerReason"] = reason
    return body


def changed_attrs(quantities: Iterable[str]) -> set[str]:
    """The expanded attributes of the city's models that a batch's quantities change."""
    qs = set(quantities)
    out = {expand(a.term) for m in models.MODELS for a in m.attrs if a.quantity in qs}
    if "battery" in qs:
        out.add(expand("batteryLevel"))
    if qs:
        out |= {expand("dateObserved"), expand("dateLastValueReported")}
    return out


class Matcher:
    """The engine (see the module docstring). `subscriber(row)` gives the caller a subscription's notifications are
    built for, or None when its key no longer opens anything."""

    def __init__(self, store: Store, sources: Mapping[str, Any], subscriber: Callable[[dict[str, Any]], Caller | None],
                 *, compactor: Compactor = simple_compact, q_filter: QFilter | None = None,
                 scope_filter: Callable[[str, Entity], bool] | None = None, tick_s: float = PERIODIC_TICK_S) -> None:
        self.store = store
        self.sources = dict(sources)
        self.subscriber = subscriber
        self.compactor = compactor
        self.q_filter = q_filter
        self.scope_filter = scope_filter
        self.tick_s = tick_s
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._compacted: dict[Any, dict[str, Any]] = {}
        self.tenants: Any = None  # an app's `Tenants`, once attached
        self.rounds = 0
        self.queued = 0  # notifications queued in the outbox
        self.errors = 0

    # feeding ---------------------------------------------------------------------------------------------
    def on_commit(self, batch: Batch) -> None:
        """The pipeline's after-commit hook: the batch's devices and the quantities each changed (cheap)."""
        if not batch.o_eui:
            return
        changed: dict[str, set[int]] = defaultdict(set)
        for eui, q in zip(batch.o_eui, batch.o_quantity, strict=True):
            changed[eui].add(q)
        self._queue.put((CITY, changed))

    def listener(self, tenant: str, before: Entity | None, after: Entity | None) -> None:
        """A writable tenant's change (`Tenants.listeners`): a creation, an update (the attributes whose value
        differs, created or deleted), a deletion."""
        change = change_of(before, after)
        if change is not None:
            self._queue.put((tenant, [change]))

    def changed(self, tenant: str, entities: list[tuple[Entity, set[str]]]) -> None:
        """Another tenant's changed entities, each with the expanded attributes that changed (updated)."""
        if entities:
            self._queue.put((tenant, [Change(e, dict.fromkeys(a, "attributeUpdated")) for e, a in entities]))

    # the worker --------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="clapas-ngsi-matcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                item = ()
            if item is None:
                return
            items = [item] if item else []
            while True:  # everything queued meanwhile: one round
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._safe(items, periodic=False)
                    return
                items.append(more)
            periodic = time.monotonic() >= next_tick
            if periodic:
                next_tick = time.monotonic() + self.tick_s
            if items or periodic:
                self._safe(items, periodic)

    def _safe(self, items: list[tuple[str, Any]], periodic: bool) -> None:
        try:
            self.round(items, periodic=periodic)
        except Exception:
            self.errors += 1
            log.exception("subscription matching round failed")

    def round(self, items: list[tuple[str, Any]], *, periodic: bool = False, now: datetime | None = None) -> int:
        """One round over what was queued (and the due periodic subscriptions): returns notifications queued."""
        now = now or datetime.now(UTC)
        city: dict[str, set[int]] = defaultdict(set)
        others: dict[str, list[Change]] = defaultdict(list)
        for tenant, what in items:
            if tenant == CITY:
                for eui, qs in what.items():
                    city[eui] |= qs
            else:
                others[tenant].extend(what)
        if not city and not others and not periodic:
            return 0
        subs = self.store.subscriptions(active=True)
        self._compacted: dict[Any, dict[str, Any]] = {}
        specs = {sub["id"]: msgspec.convert(sub["spec"], Spec) for sub in subs}
        # the city's entity types the change subscriptions of each owner select (None: some select any type)
        wanted: dict[Any, frozenset[str] | None] = {}
        for sub in subs:
            spec, owner = specs[sub["id"]], (sub["owner_key"], sub["owner"])
            typed = bool(spec.entities) and all(s.type for s in spec.entities)
            got = frozenset(s.type for s in spec.entities if s.type) if typed else None
            wanted[owner] = None if got is None or (owner in wanted and wanted[owner] is None) else \
                got | (wanted.get(owner) or frozenset())
        rows: list[tuple[str, dict[str, Any]]] = []
        callers: dict[tuple[Any, ...], Caller | None] = {}
        attrs_of: dict[str, set[str]] | None = None
        built: dict[tuple[str, Any], list[Entity]] = {}  # the changed entities per (tenant, owner)
        for sub in subs:
            spec = specs[sub["id"]]
            if sub["expires_at"] is not None and sub["expires_at"] <= now:
                self.store.set_subscription_status(sub["id"], "expired", active=False)
                continue
            who = (sub["owner_key"], sub["owner"], tuple(sub["owner_scopes"]))
            if who not in callers:  # one key read per subscriber and round
                callers[who] = self.subscriber(sub)
            caller = callers[who]
            if caller is None:
                self.store.set_subscription_status(sub["id"], "paused", active=False)
                continue
            tenant = sub["tenant"] or CITY
            if spec.time_interval_s:
                if periodic and _due(sub, spec, now):
                    rows += self._periodic(sub, spec, caller, tenant, now)
                continue
            if spec.throttling_s and sub["last_notification"] is not None and \
                    now < sub["last_notification"] + timedelta(seconds=spec.throttling_s):
                continue
            if tenant == CITY and city:
                owner = (sub["owner_key"], sub["owner"])
                key = (CITY, owner)
                if key not in built:
                    built[key] = self.sources[CITY].of_devices(caller, sorted(city), wanted.get(owner))
                if attrs_of is None:
                    attrs_of = {eui: changed_attrs(QUANTITY_BY_ID[q].key for q in qs) for eui, qs in city.items()}
                candidates = [Change(e, dict.fromkeys(attrs_of.get(e["id"].rsplit(":", 1)[-1], ()),
                                                      "attributeUpdated")) for e in built[key]]
            else:
                candidates = [c for c in others.get(tenant, []) if c.event == "entityDeleted"
                              or self._visible(tenant, caller, c.entity)]
            by_reason: dict[str, list[Entity]] = {}  # one notification per triggerReason, in TRIGGERS' order
            for c in candidates:
                reason = self._reason(spec, c)
                if reason is not None:
                    by_reason.setdefault(reason, []).append(self._notified(spec, c, now))
            rows += [(sub["id"], self._payload(sub, spec, by_reason[r], now, r)) for r in TRIGGERS if r in by_reason]
        self._compacted = {}
        queued = self.store.queue_notifications(rows, now) if rows else 0
        self.rounds += 1
        self.queued += queued
        return queued

    def _source(self, tenant: str) -> Any:
        """A tenant's source: the city's, or an app's writable tenant (`attach`)."""
        source = self.sources.get(tenant)
        if source is None and self.tenants is not None:
            source = self.tenants.sources.get(tenant)
        return source

    def _visible(self, tenant: str, caller: Caller, e: Entity) -> bool:
        source = self._source(tenant)
        return source is None or source.get(caller, e["id"]) is not None

    def _reason(self, spec: Spec, c: Change) -> str | None:
        """The trigger a change fires for a subscription (its notification's `triggerReason`), None when it does not
        notify it: its entity selected, a trigger of the subscription fired by it (an attribute trigger by a watched
        attribute, when some are watched), `q` and `scopeQ` (on the entity as it is; a deleted entity, which has
        none, is notified on its id and type). A change that fires several of the subscription's triggers (an
        update of one attribute and creation of another) gives the first of them in `TRIGGERS`' order, the entity's
        own before its attributes'."""
        e = c.entity
        if not selected(spec, e):
            return None
        triggers = set(spec.triggers or DEFAULT_TRIGGERS)
        if c.event == "entityDeleted":
            watched = spec.watched is None or bool(set(spec.watched) & c.attrs.keys())
            return "entityDeleted" if "entityDeleted" in triggers and watched else None
        # what changed of this entity's own attributes (a deleted one is no longer among them)
        attrs = {a: k for a, k in c.attrs.items() if a in e or k == "attributeDeleted"}
        if spec.watched is not None:
            attrs = {a: k for a, k in attrs.items() if a in spec.watched}
        fired = set(attrs.values())
        if c.event == "entityCreated" or (c.event == "entityUpdated" and attrs):
            fired.add(c.event)
        reason = next((t for t in TRIGGERS if t in fired and t in triggers), None)
        return reason if reason is not None and self._filtered(spec, e) else None

    def _notified(self, spec: Spec, c: Change, now: datetime) -> Entity:
        """The entity a notification carries: a deleted one's id, type and deletedAt; with showChanges, the
        previous values of the updated attributes (when the tenant knows them: the writable ones)."""
        if c.event == "entityDeleted":
            return {"id": c.entity["id"], "type": c.entity["type"], "deletedAt": iso(now)}
        if spec.show_changes and c.before is not None:
            return with_previous(c.entity, c.before, [a for a, k in c.attrs.items() if k == "attributeUpdated"])
        return c.entity

    def _filtered(self, spec: Spec, e: Entity) -> bool:
        """`q` and `scopeQ` (the protocol layer's parsers, when wired)."""
        if spec.q and self.q_filter is not None and not self.q_filter(spec.q, e, spec.context):
            return False
        return not spec.scope_q or self.scope_filter is None or self.scope_filter(spec.scope_q, e)

    def _periodic(self, sub: dict[str, Any], spec: Spec, caller: Caller, tenant: str,
                  now: datetime) -> list[tuple[str, dict[str, Any]]]:
        source = self._source(tenant)
        if source is None:
            return []
        types = frozenset(s.type for s in spec.entities if s.type) if spec.entities and all(
            s.type for s in spec.entities) else None
        data = [e for e in source.candidates(caller, Hint(types=types)) if selected(spec, e) and
                self._filtered(spec, e)]
        return [(sub["id"], self._payload(sub, spec, data, now))] if data else []

    def _compact(self, e: Entity, spec: Spec) -> dict[str, Any]:
        """An entity as a subscription wants it, compacted once per round for every subscription that wants it
        the same way (one context, format and attributes)."""
        key = (id(e), msgspec.json.encode(spec.context), spec.format, tuple(spec.attrs or ()), spec.attrs is None)
        got = self._compacted.get(key)
        if got is None:
            got = self._compacted[key] = self.compactor(e, spec.context, spec.format, spec.attrs)
        return got

    def _payload(self, sub: dict[str, Any], spec: Spec, data: list[Entity], now: datetime,
                 reason: str | None = None) -> dict[str, Any]:
        """The outbox row's payload: the notification, where it goes, and what the notifier must check."""
        body = notification(sub["id"], [{**self._compact(e, spec), **({"deletedAt": e["deletedAt"]} if "deletedAt"
                                                                       in e else {})} for e in data], now, reason)
        return {"ngsi_ld": True, "class": most_restrictive(OPEN, *(entity_class(e) for e in data)),
                "subscription": sub["id"], "owner_key": sub["owner_key"], "endpoint": spec.endpoint,
                "accept": spec.accept, "receiver_info": spec.receiver_info, "context": spec.context,
                "notification": body}


def _due(sub: dict[str, Any], spec: Spec, now: datetime) -> bool:
    last = sub["last_notification"]
    return last is None or now >= last + timedelta(seconds=spec.time_interval_s)


def key_subscriber(keys: Any) -> Callable[[dict[str, Any]], Caller | None]:
    """Subscribers by their API key (`KeyCheck.holder`: None once revoked or expired); a subscription made without
    a key (OIDC, gateway) keeps the scopes its subject had when it subscribed; one made with the charter off, LOCAL."""

    def subscriber(sub: dict[str, Any]) -> Caller | None:
        if sub["owner_key"]:
            return keys.holder(sub["owner_key"]) if keys is not None else None
        if sub["owner"] == LOCAL.actor and not sub["owner_scopes"]:
            return LOCAL
        return Caller(actor=sub["owner"], via="subscription", role="", scopes=frozenset(sub["owner_scopes"]))

    return subscriber


def city_matcher(store: Store, settings: Any, keys: Any, resolver: Any = None, **kw: Any) -> Matcher:
    """The engine over the city's tenant, as `clapas run` wires it, with the protocol layer's compaction, `q` and
    `scopeQ` (`resolver`: the app's `ContextResolver`; None: a loopback-only one)."""
    from clapas.api.ngsi_ld.city import factory
    from clapas.api.ngsi_ld.context import ContextResolver
    from clapas.api.ngsi_ld.entity import compact_entity
    from clapas.api.ngsi_ld.query import parse_q, parse_scope_q

    resolver = resolver or ContextResolver()

    def compactor(e: Entity, context: Any, fmt: str, attrs: list[str] | None) -> dict[str, Any]:
        return compact_entity(e, resolver.resolve(context), fmt, keep=attrs)

    def q_filter(q: str, e: Entity, context: Any) -> bool:
        return parse_q(q, resolver.resolve(context))(e)

    def scope_filter(scope_q: str, e: Entity) -> bool:
        return parse_scope_q(scope_q)(e)

    return Matcher(store, {CITY: factory(store, settings)}, key_subscriber(keys), compactor=compactor,
                   q_filter=q_filter, scope_filter=scope_filter, **kw)


def for_service(settings: Any, store: Store) -> Matcher:
    """The engine `clapas run` starts: subscribers by their API keys, read from the store at every round (a
    revocation applies at the next batch; the notifier checks again before every delivery)."""
    from clapas.api.identity import KeyCheck
    from clapas.api.ngsi_ld.context import ContextResolver
    from clapas.charter.roles import effective_roles
    from clapas.config import names

    s = settings.ngsi_ld
    keys = KeyCheck(store, effective_roles(settings.charter.roles), 0.0)
    resolver = ContextResolver(names(s.context_hosts), s.context_cache or None, s.context_timeout_s)
    return city_matcher(store, settings, keys, resolver)


def attach(app: Any, matcher: Matcher) -> None:
    """Let an app's writable tenants (the sandbox) notify the matcher, and let it read them (periodic
    subscriptions, what a subscriber may see)."""
    state = getattr(app.state, "ngsi_ld", None)
    if state is None:
        return
    matcher.tenants = state.tenants  # sandboxes created later (on their first write) are found there
    state.tenants.listeners.append(matcher.listener)
