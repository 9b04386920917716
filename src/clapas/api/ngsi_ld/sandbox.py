"""The sandbox tenant: a writable `EntitySource` over the store's `ngsi_entities` / `ngsi_instances` tables.

It serves what experimenters and conformance suites write (ETSI GS CIM 009 §5.6: create, update, append, partial
update, replace, merge, delete entities and attributes; §5.6.11–5.6.15 the temporal representation), nothing of
the city's. Every attribute value written is also kept as a temporal instance (its `observedAt`, else the time of
the write), which the temporal API reads. Writes to one tenant are serialized by a lock: the sandbox is small, and
read-modify-write of a whole entity must not interleave.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from clapas.api.ngsi_ld import temporal
from clapas.api.ngsi_ld.entity import parse_time, utc_text
from clapas.api.ngsi_ld.source import Entity, Hint, TemporalHint
from clapas.api.ngsi_ld.tenants import SANDBOX, register_tenant
from clapas.config import Settings

_enc = msgspec.json.Encoder()
NULL = "urn:ngsi-ld:null"
_SKIP = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "@context"})


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def now_text() -> str:
    """The time of a write (createdAt, modifiedAt), in the seam's format, to the millisecond."""
    t = datetime.now(UTC)
    return utc_text(t.replace(microsecond=t.microsecond // 1000 * 1000))


def _attrs_of(entity: Entity) -> Iterator[tuple[str, dict[str, Any]]]:
    for k, v in entity.items():
        if k in _SKIP:
            continue
        for a in v if isinstance(v, list) else [v]:
            yield k, a


class SandboxSource:
    """One writable tenant in the store (`tenant` is its row key: several sandboxes may share the tables)."""

    writable = True

    def __init__(self, store: Any, tenant: str = SANDBOX, max_instances: int = 10_000) -> None:
        self.store = store
        self.tenant = tenant
        self.max_instances = max_instances
        self.lock = threading.RLock()

    # reads --------------------------------------------------------------------------------------------------
    def candidates(self, caller: Any, hint: Hint) -> Iterator[Entity]:
        ids = sorted(hint.ids) if hint.ids is not None else None
        for _, body in self.store.ngsi_entities(self.tenant, ids):
            yield msgspec.json.decode(body)

    def get(self, caller: Any, entity_id: str) -> Entity | None:
        body = self.store.ngsi_entity(self.tenant, entity_id)
        return msgspec.json.decode(body) if body is not None else None

    def history(self, caller: Any, entity_ids: Sequence[str], query: TemporalHint,
                timeproperty: str = "observedAt") -> Iterator[Entity]:
        """The seam's history; `timeproperty` (the sandbox keeps createdAt, modifiedAt and deletedAt of each
        instance too) picks the time the range and the order apply to. Deletion tombstones (`deletedAt`) are
        only returned for timeproperty=deletedAt."""
        by_time = timeproperty == "observedAt"
        rows = self.store.ngsi_instances(
            self.tenant, list(entity_ids), sorted(query.attrs) if query.attrs is not None else None,
            _us(query.start) if query.start and by_time else None, _us(query.end) if query.end and by_time else None)
        by_entity: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for r in rows:
            inst = msgspec.json.decode(r["body"])
            if ("deletedAt" in inst) != (timeproperty == "deletedAt"):
                continue
            if not by_time:
                t = inst.get(timeproperty)
                if t is None:
                    continue
                when = parse_time(t, timeproperty)
                if (query.start and when < query.start) or (query.end and when >= query.end):
                    continue
            inst["instanceId"] = r["instance_id"]
            by_entity.setdefault(r["entity_id"], {}).setdefault(r["attr"], []).append(inst)
        entities = {i: msgspec.json.decode(b) for i, b in self.store.ngsi_entities(self.tenant, list(entity_ids))}
        for eid in entity_ids:
            current = entities.get(eid)
            if current is None:
                continue
            out: Entity = {"id": eid, "type": current["type"]}
            if "scope" in current:
                out["scope"] = current["scope"]
            for attr, insts in by_entity.get(eid, {}).items():
                if not by_time:
                    insts.sort(key=lambda i: i[timeproperty])
                if query.last_n:
                    insts = insts[-query.last_n:]
                if query.aggr_methods:
                    out[attr] = temporal.aggregate(insts, query.aggr_methods, query.aggr_period_s,
                                                   query.start, query.end)
                else:
                    out[attr] = insts
            yield out

    def tombstone(self, entity_id: str, name: str, attr: Any, now: str) -> None:
        """Record an attribute's deletion as an instance (`deletedAt`, its value urn:ngsi-ld:null, §4.5.6)."""
        insts = []
        for a in attr if isinstance(attr, list) else [attr]:
            typ = a.get("type", "Property")
            member = {"Relationship": "object", "LanguageProperty": "languageMap", "VocabProperty": "vocab",
                      "JsonProperty": "json", "ListProperty": "valueList"}.get(typ, "value")
            dead: dict[str, Any] = {"type": typ, member: {"@none": NULL} if member == "languageMap" else NULL,
                                    "createdAt": now, "modifiedAt": now, "deletedAt": now}
            if "datasetId" in a:
                dead["datasetId"] = a["datasetId"]
            insts.append((name, f"urn:ngsi-ld:instance:{uuid.uuid4()}", _us(parse_time(now, "deletedAt")),
                          _enc.encode(dead).decode()))
        body = self.store.ngsi_entity(self.tenant, entity_id)
        self.store.ngsi_put(self.tenant, entity_id, body, insts)

    # writes -------------------------------------------------------------------------------------------------
    def _instances(self, attrs: Entity, now: str) -> list[tuple[str, str, int, str]]:
        out = []
        for name, a in _attrs_of(attrs):
            inst = dict(a)
            t = parse_time(a.get("observedAt") or now, "observedAt")
            out.append((name, f"urn:ngsi-ld:instance:{uuid.uuid4()}", _us(t), _enc.encode(inst).decode()))
        return out

    def save(self, entity: Entity, *, new_attrs: Entity | None = None, drop_attrs: Sequence[str] = (),
             now: str | None = None) -> None:
        """Write `entity` whole; `new_attrs` (default: every attribute) become temporal instances."""
        now = now or now_text()
        insts = self._instances(entity if new_attrs is None else new_attrs, now)
        self.store.ngsi_put(self.tenant, entity["id"], _enc.encode(entity).decode(), insts, drop_attrs=drop_attrs)

    def add_instances(self, entity_id: str, attrs: Entity, now: str | None = None) -> None:
        """Temporal instances only (POST /temporal/entities/{id}/attrs)."""
        insts = self._instances(attrs, now or now_text())
        body = self.store.ngsi_entity(self.tenant, entity_id)
        self.store.ngsi_put(self.tenant, entity_id, body, insts)

    def delete(self, entity_id: str) -> bool:
        if self.store.ngsi_entity(self.tenant, entity_id) is None:
            return False
        self.store.ngsi_put(self.tenant, entity_id, None, drop_instances=True)
        return True

    def delete_instance(self, entity_id: str, attr: str, instance_id: str) -> bool:
        return self.store.ngsi_delete_instance(self.tenant, entity_id, attr, instance_id)

    def replace_instance(self, entity_id: str, attr: str, instance_id: str, value: dict[str, Any]) -> bool:
        t = parse_time(value.get("observedAt") or now_text(), "observedAt")
        inst = {k: v for k, v in value.items() if k != "instanceId"}
        return self.store.ngsi_replace_instance(self.tenant, entity_id, attr, instance_id, _us(t),
                                                _enc.encode(inst).decode())


def factory(store: Any, settings: Settings) -> SandboxSource:
    return SandboxSource(store, settings.ngsi_ld.sandbox_tenant, settings.ngsi_ld.max_instances)


register_tenant(SANDBOX, factory)
