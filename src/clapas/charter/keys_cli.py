"""`clapas keys create|list|show|revoke|rotate`: the city's own API keys.

A key's secret is printed once, when it is created or rotated, and kept only hashed; every operation is written
to the audit log. With a DuckDB store, run these while `clapas run` is stopped (one process opens the file);
with PostgreSQL, at any time: a running server sees a new key at once and a revocation within `[auth]
key_cache_s`.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from clapas.cli import add_config_argument
from clapas.config import load_settings

_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DEFAULT_GRACE = "24h"  # design: a day for the clients to take the new secret


def when(text: str, now: datetime) -> datetime:
    """`90d`, `12h`, `2w`, `30m` from now, or an ISO 8601 date or time (UTC without an offset)."""
    m = _SPAN.match(text.strip())
    if m:
        return now + timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SystemExit(f"clapas: {text!r} is neither a span (90d, 12h, 2w, 30m) nor an ISO 8601 date") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def operator() -> str:
    """Who ran the command, as the audit log names them."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (a container): still a local operator
        return "cli"


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    from clapas.store.base import open_store

    settings = load_settings(args.config)
    return settings, open_store(settings.store, timezone=settings.timezone)


def state_of(k: dict[str, Any], now: datetime) -> str:
    if k["revoked_at"] is not None:
        return "revoked"
    if k["expires_at"] is not None and now >= k["expires_at"]:
        return "expired"
    return "active"


