"""The city's own API keys: how a key looks, how it is kept (hashed), and what a stored key grants.

A key reads `clapas_<key id>_<secret>`: the key id (12 hex digits) is public (it names the key in lists and in the
audit log, and finds its row); the secret (32 random bytes) is printed once and kept only as a SHA-256 hash. A
slow password hash is not needed: the secret is random, not chosen by a person, so its hash cannot be guessed back,
and a fast one keeps each request's check in microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

PREFIX = "clapas_"
KEY_ID_LEN = 12


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: `token` is what the client presents (shown once), `hash` what the store keeps."""

    key_id: str
    token: str
    hash: str


def secret_hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_key(key_id: str | None = None) -> NewKey:
    """A fresh key (a rotation keeps the key id and changes the secret)."""
    key_id = key_id or secrets.token_hex(KEY_ID_LEN // 2)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id, token, secret_hash(token))


_KEY = re.compile(rf"^{PREFIX}([0-9a-f]{{{KEY_ID_LEN}}})_.")


def key_id_of(token: str) -> str | None:
    """The key id of something presented as a key, or None if it cannot be one of ours."""
    m = _KEY.match(token)
    return m.group(1) if m else None


def matches(token: str, row: dict, now: datetime) -> bool:
    """Whether `token` is the key of this stored row: its current secret, or the previous one within its grace."""
    h = secret_hash(token)
    if hmac.compare_digest(h, row["secret_hash"]):
        return True
    prev, until = row.get("previous_hash"), row.get("previous_until")
    return bool(prev and until and now < until and hmac.compare_digest(h, prev))


def refusal(row: dict, now: datetime) -> str | None:
    """Why a stored key no longer opens anything (revoked, expired), or None."""
    if row.get("revoked_at") is not None:
        return "this key has been revoked"
    if row.get("expires_at") is not None and now >= row["expires_at"]:
        return "this key has expired"
    return None
