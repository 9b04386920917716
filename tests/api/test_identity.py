"""OIDC bearer tokens and gateway consumer headers, with a key set generated here and real client addresses."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from clapas.api.app import create_app
from clapas.config import AuthSettings, GatewaySettings, OidcSettings, Settings
from clapas.store.duckdb import DuckDBStore
from tests.web.conftest import serving

ISSUER = "https://sso.city.example/realms/city"
AUDIT = "/api/v1/audit"


def keypair(kid: str) -> tuple[Any, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    (good, good_jwk), (other, _) = keypair("k1"), keypair("k2")
    return {"good": good, "jwks": {"keys": [good_jwk]}, "other": other}


def token(private: Any, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "clapas", "sub": "u-123", "iat": now, "exp": now + 300,
            "realm_access": {"roles": ["clapas-dpo"]}, **claims}
    return jwt.encode(body, private, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(f"duckdb:///{tmp_path / 'city.duckdb'}")
    yield s
    s.close()


def oidc_settings(**oidc: Any) -> Settings:
    return Settings(auth=AuthSettings(modes="keys,oidc", oidc=OidcSettings(
        issuer=ISSUER, role_map={"clapas-dpo": "dpo", "clapas-partner": "partner"}, **oidc)))


def test_oidc_tokens_checked_against_the_issuer_keys(store: DuckDBStore, keys: dict[str, Any],
                                                     tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(keys["jwks"]))
    app = create_app(store, oidc_settings(jwks_file=str(jwks)))
    good = keys["good"]
    with TestClient(app) as c:
        def get(t: str) -> httpx.Response:
            return c.get(AUDIT, headers={"Authorization": f"Bearer {t}"})

        assert get(token(good)).status_code == 200
        partner = get(token(good, realm_access={"roles": ["clapas-partner", "offline_access"]}))
        assert partner.status_code == 403 and "'partner'" in partner.json()["error"]["message"]
        refused = {
            "wrong audience": token(good, aud="another-service"),
            "expired": token(good, exp=int(time.time()) - 120),  # beyond the 30 s leeway
            "unknown issuer": token(good, iss="https://evil.example/realms/city"),
            "signed by another key": token(keys["other"]),
            "unknown key id": token(keys["other"], kid="k9"),
            "no expiry": jwt.encode({"iss": ISSUER, "aud": "clapas", "sub": "x"}, good, algorithm="RS256",
                                    headers={"kid": "k1"}),
        }
        for why, t in refused.items():
            r = get(t)
            assert r.status_code == 401, why
            assert r.headers["www-authenticate"].startswith('Bearer realm="clapas", error="invalid_token"'), why
        assert "expired" in get(refused["expired"]).json()["error"]["message"]
        assert "audience" in get(refused["wrong audience"]).json()["error"]["message"]
        assert "unknown issuer" in get(refused["unknown issuer"]).json()["error"]["message"]
    app.state.access.audit.flush()
    [read] = store.audit_entries(event="read")
    assert (read["actor"], read["via"], read["role"]) == ("u-123", "oidc", "dpo")


class _Issuer(BaseHTTPRequestHandler):
    """The city's identity provider: its discovery document and key set."""

    docs: ClassVar[dict[str, bytes]] = {}
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = self.docs.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def issuer(keys: dict[str, Any]) -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Issuer)
    base = f"http://127.0.0.1:{server.server_port}/realms/city"
    _Issuer.docs = {"/realms/city/.well-known/openid-configuration": json.dumps(
        {"issuer": base, "jwks_uri": f"{base}/protocol/openid-connect/certs"}).encode(),
        "/realms/city/protocol/openid-connect/certs": json.dumps(keys["jwks"]).encode()}
    _Issuer.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


def test_oidc_keys_fetched_from_the_issuer_and_cached(store: DuckDBStore, keys: dict[str, Any], issuer: str) -> None:
    s = oidc_settings()
    s.auth.oidc.issuer = issuer
    app = create_app(store, s)
    with TestClient(app) as c:
        for _ in range(3):
            r = c.get(AUDIT, headers={"Authorization": f"Bearer {token(keys['good'], iss=issuer)}"})
            assert r.status_code == 200
    assert _Issuer.hits == ["/realms/city/.well-known/openid-configuration",
                            "/realms/city/protocol/openid-connect/certs"]  # once each: the key set is cached


def gateway_app(store: DuckDBStore, trusted: str) -> Any:
    return create_app(store, Settings(auth=AuthSettings(modes="keys,gateway", gateway=GatewaySettings(
        trusted_proxies=trusted, group_roles={"dpo-team": "dpo", "partners": "partner"}))))


CONSUMER = {"X-Consumer-Username": "dpo-office", "X-Consumer-Groups": "staff, dpo-team"}


def test_gateway_headers_only_from_trusted_addresses(store: DuckDBStore) -> None:
    app = gateway_app(store, "10.0.0.0/8, 192.168.1.5")
    with TestClient(app, client=("10.1.2.3", 40000)) as gw, TestClient(app, client=("192.0.2.7", 40000)) as other, \
            TestClient(app, client=("192.168.1.5", 40000)) as gw2:
        r = gw.get(AUDIT, headers={**CONSUMER, "X-Forwarded-For": "203.0.113.9, 10.9.9.9"})
        assert r.status_code == 200
        assert gw2.get(AUDIT, headers=CONSUMER).status_code == 200
        r = other.get(AUDIT, headers=CONSUMER)  # the same headers from anyone else: anonymous
        assert r.status_code == 401
        assert gw.get(AUDIT, headers={**CONSUMER, "X-Anonymous-Consumer": "true"}).status_code == 401
        partner = gw.get(AUDIT, headers={"X-Consumer-Username": "labo", "X-Consumer-Groups": "partners"})
        assert partner.status_code == 403
    app.state.access.audit.flush()
    reads = store.audit_entries(event="read")[::-1]
    assert [(e["actor"], e["via"], e["role"], e["client"]) for e in reads] == [
        ("dpo-office", "gateway", "dpo", "203.0.113.9"), ("dpo-office", "gateway", "dpo", "192.168.1.5")]
    refused = store.audit_entries(event="refused")[::-1]
    assert [(e["actor"], e["client"]) for e in refused][:1] == [("anonymous", "192.0.2.7")]


@pytest.mark.parametrize(("trusted", "status"), [("127.0.0.1", 200), ("10.0.0.0/8", 401)])
def test_gateway_headers_over_a_real_connection(store: DuckDBStore, trusted: str, status: int) -> None:
    app = gateway_app(store, trusted)
    with serving(app) as url:
        r = httpx.get(f"{url}api/v1/audit", headers=CONSUMER, timeout=10)
    app.state.access.close()  # as `clapas run` does: what is queued is written before the store closes
    assert r.status_code == status
    assert [e["status"] for e in store.audit_entries()] == [status]
