"""Retention per class and quantity: how long each kind of row is kept, and the plan that says what goes.

Defaults (../shared/domain-rules.md §8.9): personal sub-daily readings and their raw frames 24 months (EDF closure
2021: infra-daily data 2 years, §8.2); personal daily volumes 36 months (EDF daily data 3 years; the loi Warsmann's
three-year reference, §1.1), kept as the last index of each local day once the finer rows are gone; open and
restricted data kept; alerts naming a personal device 36 months after they were resolved; the audit log
`[audit] retention_months` (CNIL 2021-122, §8.4). A rule is chosen per device and quantity (a kind's own rule,
else its class's): ThingsBoard's #6829, where one customer's TTL deleted every customer's history (§8.6), is what
the per-group device lists of the plan and tests/charter/test_retention.py guard against.

This module only plans: `plan(devices, settings, now)` groups devices by the cut-offs that apply to them;
`clapas.store.charter` deletes (in one transaction per run, rolled back for a dry run).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from clapas.charter import PERSONAL, most_restrictive
from clapas.model import QUANTITY_BY_KEY


class QuantityRetention(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Sub-daily rows of this quantity kept this many months (unset: the class's `months`; 0: kept).
    months: int | None = None
    # After that, the last value of each local day kept until this many months (0: none). For cumulative
    # indices (water.volume) that is the daily volume.
    daily_months: int = 0


class ClassRetention(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Observations, raw frames (journal), device events: months kept (0: kept).
    months: int = 0
    quantities: dict[str, QuantityRetention] = msgspec.field(default_factory=dict)


def _default_classes() -> dict[str, ClassRetention]:
    # §8.9: personal sub-daily 24 months (EDF infra-daily 2 years), personal daily volumes 36 months (EDF daily
    # 3 years, loi Warsmann reference); open and restricted: kept (no legal limit found)
    return {PERSONAL: ClassRetention(months=24, quantities={"water.volume": QuantityRetention(daily_months=36)})}


class RetentionSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """[charter.retention]: see the module docstring. A class or kind given here replaces its default whole."""

    # The daily job of `clapas run` (`clapas retention apply` runs it by hand).
    enabled: bool = True
    interval_h: float = 24.0
    classes: dict[str, ClassRetention] = msgspec.field(default_factory=_default_classes)
    # A kind's own rule, instead of its class's (e.g. indoor_climate = { months = 12 }).
    kinds: dict[str, ClassRetention] = msgspec.field(default_factory=dict)
    # Quarantined frames of no known device: they may hold anyone's readings (design: the personal 24 months).
    quarantine_months: int = 24
    # Resolved alerts about a personal device (they name its subscriber): §8.9, proof of the Warsmann notice.
    personal_alert_months: int = 36


class RetentionError(ValueError):
    """A retention setting that cannot be applied (unknown quantity, negative months…)."""


def check_settings(s: RetentionSettings) -> None:
    for where, rules in (("classes", s.classes), ("kinds", s.kinds)):
        for name, r in rules.items():
            if r.months < 0:
                raise RetentionError(f"charter.retention.{where}.{name}.months must be ≥ 0")
            for q, qr in r.quantities.items():
                if q not in QUANTITY_BY_KEY:
                    raise RetentionError(f"charter.retention.{where}.{name}.quantities: unknown quantity {q!r}")
                if (qr.months or 0) < 0 or qr.daily_months < 0:
                    raise RetentionError(f"charter.retention.{where}.{name}.quantities.{q}: months must be ≥ 0")
    if s.quarantine_months < 0 or s.personal_alert_months < 0 or s.interval_h <= 0:
        raise RetentionError("charter.retention: months must be ≥ 0 and interval_h > 0")


def months_before(now: datetime, months: int, timezone: str) -> datetime:
    """Local midnight `months` calendar months before `now`'s local day (cut-offs fall on whole days and hours)."""
    tz = ZoneInfo(timezone)
    d = now.astimezone(tz).date()
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    day = min(d.day, [31, 29 if y % 4 == 0 and (y % 100 or y % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31,
                      30, 31][m])
    return datetime.combine(date(y, m + 1, day), time(), tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class QuantityCut:
    """Rows of these quantities (`exclude`: of every other quantity) before `raw_before` go, except, until
    `daily_before`, the last of each local day."""

    quantity_ids: tuple[int, ...]
    exclude: bool
    raw_before: datetime
    daily_before: datetime | None


@dataclass(slots=True)
class DeviceGroup:
    """Devices that share every cut-off (usually one group per class and kind rule)."""

    rule: str  # which rule, for the report: "class personal", "kind indoor_climate"
    ids: list[int] = field(default_factory=list)
    euis: list[str] = field(default_factory=list)
    frames_before: datetime | None = None  # journal frames and device events
    cuts: tuple[QuantityCut, ...] = ()
    alerts_before: datetime | None = None  # resolved alerts about these devices


@dataclass(slots=True)
class Plan:
    now: datetime
    groups: list[DeviceGroup]
    quarantine_before: datetime | None
    audit_before: datetime | None


def plan(devices: Iterable[Mapping[str, Any]], s: RetentionSettings, now: datetime, timezone: str,
         device_class: Callable[[Mapping[str, Any]], str], quantity_classes: Mapping[str, str] | None = None,
         audit_months: int | None = None) -> Plan:
    """Group devices (rows of `Store.devices` with their `id`) by the cut-offs their class or kind gives them.

    `device_class(d)`: a device's class; `quantity_classes`: quantities a city classes everywhere (`[charter.
    quantities]`): such a quantity, when more restrictive than its device, follows that class's rule.
    """
    quantity_classes = {q: c for q, c in (quantity_classes or {}).items() if q in QUANTITY_BY_KEY}
    def cut(months: int) -> datetime | None:
        return months_before(now, months, timezone) if months > 0 else None

    def rule_of(d: Mapping[str, Any], cls: str) -> tuple[str, ClassRetention | None]:
        kind = str(d.get("kind") or "")
        if kind in s.kinds:
            return f"kind {kind}", s.kinds[kind]
        return f"class {cls}", s.classes.get(cls)

    groups: dict[tuple[Any, ...], DeviceGroup] = {}
    for d in devices:
        cls = device_class(d)
        name, rule = rule_of(d, cls)
        specials: dict[int, tuple[int, int]] = {}  # quantity id → (months, daily months)
        if rule is not None:
            for q, qr in rule.quantities.items():
                specials[QUANTITY_BY_KEY[q].id] = (rule.months if qr.months is None else qr.months, qr.daily_months)
        if str(d.get("kind") or "") not in s.kinds:  # a quantity classed above its device: that class's rule
            for q, qc in quantity_classes.items():
                qid, qcls = QUANTITY_BY_KEY[q].id, most_restrictive(cls, qc)
                if qcls == cls or qid in specials:
                    continue
                qrule = s.classes.get(qcls)
                qr = qrule.quantities.get(q) if qrule else None
                specials[qid] = ((qrule.months if qr is None or qr.months is None else qr.months) if qrule else 0,
                                 qr.daily_months if qr else 0)
        months = rule.months if rule else 0
        cuts: list[QuantityCut] = []
        by_cut: dict[tuple[int, int], list[int]] = defaultdict(list)
        for qid, mm in specials.items():
            by_cut[mm].append(qid)
        for (m, dm), qids in sorted(by_cut.items()):
            if m > 0:
                cuts.append(QuantityCut(tuple(sorted(qids)), False, cut(m), cut(dm) if dm > m else None))
        if months > 0:
            cuts.append(QuantityCut(tuple(sorted(specials)), True, cut(months), None))
        alerts = cut(s.personal_alert_months) if cls == PERSONAL else None
        if not cuts and alerts is None and months == 0:
            continue
        key = (name, months, tuple(cuts), alerts)
        g = groups.get(key)
        if g is None:
            g = groups[key] = DeviceGroup(name, frames_before=cut(months), cuts=tuple(cuts), alerts_before=alerts)
        g.ids.append(int(d["id"]))
        g.euis.append(str(d["eui"]))
    return Plan(now, list(groups.values()), cut(s.quarantine_months),
                cut(audit_months) if audit_months else None)
