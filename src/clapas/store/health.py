"""What the health routes read of the store (issue 13, domain-rules.md §7), for both stores.

The routes read the store, never the detectors' memory: a device's learned uplink interval comes from its journal
rows (the same rule as the silent detector's: the median of its last intervals), its frame counters from the
journal too. Which gateways hear which device (the uplinks' `rxInfo[]`) is kept in `device_gateways` (version 13),
one row per (device, gateway): first and last heard, the SNR of the last uplink it heard. Each batch upserts its
pairs in its own transaction; the upsert keeps the earliest first, the latest last, so a replay changes nothing.
Erasure and retention delete its rows with the device's frames (`store/charter.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from clapas.store.tables import StoreTables


def ddl() -> list[str]:
    """Version 13 (issue 13): the gateways each device is heard by."""
    return ["""CREATE TABLE device_gateways (dev_eui VARCHAR NOT NULL, gateway VARCHAR NOT NULL,
        first_heard TIMESTAMPTZ NOT NULL, last_heard TIMESTAMPTZ NOT NULL, last_snr DOUBLE PRECISION,
        PRIMARY KEY (dev_eui, gateway))"""]


# both stores zip several unnest() of one SELECT (PostgreSQL ≥ 10, DuckDB)
_UPSERT_LINKS = """
INSERT INTO device_gateways (dev_eui, gateway, first_heard, last_heard, last_snr)
SELECT unnest(CAST(? AS VARCHAR[])), unnest(CAST(? AS VARCHAR[])), unnest(CAST(? AS TIMESTAMPTZ[])),
       unnest(CAST(? AS TIMESTAMPTZ[])), unnest(CAST(? AS DOUBLE PRECISION[]))
ON CONFLICT (dev_eui, gateway) DO UPDATE SET
  first_heard = least(device_gateways.first_heard, excluded.first_heard),
  last_snr = CASE WHEN excluded.last_heard >= device_gateways.last_heard THEN excluded.last_snr
                  ELSE device_gateways.last_snr END,
  last_heard = greatest(device_gateways.last_heard, excluded.last_heard)
"""


def link_rows(links: Iterable[tuple[Any, ...]]) -> list[tuple[str, str, float, float, float | None]]:
    """A batch's `links` folded to one row per (device, gateway): (eui, gateway, first t, last t, SNR at last)."""
    pairs: dict[tuple[str, str], list[Any]] = {}
    for row in links:
        t, eui, rx = row[0], row[1], row[6]
        for gw, snr in rx or ():
            p = pairs.get((eui, gw))
            if p is None:
                pairs[(eui, gw)] = [t, t, snr]
            else:
                if t < p[0]:
                    p[0] = t
                if t >= p[1]:
                    p[1], p[2] = t, snr
    return [(e, g, p[0], p[1], p[2]) for (e, g), p in pairs.items()]


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)

# every message of a device but duplicates counts as heard, as for `devices.last_seen` (schema.DEVICE_HEARD_UPDATE);
# only uplinks and status events, as the health rules read them (`Batch.links`)
_HEARD = ("j.status <> 'duplicate' AND j.event IN ('up', 'status') AND j.time IS NOT NULL AND j.dev_eui IS NOT NULL")

_LEARNED = f"""
WITH heard AS (
  SELECT DISTINCT j.dev_eui AS eui, j.time FROM journal j
  WHERE {_HEARD} AND j.time >= ? AND j.time <= ?
    AND j.dev_eui IN (SELECT eui FROM devices WHERE expected_interval_s IS NULL)
), recent AS (
  SELECT eui, time, row_number() OVER (PARTITION BY eui ORDER BY time DESC) AS k FROM heard
), gaps AS (
  SELECT eui, CAST(extract(epoch FROM time) AS DOUBLE PRECISION)
              - CAST(extract(epoch FROM lag(time) OVER (PARTITION BY eui ORDER BY time)) AS DOUBLE PRECISION) AS gap
  FROM recent WHERE k <= ?
)
SELECT eui, CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS DOUBLE PRECISION) AS interval_s,
       count(gap) AS n
FROM gaps WHERE gap IS NOT NULL GROUP BY eui HAVING count(gap) >= ?
"""


