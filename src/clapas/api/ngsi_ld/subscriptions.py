"""Subscriptions (ETSI GS CIM 009 §5.2.12, §6.10–6.11): create, list, retrieve, update, delete.

A subscription belongs to the credential that made it (an API key, whose charter view its notifications are built
with, so that a subscriber is never notified of what it may not read, and whose revocation stops them): a caller
lists, reads, changes and deletes only its own; one key holds at most `[ngsi_ld] max_subscriptions_per_key`. An
anonymous caller cannot subscribe (401). What the matching engine needs is expanded once here with the request's
`@context` (`matching.Spec`); the body is kept in the subscriber's terms and answered back with the current
notification status and counts. Notifications: `clapas.api.ngsi_ld.matching` and the outbox.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from clapas.api.access import serves
from clapas.api.charter import denied
from clapas.api.ngsi_ld import negotiation as neg
from clapas.api.ngsi_ld.context import Context
from clapas.api.ngsi_ld.entity import is_uri, parse_time, utc_text
from clapas.api.ngsi_ld.errors import NgsiError, bad_request, invalid_request, not_found
from clapas.api.ngsi_ld.matching import CITY, TRIGGERS, Selector, Spec
from clapas.api.ngsi_ld.query import parse_q, parse_scope_q
from clapas.charter import LOCAL, OPEN, Caller

router = APIRouter(prefix="/ngsi-ld/v1", tags=["NGSI-LD"])
Reader = Annotated[Caller, serves(OPEN)]
Writer = Annotated[Caller, serves(OPEN, write=True)]

URN = "urn:ngsi-ld:Subscription:"
FORMATS = ("normalized", "keyValues", "concise")
ACCEPTS = (neg.JSON, neg.LD_JSON)
_MEMBERS = {"id", "type", "subscriptionName", "description", "entities", "watchedAttributes", "q", "geoQ",
            "scopeQ", "notification", "expiresAt", "isActive", "throttling", "timeInterval", "lang", "@context",
            "notificationTrigger", "csf", "temporalQ", "status", "jsonldContext"}
_READ_ONLY = {"status"}  # kept by the server; a client's value is ignored (§5.2.12)


def _state(request: Request) -> Any:
    return request.app.state.ngsi_ld


def _store(request: Request) -> Any:
    return request.app.state.store


def _owner(caller: Caller) -> tuple[str | None, str, list[str]]:
    """(key id, actor, scopes kept for a subject without a key) of who subscribes."""
    if caller.anonymous:
        raise denied(caller, "subscribing needs a credential (an API key): notifications are built with its scopes "
                             "and stop when it is revoked")
    if caller.key_id:
        return caller.key_id, caller.actor, []
    return None, caller.actor, [] if caller is LOCAL else sorted(caller.scopes)


def _mine(sub: dict[str, Any], caller: Caller) -> bool:
    if caller is LOCAL or caller.via == "local":
        return True
    if caller.key_id:
        return sub["owner_key"] == caller.key_id
    return sub["owner_key"] is None and sub["owner"] == caller.actor


def _number(body: dict[str, Any], name: str) -> float:
    v = body.get(name)
    if v is None:
        return 0.0
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise bad_request(f"{name} must be a positive number of seconds")
    return float(v)


def spec_of(body: dict[str, Any], ctx: Context, min_interval_s: float) -> Spec:
    """The subscription's checks (§5.2.12) and what the engine needs of it, expanded."""
    unknown = sorted(set(body) - _MEMBERS)
    if unknown:
        raise bad_request(f"unknown subscription member(s): {', '.join(unknown)}")
    if body.get("type") != "Subscription":
        raise bad_request('a subscription needs "type": "Subscription"')
    entities = body.get("entities")
    watched = body.get("watchedAttributes")
    if entities is None and watched is None:
        raise bad_request("a subscription needs entities or watchedAttributes")
    selectors: list[Selector] = []
    if entities is not None:
        if not isinstance(entities, list) or not entities:
            raise bad_request("entities must be a non-empty array of EntitySelector")
        for e in entities:
            if not isinstance(e, dict) or not isinstance(e.get("type"), str) or not e["type"]:
                raise bad_request("each EntitySelector needs a type")
            if "id" in e and not is_uri(e["id"]):
                raise bad_request(f"EntitySelector id {e['id']!r} is not a URI")
            pattern = e.get("idPattern")
            if pattern is not None:
                try:
                    re.compile(pattern)
                except (re.error, TypeError):
                    raise bad_request(f"idPattern {pattern!r} is not a regular expression") from None
            selectors.append(Selector(type=ctx.expand(e["type"]), id=e.get("id"), id_pattern=pattern))
    if watched is not None and (not isinstance(watched, list) or not watched or
                                not all(isinstance(w, str) and w for w in watched)):
        raise bad_request("watchedAttributes must be a non-empty array of attribute names")
    throttling, interval = _number(body, "throttling"), _number(body, "timeInterval")
    if interval and watched is not None:
        raise bad_request("timeInterval and watchedAttributes cannot go together (§5.2.12)")
    if interval and throttling:
        raise bad_request("timeInterval and throttling cannot go together (§5.2.12)")
    if interval and interval < min_interval_s:
        raise bad_request(f"timeInterval must be at least {min_interval_s:g} s here ([ngsi_ld] min_time_interval_s)")
    q = body.get("q")
    if q is not None:
        if not isinstance(q, str):
            raise bad_request("q must be a string")
        parse_q(q, ctx)  # InvalidRequest when it does not parse
    scope_q = body.get("scopeQ")
    if scope_q is not None:
        parse_scope_q(str(scope_q))
    if "geoQ" in body:
        raise NgsiError("OperationNotSupported", "geoQ in subscriptions is not supported here")
    n = body.get("notification")
    if not isinstance(n, dict) or not isinstance(n.get("endpoint"), dict):
        raise bad_request("a subscription needs notification.endpoint")
    endpoint = n["endpoint"]
    uri = endpoint.get("uri")
    if not isinstance(uri, str) or not is_uri(uri):
        raise bad_request("notification.endpoint.uri must be a URI")
    if uri.split(":", 1)[0].lower() not in ("http", "https", "mqtt", "mqtts"):
        raise bad_request("notification.endpoint.uri: http(s) and mqtt(s) endpoints are delivered here")
    accept = endpoint.get("accept", neg.JSON)
    if accept not in ACCEPTS:
        raise bad_request(f"notification.endpoint.accept must be one of {', '.join(ACCEPTS)}")
    fmt = n.get("format", "normalized")
    if fmt not in FORMATS:
        raise bad_request(f"notification.format must be one of {', '.join(FORMATS)}")
    attrs = n.get("attributes")
    if attrs is not None and (not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs)):
        raise bad_request("notification.attributes must be an array of attribute names")
    info = {}
    for kv in endpoint.get("receiverInfo") or []:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str) or "value" not in kv:
            raise bad_request("receiverInfo must be an array of {key, value}")
        info[kv["key"]] = str(kv["value"])
    triggers = body.get("notificationTrigger")
    if triggers is not None and (not isinstance(triggers, list) or not triggers or
                                 not all(isinstance(t, str) and t in TRIGGERS for t in triggers)):
        raise bad_request(f"notificationTrigger must be a non-empty array of {', '.join(TRIGGERS)}")
    show_changes = n.get("showChanges", False)
    if not isinstance(show_changes, bool):
        raise bad_request("notification.showChanges must be true or false")
    if "expiresAt" in body:
        parse_time(body["expiresAt"], "expiresAt")
    if "isActive" in body and not isinstance(body["isActive"], bool):
        raise bad_request("isActive must be true or false")
    return Spec(endpoint=uri, entities=selectors, watched=[ctx.expand(w) for w in watched] if watched else None,
                q=q, attrs=[ctx.expand(a) for a in attrs] if attrs else None, format=fmt, accept=accept,
                receiver_info=info, throttling_s=throttling, time_interval_s=interval, context=ctx.source,
                scope_q=scope_q, triggers=list(dict.fromkeys(triggers)) if triggers else None,
                show_changes=show_changes)


