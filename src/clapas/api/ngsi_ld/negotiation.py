"""Content negotiation (ETSI GS CIM 009 §6.3.4–6.3.6, §6.3.11): which media type answers, which bodies are accepted,
where the `@context` of a request comes from and how a response carries it.

- Accept: `application/json`, `application/ld+json`, `application/geo+json` (the last only where a route allows it),
  in that order when several match with the same weight; `q` weights win; no match → 406. No Accept → JSON.
- Content-Type of a body: `application/json` or `application/ld+json` (PATCH also `application/merge-patch+json`),
  else 415.
- The request's context: with `application/ld+json` the body's `@context` (required; a Link header too is 400);
  otherwise the Link header's (a body `@context` is then 400); neither → the core context.
- A response in `application/json` names its context in a Link header; in `application/ld+json` the body carries
  `@context`; GeoJSON carries it in the body unless `Prefer: body=json`.

Public API (stable): `JSON`, `LD_JSON`, `GEO_JSON`, `MERGE_PATCH`, `accepted(request, allow_geo)`,
`body_media(request)`, `link_context_url(request)`, `read_body(request, resolver)` → (payload, Context, media),
`request_context(request, resolver)`, `respond(...)`, `no_content(...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from clapas.api.ngsi_ld.context import Context, ContextResolver
from clapas.api.ngsi_ld.errors import NgsiError, bad_request, invalid_request

JSON = "application/json"
LD_JSON = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
_ORDER = (JSON, LD_JSON, GEO_JSON)
_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
_encoder = msgspec.json.Encoder()


def _media_ranges(header: str) -> list[tuple[str, float]]:
    out = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for f in fields[1:]:
            k, _, v = f.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v.strip())
                except ValueError:
                    q = 0.0
        out.append((media, max(0.0, min(q, 1.0))))
    return out


def _weight(media: str, ranges: list[tuple[str, float]]) -> float:
    """The q of `media` by the most specific range that matches it (RFC 9110 §12.5.1); -1 if none does."""
    best, spec = -1.0, -1
    top = media.partition("/")[0]
    for rng, q in ranges:
        r_top, _, r_sub = rng.partition("/")
        if rng == media:
            s = 3
        elif r_top == top and r_sub == "*":
            s = 2
        elif rng == "*/*":
            s = 1
        else:
            continue
        if s > spec:
            best, spec = q, s
    return best


def accepted(request: Request, allow_geo: bool = False) -> str:
    """The media type of the response, or 406 when the Accept header allows none of those this route serves."""
    header = request.headers.get("accept", "").strip()
    if not header:
        return JSON
    ranges = _media_ranges(header)
    choices = _ORDER if allow_geo else _ORDER[:2]
    best, best_q = None, 0.0
    for media in choices:  # spec order breaks ties: only a strictly higher weight displaces an earlier type
        q = _weight(media, ranges)
        if q > best_q:
            best, best_q = media, q
    if best is None:
        served = ", ".join(choices)
        raise NgsiError("NotAcceptable", f"Accept {header!r} allows none of {served}", status=406)
    return best


def body_media(request: Request, patch: bool = False) -> str:
    """The body's media type, or 415 when it is not one the spec accepts."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in (JSON, LD_JSON) or (patch and ctype == MERGE_PATCH):
        return JSON if ctype == MERGE_PATCH else ctype
    raise NgsiError("UnsupportedMediaType", f"Content-Type {ctype or '(none)'!r} is not application/json or "
                    "application/ld+json", status=415)


def link_context_url(request: Request) -> str | None:
    """The context URL of the request's JSON-LD Link header (§6.3.5), if it has one."""
    values = request.headers.getlist("link")
    found = []
    for value in values:
        for link in value.split(","):
            link = link.strip()
            if not link.startswith("<") or ">" not in link:
                continue
            url, _, params = link[1:].partition(">")
            rel = [p.strip() for p in params.split(";") if p.strip().lower().startswith("rel=")]
            if rel and rel[0][4:].strip().strip('"') == _CONTEXT_REL:
                found.append(url.strip())
    if len(found) > 1:
        raise bad_request("more than one JSON-LD context Link header")
    return found[0] if found else None


def request_context(request: Request, resolver: ContextResolver) -> Context:
    """The context of a request without a body (GET, DELETE): the Link header's, else the core context."""
    return resolver.resolve(link_context_url(request))


async def read_body(request: Request, resolver: ContextResolver, patch: bool = False,
                    array: bool = False, per_item: bool = False) -> tuple[Any, Context, str]:
    """The request's JSON body, its context and its media type, with the spec's checks (411, 415, 400).
    `per_item` (an array in application/ld+json, batch operations): each item's @context is the caller's to
    resolve (one item's unavailable context fails that item only); the context returned is then the core one."""
    if "content-length" not in request.headers:  # a chunked body: §6.3.4 wants its length declared
        raise NgsiError("LengthRequired", "Content-Length is required", status=411)
    media = body_media(request, patch)
    raw = await request.body()
    try:
        payload = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError as e:
        raise invalid_request(f"the body is not valid JSON: {e}") from None
    if payload is None:
        raise invalid_request("the request needs a JSON body")
    expected = list if array else dict
    if not isinstance(payload, expected):
        raise bad_request(f"the body must be a JSON {'array' if array else 'object'}")
    link = link_context_url(request)
    items = payload if array else [payload]
    if media == LD_JSON:
        if link is not None:
            raise bad_request("with Content-Type application/ld+json the @context goes in the body, not a Link header")
        ctxs = [i.get("@context") for i in items if isinstance(i, dict)]
        if any(c is None for c in ctxs):
            raise bad_request("an application/ld+json body must carry @context")
        if per_item and array:
            return payload, resolver.resolve(None), media
        ctx = await run_in_threadpool(resolver.resolve, ctxs[0] if ctxs else None)  # a fetch blocks
    else:
        if any(isinstance(i, dict) and "@context" in i for i in items):
            raise bad_request("an application/json body must not carry @context (send it in a Link header, or "
                              "use application/ld+json)")
        ctx = await run_in_threadpool(resolver.resolve, link)
    return payload, ctx, media


def _with_context(payload: Any, ctx: Context) -> Any:
    if isinstance(payload, dict):
        return {"@context": ctx.body_context(), **payload} if "@context" not in payload else payload
    if isinstance(payload, list):
        return [_with_context(p, ctx) if isinstance(p, dict) else p for p in payload]
    return payload


def respond(payload: Any, media: str, ctx: Context, request: Request | None = None, status: int = 200,
            headers: dict[str, str] | None = None, links: Sequence[str] = ()) -> Response:
    """A response in `media` carrying `ctx` where the spec puts it (Link header or body `@context`); `links`:
    more Link header fields (pagination), each its own, after the context's."""
    out = dict(headers or {})
    if media == LD_JSON:
        payload = _with_context(payload, ctx)
    elif media == GEO_JSON:
        prefer = (request.headers.get("prefer", "") if request is not None else "").replace(" ", "").lower()
        if "body=json" in prefer:
            out["Link"] = ctx.link
        elif isinstance(payload, dict):
            payload = {**payload, "@context": ctx.body_context()}
    else:
        out["Link"] = ctx.link
    response = Response(_encoder.encode(payload), status_code=status, headers=out, media_type=media)
    for link in links:
        response.headers.append("Link", link)
    return response


def no_content(headers: dict[str, str] | None = None) -> Response:
    """204 without a body (and so without Content-Length, §6.3.6)."""
    return Response(status_code=204, headers=headers)
