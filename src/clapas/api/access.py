"""The charter's one layer between the routes and the caller (DESIGN: "The data charter is one layer").

Every route declares what it serves with `serves(...)`, as a dependency that hands the route the resolved `Caller`:

    @api.get("/devices")
    def list_devices(caller: Annotated[Caller, serves(RESTRICTED, derived=True)], ...): ...

The layer resolves who is calling (`identify`: own keys, OIDC bearer token, trusted gateway headers, else
anonymous), refuses what the caller's scopes do not allow (401 without or with a bad credential, 403 without the
scope), applies rate limits and writes the audit log. Routes never read credentials themselves; a route that
declares nothing is refused by tests/api/test_charter_routes.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from clapas.charter import LOCAL, READ_SCOPE, Caller
from clapas.charter import OPEN as OPEN


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


def identify(request: Request) -> Caller:
    """Who is calling. Placeholder until the identity modes land: everyone is the local operator."""
    return LOCAL


def serves(data_class: str, *, scope: str | None = None, derived: bool = False, write: bool = False) -> Any:
    """The dependency a route declares itself with (see the module docstring)."""
    decl = Declaration(data_class, scope, derived, write)

    def access(request: Request) -> Caller:
        resolve: Callable[[Request], Caller] = getattr(request.app.state, "identify", identify)
        caller = resolve(request)
        request.state.caller = caller
        request.state.declaration = decl
        return caller

    setattr(access, DECLARATION_ATTR, decl)
    return Depends(access)
