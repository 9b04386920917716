"""Tenants (`NGSILD-Tenant`, ETSI GS CIM 009 §4.15, §6.3.14): which `EntitySource` answers a request.

Two roles are known: `CITY` (the city's read-only tenant, named `[ngsi_ld] city_tenant`) and `SANDBOX` (the
writable sandbox, named `[ngsi_ld] sandbox_tenant`, served when `[ngsi_ld] sandbox` enables it). A module that
provides a tenant registers a factory for its role at import time (`register_tenant(CITY, factory)`) and is listed
in `TENANT_MODULES`, which `Tenants.for_app` imports before building each app's sources once. Until the city's
tenant is registered it answers with an empty source. A request without the header goes to `[ngsi_ld]
default_tenant`; an unknown name is 404 NonexistentTenant (a creation makes a sandbox tenant, see `Tenants`).

Writable sources report their changes to `Tenants.listeners` (subscriptions hook in there):
`listener(tenant_name, before, after)` with expanded entities (None for a creation / a deletion).

Public API (stable): `CITY`, `SANDBOX`, `TenantFactory`, `register_tenant`, `TENANT_MODULES`, `EmptySource`,
`Tenants` (`for_app`, `source(request, create=False)`, `name(request)`, `changed(...)`, `listeners`),
`TenantEcho`, `sandbox_enabled(settings)`.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec
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
# The modules providing tenants, imported when an app is built (the city's source adds itself here).
TENANT_MODULES: list[str] = ["clapas.api.ngsi_ld.sandbox"]


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


_TENANT_NAME = re.compile(r"^[\w.:/-]{1,128}$")


class Tenants:
    """One app's tenants: header name → source. With the sandbox on, a creation (§5.5.10: "creates implicitly
    create the Tenant") in an unknown tenant makes a new sandbox tenant of that name (same tables, its own rows),
    up to `[ngsi_ld] max_tenants`; tenants with rows in the store are known again after a restart."""

    def __init__(self, sources: dict[str, EntitySource], default: str,
                 spawn: Callable[[str], EntitySource] | None = None, max_spawned: int = 0) -> None:
        self.sources = sources
        self.default = default
        self.spawn = spawn
        self.max_spawned = max_spawned
        self.spawned = 0
        self.listeners: list[Listener] = []
        self.stored: Callable[[], list[str]] | None = None  # the tenants with rows in the store
        self._lock = threading.Lock()

    def _load_stored(self) -> None:
        """The tenants created before this process (once: the app is built without touching the store)."""
        stored, self.stored = self.stored, None
        if stored is None or self.spawn is None:
            return
        for name in stored():
            if name not in self.sources:
                self.sources[name] = self.spawn(name)
                self.spawned += 1

    @classmethod
    def for_app(cls, store: Any, settings: Settings) -> Tenants:
        for module in TENANT_MODULES:  # each registers its tenant's factory when imported
            importlib.import_module(module)
        s = settings.ngsi_ld
        city = _FACTORIES.get(CITY)
        sources: dict[str, EntitySource] = {s.city_tenant: city(store, settings) if city else EmptySource()}
        if not sandbox_enabled(settings):
            return cls(sources, s.default_tenant or s.city_tenant)
        sandbox = _FACTORIES[SANDBOX]
        sources[s.sandbox_tenant] = sandbox(store, settings)

        def spawn(name: str) -> EntitySource:
            return sandbox(store, msgspec.structs.replace(settings, ngsi_ld=msgspec.structs.replace(
                s, sandbox_tenant=name)))

        tenants = cls(sources, s.default_tenant or s.city_tenant, spawn, s.max_tenants)
        tenants.stored = store.ngsi_tenants if store is not None else None  # read on first need, not here
        return tenants

    def name(self, request: Request) -> str:
        return (request.headers.get(HEADER) or "").strip() or self.default

    def source(self, request: Request, create: bool = False) -> EntitySource:
        """The request's tenant, or 404 NonexistentTenant; `create`: a creation makes a sandbox tenant."""
        name = self.name(request)
        src = self.sources.get(name)
        if src is not None:
            return src
        if self.stored is not None:
            with self._lock:
                self._load_stored()
            src = self.sources.get(name)
            if src is not None:
                return src
        if create and self.spawn is not None and _TENANT_NAME.match(name):
            with self._lock:
                if name not in self.sources:
                    if self.spawned >= self.max_spawned:
                        raise NgsiError("OperationNotSupported", f"no more tenants here ([ngsi_ld] max_tenants = "
                                        f"{self.max_spawned})")
                    self.sources[name] = self.spawn(name)
                    self.spawned += 1
                return self.sources[name]
        raise NgsiError("NonexistentTenant", f"no tenant {name!r} here")

    def changed(self, tenant: str, before: Entity | None, after: Entity | None) -> None:
        """Tell the listeners an entity of `tenant` changed; a failing listener never fails the write."""
        for listener in self.listeners:
            try:
                listener(tenant, before, after)
            except Exception:
                log.exception("NGSI-LD change listener failed")


class TenantEcho:
    """§6.3.14: the NGSILD-Tenant of a request is in its response, errors included (ASGI, /ngsi-ld/ paths)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        tenant = None
        if scope["type"] == "http" and scope.get("path", "").startswith("/ngsi-ld/"):
            tenant = next((v for k, v in scope.get("headers", ()) if k == b"ngsild-tenant"), None)
        if tenant is None:
            await self.app(scope, receive, send)
            return

        async def echo(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(k.lower() == b"ngsild-tenant" for k, _ in headers):
                    headers.append((b"NGSILD-Tenant", tenant))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, echo)
