"""Who is calling: the city's own keys, OIDC bearer tokens, a trusted gateway's consumer headers, else anonymous.

`Identifier.caller(request)` returns a `Caller` or raises `Unauthorized` for a credential that is presented but
not good (unknown, wrong secret, revoked, expired, a token that fails its checks): a bad credential is never
silently downgraded to anonymous. Modes come from `[auth] modes`; roles (scopes, rate limits) from
`clapas.charter.roles`.

- Keys: `Authorization: Bearer clapas_…`, or the `X-API-Key` / `apikey` header (Kong key-auth's default key name,
  §8.5). Looked up by key id, compared by hash, remembered `key_cache_s`.
- OIDC: `Authorization: Bearer <JWT>` signed by the configured issuer (issuer, audience, expiry checked), its keys
  from a JWKS file or the issuer's own JWKS URL (fetched, cached; nothing else is contacted).
- Gateway: the consumer headers (Kong: `X-Consumer-Username`, `X-Consumer-Groups`) count only when the request
  comes from a `trusted_proxies` address; from anyone else they are ignored. Behind a trusted proxy the client's
  address is the last untrusted hop of `X-Forwarded-For` (what the rate limits and the audit log see).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request

from clapas.charter import Caller
from clapas.charter.keys import key_id_of, matches, refusal
from clapas.charter.roles import RoleSettings, effective_roles
from clapas.config import GatewaySettings, OidcSettings, Settings, names
from clapas.store.base import Store

REALM = 'Bearer realm="clapas"'


class Unauthorized(Exception):
    """A credential was presented and is not good (401 with `WWW-Authenticate`)."""

    def __init__(self, message: str, actor: str = "", key_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.actor = actor
        self.key_id = key_id

    @property
    def challenge(self) -> str:
        text = self.message.replace('"', "'")
        return f'{REALM}, error="invalid_token", error_description="{text}"'


def _wider(a: int | None, b: int) -> int:
    """The looser of two limits (0: no limit)."""
    return b if a is None else 0 if 0 in (a, b) else max(a, b)


def _grant(roles: Mapping[str, RoleSettings], names_: Iterable[str]) -> tuple[str, frozenset[str], int, int]:
    """(role label, scopes, per minute, per day) of holding these roles: scopes add up, limits take the loosest."""
    held = [n for n in dict.fromkeys(names_) if n in roles]
    scopes: set[str] = set()
    per_minute: int | None = None
    per_day: int | None = None
    for n in held:
        r = roles[n]
        scopes.update(r.scopes)
        per_minute, per_day = _wider(per_minute, r.rate_per_minute), _wider(per_day, r.rate_per_day)
    return "+".join(held), frozenset(scopes), per_minute or 0, per_day or 0


class KeyCheck:
    """The city's own keys, found by key id and remembered for `cache_s` (a revocation elsewhere applies within)."""

    def __init__(self, store: Store, roles: Mapping[str, RoleSettings], cache_s: float) -> None:
        self.store, self.roles, self.cache_s = store, roles, cache_s
        self._cache: dict[str, tuple[float, dict[str, Any] | None, Caller | None]] = {}
        self._lock = threading.Lock()

    def forget(self, key_id: str | None = None) -> None:
        with self._lock:
            if key_id is None:
                self._cache.clear()
            else:
                self._cache.pop(key_id, None)

    def fresh(self, key_id: str) -> bool:
        """Whether the key is remembered: checking it then needs no store lookup."""
        with self._lock:
            hit = self._cache.get(key_id)
        return hit is not None and time.monotonic() - hit[0] < self.cache_s

    def _row(self, key_id: str) -> tuple[dict[str, Any] | None, Caller | None]:
        """The key's row and the caller it makes (built once per cache period, the client address left out)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1], hit[2]
        row = self.store.key(key_id)
        caller = self._grant_of(row) if row is not None else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = (now, row, caller)
        return row, caller

    def _grant_of(self, row: dict[str, Any]) -> Caller:
        label, scopes, per_minute, per_day = _grant(self.roles, [row["role"]] if row["role"] else [])
        if row["rate_per_minute"] is not None:
            per_minute = row["rate_per_minute"]
        if row["rate_per_day"] is not None:
            per_day = row["rate_per_day"]
        return Caller(actor=row["name"], via="key", role=label or "custom", scopes=scopes | set(row["scopes"]),
                      key_id=row["id"], rate_per_minute=per_minute, rate_per_day=per_day)

    def holder(self, key_id: str) -> Caller | None:
        """The caller a stored key makes while it is valid, without its secret: for work done later on the key's
        behalf (NGSI-LD notifications), which stops once the key is revoked or expires."""
        row, granted = self._row(key_id)
        if row is None or granted is None or refusal(row, datetime.now(UTC)):
            return None
        return granted

    def caller(self, token: str, client: str, key_id: str | None = None) -> Caller:
        key_id = key_id or key_id_of(token)
        if key_id is None:
            raise Unauthorized("not a clapas API key")
        row, granted = self._row(key_id)
        now = datetime.now(UTC)
        if row is None or granted is None or not matches(token, row, now):
            raise Unauthorized("unknown API key", key_id=key_id)
        why = refusal(row, now)
        if why:
            raise Unauthorized(why, actor=row["name"], key_id=key_id)
        g = granted
        return Caller(actor=g.actor, via="key", role=g.role, scopes=g.scopes, key_id=key_id, client=client,
                      rate_per_minute=g.rate_per_minute, rate_per_day=g.rate_per_day)


def _claim(claims: Mapping[str, Any], path: str) -> list[str]:
    """A dotted claim path (realm_access.roles) as a list of strings."""
    v: Any = claims
    for part in path.split("."):
        v = v.get(part) if isinstance(v, Mapping) else None
    if isinstance(v, str):
        return [p for p in v.replace(",", " ").split() if p]
    return [str(x) for x in v] if isinstance(v, list) else []


class OidcCheck:
    """Bearer JWTs of one issuer (PyJWT), checked against the issuer's keys."""

    def __init__(self, s: OidcSettings, roles: Mapping[str, RoleSettings]) -> None:
        import jwt

        self.s, self.roles, self._jwt = s, roles, jwt
        self.algorithms = names(s.algorithms)
        self._file_keys: Any = None
        self._client: Any = None
        self._lock = threading.Lock()
        if s.jwks_file:
            self._file_keys = jwt.PyJWKSet.from_json(Path(s.jwks_file).read_text(encoding="utf-8"))

    def _jwks_client(self) -> Any:
        with self._lock:
            if self._client is None:
                url = self.s.jwks_url or self._discover()
                self._client = self._jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=self.s.jwks_cache_s,
                                                     timeout=10)
            return self._client

    def _discover(self) -> str:
        """The issuer's `jwks_uri`, from its OpenID discovery document (the city's own identity provider)."""
        import urllib.request

        url = self.s.issuer.rstrip("/") + "/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())["jwks_uri"]

    def _key(self, token: str) -> Any:
        jwt = self._jwt
        if self._file_keys is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = self._file_keys.keys
            found = [k for k in keys if kid is None or k.key_id == kid]
            if not found:
                raise Unauthorized(f"token signed by an unknown key {kid!r}")
            return found[0].key
        return self._jwks_client().get_signing_key_from_jwt(token).key

    def caller(self, token: str, client: str) -> Caller:
        jwt = self._jwt
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthorized("not a valid bearer token") from None
        if unverified.get("iss") != self.s.issuer:
            raise Unauthorized("token from an unknown issuer")
        try:
            claims = jwt.decode(token, self._key(token), algorithms=self.algorithms, audience=self.s.audience,
                                issuer=self.s.issuer, leeway=self.s.leeway_s,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(f"token not meant for this service (audience {self.s.audience!r})") from None
        except jwt.PyJWKClientError as e:
            raise Unauthorized(f"cannot check the token's signature: {e}") from None
        except jwt.PyJWTError as e:
            raise Unauthorized(f"token refused: {e}") from None
        mapped = [self.s.role_map[r] for r in _claim(claims, self.s.roles_claim) if r in self.s.role_map]
        label, scopes, per_minute, per_day = _grant(self.roles, mapped or [self.s.default_role])
        actor = str(claims.get(self.s.actor_claim) or claims.get("sub") or "")
        return Caller(actor=actor, via="oidc", role=label, scopes=scopes, client=client,
                      rate_per_minute=per_minute, rate_per_day=per_day)


def _ip(text: str) -> Any:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class GatewayCheck:
    """Consumer headers of a gateway, honoured only from its addresses."""

    def __init__(self, s: GatewaySettings, roles: Mapping[str, RoleSettings]) -> None:
        self.s, self.roles = s, roles
        self.networks = [ipaddress.ip_network(p, strict=False) for p in names(s.trusted_proxies)]

    def trusted(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in n for n in self.networks)

    def client(self, request: Request, peer: str) -> str:
        """The last address in X-Forwarded-For that is not one of the trusted proxies."""
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop
        return peer

    def caller(self, request: Request, client: str) -> Caller | None:
        h = request.headers
        consumer = h.get(self.s.consumer_header, "").strip()
        if not consumer or h.get(self.s.anonymous_header, "").strip().lower() == "true":
            return None
        groups = [g.strip() for g in h.get(self.s.groups_header, "").split(",") if g.strip()]
        mapped = [self.s.group_roles[g] for g in groups if g in self.s.group_roles]
        label, scopes, per_minute, per_day = _grant(self.roles, mapped or [self.s.default_role])
        return Caller(actor=consumer, via="gateway", role=label, scopes=scopes, client=client,
                      rate_per_minute=per_minute, rate_per_day=per_day)


class Identifier:
    """The configured identity modes, in order: a trusted gateway's consumer, a presented credential, anonymous."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.roles = effective_roles(settings.charter.roles)
        modes = names(settings.auth.modes)
        a = settings.auth
        self.keys = KeyCheck(store, self.roles, a.key_cache_s) if "keys" in modes else None
        self.oidc = OidcCheck(a.oidc, self.roles) if "oidc" in modes else None
        self.gateway = GatewayCheck(a.gateway, self.roles) if "gateway" in modes else None
        anonymous = settings.charter.anonymous
        self._anonymous = _grant(self.roles, [anonymous] if anonymous else [])

    def anonymous(self, client: str) -> Caller:
        label, scopes, per_minute, per_day = self._anonymous
        return Caller(role=label or "none", scopes=scopes, client=client, rate_per_minute=per_minute,
                      rate_per_day=per_day)

    def may_block(self, request: Request) -> bool:
        """Whether identifying this request may wait on I/O (a key not remembered: a store lookup; an OIDC token:
        its issuer's keys), so that it must not run on the event loop — a slow or absent store would freeze
        every request, /healthz included."""
        try:
            token = _presented(request)
        except Unauthorized:
            return False  # refused without looking anything up
        if token is None:
            return False
        key_id = key_id_of(token)
        if key_id is not None:
            return self.keys is not None and not self.keys.fresh(key_id)
        return self.oidc is not None

    def caller(self, request: Request) -> Caller:
        peer = request.client.host if request.client else ""
        client = peer
        if self.gateway is not None and self.gateway.trusted(peer):
            client = self.gateway.client(request, peer)
            consumer = self.gateway.caller(request, client)
            if consumer is not None:
                return consumer
        token = _presented(request)
        if token is None:
            return self.anonymous(client)
        key_id = key_id_of(token)
        if key_id is not None:
            if self.keys is None:
                raise Unauthorized("API keys are not accepted here ([auth] modes)")
            return self.keys.caller(token, client, key_id)
        if token.count(".") == 2 and self.oidc is not None:
            return self.oidc.caller(token, client)
        raise Unauthorized("unknown credential")


def _presented(request: Request) -> str | None:
    """The credential of a request, if any: `Authorization: Bearer …`, else `X-API-Key`, else `apikey`."""
    h = request.headers
    auth = h.get("authorization")
    if auth is not None:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("use Authorization: Bearer <key or token>")
        return value.strip()
    return h.get("x-api-key") or h.get("apikey")