class HealthTables(StoreTables):
    """The health reads of `Store` (mixed in before `Store`), and the batch's gateway links."""

    def _put_links(self, cur: Any, links: list[tuple[Any, ...]]) -> None:
        """Inside a batch's transaction: which gateways heard which device (from its uplinks' rxInfo)."""
        rows = link_rows(links)
        if rows:
            cur.execute(self._q(_UPSERT_LINKS), [[r[0] for r in rows], [r[1] for r in rows],
                                                 [_ts(r[2]) for r in rows], [_ts(r[3]) for r in rows],
                                                 [r[4] for r in rows]])

    def device_gateways(self, eui: str, since: datetime | None = None) -> list[dict[str, Any]]:
        """The gateways that heard a device (since `since`), latest first: {gateway, first_heard, last_heard,
        last_snr}."""
        cond, params = ("AND last_heard >= ?", [since]) if since is not None else ("", [])
        rows = self._rows(self._q("SELECT gateway, first_heard, last_heard, last_snr FROM device_gateways "
                                  f"WHERE dev_eui = ? {cond} ORDER BY last_heard DESC, gateway"), [eui, *params])
        return [_utc_times(r) for r in rows]

    def gateway_devices(self, gateway: str, since: datetime) -> list[dict[str, Any]]:
        """The devices a gateway heard since `since`: {eui, first_heard, last_heard, last_snr, gateways (how many
        gateways heard the device since `since`)}, by EUI."""
        rows = self._rows(self._q(
            "SELECT g.dev_eui AS eui, g.first_heard, g.last_heard, g.last_snr, (SELECT count(*) FROM device_gateways o "
            "WHERE o.dev_eui = g.dev_eui AND o.last_heard >= ?) AS gateways FROM device_gateways g "
            "WHERE g.gateway = ? AND g.last_heard >= ? ORDER BY g.dev_eui"), [since, gateway, since])
        return [_utc_times(r) for r in rows]

    def frame_counters(self, eui: str, since: datetime, until: datetime) -> list[tuple[float, int]]:
        """A device's uplinks in [since, until] as (epoch s, fCnt), in time order (duplicates left out)."""
        rows = self._rows(self._q(
            "SELECT j.time, j.f_cnt FROM journal j WHERE j.dev_eui = ? AND j.event = 'up' AND j.status <> 'duplicate' "
            "AND j.f_cnt IS NOT NULL AND j.time >= ? AND j.time <= ? ORDER BY j.time, j.id"), [eui, since, until])
        return [(r["time"].timestamp(), int(r["f_cnt"])) for r in rows]

    def gateways_heard(self, since: datetime) -> list[dict[str, Any]]:
        """Each gateway that heard a device since `since`: {gateway, devices, only_by_it (devices no other gateway
        heard since), last_heard}, by id."""
        rows = self._rows(self._q(
            "WITH recent AS (SELECT dev_eui, gateway, last_heard FROM device_gateways WHERE last_heard >= ?), "
            "n AS (SELECT dev_eui, count(*) AS k FROM recent GROUP BY dev_eui) "
            "SELECT r.gateway, count(*) AS devices, sum(CASE WHEN n.k = 1 THEN 1 ELSE 0 END) AS only_by_it, "
            "max(r.last_heard) AS last_heard FROM recent r JOIN n ON n.dev_eui = r.dev_eui GROUP BY r.gateway "
            "ORDER BY r.gateway"), [since])
        return [{**_utc_times(r), "devices": int(r["devices"]), "only_by_it": int(r["only_by_it"])} for r in rows]

    def learned_intervals(self, since: datetime, until: datetime, uplinks: int = 20,
                          min_uplinks: int = 5) -> dict[str, float]:
        """Each device without a registry interval: the median of the intervals between its last `uplinks` + 1
        messages heard in [since, until] (at least `min_uplinks` intervals), in seconds."""
        rows = self._rows(self._q(_LEARNED), [since, until, uplinks + 1, min_uplinks])
        return {r["eui"]: float(r["interval_s"]) for r in rows}



def _utc_times(r: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.astimezone(UTC) if isinstance(v, datetime) else v) for k, v in r.items()}
