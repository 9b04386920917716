"""Retention and erasure runs: the charter's rules applied to a store (`clapas run`'s daily job, `clapas retention
apply`, `clapas erase`).

The rules come from `retention.py` and `classes.py`; the deletions from the store (`clapas.store.charter`); the
audit entry of an erasure through the store's audit log. The store is passed in (nothing is imported from it), so
the charter package stays importable by every layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clapas.charter import LOCAL, Caller
from clapas.charter.audit import AuditEntry
from clapas.charter.classes import Classifier
from clapas.charter.retention import Plan, plan

ERASURE_EVENT = "erasure"


def classifier_of(settings: Any) -> Classifier:
    charter = getattr(settings, "charter", None)
    return Classifier(charter if charter is not None and hasattr(charter, "kinds") else None)


def retention_plan(store: Any, settings: Any, now: datetime | None = None) -> Plan:
    """What is past its retention at `now` (default: the wall clock), per group of devices."""
    now = now or datetime.now(UTC)
    c = classifier_of(settings)
    audit = getattr(getattr(settings, "audit", None), "retention_months", None)
    return plan(store.retention_devices(), settings.charter.retention, now, settings.timezone, c.device,
                c.quantities, audit_months=audit)


def run_retention(store: Any, settings: Any, *, now: datetime | None = None, dry_run: bool = False
                  ) -> dict[str, int]:
    """Apply retention; rows deleted (or, dry, that would be) per table."""
    return store.apply_retention(retention_plan(store, settings, now), dry_run=dry_run)


@dataclass(slots=True)
class ErasureReport:
    request: str
    dry_run: bool
    targets: list[dict[str, Any]]
    deleted: dict[str, int]
    readers: list[dict[str, Any]] = field(default_factory=list)  # API keys (or actors) that read the devices


def run_erasure(store: Any, *, request: str, eui: str | None = None, subscriber: str | None = None,
                before: datetime | None = None, dry_run: bool = False, caller: Caller = LOCAL) -> ErasureReport:
    """Erase a device's (or a subscriber's) data, in one transaction, and record it in the audit log without
    values: the request reference, what was covered, rows per table; plus who had read the devices."""
    if not request.strip():
        raise ValueError("an erasure needs the reference of the request it answers (--request)")
    if (eui is None) == (subscriber is None):
        raise ValueError("name a device (--device) or a subscriber (--subscriber), not both")
    targets = store.erasure_targets(eui=eui, subscriber=subscriber, before=before)
    readers: list[dict[str, Any]] = []
    if hasattr(store, "audit_readers"):
        for e in dict.fromkeys(t["eui"] for t in targets):
            readers += [{**r, "device": e} for r in store.audit_readers(e)]
    deleted = store.erase(targets, subscriber=subscriber, dry_run=dry_run) if targets else {}
    if not dry_run and hasattr(store, "append_audit"):
        store.append_audit([AuditEntry(
            ERASURE_EVENT, caller.actor, via=caller.via, role=caller.role, key_id=caller.key_id,
            row_count=sum(deleted.values()), subjects=[t["eui"] for t in targets if not t["whole"]],
            detail={"request": request, "mode": "device" if eui else "subscriber",
                    "before": before.astimezone(UTC).isoformat() if before else None,
                    "devices": len(targets), "whole_devices": sum(1 for t in targets if t["whole"]),
                    "deleted": deleted})])
    return ErasureReport(request, dry_run, targets, deleted, readers)