def public_key(k: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A key as shown: everything but its hashes."""
    out = {c: v for c, v in k.items() if c not in ("secret_hash", "previous_hash")}
    out["state"] = state_of(k, now)
    return out


def _audit(store: Any, event: str, k: dict[str, Any], **detail: Any) -> None:
    from clapas.charter.audit import AuditEntry

    store.append_audit([AuditEntry(event, operator(), "local", "admin", k["id"], detail={
        "name": k["name"], "role": k["role"], "scopes": k["scopes"], **detail})])


def _print_key(k: dict[str, Any], now: datetime) -> None:
    p = public_key(k, now)
    for name in ("id", "name", "state", "role", "scopes", "created_at", "expires_at", "rotated_at",
                 "previous_until", "revoked_at", "rate_per_minute", "rate_per_day", "note"):
        v = p[name]
        if isinstance(v, list):
            v = ", ".join(v) or "-"
        print(f"{name:>16}: {'-' if v is None or v == '' else v}")


def cmd_create(args: argparse.Namespace) -> int:
    from clapas.charter.audit import KEY_CREATED
    from clapas.charter.keys import new_key
    from clapas.charter.roles import UnknownRole, check_scopes, effective_roles

    settings, store = _open(args)
    now = datetime.now(UTC)
    try:
        roles = effective_roles(settings.charter.roles)
        scopes = [s.strip() for s in (args.scopes or "").split(",") if s.strip()]
        check_scopes(scopes, "--scopes")
        if args.role and args.role not in roles:
            raise UnknownRole(f"unknown role {args.role!r}; known: {', '.join(sorted(roles))}")
        if not args.role and not scopes:
            raise UnknownRole("give the key a --role or --scopes")
        if any(k["name"] == args.name for k in store.api_keys()):
            raise UnknownRole(f"an active key is already named {args.name!r}")
        k = new_key()
        row = store.create_key(key_id=k.key_id, name=args.name, secret_hash=k.hash, role=args.role or "",
                               scopes=scopes, expires_at=when(args.expires, now) if args.expires else None,
                               rate_per_minute=args.rate_minute, rate_per_day=args.rate_day, note=args.note,
                               now=now)
        _audit(store, KEY_CREATED, row, expires_at=row["expires_at"].isoformat() if row["expires_at"] else None)
    except UnknownRole as e:
        print(f"clapas keys: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"key {row['id']} created for {row['name']!r}. Its secret, shown only now:\n\n  {k.token}\n\n"
          f"Clients send it as `Authorization: Bearer <key>` (or the X-API-Key header).", flush=True)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _settings, store = _open(args)
    try:
        keys = store.api_keys(include_revoked=args.all)
    finally:
        store.close()
    now = datetime.now(UTC)
    if args.json:
        print(msgspec.json.encode([public_key(k, now) for k in keys]).decode())
        return 0
    print(f"{'id':<12}  {'name':<24} {'state':<8} {'role':<20} {'expires':<10} {'rate/min':>8} {'rate/day':>9}")
    for k in keys:
        exp = k["expires_at"].date().isoformat() if k["expires_at"] else "-"
        role = k["role"] or "+".join(k["scopes"])
        print(f"{k['id']:<12}  {k['name']:<24} {state_of(k, now):<8} {role:<20} {exp:<10} "
              f"{k['rate_per_minute'] if k['rate_per_minute'] is not None else 'role':>8} "
              f"{k['rate_per_day'] if k['rate_per_day'] is not None else 'role':>9}")
    return 0


def _find(store: Any, ref: str) -> dict[str, Any] | None:
    from clapas.store.keys import KeyNotFound

    try:
        return store.find_key(ref)
    except KeyNotFound as e:
        print(f"clapas keys: {e}", file=sys.stderr)
        return None


def cmd_show(args: argparse.Namespace) -> int:
    _settings, store = _open(args)
    try:
        k = _find(store, args.key)
    finally:
        store.close()
    if k is None:
        return 1
    if args.json:
        print(msgspec.json.encode(public_key(k, datetime.now(UTC))).decode())
    else:
        _print_key(k, datetime.now(UTC))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from clapas.charter.audit import KEY_REVOKED

    _settings, store = _open(args)
    try:
        k = _find(store, args.key)
        if k is None:
            return 1
        k = store.revoke_key(k["id"])
        _audit(store, KEY_REVOKED, k)
    finally:
        store.close()
    print(f"key {k['id']} ({k['name']!r}) revoked: it is refused from now on (within [auth] key_cache_s by a "
          f"server already running)")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from clapas.charter.audit import KEY_ROTATED
    from clapas.charter.keys import new_key

    _settings, store = _open(args)
    now = datetime.now(UTC)
    try:
        k = _find(store, args.key)
        if k is None:
            return 1
        if k["revoked_at"] is not None:
            print(f"clapas keys: key {k['id']} is revoked: create a new one", file=sys.stderr)
            return 1
        grace = when(args.grace, now) if args.grace not in ("0", "") else None
        fresh = new_key(k["id"])
        k = store.rotate_key(k["id"], fresh.hash, grace, now=now)
        _audit(store, KEY_ROTATED, k, previous_until=grace.isoformat() if grace else None)
    finally:
        store.close()
    until = f"keeps working until {grace.isoformat(timespec='minutes')}" if grace else "stopped working"
    print(f"key {k['id']} ({k['name']!r}) rotated; the previous secret {until}. The new secret, shown only "
          f"now:\n\n  {fresh.token}\n", flush=True)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="the city's own API keys: create, list, show, revoke, rotate",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    c = ks.add_parser("create", help="a new key; its secret is printed once")
    add_config_argument(c)
    c.add_argument("name", help="who the key is for (shown in the audit log), e.g. labo-hydro")
    c.add_argument("--role", help="a role of [charter.roles]: public, partner, operator, operator-water, dpo, "
                                  "ingest, admin…")
    c.add_argument("--scopes", help="scopes added to the role's (comma-separated), e.g. metrics:read")
    c.add_argument("--expires", help="90d, 12h, 2w or an ISO date (default: never)")
    c.add_argument("--rate-minute", type=int, default=None, help="requests a minute (default: the role's; 0 none)")
    c.add_argument("--rate-day", type=int, default=None, help="requests a day (default: the role's; 0 none)")
    c.add_argument("--note", default="", help="why the key exists (a convention's reference…)")
    c.set_defaults(func=cmd_create)

    ls = ks.add_parser("list", help="keys, their role, state, expiry and rates (never their secret)")
    add_config_argument(ls)
    ls.add_argument("--all", action="store_true", help="revoked keys too")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    for name, func, text in (("show", cmd_show, "one key by id or name"),
                             ("revoke", cmd_revoke, "refuse a key from now on (it stays listed with --all)"),
                             ("rotate", cmd_rotate, "a new secret; the previous one works for a grace period")):
        a = ks.add_parser(name, help=text)
        add_config_argument(a)
        a.add_argument("key", help="key id (12 hex digits) or name")
        if name == "show":
            a.add_argument("--json", action="store_true")
        if name == "rotate":
            a.add_argument("--grace", default=DEFAULT_GRACE,
                           help=f"how long the previous secret keeps working (default {DEFAULT_GRACE}; 0: none)")
        a.set_defaults(func=func)
