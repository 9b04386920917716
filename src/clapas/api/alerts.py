"""Alert routes: list and filter alerts, one alert with its history, acknowledge, resolve, comment; the outbox.

Actions go through the store's lifecycle (`clapas.store.alerts`): an action the alert's state does not allow is a
409, an unknown alert a 404. Acknowledging and resolving are notified like a detector's transitions (the route
comes from the same settings), in the same transaction as the change.

An alert carries the class of what it comes from (`clapas.charter.classes`): a caller who may not read it gets
it reduced to its open fields (rule, zone, state, times; `withheld: true`), never its subject, evidence or texts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from clapas.alerts.routing import Router
from clapas.api import MAX_INT64, MIN_INT64, JSONResponse
from clapas.api.access import serves
from clapas.api.charter import CallerView, denied
from clapas.api.errors import ApiError, errors
from clapas.api.language import Language, localize_alert, tag
from clapas.api.rest import Mixed, StoreDep, _eui, _time
from clapas.charter import ALERTS_WRITE, PERSONAL, RESTRICTED_READ, Caller
from clapas.store.alerts import ALERT_STATES, NOTIFICATION_STATUSES, AlertNotFound, InvalidTransition

AlertId = Annotated[int, Path(ge=MIN_INT64, le=MAX_INT64)]

router = APIRouter(prefix="/api/v1", default_response_class=JSONResponse, tags=["alerts"])


class ActionBody(msgspec.Struct, kw_only=True):
    author: str = ""
    text: str = ""


def _route(request: Request) -> Router:
    return Router.from_settings(request.app.state.settings.alerts)


def _states(raw: str | None) -> tuple[str, ...]:
    """`state=open,acknowledged` (or `active`, the two together)."""
    if not raw:
        return ()
    out: list[str] = []
    for s in (p.strip() for p in raw.split(",")):
        if s == "active":
            out += ["open", "acknowledged"]
        elif s in ALERT_STATES:
            out.append(s)
        elif s:
            raise ApiError(422, f"query parameter 'state': {s!r} is not one of {', '.join(ALERT_STATES)}, active")
    return tuple(dict.fromkeys(out))


def _body(payload: dict[str, Any] | None, need_text: bool) -> ActionBody:
    try:
        b = msgspec.convert(payload or {}, ActionBody)
    except msgspec.ValidationError as e:
        raise ApiError(422, f"body: {e}") from None
    if need_text and not b.text.strip():
        raise ApiError(422, "body field 'text': a comment needs some text")
    if len(b.text) > 10_000 or len(b.author) > 200:
        raise ApiError(422, "body: text at most 10,000 characters, author at most 200")
    return b


# Acting on an alert needs alerts:write, and reading it: nobody acknowledges what they may not see.
Writer = Annotated[Caller, serves(PERSONAL, scope=ALERTS_WRITE, derived=True, write=True)]


def _act(request: Request, caller: Caller, lang: str, fn: Any, alert_id: int, *args: Any, **kwargs: Any) -> Response:
    view = CallerView.of(request, caller)
    current = request.app.state.store.alert(alert_id)
    if current is not None and not view.may(c := view.alert_class(current)):
        raise denied(caller, f"alert {alert_id} is {c} data: acting on it needs the scope to read it")
    try:
        out = view.alert(localize_alert(fn(alert_id, *args, **kwargs), lang))
        view.report(request, 1)
        return tag(JSONResponse(out), lang)
    except AlertNotFound:
        raise ApiError(404, f"unknown alert {alert_id}") from None
    except InvalidTransition as e:
        raise ApiError(409, str(e)) from None


@router.get("/alerts", summary="List alerts (open first)", responses=errors(422))
def list_alerts(
    request: Request,
    store: StoreDep,
    caller: Mixed,
    lang: Language,
    state: Annotated[str | None, Query(description="open, acknowledged, resolved, or active (open and "
                                                    "acknowledged); comma-separated")] = None,
    rule: Annotated[str | None, Query(description="a rule name, e.g. water.continuous_flow")] = None,
    zone: Annotated[str | None, Query(description="alerts of this zone (its devices' alerts too)")] = None,
    device: Annotated[str | None, Query(description="alerts of this device (EUI)")] = None,
    from_: Annotated[str | None, Query(alias="from", description="opened at or after (ISO 8601)")] = None,
    to: Annotated[str | None, Query(description="opened before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
) -> Response:
    """Open alerts first, then acknowledged, then resolved, newest first within each; those the caller may not
    read reduced to their open fields. Filtering by a device the caller may not read finds nothing. Messages in
    the language asked (`lang`, else `Accept-Language`, else the city's), said by `Content-Language`."""
    view = CallerView.of(request, caller)
    key = _eui(device) if device else None
    states = _states(state)
    if key is not None and view.device(key) is not None and view.readable_device(key) is None:
        rows: list[dict[str, Any]] = []
    else:
        found = store.alerts(states=states, rule=rule or None, zone=zone or None, device=key,
                             start=_time(from_, "from"), end=_time(to, "to"), limit=limit, offset=offset)
        texts = store.alert_texts([a["id"] for a in found])
        rows = view.alerts([localize_alert(a, lang, texts.get(a["id"])) for a in found])
    view.report(request, len(rows))
    return tag(JSONResponse({"alerts": rows, "limit": limit, "offset": offset, "lang": lang}), lang)


@router.get("/alerts/{alert_id}", summary="One alert with its history", responses=errors(404, 422))
def get_alert(request: Request, store: StoreDep, caller: Mixed, alert_id: AlertId, lang: Language) -> Response:
    """The alert with its history (`events`); reduced to its open fields, without history, for a caller who may
    not read its class. Its message and its history's texts in the language asked (as for the list)."""
    a = store.alert(alert_id)
    if a is None:
        raise ApiError(404, f"unknown alert {alert_id}")
    view = CallerView.of(request, caller)
    out = view.alert(localize_alert(a, lang))
    view.report(request, 1)
    return tag(JSONResponse(out), lang)


_ACTION_BODY = Body(examples=[{"author": "astreinte eau", "text": "technician sent"}])


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an open alert", responses=errors(404, 409, 422))
def ack_alert(request: Request, store: StoreDep, caller: Writer, alert_id: AlertId, lang: Language,
              payload: Annotated[dict[str, Any] | None, _ACTION_BODY] = None) -> Response:
    """open → acknowledged. Optional JSON body `{author, text}`."""
    b = _body(payload, need_text=False)
    return _act(request, caller, lang, store.acknowledge_alert, alert_id, b.author, b.text, _route(request))


@router.post("/alerts/{alert_id}/resolve", summary="Resolve an alert by hand", responses=errors(404, 409, 422))
def resolve_alert(request: Request, store: StoreDep, caller: Writer, alert_id: AlertId, lang: Language,
                  payload: Annotated[dict[str, Any] | None, _ACTION_BODY] = None) -> Response:
    """open or acknowledged → resolved. If the condition persists, the detector's next opening is a new alert."""
    b = _body(payload, need_text=False)
    return _act(request, caller, lang, store.resolve_alert, alert_id, b.author, b.text, _route(request))


@router.post("/alerts/{alert_id}/comments", summary="Comment an alert", status_code=201,
             responses=errors(404, 422))
def comment_alert(request: Request, store: StoreDep, caller: Writer, alert_id: AlertId, lang: Language,
                  payload: Annotated[dict[str, Any], Body(examples=[{"author": "ana", "text": "meter checked"}])],
                  ) -> Response:
    """JSON body `{author, text}`; returns the alert with its history."""
    b = _body(payload, need_text=True)
    r = _act(request, caller, lang, store.comment_alert, alert_id, b.author, b.text)
    r.status_code = 201
    return r


@router.get("/notifications", summary="The notification outbox", responses=errors(422))
def list_notifications(
    request: Request,
    store: StoreDep,
    caller: Annotated[Caller, serves(PERSONAL, scope=RESTRICTED_READ, derived=True)],
    status: Annotated[Literal["pending", "delivered", "dead"] | None,
                      Query(description=f"one of {', '.join(NOTIFICATION_STATUSES)}")] = None,
    alert: Annotated[int | None, Query(description="only this alert's notifications", ge=MIN_INT64,
                                       le=MAX_INT64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
) -> Response:
    """Every notification (one per alert event and notifier), newest first: pending ones with their next attempt
    and last error, dead ones kept after their last attempt. Needs restricted:read (the payloads are alerts); a
    notification whose alert the caller may not read keeps only its delivery state."""
    view = CallerView.of(request, caller)
    rows = [view.notification(n) for n in store.notifications(status=status, alert_id=alert, limit=limit,
                                                               offset=offset)]
    view.report(request, len(rows))
    return JSONResponse({"notifications": rows, "limit": limit, "offset": offset})
