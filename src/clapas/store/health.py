"""What the health routes read of the store (issue 13, domain-rules.md §7), for both stores.

The routes read the store, never the detectors' memory: a device's learned uplink interval comes from its journal
rows (the same rule as the silent detector's: the median of its last intervals), its frame counters from the
journal too.
"""

from __future__ import annotations

from datetime import datetime

from clapas.store.tables import StoreTables

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
    """The health reads of `Store` (mixed in before `Store`)."""

    def learned_intervals(self, since: datetime, until: datetime, uplinks: int = 20,
                          min_uplinks: int = 5) -> dict[str, float]:
        """Each device without a registry interval: the median of the intervals between its last `uplinks` + 1
        messages heard in [since, until] (at least `min_uplinks` intervals), in seconds."""
        rows = self._rows(self._q(_LEARNED), [since, until, uplinks + 1, min_uplinks])
        return {r["eui"]: float(r["interval_s"]) for r in rows}