def _expires(body: dict[str, Any]) -> datetime | None:
    return parse_time(body["expiresAt"], "expiresAt") if body.get("expiresAt") else None


def _status(sub: dict[str, Any], now: datetime) -> str:
    if sub["expires_at"] is not None and sub["expires_at"] <= now:
        return "expired"
    return "active" if sub["active"] else "paused"


def represent(sub: dict[str, Any]) -> dict[str, Any]:
    """The subscription as stored, with what the server keeps: status and the notification's counts."""
    body = {k: v for k, v in sub["body"].items() if k != "@context"}
    body["id"] = sub["id"]
    body["status"] = _status(sub, datetime.now(UTC))
    body["isActive"] = sub["active"]
    n = dict(body.get("notification") or {})
    n["status"] = "failed" if sub["last_failure"] and (not sub["last_success"] or
                                                        sub["last_failure"] > sub["last_success"]) else "ok"
    n["timesSent"] = sub["times_sent"]
    n["timesFailed"] = sub["times_failed"]
    for k, col in (("lastNotification", "last_notification"), ("lastSuccess", "last_success"),
                   ("lastFailure", "last_failure")):
        if sub[col] is not None:
            n[k] = utc_text(sub[col])
    body["notification"] = n
    return body


def _get(request: Request, caller: Caller, sub_id: str) -> dict[str, Any]:
    if not is_uri(sub_id):
        raise bad_request(f"subscription id {sub_id!r} is not a URI")
    sub = _store(request).subscription(sub_id)
    if sub is None or not _mine(sub, caller) or (sub["tenant"] or CITY) != _tenant(request):
        raise not_found(f"no subscription {sub_id}")
    return sub


def _tenant(request: Request) -> str:
    st = _state(request)
    st.tenants.source(request)  # 404 NonexistentTenant
    name = st.tenants.name(request)
    return CITY if name == st.settings.ngsi_ld.city_tenant else name


