"""What the dashboard reads of the city's settings (`[web]`): the tile layer under its maps.

Only the fields of `WebSettings` are served, and all of them are public by definition (the dashboard is anonymous
unless a key is typed in), so the route is open data; nothing else of the settings — keys, broker URLs, notifier
routes — is ever read here.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from clapas.api import JSONResponse
from clapas.api.access import serves
from clapas.charter import OPEN, Caller
from clapas.config import WebSettings

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["catalogue"])


@router.get("/web/config", summary="The dashboard's settings ([web]): tile layer of the maps")
async def web_config(request: Request, caller: Annotated[Caller, serves(OPEN)]) -> Response:
    """`tile_url` (empty: no tiles, the maps draw only the city's zones and devices), `tile_attribution`,
    `tile_max_zoom`, and the city's `language`. The same answer for every caller: these settings are public.
    `async`: it reads memory only, so it needs no worker thread and answers at once while the page's reports wait
    for the store."""
    web = getattr(request.app.state.settings, "web", None) or WebSettings()
    return JSONResponse(msgspec.structs.asdict(web))
