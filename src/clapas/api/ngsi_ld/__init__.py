"""The NGSI-LD API (ETSI GS CIM 009) at `/ngsi-ld/v1/`: a tenant-blind protocol layer over `EntitySource`s.

Modules: `source.py` (the seam with the tenants), `context.py` (@context, term expansion and compaction),
`errors.py` (ProblemDetails), `negotiation.py` (Accept, Content-Type, Link), `tenants.py` (NGSILD-Tenant → source),
`entity.py` (entity forms), `query.py` (`q`, `scopeQ`, type expressions, projections), `geo.py` (geo-queries),
`temporal.py` (temporal parameters and aggregation), `sandbox.py` (the writable sandbox tenants), and the HTTP
side: `common.py` (what every route shares), `selection.py` (filters, projections, representations, joins),
`routes.py` (reads), `writes.py` (sandbox writes, batch), `temporal_routes.py` (the temporal API).

`install(app, store, settings)` is all `api/app.py` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from clapas.api.ngsi_ld.context import ContextResolver
from clapas.api.ngsi_ld.tenants import TenantEcho, Tenants
from clapas.config import Settings, names


@dataclass
class NgsiState:
    """What the routes need, on `app.state.ngsi_ld`."""

    tenants: Tenants
    resolver: ContextResolver
    settings: Settings


def install(app: FastAPI, store: Any, settings: Settings) -> NgsiState:
    """Mount `/ngsi-ld/v1/` on `app` with its error handling; returns the state (tests and subscriptions use it)."""
    # city: registers the city's tenant
    from clapas.api.ngsi_ld import city, errors, routes, subscriptions, temporal_routes, writes

    s = settings.ngsi_ld
    state = NgsiState(Tenants.for_app(store, settings),
                      ContextResolver(names(s.context_hosts), s.context_cache or None, s.context_timeout_s),
                      settings)
    app.state.ngsi_ld = state
    errors.install(app)
    app.include_router(routes.router)  # first: its POST /entityOperations/query before writes' {operation}
    app.include_router(writes.router)
    app.include_router(temporal_routes.router)
    app.include_router(city.router)
    app.include_router(subscriptions.router)
    app.add_middleware(TenantEcho)
    return state
