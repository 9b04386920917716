"""Alert routes: list and filter alerts, one alert with its history, acknowledge, resolve, comment; the outbox.

Actions go through the store's lifecycle (`clapas.store.alerts`): an action the alert's state does not allow is a
409, an unknown alert a 404. Acknowledging and resolving are notified like a detector's transitions (the route
comes from the same settings), in the same transaction as the change.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Body, Path, Query, Request
from starlette.responses import Response

from clapas.alerts.routing import Router
from clapas.api import MAX_INT64, MIN_INT64, JSONResponse
from clapas.api.errors import ApiError, errors
from clapas.api.rest import StoreDep, _eui, _time
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


def _act(fn: Any, alert_id: int, *args: Any, **kwargs: Any) -> Response:
    try:
        return JSONResponse(fn(alert_id, *args, **kwargs))
    except AlertNotFound:
        raise ApiError(404, f"unknown alert {alert_id}") from None
    except InvalidTransition as e:
        raise ApiError(409, str(e)) from None


@router.get("/alerts", summary="List alerts (open first)", responses=errors(422))
def list_alerts(
    store: StoreDep,
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
    """Open alerts first, then acknowledged, then resolved, newest first within each."""
    rows = store.alerts(states=_states(state), rule=rule or None, zone=zone or None,
                        device=_eui(device) if device else None, start=_time(from_, "from"), end=_time(to, "to"),
                        limit=limit, offset=offset)
    return JSONResponse({"alerts": rows, "limit": limit, "offset": offset})


@router.get("/alerts/{alert_id}", summary="One alert with its history", responses=errors(404, 422))
def get_alert(store: StoreDep, alert_id: AlertId) -> Response:
    a = store.alert(alert_id)
    if a is None:
        raise ApiError(404, f"unknown alert {alert_id}")
    return JSONResponse(a)


_ACTION_BODY = Body(examples=[{"author": "astreinte eau", "text": "technician sent"}])


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an open alert", responses=errors(404, 409, 422))
def ack_alert(request: Request, store: StoreDep, alert_id: AlertId,
              payload: Annotated[dict[str, Any] | None, _ACTION_BODY] = None) -> Response:
    """open → acknowledged. Optional JSON body `{author, text}`."""
    b = _body(payload, need_text=False)
    return _act(store.acknowledge_alert, alert_id, b.author, b.text, _route(request))


@router.post("/alerts/{alert_id}/resolve", summary="Resolve an alert by hand", responses=errors(404, 409, 422))
def resolve_alert(request: Request, store: StoreDep, alert_id: AlertId,
                  payload: Annotated[dict[str, Any] | None, _ACTION_BODY] = None) -> Response:
    """open or acknowledged → resolved. If the condition persists, the detector's next opening is a new alert."""
    b = _body(payload, need_text=False)
    return _act(store.resolve_alert, alert_id, b.author, b.text, _route(request))


@router.post("/alerts/{alert_id}/comments", summary="Comment an alert", status_code=201,
             responses=errors(404, 422))
def comment_alert(store: StoreDep, alert_id: AlertId,
                  payload: Annotated[dict[str, Any], Body(examples=[{"author": "ana", "text": "meter checked"}])],
                  ) -> Response:
    """JSON body `{author, text}`; returns the alert with its history."""
    b = _body(payload, need_text=True)
    r = _act(store.comment_alert, alert_id, b.author, b.text)
    r.status_code = 201
    return r


@router.get("/notifications", summary="The notification outbox", responses=errors(422))
def list_notifications(
    store: StoreDep,
    status: Annotated[Literal["pending", "delivered", "dead"] | None,
                      Query(description=f"one of {', '.join(NOTIFICATION_STATUSES)}")] = None,
    alert: Annotated[int | None, Query(description="only this alert's notifications", ge=MIN_INT64,
                                       le=MAX_INT64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
) -> Response:
    """Every notification (one per alert event and notifier), newest first: pending ones with their next attempt
    and last error, dead ones kept after their last attempt."""
    rows = store.notifications(status=status, alert_id=alert, limit=limit, offset=offset)
    return JSONResponse({"notifications": rows, "limit": limit, "offset": offset})
