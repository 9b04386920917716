"""Settings changed at run time by the departments (issue 16, `clapas.selfservice`), for both stores.

`settings_overrides` is append-only: every change is a row (the path, its new value as JSON text, who made it,
when), a revert to the config file's value a row with `removed` set. The effective overrides are each path's
latest row unless it is a removal; the highest id is the version a process compares to know whether to reload.
Values are JSON text in both stores (as the audit log's columns), so that both give back the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from clapas.store.tables import StoreTables

_COLS = "id, path, value, removed, actor, via, role, key_id, time, previous"
_json = msgspec.json.Encoder(order="sorted")
_PG_LOCK = 0x636C617061_0C  # PostgreSQL advisory lock numbering the changes (several processes may write)


def ddl() -> list[str]:
    """Version 12, the same in both stores."""
    return ["""CREATE TABLE settings_overrides (
        id BIGINT PRIMARY KEY, path VARCHAR NOT NULL, value VARCHAR, removed BOOLEAN NOT NULL, actor VARCHAR NOT NULL,
        via VARCHAR NOT NULL, role VARCHAR NOT NULL, key_id VARCHAR, time TIMESTAMPTZ NOT NULL, previous VARCHAR)""",
            "CREATE INDEX settings_overrides_path ON settings_overrides (path, id)"]


def _out(r: dict[str, Any]) -> dict[str, Any]:
    out = dict(r)
    out["time"] = r["time"].astimezone(UTC)
    out["id"] = int(r["id"])
    return out


class OverrideTables(StoreTables):
    """The settings-override methods of `Store`, shared by both stores (mixed in before `Store`)."""

    def record_setting(self, path: str, value: str | None, *, actor: str, via: str = "local", role: str = "",
                       key_id: str | None = None, previous: str | None = None,
                       now: datetime | None = None) -> dict[str, Any]:
        """Append one change (`value`: JSON text; None: back to the config file's value); returns its row."""
        now = now or datetime.now(UTC)
        with self._alert_tx() as cur:
            if self._audit_lock_sql:
                cur.execute(self._audit_lock_sql, [_PG_LOCK])
            cur.execute("SELECT coalesce(max(id), 0) FROM settings_overrides")
            rows = cur.fetchall()
            new_id = int(rows[0][0]) + 1
            cur.execute(self._q(f"INSERT INTO settings_overrides ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                        [new_id, path, value, value is None, actor, via, role, key_id, now, previous])
        return self.settings_history(limit=1)[0]

    def settings_overrides(self) -> list[dict[str, Any]]:
        """The effective overrides: each path's latest change unless it was a revert, in the order they were made."""
        rows = self._rows(
            f"SELECT {', '.join('o.' + c.strip() for c in _COLS.split(','))} FROM settings_overrides o "
            "JOIN (SELECT path, max(id) AS id FROM settings_overrides GROUP BY path) l ON o.id = l.id "
            "WHERE NOT o.removed ORDER BY o.id")
        return [_out(r) for r in rows]

    def settings_history(self, path: str | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Changes newest first (of one path, or all)."""
        cond, params = ("WHERE path = ? ", [path]) if path is not None else ("", [])
        rows = self._rows(self._q(f"SELECT {_COLS} FROM settings_overrides {cond}ORDER BY id DESC LIMIT ? OFFSET ?"),
                          [*params, limit, offset])
        return [_out(r) for r in rows]

    def set_device_tags(self, eui: str, tags: dict[str, str]) -> None:
        """A device's tags as the city set them (`clapas.selfservice.tags`, which keeps the change in the history;
        that history row is what keeps the network server's tags from replacing them)."""
        with self._alert_tx() as cur:
            cur.execute(self._q("UPDATE devices SET tags = ? WHERE eui = ?"), [_json.encode(tags).decode(), eui])

    def settings_version(self) -> int:
        """The id of the latest change (0: none): a process reloads its settings when it moves."""
        return int(self._rows("SELECT coalesce(max(id), 0) AS v FROM settings_overrides")[0]["v"])
