"""The transparency register (`GET /api/v1/register`): per kind of device, its class, purpose, retention and the
roles that may read it, generated from the live configuration so that it never drifts from what is enforced.

The record follows the Smart Data Models `PrivacyObject` (purpose, isPersonalData, retentionPeriod, recipientList;
../shared/domain-rules.md §8.1) and the GDPR art. 30 register of processing activities it serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clapas.charter import AUDIT_READ, PERSONAL, READ_SCOPE
from clapas.charter.classes import NON_RESIDENTIAL, Classifier

# Why the city collects each kind (DESIGN.md "what it is"); `[charter.purposes]` replaces them per kind.
PURPOSES: dict[str, str] = {
    "water_meter": "leak detection and abnormal-consumption notices to subscribers (loi Warsmann), water savings",
    f"water_meter.{NON_RESIDENTIAL}": "leak detection and consumption follow-up of non-residential premises",
    "district_meter": "district (DMA) water balance and minimum night flow: network losses",
    "weather_station": "heatwaves (canicule thresholds), urban heat islands and park cool islands",
    "rain_gauge": "flood warnings: rain accumulations",
    "water_level": "flood warnings: river levels and their rate of rise",
    "air_quality": "air quality indices (ATMO, EAQI), information and alert thresholds",
    "indoor_climate": "conservation climate of museum rooms and comfort of public buildings",
    "traffic_counter": "mobility observatory: hourly and daily traffic flows",
    "bike_counter": "mobility observatory: hourly and daily bike flows",
    "bike_station": "bike-share availability",
    "bikeshare_system": "bike-share feed polling state",
    "bikeshare_zone": "free-floating bike-share vehicles available per zone",
    "generic": "not declared: restricted until the city classes the kind",
}


def _months(n: int | None) -> str:
    return "kept" if not n else f"{n} months"


def _retention(retention: Any, kind: str, data_class: str) -> dict[str, Any]:
    """What `clapas retention apply` keeps for this kind: its own rule, else its class's (0 months: kept)."""
    if retention is None:
        return {"observations": "kept"}
    base = kind.split(".", 1)[0]
    rule = retention.kinds.get(base) or retention.classes.get(data_class)
    out: dict[str, Any] = {"observations": _months(rule.months if rule else 0),
                           "raw_frames": _months(rule.months if rule else 0)}
    for q, qr in (rule.quantities.items() if rule else ()):
        out.setdefault("quantities", {})[q] = {
            "sub_daily": _months(qr.months if qr.months is not None else rule.months),
            "daily": _months(qr.daily_months) if qr.daily_months else "not kept beyond sub-daily"}
    if data_class == PERSONAL:
        out["alerts"] = f"{retention.personal_alert_months} months after they are resolved"
    return out


def register(settings: Any) -> dict[str, Any]:
    """The register from the live `Settings` (its `[charter]`, `[charter.retention]`, `[audit]`)."""
    from clapas.charter.roles import effective_roles

    charter = getattr(settings, "charter", None)
    classes = Classifier(charter)
    roles = effective_roles(charter.roles if charter else {})
    anonymous = charter.anonymous if charter else "public"
    retention = getattr(charter, "retention", None)
    purposes: Mapping[str, str] = {**PURPOSES, **(charter.purposes if charter else {})}

    def readers(data_class: str) -> list[str]:
        scope = READ_SCOPE[data_class]
        return sorted(name for name, r in roles.items() if scope in r.scopes)

    kinds = []
    for kind, data_class in classes.kind_table().items():
        who = readers(data_class)
        kinds.append({
            "kind": kind, "class": data_class, "personal_data": data_class == PERSONAL,
            "purpose": purposes.get(kind, purposes.get(kind.split(".", 1)[0], "")),
            "retention": _retention(retention, kind, data_class), "roles": who,
            "anonymous": bool(anonymous) and anonymous in who,
        })
    unknown = classes.kind("")
    audit = getattr(settings, "audit", None)
    return {
        "kinds": kinds,
        "unknown_kinds": {"class": unknown, "roles": readers(unknown), "purpose": purposes["generic"]},
        "quantities": [{"quantity": q, "class": c, "roles": readers(c)} for q, c in sorted(classes.quantities.items())],
        "rule": "the most restrictive of the device's registry class, its kind's and the quantity's applies",
        "derived": "alerts, reports, exports and journal frames carry the class of what they come from; raw "
                   "frames are at least restricted",
        "anonymous_role": anonymous or None,
        "audit_log": {"retention": _months(audit.retention_months if audit else 12), "roles": sorted(
            name for name, r in roles.items() if AUDIT_READ in r.scopes)},
        "quarantine": {"retention": _months(retention.quarantine_months if retention else 0)},
    }