@router.post("/subscriptions", status_code=201, summary="Create a subscription (§6.10.3.1)")
async def create_subscription(request: Request, caller: Writer) -> Response:
    key_id, actor, scopes = _owner(caller)  # before anything else: an anonymous caller is refused, whatever it sent
    neg.accepted(request)
    payload, ctx, _ = await neg.read_body(request, _state(request).resolver)
    settings = _state(request).settings.ngsi_ld
    spec = spec_of(payload, ctx, settings.min_time_interval_s)
    tenant = _tenant(request)
    store = _store(request)
    limit = settings.max_subscriptions_per_key
    if limit and store.count_subscriptions(key_id, actor) >= limit:
        raise NgsiError("Forbidden", f"this credential already holds {limit} subscriptions "
                        "([ngsi_ld] max_subscriptions_per_key): delete one first", status=403)
    sub_id = payload.get("id") or f"{URN}{uuid.uuid4()}"
    if not is_uri(sub_id):
        raise bad_request(f"subscription id {sub_id!r} is not a URI")
    if store.subscription(sub_id) is not None:
        raise NgsiError("AlreadyExists", f"the subscription {sub_id} already exists")
    body = {k: v for k, v in payload.items() if k not in _READ_ONLY}
    store.create_subscription(sub_id, body=body, spec=msgspec.to_builtins(spec), tenant=tenant, owner_key=key_id,
                              owner=actor, owner_scopes=scopes, active=payload.get("isActive", True),
                              expires_at=_expires(payload))
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/subscriptions/{sub_id}"})


@router.get("/subscriptions", summary="List subscriptions (§6.10.3.2)")
def list_subscriptions(request: Request, caller: Reader) -> Response:
    st = _state(request)
    media = neg.accepted(request)
    allowed = {"limit", "offset", "count"}
    unknown = [k for k in request.query_params if k not in allowed]
    if unknown:
        raise invalid_request(f"unknown parameter {unknown[0]!r}")
    limit, offset = _int(request, "limit", st.settings.ngsi_ld.default_limit), _int(request, "offset", 0)
    if limit > st.settings.ngsi_ld.max_limit:
        raise NgsiError("TooManyResults", f"limit {limit} is above {st.settings.ngsi_ld.max_limit}")
    tenant = _tenant(request)
    mine = [s for s in _store(request).subscriptions(tenant=None) if _mine(s, caller)
            and (s["tenant"] or CITY) == tenant]
    headers = {}
    if request.query_params.get("count") == "true":
        headers["NGSILD-Results-Count"] = str(len(mine))
    ctx = neg.request_context(request, st.resolver)
    return neg.respond([represent(s) for s in mine[offset:offset + limit]], media, ctx, request, headers=headers)


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise bad_request(f"{name} must be a non-negative integer")
    return int(raw)


@router.get("/subscriptions/{subscriptionId}", summary="Retrieve a subscription (§6.11.3.1)")
def retrieve_subscription(request: Request, subscriptionId: str, caller: Reader) -> Response:
    st = _state(request)
    media = neg.accepted(request)
    sub = _get(request, caller, subscriptionId)
    return neg.respond(represent(sub), media, neg.request_context(request, st.resolver), request)


@router.patch("/subscriptions/{subscriptionId}", status_code=204, summary="Update a subscription (§6.11.3.2)")
async def update_subscription(request: Request, subscriptionId: str, caller: Writer) -> Response:
    _owner(caller)
    st = _state(request)
    payload, ctx, _ = await neg.read_body(request, st.resolver, patch=True)
    sub = _get(request, caller, subscriptionId)
    if "id" in payload and payload["id"] != subscriptionId:
        raise bad_request("a subscription's id cannot change")
    merged = {**sub["body"], **{k: v for k, v in payload.items() if k not in _READ_ONLY}}
    for k, v in payload.items():
        if v is None:  # merge-patch: null removes the member
            merged.pop(k, None)
    if "notification" in payload and isinstance(payload["notification"], dict):
        merged["notification"] = {**(sub["body"].get("notification") or {}), **payload["notification"]}
    if "@context" not in payload and "@context" in sub["body"]:
        merged.pop("@context")
    ctx = ctx if ("@context" in payload or neg.link_context_url(request)) else \
        st.resolver.resolve(sub["spec"].get("context"))
    spec = spec_of({k: v for k, v in merged.items() if k != "@context"}, ctx,
                   st.settings.ngsi_ld.min_time_interval_s)
    _store(request).update_subscription(subscriptionId, body=merged, spec=msgspec.to_builtins(spec),
                                        active=merged.get("isActive", True), expires_at=_expires(merged))
    return neg.no_content()


@router.delete("/subscriptions/{subscriptionId}", status_code=204, summary="Delete a subscription (§6.11.3.3)")
def delete_subscription(request: Request, subscriptionId: str, caller: Writer) -> Response:
    _owner(caller)
    _get(request, caller, subscriptionId)
    _store(request).delete_subscription(subscriptionId)
    return neg.no_content()
