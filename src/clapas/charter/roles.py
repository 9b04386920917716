"""Roles: named bundles of scopes, with the rate limits their callers get (`[charter.roles]`).

A city's `[charter.roles.NAME]` replaces the default of that name and adds the others; the defaults below stay
unless replaced. The bundles follow the city practice of ../shared/domain-rules.md §8.1 (Lyon: an open licence
without authentication, an "engagée" licence for authenticated re-users) and the classes of §8.9:

| role | for | scopes |
|---|---|---|
| public | anonymous callers (`[charter] anonymous`) | open:read |
| partner | companies, researchers, administrations under a convention | open and restricted read, export |
| operator | the platform's operators | all reads, journal, alerts, metrics, export, every settings scope |
| operator-water | the water service (Warsmann) | as operator, settings of its own department only |
| operator-environment, -mobility, -culture | services without personal data | as operator-water, no personal read |
| dpo | the data protection officer | every read, audit, erasure, export |
| ingest | the ChirpStack HTTP integration | ingest:write |
| experimenter | NGSI-LD sandbox writers, conformance suites | open:read, sandbox:write |
| admin | the platform's administrators | every scope |

Rate limits (design defaults, no source gives a number; 0 = no limit): anonymous 60 requests a minute and
10,000 a day per client address, partners 600 / 200,000 per key, the city's own roles unlimited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from clapas.charter import (
    ALERTS_WRITE,
    AUDIT_READ,
    CONFIG_WRITE,
    DEPARTMENT_SCOPES,
    ERASURE,
    EXPORT_BULK,
    INGEST_WRITE,
    JOURNAL_READ,
    METRICS_READ,
    OPEN_READ,
    PERSONAL_READ,
    RESTRICTED_READ,
    SANDBOX_WRITE,
    SCOPES,
    SETTINGS_CULTURE,
    SETTINGS_ENVIRONMENT,
    SETTINGS_MOBILITY,
    SETTINGS_WATER,
)


class RoleSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One role: its scopes and the rate limits of a caller holding it (a key may set its own)."""

    scopes: list[str] = msgspec.field(default_factory=list)
    rate_per_minute: int = 0  # 0: no limit
    rate_per_day: int = 0
    description: str = ""


ANONYMOUS_RATE_PER_MINUTE = 60  # design: a dashboard refreshing every few seconds stays well under it
ANONYMOUS_RATE_PER_DAY = 10_000

_SERVICE = [OPEN_READ, RESTRICTED_READ, JOURNAL_READ, ALERTS_WRITE, METRICS_READ, EXPORT_BULK]

DEFAULT_ROLES: dict[str, RoleSettings] = {
    "public": RoleSettings(scopes=[OPEN_READ], rate_per_minute=ANONYMOUS_RATE_PER_MINUTE,
                           rate_per_day=ANONYMOUS_RATE_PER_DAY, description="open data, anyone"),
    "partner": RoleSettings(scopes=[OPEN_READ, RESTRICTED_READ, EXPORT_BULK], rate_per_minute=600,
                            rate_per_day=200_000, description="re-users under a convention"),
    "operator": RoleSettings(scopes=[*_SERVICE, PERSONAL_READ, CONFIG_WRITE, *DEPARTMENT_SCOPES.values()],
                             description="the city's platform operators"),
    "operator-water": RoleSettings(scopes=[*_SERVICE, PERSONAL_READ, SETTINGS_WATER], description="the water service"),
    "operator-environment": RoleSettings(scopes=[*_SERVICE, SETTINGS_ENVIRONMENT],
                                         description="climate risks, air quality"),
    "operator-mobility": RoleSettings(scopes=[*_SERVICE, SETTINGS_MOBILITY], description="counters, bike stations"),
    "operator-culture": RoleSettings(scopes=[*_SERVICE, SETTINGS_CULTURE], description="museum climate"),
    "dpo": RoleSettings(scopes=[OPEN_READ, RESTRICTED_READ, PERSONAL_READ, JOURNAL_READ, AUDIT_READ, ERASURE,
                                EXPORT_BULK], description="the data protection officer"),
    "ingest": RoleSettings(scopes=[INGEST_WRITE], description="the ChirpStack HTTP integration"),
    # the NGSI-LD sandbox tenant's writers; its limits are the partners' (a conformance run sends ≈ 1,000 requests)
    "experimenter": RoleSettings(scopes=[OPEN_READ, SANDBOX_WRITE], rate_per_minute=600, rate_per_day=200_000,
                                 description="NGSI-LD sandbox: write its own entities"),
    "admin": RoleSettings(scopes=list(SCOPES), description="every scope"),
}


class UnknownRole(ValueError):
    """A role or scope name that the configuration does not define."""


def effective_roles(configured: Mapping[str, RoleSettings]) -> dict[str, RoleSettings]:
    """The defaults with the city's roles laid over them (a configured role replaces the default of its name)."""
    roles = {**DEFAULT_ROLES, **configured}
    for name, role in roles.items():
        check_scopes(role.scopes, f"role {name!r}")
    return roles


def check_scopes(scopes: Iterable[str], where: str) -> None:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise UnknownRole(f"{where}: unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
