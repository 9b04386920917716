"""The charter's one layer between the routes and the caller (DESIGN: "The data charter is one layer").

Every route declares what it serves with `serves(...)`, as a dependency that hands the route the resolved `Caller`:

    @api.get("/devices")
    def list_devices(caller: Annotated[Caller, serves(RESTRICTED, derived=True)], ...): ...

Before the route runs, the layer resolves who is calling (`clapas.api.identity`: own keys, OIDC bearer token,
trusted gateway headers, else anonymous), applies the caller's rate limits (429 with `Retry-After`), and refuses
what the caller's scopes do not allow: 401 without a credential or with a bad one (with `WWW-Authenticate`), 403
with a credential that lacks the scope — in the API's JSON error shape, before the route has read or changed
anything. After the response, `AccessMiddleware` adds the rate-limit headers and `X-Request-ID`, and queues the
audit entry: every read of restricted or personal data, every write, every refusal (routes say what they served
in `request.state.audit_rows`, `audit_subjects` (device EUIs) and `audit_class`; a write may name its event in
`audit_event` and its small facts in `audit_detail`, e.g. the setting changed with its old and new values). Routes
never read credentials themselves; a route that declares nothing is refused by tests/api/test_charter_routes.py.

`[auth] enforce = false` turns the layer off (every caller gets every scope, nothing is audited): the API must
then stay on a network the city trusts.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clapas.api.auditlog import AuditWriter
from clapas.api.errors import ApiError
from clapas.api.identity import REALM, Identifier, Unauthorized
from clapas.charter import CLASSES, LOCAL, PERSONAL, READ_SCOPE, RESTRICTED, Caller
from clapas.charter import OPEN as OPEN
from clapas.charter.audit import RATE_LIMITED, READ, REFUSED, WRITE, AuditEntry
from clapas.charter.ratelimit import RateLimiter
from clapas.config import Settings
from clapas.store.base import Store


@dataclass(frozen=True, slots=True)
class Declaration:
    """What a route serves: the most restrictive class it can return, and the scope it needs beyond reading it.

    derived: the route filters or aggregates per row by the caller's scopes (a listing mixing classes), so a
    caller without the class's read scope still gets an answer, with what it may see.
    """

    data_class: str
    scope: str | None = None
    derived: bool = False
    write: bool = False

    def required(self) -> tuple[str, ...]:
        """Scopes the caller must hold before the route runs."""
        need = [] if self.derived else [READ_SCOPE.get(self.data_class, READ_SCOPE["personal"])]
        if self.scope:
            need.append(self.scope)
        return tuple(need)


DECLARATION_ATTR = "__clapas_declaration__"
_REQUEST_ID = re.compile(r"^[\w.:@/+=-]{1,128}$")
# request ids made here: a random prefix per process and a counter (a uuid4 per request costs a system call)
_ID_PREFIX = uuid.uuid4().hex[:12]
_ids = itertools.count(1)


class Access:
    """The layer's state for one app: who is calling, their counts, the audit log's writer."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.enforce = settings.auth.enforce
        self.rate_limits = settings.auth.rate_limits
        self.identifier = Identifier(settings, store)
        self.limiter = RateLimiter()
        self.audit = AuditWriter(store, settings.audit.flush_interval_s, settings.audit.batch_size)

    def admit(self, request: Request, decl: Declaration,
              override: Callable[[Request], Caller] | None = None) -> Caller:
        """The caller, once allowed to run the route; else the ApiError (401, 403, 429) that refuses it."""
        if not self.enforce:
            return LOCAL
        try:
            caller = override(request) if override is not None else self.identifier.caller(request)
        except Unauthorized as e:
            request.state.refusal = e
            raise ApiError(401, e.message, {"WWW-Authenticate": e.challenge}) from None
        request.state.caller = caller
        if self.rate_limits and caller.via != "local":
            ident = (f"key:{caller.key_id}" if caller.key_id else f"ip:{caller.client}" if caller.anonymous
                     else f"{caller.via}:{caller.actor}")
            decision = self.limiter.hit(ident, caller.rate_per_minute, caller.rate_per_day, time.time())
            request.state.ratelimit_headers = decision.headers
            if not decision.allowed:
                raise ApiError(429, f"API rate limit exceeded: retry in {decision.retry_after} s")
        missing = [s for s in decl.required() if not caller.can(s)]
        if missing:
            need = ("the scopes " if len(missing) > 1 else "the scope ") + " and ".join(missing)
            if caller.anonymous:
                raise ApiError(401, f"this route needs a credential with {need}", {"WWW-Authenticate": REALM})
            raise ApiError(403, f"the role {caller.role!r} of this credential lacks {need}")
        return caller

    def close(self) -> None:
        self.audit.close()


