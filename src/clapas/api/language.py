"""The language of an answer: `?lang=fr|en`, else the caller's `Accept-Language`, else the city's `[web] language`.

Alerts are stored with their texts in the city's language and, beside them in their history, the catalog key and
parameters they were made from (`clapas.i18n`); `localize_alert` renders those again in the language asked. Alerts
written before they had keys (or by hand: comments, acknowledgements) keep their stored text.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from starlette.responses import Response

from clapas.api.errors import ApiError
from clapas.i18n import UnsupportedLanguage, negotiate, render_json

LangQuery = Annotated[Literal["fr", "en"] | None, Query(
    description="fr or en; without it, the Accept-Language header's choice, else the city's language "
                "([web] language)")]


def city_language(request: Request) -> str:
    web = getattr(request.app.state.settings, "web", None)
    return getattr(web, "language", "fr")


def language(request: Request, lang: LangQuery = None) -> str:
    try:
        return negotiate(lang, request.headers.get("accept-language"), city_language(request))
    except UnsupportedLanguage as e:
        raise ApiError(422, str(e)) from None


Language = Annotated[str, Depends(language)]


def tag(response: Response, lang: str) -> Response:
    """Say which language the answer is in, and that it depends on the caller's header."""
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = ", ".join(v for v in (response.headers.get("Vary"), "Accept-Language") if v)
    return response


def _opened_text(a: dict[str, Any]) -> Any:
    for e in a.get("events") or ():
        if e.get("kind") == "opened":
            return (e.get("data") or {}).get("text")
    return None


def localize_alert(a: dict[str, Any], lang: str, text: Any = None) -> dict[str, Any]:
    """The alert (a store row) with its `message` and its history's texts in `lang`. `text`: the keyed text it was
    opened with (`Store.alert_texts`), else found in its history (`events`)."""
    out = dict(a)
    keyed = text if text is not None else _opened_text(a)
    if keyed is not None:
        out["message"] = render_json(keyed, lang, a.get("message") or "")
    if a.get("events"):
        out["events"] = [{**e, "text": render_json(e["data"]["text"], lang, e.get("text") or "")}
                         if isinstance(e.get("data"), dict) and e["data"].get("text") else e for e in a["events"]]
    return out
