"""The audit log's entries and their hash chain (../shared/domain-rules.md §8.4: logs "timestamped and signed at
creation", minimal personal data).

Each entry says who did what to which data — actor, key id, route template, class served, how many rows, which
devices, the status, the request id — and never an observation value. Devices are written as keyed pseudonyms
(HMAC-SHA256 of the EUI with the store's own secret, `pseudonym`): the log is append-only, so an erasure cannot
remove an EUI from it, yet the same EUI always gives the same pseudonym, so an erasure can still list who read a
device. The secret is in the store: this is pseudonymisation, not anonymisation.

Entry n stores `hash = SHA-256(prev_hash ‖ canonical(entry n))` where `prev_hash` is entry n−1's hash: editing,
inserting or deleting any entry breaks every hash after it, which `verify` reports. Pruning old entries keeps an
anchor (the last pruned id and hash), so the remaining chain still verifies from it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

GENESIS = "0" * 64  # the prev_hash of the first entry ever written
PSEUDONYM_HEX = 32  # 128 bits of the HMAC: no collision between any city's devices, half the text of a full one

# events
READ, WRITE, REFUSED, RATE_LIMITED = "read", "write", "refused", "rate_limited"
KEY_CREATED, KEY_REVOKED, KEY_ROTATED = "key.created", "key.revoked", "key.rotated"
AUDIT_PRUNED, AUDIT_EXPORTED = "audit.pruned", "audit.exported"

# columns in chain order (id first; prev_hash and hash are not part of the canonical text)
COLUMNS = ("id", "time", "event", "actor", "via", "role", "key_id", "client", "method", "route", "data_class",
           "row_count", "subjects", "status", "request_id", "detail")


@dataclass(slots=True)
class AuditEntry:
    """One entry before it is numbered and chained. `subjects`: device EUIs served (stored as their pseudonyms);
    `detail`: small facts, never observation values (a key's name and role, an erasure's request reference…)."""

    event: str
    actor: str
    via: str = "local"
    role: str = ""
    key_id: str | None = None
    client: str = ""
    method: str = ""
    route: str = ""
    data_class: str = ""
    row_count: int | None = None
    subjects: list[str] | None = None
    status: int | None = None
    request_id: str = ""
    detail: dict[str, Any] | None = None
    time: datetime | None = None  # set when queued; now if not


_enc = msgspec.json.Encoder(order="sorted")


def _utc_text(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_secret() -> str:
    """A store's pseudonym secret, made once when its audit tables are created."""
    return secrets.token_hex(32)


def pseudonym(secret: str, eui: str) -> str:
    """The audit log's name for a device: keyed, so that the EUIs of a city cannot be hashed and compared without
    the store's secret; EUIs in lower case (as the registry keeps them)."""
    return hmac.new(secret.encode(), eui.strip().lower().encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def row_values(entry_id: int, e: AuditEntry, secret: str) -> dict[str, Any]:
    """The stored row of an entry (without its hashes): JSON columns as text, so both stores keep the same bytes;
    devices as their pseudonyms under `secret`."""
    return {"id": entry_id, "time": e.time or datetime.now(UTC), "event": e.event, "actor": e.actor, "via": e.via,
            "role": e.role, "key_id": e.key_id, "client": e.client, "method": e.method, "route": e.route,
            "data_class": e.data_class, "row_count": e.row_count,
            "subjects": _enc.encode(sorted({pseudonym(secret, s) for s in e.subjects or ()})).decode(),
            "status": e.status, "request_id": e.request_id, "detail": _enc.encode(e.detail or {}).decode()}


def canonical(row: dict[str, Any]) -> bytes:
    """The bytes an entry's hash covers: its columns in a fixed order, times in UTC to the microsecond."""
    return _enc.encode([_utc_text(row[c]) if c == "time" else row[c] for c in COLUMNS])


def chain_hash(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(row)).hexdigest()


@dataclass(frozen=True, slots=True)
class Verification:
    """What `verify` found: how many entries were checked, and the first broken one (None: the chain holds)."""

    checked: int
    first_broken: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def verify(rows: Iterable[dict[str, Any]], anchor: tuple[int, str] | None = None) -> Verification:
    """Walk stored rows in id order. `anchor`: (last pruned id, its hash) when older entries were pruned."""
    expect_id, prev = (anchor[0] + 1, anchor[1]) if anchor else (None, GENESIS)
    n = 0
    for r in rows:
        if expect_id is not None and r["id"] != expect_id:
            return Verification(n, r["id"], f"entry {r['id']} follows {expect_id - 1}: entries are missing")
        if r["prev_hash"] != prev:
            return Verification(n, r["id"], f"entry {r['id']} does not follow the previous entry's hash")
        if chain_hash(prev, r) != r["hash"]:
            return Verification(n, r["id"], f"entry {r['id']} was changed after it was written")
        prev, expect_id, n = r["hash"], r["id"] + 1, n + 1
    return Verification(n)


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API and the export give it: JSON columns decoded (devices as pseudonyms), times in UTC."""
    out = dict(row)
    out["time"] = row["time"].astimezone(UTC)
    out["subjects"] = msgspec.json.decode(row["subjects"]) if row.get("subjects") else []
    out["detail"] = msgspec.json.decode(row["detail"]) if row.get("detail") else {}
    return out
