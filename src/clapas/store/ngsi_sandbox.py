"""The NGSI-LD sandbox tenants' storage (`clapas.api.ngsi_ld.sandbox`), the same in both stores.

A sandbox is for experimenters and conformance suites, not for the city's data: entities are kept whole, as the
expanded JSON the protocol layer made (one row per entity, rewritten on each change), and every attribute value
written is kept as a temporal instance (one row each) for the sandbox's temporal API. Times are integers
(microseconds since 1970 UTC), so that both stores compare them alike whatever their session time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clapas.store.tables import StoreTables

Instance = tuple[str, str, int, str]  # (attribute IRI, instance id, time µs, instance JSON)
_CHUNK = 1000  # instances a statement


def ddl() -> list[str]:
    """Migration 10."""
    return [
        """CREATE TABLE ngsi_entities (tenant VARCHAR NOT NULL, id VARCHAR NOT NULL, body VARCHAR NOT NULL,
            PRIMARY KEY (tenant, id))""",
        """CREATE TABLE ngsi_instances (tenant VARCHAR NOT NULL, entity_id VARCHAR NOT NULL, attr VARCHAR NOT NULL,
            instance_id VARCHAR NOT NULL, time_us BIGINT NOT NULL, body VARCHAR NOT NULL)""",
        "CREATE INDEX ngsi_instances_entity ON ngsi_instances (tenant, entity_id, attr, time_us)",
    ]


class NgsiSandboxTables(StoreTables):
    """The sandbox methods of `Store`, shared by both stores (mixed in before `Store`)."""

    def ngsi_tenants(self) -> list[str]:
        """The tenants holding entities."""
        return [r["tenant"] for r in self._rows("SELECT DISTINCT tenant FROM ngsi_entities ORDER BY tenant")]

    def ngsi_entity(self, tenant: str, entity_id: str) -> str | None:
        rows = self._rows(self._q("SELECT body FROM ngsi_entities WHERE tenant = ? AND id = ?"), [tenant, entity_id])
        return rows[0]["body"] if rows else None

    def ngsi_entities(self, tenant: str, ids: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """(id, body) of a tenant's entities (of `ids` only, if given), by id."""
        sql, params = "SELECT id, body FROM ngsi_entities WHERE tenant = ?", [tenant]
        if ids is not None:
            if not ids:
                return []
            sql += f" AND id IN ({', '.join('?' * len(ids))})"
            params += list(ids)
        return [(r["id"], r["body"]) for r in self._rows(self._q(sql + " ORDER BY id"), params)]

    def ngsi_put(self, tenant: str, entity_id: str, body: str | None, instances: Sequence[Instance] = (),
                 *, drop_instances: bool = False, drop_attrs: Sequence[str] = ()) -> None:
        """Write one entity (None: delete it) with its new temporal instances, in one transaction."""
        with self._alert_tx() as cur:
            self._ngsi_put_in(cur, tenant, entity_id, body, instances, drop_instances, drop_attrs)

    def ngsi_put_many(self, tenant: str, entities: Sequence[tuple[str, str, Sequence[Instance]]]) -> None:
        """Write many entities with their instances in one transaction (bulk loads: a commit costs ≈ 20 ms)."""
        with self._alert_tx() as cur:
            for entity_id, body, instances in entities:
                self._ngsi_put_in(cur, tenant, entity_id, body, instances, False, ())

    def _ngsi_put_in(self, cur: Any, tenant: str, entity_id: str, body: str | None, instances: Sequence[Instance],
                     drop_instances: bool, drop_attrs: Sequence[str]) -> None:
        cur.execute(self._q("DELETE FROM ngsi_entities WHERE tenant = ? AND id = ?"), [tenant, entity_id])
        if drop_instances:
            cur.execute(self._q("DELETE FROM ngsi_instances WHERE tenant = ? AND entity_id = ?"), [tenant, entity_id])
        for attr in drop_attrs:
            cur.execute(self._q("DELETE FROM ngsi_instances WHERE tenant = ? AND entity_id = ? AND attr = ?"),
                        [tenant, entity_id, attr])
        if body is not None:
            cur.execute(self._q("INSERT INTO ngsi_entities (tenant, id, body) VALUES (?, ?, ?)"),
                        [tenant, entity_id, body])
        for k in range(0, len(instances), _CHUNK):  # multi-row INSERTs: executemany is slow in DuckDB
            chunk = instances[k:k + _CHUNK]
            cur.execute(self._q("INSERT INTO ngsi_instances (tenant, entity_id, attr, instance_id, time_us, "
                                "body) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))),
                        [x for a, i, t, b in chunk for x in (tenant, entity_id, a, i, t, b)])

    def ngsi_instances(self, tenant: str, entity_ids: Sequence[str], attrs: Sequence[str] | None = None,
                       start_us: int | None = None, end_us: int | None = None) -> list[dict[str, Any]]:
        """Instances of these entities in [start, end), oldest first: entity_id, attr, instance_id, time_us, body."""
        if not entity_ids:
            return []
        sql = (f"SELECT entity_id, attr, instance_id, time_us, body FROM ngsi_instances WHERE tenant = ? "
               f"AND entity_id IN ({', '.join('?' * len(entity_ids))})")
        params: list[Any] = [tenant, *entity_ids]
        if attrs is not None:
            if not attrs:
                return []
            sql += f" AND attr IN ({', '.join('?' * len(attrs))})"
            params += list(attrs)
        if start_us is not None:
            sql += " AND time_us >= ?"
            params.append(start_us)
        if end_us is not None:
            sql += " AND time_us < ?"
            params.append(end_us)
        return self._rows(self._q(sql + " ORDER BY entity_id, attr, time_us, instance_id"), params)

    def ngsi_delete_instance(self, tenant: str, entity_id: str, attr: str, instance_id: str) -> bool:
        with self._alert_tx() as cur:
            cur.execute(self._q("DELETE FROM ngsi_instances WHERE tenant = ? AND entity_id = ? AND attr = ? "
                                "AND instance_id = ? RETURNING instance_id"), [tenant, entity_id, attr, instance_id])
            return bool(cur.fetchall())

    def ngsi_replace_instance(self, tenant: str, entity_id: str, attr: str, instance_id: str, time_us: int,
                              body: str) -> bool:
        with self._alert_tx() as cur:
            cur.execute(self._q("UPDATE ngsi_instances SET time_us = ?, body = ? WHERE tenant = ? AND entity_id = ? "
                                "AND attr = ? AND instance_id = ? RETURNING instance_id"),
                        [time_us, body, tenant, entity_id, attr, instance_id])
            return bool(cur.fetchall())
