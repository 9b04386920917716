"""The city's read-only NGSI-LD tenant: entities built from clapas's store with the FIWARE Smart Data Models.

`models.py` says which model each device becomes, `units.py` the UN/CEFACT codes and conversions, `entities.py`
builds the entities, `source.py` is the `EntitySource` over the store through the charter, `context.py` the clapas
JSON-LD context (served at `/ngsi-ld/contexts/clapas.jsonld`, and built into the context resolver so that no
request needs to fetch it). Importing this package registers the tenant (`tenants.register_tenant(CITY, …)`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from starlette.responses import Response

from clapas.api.access import serves
from clapas.api.ngsi_ld import context as ld_context
from clapas.api.ngsi_ld.city.context import CONTEXT_PATH, document
from clapas.api.ngsi_ld.city.source import CitySource
from clapas.api.ngsi_ld.tenants import CITY, register_tenant
from clapas.charter import OPEN, Caller
from clapas.charter.classes import Classifier
from clapas.config import Settings

router = APIRouter(tags=["ngsi-ld"])


def factory(store: Any, settings: Settings) -> CitySource:
    return CitySource(store, Classifier(settings.charter), settings.flood, settings.ngsi_ld.noise_period_s,
                      settings.charter.aggregates, settings.timezone)


@router.get(CONTEXT_PATH, summary="The clapas JSON-LD context (the city's terms → Smart Data Models IRIs)")
def clapas_context(caller: Annotated[Caller, serves(OPEN)]) -> Response:
    import msgspec

    return Response(msgspec.json.encode(document()), media_type="application/ld+json",
                    headers={"Cache-Control": "public, max-age=86400"})


register_tenant(CITY, factory)
ld_context.BUILT_IN_PATHS[CONTEXT_PATH] = document  # any host's /ngsi-ld/contexts/clapas.jsonld: no fetch
