"""The dashboard's page, `index.html`, with the city's language on it: `<html data-default-lang="fr">`.

Why a route for one static file: the language is a setting (`[web] language`), the file is the dashboard's own
(`clapas/web/static`, served as it is by the static mount for everything else); `js/i18n.js` reads the attribute
when neither `?lang=` nor an earlier choice says otherwise, before the browser's language.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from clapas.api.errors import ApiError
from clapas.api.language import city_language
from clapas.api.rest import Open
from clapas.api.static import versioned

router = APIRouter(include_in_schema=False)

_HTML_TAG = re.compile(r"<html\b[^>]*>", re.IGNORECASE)
_DEFAULT_LANG = re.compile(r"\s+data-default-lang\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]*)", re.IGNORECASE)


def with_default_language(html: str, lang: str) -> str:
    """The page with `data-default-lang` on its `<html>` element (replaced if the file already has one)."""
    m = _HTML_TAG.search(html)
    if m is None:
        return html
    tag = _DEFAULT_LANG.sub("", m.group(0))
    tag = tag[:-1].rstrip().removesuffix("/").rstrip() + f' data-default-lang="{lang}">'
    return html[:m.start()] + tag + html[m.end():]


def _page(request: Request) -> Response:
    static: Path = request.app.state.static_dir
    try:
        html = (static / "index.html").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ApiError(404, "the dashboard is not installed (no index.html)") from None
    # read at each request, as the static files are: a changed page shows without a restart; its scripts and style
    # sheets named by their content's hash, so that they are cached for good and a new release is a new URL
    page = versioned(with_default_language(html, city_language(request)), static)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


@router.get("/")
def index(request: Request, caller: Open) -> Response:
    return _page(request)


@router.get("/index.html")
def index_file(request: Request, caller: Open) -> Response:
    return _page(request)
