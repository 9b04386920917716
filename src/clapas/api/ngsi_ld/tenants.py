"""Tenants (`NGSILD-Tenant`, ETSI GS CIM 009 §4.15, §6.3.14): which `EntitySource` answers a request.

Two roles are known: `CITY` (the city's read-only tenant, named `[ngsi_ld] city_tenant`) and `SANDBOX` (the
writable sandbox, named `[ngsi_ld] sandbox_tenant`, served when `[ngsi_ld] sandbox` enables it). A module that
provides a tenant registers a factory for its role at import time: `register_tenant(CITY, factory)`; each app then
builds its sources once (`Tenants.for_app`). Until the city's tenant is registered it answers with an empty source.
A request without the header goes to `[ngsi_ld] default_tenant`; an unknown name is 404 NonexistentTenant.

Writable sources report their changes to `Tenants.listeners` (subscriptions hook in there):
`listener(tenant_name, before, after)` with expanded entities (None for a creation / a deletion).

Public API (stable): `CITY`, `SANDBOX`, `TenantFactory`, `register_tenant`, `EmptySource`, `Tenants` (`for_app`,
`source(request)`, `name(request)`, `changed(...)`, `listeners`), `sandbox_enabled(settings)`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import Request

from clapas.api.ngsi_ld.errors import NgsiError
from clapas.api.ngsi_ld.source import Entity, EntitySource, Hint, TemporalHint
from clapas.config import Settings

log = logging.getLogger("clapas.api.ngsi_ld")

CITY = "city"
SANDBOX = "sandbox"
HEADER = "NGSILD-Tenant"

TenantFactory = Callable[[Any, Settings], EntitySource]  # (store, settings) → the tenant's source
_FACTORIES: dict[str, TenantFactory] = {}


def register_tenant(role: str, factory: TenantFactory) -> None:
    """Provide the source of a tenant role (CITY or SANDBOX); a later registration replaces an earlier one."""
    _FACTORIES[role] = factory


class EmptySource:
    """A tenant without entities (the city's, until its source is registered)."""

    writable = False

    def candidates(self, caller: Any, hint: Hint) -> Iterator[Entity]:
        return iter(())

    def get(self, caller: Any, entity_id: str) -> Entity | None:
        return None

    def history(self, caller: Any, entity_ids: Sequence[str], query: TemporalHint) -> Iterator[Entity]:
        return iter(())


def sandbox_enabled(settings: Settings) -> bool:
    """`[ngsi_ld] sandbox`: true, false, or auto — on with DuckDB (trials, conformance runs), off with PostgreSQL
    (the production store: a city turns it on there on purpose)."""
    value = str(settings.ngsi_ld.sandbox).strip().lower()
    if value in ("auto", ""):
        return settings.store.startswith("duckdb")
    return value in ("true", "1", "yes", "on")


Listener = Callable[[str, Entity | None, Entity | None], None]


class Tenants:
    """One app's tenants: header name → source."""

    def __init__(self, sources: dict[str, EntitySource], default: str) -> None:
        self.sources = sources
        self.default = default
        self.listeners: list[Listener] = []

    @classmethod
    def for_app(cls, store: Any, settings: Settings) -> Tenants:
        s = settings.ngsi_ld
        city = _FACTORIES.get(CITY)
        sources: dict[str, EntitySource] = {s.city_tenant: city(store, settings) if city else EmptySource()}
        if sandbox_enabled(settings):
            sandbox = _FACTORIES.get(SANDBOX)
            if sandbox is None:
                from clapas.api.ngsi_ld import sandbox as _sandbox  # registers itself

                sandbox = _FACTORIES.get(SANDBOX, _sandbox.factory)
            sources[s.sandbox_tenant] = sandbox(store, settings)
        return cls(sources, s.default_tenant or s.city_tenant)

    def name(self, request: Request) -> str:
        return (request.headers.get(HEADER) or "").strip() or self.default

    def source(self, request: Request) -> EntitySource:
        """The request's tenant, or 404 NonexistentTenant."""
        name = self.name(request)
        src = self.sources.get(name)
        if src is None:
            raise NgsiError("NonexistentTenant", f"no tenant {name!r} here (tenants: {', '.join(self.sources)})")
        return src

    def changed(self, tenant: str, before: Entity | None, after: Entity | None) -> None:
        """Tell the listeners an entity of `tenant` changed; a failing listener never fails the write."""
        for listener in self.listeners:
            try:
                listener(tenant, before, after)
            except Exception:
                log.exception("NGSI-LD change listener failed")
