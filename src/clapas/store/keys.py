"""API keys in the store (`clapas keys`), for both stores: one table, the secret kept only as its hash.

Revoked keys stay (their metadata links the audit log to them, §8.9: 12 months after revocation); a rotation
keeps the key id and its history, replaces the secret, and lets the previous secret work until `previous_until`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clapas.store.tables import StoreTables

KEY_COLS = ("id, name, role, scopes, secret_hash, previous_hash, previous_until, created_at, expires_at, "
            "revoked_at, rotated_at, rate_per_minute, rate_per_day, note")


def ddl() -> list[str]:
    return ["""CREATE TABLE api_keys (
        id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, role VARCHAR NOT NULL DEFAULT '',
        scopes VARCHAR NOT NULL DEFAULT '', secret_hash VARCHAR NOT NULL, previous_hash VARCHAR,
        previous_until TIMESTAMPTZ, created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ, rotated_at TIMESTAMPTZ, rate_per_minute INTEGER, rate_per_day INTEGER,
        note VARCHAR NOT NULL DEFAULT '')""", "CREATE INDEX api_keys_name ON api_keys (name)"]


class KeyNotFound(LookupError):
    """No key with that id or name (or a name several keys share)."""


def _utc(v: Any) -> Any:
    return v.astimezone(UTC) if isinstance(v, datetime) else v


def key_out(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: _utc(v) for k, v in r.items()}
    out["scopes"] = [s for s in (r.get("scopes") or "").split(",") if s]
    return out


class KeyTables(StoreTables):
    """The key methods of `Store`, shared by both stores (mixed in before `Store`)."""

    def create_key(self, *, key_id: str, name: str, secret_hash: str, role: str = "", scopes: list[str] = (),
                   expires_at: datetime | None = None, rate_per_minute: int | None = None,
                   rate_per_day: int | None = None, note: str = "", now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        with self._alert_tx() as cur:
            cur.execute(self._q(f"INSERT INTO api_keys ({KEY_COLS}) VALUES "
                                f"(?, ?, ?, ?, ?, NULL, NULL, ?, ?, NULL, NULL, ?, ?, ?)"),
                        [key_id, name, role, ",".join(scopes), secret_hash, now, expires_at, rate_per_minute,
                         rate_per_day, note])
        return self.key(key_id)  # type: ignore[return-value]

    def key(self, key_id: str) -> dict[str, Any] | None:
        """One key's row (with its hashes: the access layer compares them; never show them)."""
        rows = self._rows(self._q(f"SELECT {KEY_COLS} FROM api_keys WHERE id = ?"), [key_id])
        return key_out(rows[0]) if rows else None

    def find_key(self, id_or_name: str) -> dict[str, Any]:
        """A key by id, else by name among keys not revoked (`KeyNotFound` if none or several)."""
        k = self.key(id_or_name)
        if k is not None:
            return k
        rows = self._rows(self._q(f"SELECT {KEY_COLS} FROM api_keys WHERE name = ? AND revoked_at IS NULL"),
                          [id_or_name])
        if len(rows) != 1:
            raise KeyNotFound(f"no key {id_or_name!r}" if not rows else
                              f"{len(rows)} keys are named {id_or_name!r}: give the key id")
        return key_out(rows[0])

    def api_keys(self, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        cond = "" if include_revoked else " WHERE revoked_at IS NULL"
        return [key_out(r) for r in self._rows(f"SELECT {KEY_COLS} FROM api_keys{cond} ORDER BY created_at, id")]

    def revoke_key(self, key_id: str, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        with self._alert_tx() as cur:
            cur.execute(self._q("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?), previous_hash = NULL, "
                                "previous_until = NULL WHERE id = ?"), [now, key_id])
        k = self.key(key_id)
        if k is None:
            raise KeyNotFound(f"no key {key_id!r}")
        return k

    def rotate_key(self, key_id: str, secret_hash: str, grace_until: datetime | None,
                   now: datetime | None = None) -> dict[str, Any]:
        """A new secret; the current one keeps working until `grace_until` (None: stops at once)."""
        now = now or datetime.now(UTC)
        with self._alert_tx() as cur:
            previous = "secret_hash" if grace_until is not None else "NULL"
            cur.execute(self._q(f"UPDATE api_keys SET previous_hash = {previous}, previous_until = ?, "
                                "secret_hash = ?, rotated_at = ? WHERE id = ? AND revoked_at IS NULL"),
                        [grace_until, secret_hash, now, key_id])
        k = self.key(key_id)
        if k is None or k["revoked_at"] is not None:
            raise KeyNotFound(f"no active key {key_id!r}")
        return k
