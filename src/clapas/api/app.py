"""The HTTP application: REST API, ChirpStack HTTP ingest, Prometheus metrics and the dashboard, in one app.

`create_app` only wires what it is given: the caller (the service, a test) owns the store and the pipeline and
closes them. Without a pipeline the app serves read-only and the ingest answers 503.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from clapas import __version__
from clapas.api import (
    JSONResponse,
    access,
    aggregates,
    alerts,
    audit,
    dashboard,
    environment,
    errors,
    mobility,
    museum,
    ngsi_ld,
    rest,
    web,
    zone_series,
)
from clapas.api import exports as open_data
from clapas.api import health as fleet_health
from clapas.api import settings as settings_routes
from clapas.api import tags as tag_routes
from clapas.api.static import DashboardFiles
from clapas.config import Settings
from clapas.connectors import http_ingest
from clapas.pipeline.ingest import Pipeline
from clapas.selfservice.holder import SettingsHolder
from clapas.store.base import Store

GZIP_MIN_BYTES = 1000  # below, a gzip header and a CPU pass cost more than the bytes saved
GZIP_LEVEL = 5


def static_dir() -> Path:
    """The dashboard's files, shipped as package data (`clapas/web/static`)."""
    return Path(str(resources.files("clapas") / "web" / "static"))


def create_app(store: Store, settings: Settings, pipeline: Pipeline | None = None,
               holder: SettingsHolder | None = None) -> FastAPI:
    """`holder`: the process's run-time settings (issue 16), shared with its detectors; default: one of its own
    over `settings` and the store's overrides. Routes read `app.state.settings`, which follows it."""
    app = FastAPI(
        title="clapas",
        version=__version__,
        description="An open IoT data platform for cities: devices, observations, zones and the journal of "
        "everything received. Errors are JSON: `{\"error\": {\"status\": N, \"message\": \"...\"}}`.",
        default_response_class=JSONResponse,
    )
    app.state.store = store
    app.state.settings_holder = holder = holder or SettingsHolder(settings, store)
    app.state.settings = holder.current
    holder.listeners.append(lambda s: setattr(app.state, "settings", s))
    app.state.pipeline = pipeline
    errors.install(app)
    access.install(app, store, settings)  # the data charter: identity, scopes, rate limits, audit log
    app.include_router(rest.health)
    app.include_router(rest.api)
    app.include_router(alerts.router)
    app.include_router(fleet_health.router)
    app.include_router(museum.router)
    app.include_router(environment.router)
    app.include_router(mobility.router)
    app.include_router(aggregates.router)
    app.include_router(zone_series.router)  # a zone's hourly roll-up (issue 14)
    app.include_router(open_data.router)  # open-data exports and the DCAT-AP catalogue (issue 11)
    app.include_router(http_ingest.router)
    app.include_router(audit.router)
    app.include_router(web.router)  # the dashboard's public settings (its maps' tile layer)
    app.include_router(settings_routes.router)  # self-service settings of the departments (issue 16)
    app.include_router(tag_routes.router)  # and the tags of their devices and zones
    ngsi_ld.install(app, store, settings)  # /ngsi-ld/v1/ (ETSI NGSI-LD), its ProblemDetails errors
    # last: the dashboard answers every path the API does not; its page carries the city's language
    app.state.static_dir = static_dir()
    app.include_router(dashboard.router)
    app.mount("/", DashboardFiles(directory=app.state.static_dir, html=True), name="web")
    # outermost: answers over 1 kB compressed when the caller accepts gzip (the dashboard's device listing is
    # ~110 kB of JSON for 1,000 devices, Leaflet ~150 kB); level 5: most of level 9's ratio for a third of its CPU
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)
    return app
