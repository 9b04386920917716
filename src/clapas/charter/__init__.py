"""The data charter's vocabulary: data classes, scopes, and who is calling.

Every value clapas serves has a class (`open`, `restricted`, `personal`, ../shared/domain-rules.md §8); every caller
has scopes. This package holds the rules (which class a value has, which scope reads it, k-anonymous aggregates,
retention); `clapas.api.access` applies them to HTTP requests, and the store carries out retention and erasure.
It imports nothing from the API or the store, so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Data classes, least to most restrictive (§8.9).
OPEN = "open"
RESTRICTED = "restricted"
PERSONAL = "personal"
CLASSES = (OPEN, RESTRICTED, PERSONAL)


_RANK = {c: i for i, c in enumerate(CLASSES)}


def most_restrictive(*classes: str) -> str:
    """The class of a value derived from values of these classes (an unknown class counts as personal).
    Called per row of a listing (10,000 devices): a loop over a dict, not a generator with `index`."""
    rank = 0
    for c in classes:
        r = _RANK.get(c, len(CLASSES) - 1)
        if r > rank:
            rank = r
    return CLASSES[rank]


# Scopes (§8.5). A role is a named bundle of them (configured under [charter.roles]).
OPEN_READ = "open:read"
RESTRICTED_READ = "restricted:read"
PERSONAL_READ = "personal:read"
JOURNAL_READ = "journal:read"
ALERTS_WRITE = "alerts:write"
INGEST_WRITE = "ingest:write"
EXPORT_BULK = "export:bulk"
KEYS_ADMIN = "keys:admin"
AUDIT_READ = "audit:read"
ERASURE = "erasure"
METRICS_READ = "metrics:read"
CONFIG_WRITE = "config:write"
SANDBOX_WRITE = "sandbox:write"  # NGSI-LD sandbox tenant: create, change, delete its entities (issue 11)
# Self-service settings (issue 16): each department changes the settings of its own uses at run time
# (`clapas.selfservice.paths` says which paths are whose); CONFIG_WRITE covers what every department shares.
SETTINGS_WATER = "settings:water"
SETTINGS_ENVIRONMENT = "settings:environment"
SETTINGS_MOBILITY = "settings:mobility"
SETTINGS_CULTURE = "settings:culture"
DEPARTMENT_SCOPES = {"water": SETTINGS_WATER, "environment": SETTINGS_ENVIRONMENT, "mobility": SETTINGS_MOBILITY,
                     "culture": SETTINGS_CULTURE}
SCOPES = (OPEN_READ, RESTRICTED_READ, PERSONAL_READ, JOURNAL_READ, ALERTS_WRITE, INGEST_WRITE, EXPORT_BULK,
          KEYS_ADMIN, AUDIT_READ, ERASURE, METRICS_READ, CONFIG_WRITE, SANDBOX_WRITE, SETTINGS_WATER,
          SETTINGS_ENVIRONMENT, SETTINGS_MOBILITY, SETTINGS_CULTURE)

READ_SCOPE = {OPEN: OPEN_READ, RESTRICTED: RESTRICTED_READ, PERSONAL: PERSONAL_READ}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as the access layer resolved it: routes read this, never the request's headers."""

    actor: str = "anonymous"  # key name, token subject, gateway consumer, or "anonymous"
    via: str = "anonymous"  # anonymous | key | oidc | gateway | local (the CLI, the service itself)
    role: str = "public"
    scopes: frozenset[str] = field(default_factory=frozenset)
    key_id: str | None = None
    client: str = ""  # the client's address as the access layer trusts it
    # requests a minute / a day this caller may make (0: no limit), from its key or its role
    rate_per_minute: int = 0
    rate_per_day: int = 0

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    def may_read(self, data_class: str) -> bool:
        """Whether this caller may see values of a class (an unknown class is read as personal)."""
        return self.can(READ_SCOPE.get(data_class, PERSONAL_READ))

    @property
    def anonymous(self) -> bool:
        return self.via == "anonymous"


# The service's own reads and the CLI: everything.
LOCAL = Caller(actor="local", via="local", role="admin", scopes=frozenset(SCOPES))