def identify(request: Request) -> Caller:
    """Who is calling, as the app's access layer sees it (LOCAL for an app without one: the CLI, tools)."""
    access: Access | None = getattr(request.app.state, "access", None)
    if access is None or not access.enforce:
        return LOCAL
    return access.identifier.caller(request)


def serves(data_class: str, *, scope: str | None = None, derived: bool = False, write: bool = False) -> Any:
    """The dependency a route declares itself with (see the module docstring)."""
    decl = Declaration(data_class, scope, derived, write)

    async def access(request: Request) -> Caller:
        request.state.declaration = decl
        state = request.app.state
        layer: Access | None = getattr(state, "access", None)
        override = getattr(state, "identify", None)
        if layer is None:
            caller = override(request) if override is not None else LOCAL
        elif layer.enforce and override is None and layer.identifier.may_block(request):
            caller = await run_in_threadpool(layer.admit, request, decl, override)
        else:
            caller = layer.admit(request, decl, override)
        request.state.caller = caller
        return caller

    setattr(access, DECLARATION_ATTR, decl)
    return Depends(access)


def served_class(decl: Declaration, caller: Caller | None) -> str:
    """What a route served at most: its class, and for a derived route no more than the caller may read."""
    if not decl.derived or caller is None:
        return decl.data_class
    top = CLASSES.index(decl.data_class) if decl.data_class in CLASSES else len(CLASSES) - 1
    readable = [c for c in CLASSES[:top + 1] if caller.may_read(c)]
    return readable[-1] if readable else OPEN


def entry_for(state: dict[str, Any], scope: Scope, status: int) -> AuditEntry | None:
    """The audit entry of a finished request, or None when it needs none (an open read, an undeclared route)."""
    decl: Declaration | None = state.get("declaration")
    caller: Caller | None = state.get("caller")
    if status == 429:
        event = RATE_LIMITED
    elif status in (401, 403) and (decl is not None or "refusal" in state):
        event = REFUSED
    elif decl is None:
        return None
    elif decl.write:
        event = state.get("audit_event") or WRITE  # a route may name what it wrote (settings.changed)
    elif 200 <= status < 300:
        event = READ
    else:
        return None
    data_class = state.get("audit_class") or (served_class(decl, caller) if decl else "")
    if event == READ and data_class not in (RESTRICTED, PERSONAL):
        return None
    refusal: Unauthorized | None = state.get("refusal")
    route = scope.get("route")
    c = caller or Caller(role="", client=str((scope.get("client") or ("",))[0] or ""))
    return AuditEntry(
        event=event, actor=refusal.actor if refusal and refusal.actor else c.actor,
        via="key" if refusal and refusal.key_id else c.via, role=c.role,
        key_id=refusal.key_id if refusal else c.key_id, client=c.client, method=scope.get("method", ""),
        route=getattr(route, "path", "") or scope.get("path", ""), data_class=data_class,
        row_count=state.get("audit_rows"), subjects=state.get("audit_subjects"), status=status,
        request_id=state.get("request_id", ""),
        detail={**({"withheld": state["audit_withheld"]} if state.get("audit_withheld") else {}),
                **(state.get("audit_detail") or {})} or None,
        time=datetime.now(UTC))


class AccessMiddleware:
    """Adds X-Request-ID and the rate-limit headers to every response; queues the audit entry of each request."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        rid = ""
        for k, v in scope.get("headers", ()):
            if k == b"x-request-id":
                rid = v.decode("latin-1")
                break
        if not _REQUEST_ID.match(rid):
            rid = f"{_ID_PREFIX}-{next(_ids)}"
        state["request_id"] = rid
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", rid.encode("latin-1"))]
                for k, v in (state.get("ratelimit_headers") or {}).items():
                    headers.append((k.lower().encode("latin-1"), v.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            entry = entry_for(state, scope, status)
            if entry is not None:
                self.access.audit.record(entry)


def install(app: FastAPI, store: Store, settings: Settings) -> Access:
    """Put the access layer on an app (`create_app` does): routes' `serves` then identify and enforce."""
    access = Access(settings, store)
    app.state.access = access
    if access.enforce:
        app.add_middleware(AccessMiddleware, access=access)
    app.router.on_shutdown.append(access.close)  # `clapas run` closes it itself (its server runs no lifespan)
    return access


__all__ = ["DECLARATION_ATTR", "OPEN", "Access", "Declaration", "identify", "install", "serves"]
