"""The charter's work on stored rows, for both stores: consumption for open aggregates, retention, erasure, change of
occupant.

Why once for both: the same rows must go in DuckDB and PostgreSQL, and an erasure must reach every table where a
device's data lives (§8.6: ThingsBoard's deleted devices left their telemetry behind; a raw-frame journal that
`clapas replay` re-decodes would bring erased readings back). Tables a device's data lives in: observations,
device_events, journal (frames, dedupe keys, quarantine rows), alerts with alert_events and notifications,
occupancy, devices (registry fields), journal_tally (the counts by status), device_gateways (the gateways that heard
it), device_uplink_times and device_uplink_pending (when it was heard: its learned interval), zone_rollup_1h (its
zone's hours, marked pending in `zone_rollup_pending` and rebuilt without it); DuckDB adds latest_values; PostgreSQL
adds rollup_1h, rollup_1d, rollup_pending, device_quantities and observation_tally. The audit log (`audit.py`) is
append-only and hash-chained: an erasure adds an entry to it, it never edits one (its own retention prunes it).

Each run is one transaction (the store's `_alert_tx`); a dry run does the same work and rolls it back, so what it
reports is exactly what a real run deletes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from clapas.charter.retention import Plan
from clapas.model import QUANTITY_BY_KEY
from clapas.store import schema
from clapas.store.tables import StoreTables

_IDS = "(SELECT unnest(CAST(? AS INTEGER[])))"
_QIDS = "(SELECT unnest(CAST(? AS SMALLINT[])))"
_TEXTS = "(SELECT unnest(CAST(? AS VARCHAR[])))"


def occupancy_ddl() -> list[str]:
    """Who occupied a personal device's premises, when: `since` NULL is "from the start", `until` NULL "now"."""
    return [
        """CREATE TABLE occupancy (device_id INTEGER NOT NULL, subscriber VARCHAR NOT NULL DEFAULT '',
            since TIMESTAMPTZ, until TIMESTAMPTZ)""",
        "CREATE INDEX occupancy_device ON occupancy (device_id, since)",
    ]


class _DryRun(Exception):
    """Raised inside a dry run's transaction to roll it back."""


class OccupancyError(ValueError):
    """A change of occupant that does not fit the device's periods (unknown device, a date before the current
    period's start)."""


class CharterTables(StoreTables):
    """Retention, erasure, occupancy and consumption groups of `Store`, shared by both stores."""

    timezone: str
    url: str

    # plumbing ----------------------------------------------------------------------------------------
    @property
    def _postgres(self) -> bool:
        """PostgreSQL keeps rollups, a row tally and device_quantities, which follow every deletion."""
        return self.url.startswith("postgres")

    def _n(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a DELETE/UPDATE; how many rows it changed."""
        cur.execute(self._q(sql), list(params))
        return max(int(cur.rowcount or 0), 0)

    def _forget(self, device_ids: Sequence[int]) -> None:
        """Drop deleted devices from the store's caches (a later batch registers them anew)."""
        ids = set(device_ids)
        cache: dict[str, int] = getattr(self, "_ids", {})
        for eui in [e for e, i in cache.items() if i in ids]:
            cache.pop(eui, None)
        pairs: set[tuple[int, int]] | None = getattr(self, "_pairs", None)
        if pairs is not None:
            pairs.difference_update({p for p in pairs if p[0] in ids})

    def _pg_after_delete(self, cur: Any, ids: Sequence[int], removed: int) -> None:
        """PostgreSQL bookkeeping after observations of `ids` went: the row tally, and quantities no longer
        reported (removed from the cache too, so that a new row re-adds them)."""
        if not self._postgres:
            return
        if removed:
            cur.execute(self._q("INSERT INTO observation_tally VALUES (?)"), [-removed])
        cur.execute(self._q(f"DELETE FROM device_quantities dq WHERE dq.device_id IN {_IDS} AND NOT EXISTS ("
                            "SELECT 1 FROM observations o WHERE o.device_id = dq.device_id "
                            "AND o.quantity_id = dq.quantity_id) RETURNING dq.device_id, dq.quantity_id"),
                    [list(ids)])
        gone = {(int(a), int(b)) for a, b in cur.fetchall()}
        pairs: set[tuple[int, int]] | None = getattr(self, "_pairs", None)
        if pairs is not None:
            pairs.difference_update(gone)

    def _delete_journal(self, cur: Any, cond: str, params: list[Any]) -> int:
        """DELETE FROM journal WHERE `cond`; how many rows, taken off the status tally (`counts`) too."""
        if not self._postgres:  # DuckDB has no data-modifying CTE: count, then delete, in the same transaction
            cur.execute(f"INSERT INTO journal_tally SELECT status, -count(*) FROM journal WHERE {cond} GROUP BY 1",
                        params)
            return self._n(cur, f"DELETE FROM journal WHERE {cond}", params)
        cur.execute(self._q(f"WITH d AS (DELETE FROM journal WHERE {cond} RETURNING status), t AS (INSERT INTO "
                            "journal_tally SELECT status, -count(*) FROM d GROUP BY 1 RETURNING n) "
                            "SELECT coalesce(-sum(n), 0) FROM t"), params)
        return int(cur.fetchone()[0])

    def _latest_after_delete(self, cur: Any, cond: str, params: list[Any], device_id: int | None = None) -> None:
        """DuckDB's `latest_values` after observations went: the latest rows matching `cond` (the deletion's own
        condition on device_id, quantity_id and time) go; with `device_id`, the device's latest values are then
        taken again from its rows left (an erasure of a period may leave older rows). PostgreSQL reads its latest
        values from the observations themselves."""
        if self._postgres:
            return
        cur.execute(f"DELETE FROM latest_values WHERE {cond}", params)
        if device_id is not None:
            cur.execute("INSERT INTO latest_values SELECT device_id, quantity_id, max(time), arg_max(value, time) "
                        "FROM observations WHERE device_id = ? AND quantity_id NOT IN (SELECT quantity_id FROM "
                        "latest_values WHERE device_id = ?) GROUP BY 1, 2", [device_id, device_id])

    def _bucket(self, resolution: str, col: str) -> str:
        return schema.bucket_sql(resolution, self.timezone, col)

    # consumption (open aggregates) --------------------------------------------------------------------
    def _daily_last(self) -> tuple[str, int]:
        """SQL of (device_id, day, last) rows: each device's last index of each local day, for devices `d`, one
        quantity and days in [lo, end); and how many times it takes (quantity id, lo, end) as parameters.
        DuckDB: from the raw rows (it aggregates them fast); PostgreSQL overrides it with its daily rollup."""
        day = self._bucket("1d", "o.time")
        if self._postgres:  # rolled-up days from the rollup, pending ones from the raw rows (as `series`)
            return ("SELECT r.device_id, r.bucket AS day, r.max AS last FROM rollup_1d r WHERE r.quantity_id = ? "
                    "AND r.bucket >= ? AND r.bucket < ? AND r.device_id IN (SELECT id FROM d) AND r.bucket NOT IN "
                    "(SELECT bucket FROM rollup_pending WHERE resolution = '1d') UNION ALL "
                    "SELECT o.device_id, p.bucket, max(o.value) FROM (SELECT bucket FROM rollup_pending "
                    "WHERE resolution = '1d') p JOIN observations o ON o.time >= p.bucket "
                    f"AND o.time < p.bucket + INTERVAL '26 hours' AND {day} = p.bucket WHERE o.quantity_id = ? "
                    "AND o.time >= ? AND o.time < ? AND o.device_id IN (SELECT id FROM d) GROUP BY 1, 2", 2)
        return (f"SELECT o.device_id, {day} AS day, max(o.value) AS last FROM observations o "
                "WHERE o.quantity_id = ? AND o.time >= ? AND o.time < ? AND o.device_id IN (SELECT id FROM d) "
                "GROUP BY 1, 2", 1)

    def consumption_groups(self, quantity: str, start: datetime, end: datetime, *,
                           kinds: Sequence[str]) -> list[dict[str, Any]]:
        """Per zone and local day in [start, end): how many meters of `kinds` consumed, their total and the
        largest single consumption (`clapas.charter.aggregates.Group`). A meter's day is its index at the end of
        the day minus at the end of the day before (the last reading of each; both days needed, and a negative
        difference, a replaced or reset meter, counts as no reading)."""
        from datetime import timedelta

        q = QUANTITY_BY_KEY[quantity].id
        lo, hi = start - timedelta(hours=26), end + timedelta(hours=26)
        daily, times = self._daily_last()
        sql = (f"WITH d AS (SELECT id, zone FROM devices WHERE kind IN {_TEXTS}), daily AS ({daily}), "
               "inc AS (SELECT device_id, day, last - lag(last) OVER w AS v, day - lag(day) OVER w AS gap "
               "FROM daily WINDOW w AS (PARTITION BY device_id ORDER BY day)) "
               "SELECT d.zone, inc.day, count(*) AS meters, sum(inc.v) AS total, max(inc.v) AS top FROM inc "
               "JOIN d ON d.id = inc.device_id WHERE inc.day >= ? AND inc.day < ? AND inc.v >= 0 "
               "AND inc.gap <= INTERVAL '25 hours' GROUP BY 1, 2 ORDER BY 2, 1")
        params = [list(kinds), *([q, lo, hi] * times), start, end]
        return [{"zone": r["zone"] or "", "day": r["day"], "meters": int(r["meters"]), "total": float(r["total"]),
                 "top": float(r["top"])} for r in self._rows(self._q(sql), params)]

    # retention ----------------------------------------------------------------------------------------
    def retention_devices(self) -> list[dict[str, Any]]:
        """Every device with its id and the fields its class depends on."""
        return self._rows("SELECT id, eui, kind, data_class, premises_use FROM devices ORDER BY id")

    def apply_retention(self, plan: Plan, *, dry_run: bool = False,
                        progress: Callable[[int], None] | None = None) -> dict[str, int]:
        """Delete what `plan` says is past its retention, in one transaction; rows per table (a dry run rolls
        back and reports the same counts). `progress` is told the devices of each group once it is done."""
        counts: dict[str, int] = {}

        def add(table: str, n: int) -> None:
            counts[table] = counts.get(table, 0) + n

        try:
            with self._alert_tx() as cur:
                for g in plan.groups:
                    ids, euis = g.ids, g.euis
                    removed = 0
                    for c in g.cuts:
                        qcond = f"quantity_id {'NOT IN' if c.exclude else 'IN'} {_QIDS}"
                        base = f"device_id IN {_IDS} AND {qcond}"
                        args = [ids, list(c.quantity_ids)]
                        upto = c.daily_before or c.raw_before
                        self._zone_touch(cur, f"{base} AND time < ?", [*args, upto])
                        removed += self._n(cur, f"DELETE FROM observations WHERE {base} AND time < ?", [*args, upto])
                        # the latest row of a pair is never one of the days' last rows deleted below (it is the
                        # last of its day): a pair loses its latest value only when all its rows were before `upto`
                        self._latest_after_delete(cur, f"{base} AND time < ?", [*args, upto])
                        if c.daily_before is not None:  # between the two cut-offs, the last row of each local day
                            day_o, day_n = self._bucket("1d", "o.time"), self._bucket("1d", "n.time")
                            obase = f"o.device_id IN {_IDS} AND o.{qcond}"
                            not_last = (f"{obase} AND o.time >= ? AND o.time < ? AND EXISTS (SELECT 1 FROM "
                                        "observations n WHERE n.device_id = o.device_id AND n.quantity_id = "
                                        "o.quantity_id AND n.time > o.time AND n.time < o.time + INTERVAL '25 hours' "
                                        f"AND {day_n} = {day_o})")
                            self._zone_touch(cur, not_last, [*args, c.daily_before, c.raw_before], alias="o")
                            removed += self._n(cur, f"DELETE FROM observations o WHERE {not_last}",
                                               [*args, c.daily_before, c.raw_before])
                        if self._postgres:
                            add("rollup_1h", self._n(cur, f"DELETE FROM rollup_1h WHERE {base} AND bucket < ?",
                                                     [*args, c.raw_before]))
                            add("rollup_1d", self._n(cur, f"DELETE FROM rollup_1d WHERE {base} AND bucket < ?",
                                                     [*args, upto]))
                    add("observations", removed)
                    self._pg_after_delete(cur, ids, removed)
                    if g.frames_before is not None:
                        add("journal", self._delete_journal(cur, f"dev_eui IN {_TEXTS} AND received_at < ?",
                                                            [euis, g.frames_before]))
                        add("device_events", self._n(cur, f"DELETE FROM device_events WHERE device_id IN {_IDS} "
                                                          "AND time < ?", [ids, g.frames_before]))
                        add("device_gateways", self._n(cur, f"DELETE FROM device_gateways WHERE dev_eui IN {_TEXTS} "
                                                            "AND last_heard < ?", [euis, g.frames_before]))
                        # the times it was heard (its learned interval): whole once none is left in the journal
                        add("device_uplink_times", self._n(cur, "DELETE FROM device_uplink_times WHERE dev_eui IN "
                                                                f"{_TEXTS} AND last_t < ?",
                                                           [euis, g.frames_before.timestamp()]))
                        add("device_uplink_times", self._n(cur, "DELETE FROM device_uplink_pending WHERE dev_eui IN "
                                                                f"{_TEXTS} AND t < ?",
                                                           [euis, g.frames_before.timestamp()]))
                    if g.alerts_before is not None:
                        self._delete_alerts(cur, add, f"subject_kind = 'device' AND subject IN {_TEXTS} AND "
                                                      "state = 'resolved' AND resolved_at < ?",
                                            [euis, g.alerts_before])
                    if progress is not None:
                        progress(len(ids))
                if plan.quarantine_before is not None:
                    add("journal (quarantine)", self._delete_journal(
                        cur, "status = 'quarantined' AND received_at < ? AND (dev_eui IS "
                             "NULL OR dev_eui NOT IN (SELECT eui FROM devices))", [plan.quarantine_before]))
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        if plan.audit_before is not None and hasattr(self, "prune_audit"):
            if dry_run:
                n = self._rows(self._q("SELECT count(*) AS n FROM audit_log WHERE time < ?"), [plan.audit_before])
                counts["audit_log"] = int(n[0]["n"])
            else:
                counts["audit_log"] = self.prune_audit(plan.audit_before, now=plan.now)
        return {t: n for t, n in counts.items() if n}

    def _delete_alerts(self, cur: Any, add: Any, cond: str, params: list[Any]) -> None:
        """Alerts matching `cond`, with their history and their notifications."""
        cur.execute(self._q(f"SELECT id FROM alerts WHERE {cond}"), params)
        ids = [int(r[0]) for r in cur.fetchall()]
        if not ids:
            return
        # alert ids are BIGINT: a BIGINT[] list
        sel = "(SELECT unnest(CAST(? AS BIGINT[])))"
        add("notifications", self._n(cur, f"DELETE FROM notifications WHERE alert_id IN {sel}", [ids]))
        add("alert_events", self._n(cur, f"DELETE FROM alert_events WHERE alert_id IN {sel}", [ids]))
        add("alerts", self._n(cur, f"DELETE FROM alerts WHERE id IN {sel}", [ids]))

    # erasure ------------------------------------------------------------------------------------------
    def erasure_targets(self, *, eui: str | None = None, subscriber: str | None = None,
                        before: datetime | None = None) -> list[dict[str, Any]]:
        """What an erasure covers: per device, the period [lo, hi) of its history to erase (None: unbounded)
        and whether the whole device goes (`whole`) or its registry keeps the device (`clear_subscriber`)."""
        out: list[dict[str, Any]] = []
        if eui is not None:
            for d in self._rows(self._q("SELECT id, eui, subscriber FROM devices WHERE eui = ?"), [eui]):
                out.append({"id": int(d["id"]), "eui": d["eui"], "lo": None, "hi": before, "whole": before is None,
                            "clear_subscriber": False})
            return out
        if not subscriber:
            return out
        seen: set[tuple[int, Any]] = set()
        current = self._rows(self._q("SELECT d.id, d.eui, (SELECT max(o.since) FROM occupancy o WHERE "
                                     "o.device_id = d.id AND o.until IS NULL) AS since FROM devices d "
                                     "WHERE d.subscriber = ?"), [subscriber])
        for d in current:  # the current occupant: from the start of their period
            hi = before
            out.append({"id": int(d["id"]), "eui": d["eui"], "lo": d["since"], "hi": hi, "whole": False,
                        "clear_subscriber": before is None})
            seen.add((int(d["id"]), d["since"]))
        past = self._rows(self._q("SELECT o.device_id AS id, d.eui, o.since, o.until FROM occupancy o JOIN devices d "
                                  "ON d.id = o.device_id WHERE o.subscriber = ? AND o.until IS NOT NULL"), [subscriber])
        for p in past:
            hi = p["until"] if before is None else min(p["until"], before)
            if (p["since"] is None or hi > p["since"]) and (int(p["id"]), p["since"]) not in seen:
                out.append({"id": int(p["id"]), "eui": p["eui"], "lo": p["since"], "hi": hi, "whole": False,
                            "clear_subscriber": False})
        return out

    def erase(self, targets: list[dict[str, Any]], *, subscriber: str | None = None,
              dry_run: bool = False) -> dict[str, int]:
        """Remove, in one transaction, every row of the targets' periods (see the module docstring for the
        tables), so that nothing of them is left to replay; rows per table."""
        counts: dict[str, int] = {}

        def add(table: str, n: int) -> None:
            counts[table] = counts.get(table, 0) + n

        whole: list[int] = []
        try:
            with self._alert_tx() as cur:
                for t in targets:
                    did, eui, lo, hi = t["id"], t["eui"], t["lo"], t["hi"]

                    def span(col: str, lo: Any = lo, hi: Any = hi) -> tuple[str, list[Any]]:
                        conds, args = [], []
                        if lo is not None:
                            conds.append(f"{col} >= ?")
                            args.append(lo)
                        if hi is not None:
                            conds.append(f"{col} < ?")
                            args.append(hi)
                        return "".join(f" AND {c}" for c in conds), args

                    cond, args = span("time")
                    self._zone_touch(cur, f"device_id = ?{cond}", [did, *args])
                    removed = self._n(cur, f"DELETE FROM observations WHERE device_id = ?{cond}", [did, *args])
                    self._latest_after_delete(cur, f"device_id = ?{cond}", [did, *args], device_id=did)
                    add("observations", removed)
                    if self._postgres:
                        self._erase_rollups(cur, add, did, lo, hi)
                    self._pg_after_delete(cur, [did], removed)
                    add("device_events", self._n(cur, f"DELETE FROM device_events WHERE device_id = ?{cond}",
                                                 [did, *args]))
                    jcond, jargs = span("coalesce(time, received_at)")
                    add("journal", self._delete_journal(cur, f"dev_eui = ?{jcond}", [eui, *jargs]))
                    # frames that never said which device they came from, but name it (a bad frame, quarantined)
                    add("journal", self._delete_journal(cur, f"dev_eui IS NULL{jcond} AND ("
                                                             f"{self._raw_has('raw', 'topic')})",
                                                        [*jargs, *self._raw_args(eui)]))
                    acond, aargs = span("opened_at")
                    self._delete_alerts(cur, add, f"subject_kind = 'device' AND subject = ?{acond}", [eui, *aargs])
                    # the detectors' memory of it (windows of its readings): whole, whatever the date (the detectors
                    # start afresh for this device; a `clapas run` holding it in memory saves it again when the
                    # device next speaks, so erase with the service stopped, as DuckDB requires anyway)
                    add("detector_state", self._n(cur, "DELETE FROM detector_state WHERE subject = ?", [eui]))
                    # the gateways that heard it: a pair heard within the period goes whole (it is heard again next)
                    gcond, gargs = span("last_heard", hi=None)
                    add("device_gateways", self._n(cur, f"DELETE FROM device_gateways WHERE dev_eui = ?{gcond}"
                                                        + (" AND first_heard < ?" if hi is not None else ""),
                                                   [eui, *gargs, *([hi] if hi is not None else [])]))
                    # the times it was heard (its learned interval), whatever the period: learned again as it speaks
                    add("device_uplink_times", self._n(cur, "DELETE FROM device_uplink_times WHERE dev_eui = ?",
                                                       [eui]))
                    add("device_uplink_times", self._n(cur, "DELETE FROM device_uplink_pending WHERE dev_eui = ?",
                                                       [eui]))
                    if t["whole"]:
                        add("occupancy", self._n(cur, "DELETE FROM occupancy WHERE device_id = ?", [did]))
                        add("devices", self._n(cur, "DELETE FROM devices WHERE id = ?", [did]))
                        whole.append(did)
                    if t["clear_subscriber"]:
                        cleared = self._n(cur, "UPDATE devices SET subscriber = '' WHERE id = ?", [did])
                        add("devices (subscriber cleared)", cleared)
                if subscriber:
                    add("occupancy", self._n(cur, "DELETE FROM occupancy WHERE subscriber = ?", [subscriber]))
                if dry_run:
                    raise _DryRun
        except _DryRun:
            return {t: n for t, n in counts.items() if n}
        self._forget(whole)
        return {t: n for t, n in counts.items() if n}

    def _raw_has(self, raw: str, topic: str) -> str:
        """SQL: a raw frame or its topic names the EUI (lower or upper case hex); 4 parameters."""
        if self._postgres:
            has = f"position(convert_to(?, 'UTF8') in {raw}) > 0"
        else:
            has = f"contains(CAST({raw} AS VARCHAR), ?)"
        return f"{topic} LIKE ? OR {topic} LIKE ? OR {has} OR {has}"

    @staticmethod
    def _raw_args(eui: str) -> list[Any]:
        return [f"%{eui.lower()}%", f"%{eui.upper()}%", eui.lower(), eui.upper()]

    def _erase_rollups(self, cur: Any, add: Any, did: int, lo: datetime | None, hi: datetime | None) -> None:
        """PostgreSQL: a device's rollup rows of the erased period; a bucket the period only partly covers is
        deleted too and marked pending, so that the rollup step rebuilds it from the rows left."""
        for res in ("1h", "1d"):
            conds, args = [], []
            if lo is not None:
                conds.append(f"bucket >= {self._bucket(res, 'CAST(? AS TIMESTAMPTZ)')}")
                args.append(lo)
            if hi is not None:
                conds.append("bucket < ?")
                args.append(hi)
            where = "".join(f" AND {c}" for c in conds)
            add(f"rollup_{res}", self._n(cur, f"DELETE FROM rollup_{res} WHERE device_id = ?{where}", [did, *args]))
            for edge in (lo, hi):
                if edge is not None:
                    cur.execute(self._q(
                        f"INSERT INTO rollup_pending (resolution, bucket, touched_at) SELECT ?, "
                        f"{self._bucket(res, 'CAST(? AS TIMESTAMPTZ)')}, now() "
                        "ON CONFLICT (resolution, bucket) DO UPDATE SET touched_at = excluded.touched_at"),
                        [res, edge])

    # occupancy ----------------------------------------------------------------------------------------
    def occupancy(self, eui: str) -> list[dict[str, Any]]:
        """A device's occupancy periods, oldest first."""
        rows = self._rows(self._q("SELECT o.subscriber, o.since, o.until FROM occupancy o JOIN devices d "
                                  "ON d.id = o.device_id WHERE d.eui = ? ORDER BY o.since NULLS FIRST"), [eui])
        return [{k: (v.astimezone(UTC) if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]

    def occupant_since(self, eui: str) -> datetime | None:
        """Where the current occupant's period starts (None: no change of occupant recorded, all is theirs)."""
        rows = self._rows(self._q("SELECT max(o.since) AS since FROM occupancy o JOIN devices d ON d.id = "
                                  "o.device_id WHERE d.eui = ? AND o.until IS NULL"), [eui])
        v = rows[0]["since"] if rows else None
        return v.astimezone(UTC) if v is not None else None

    def occupants_since(self, euis: Sequence[str]) -> dict[str, datetime]:
        """`occupant_since` of many devices in one query (a page of latest values); devices without a recorded
        change of occupant are absent."""
        if not euis:
            return {}
        rows = self._rows(self._q("SELECT d.eui, max(o.since) AS since FROM occupancy o JOIN devices d ON d.id = "
                                  "o.device_id WHERE d.eui IN (SELECT unnest(CAST(? AS VARCHAR[]))) "
                                  "AND o.until IS NULL GROUP BY 1"), [list(euis)])
        return {r["eui"]: r["since"].astimezone(UTC) for r in rows if r["since"] is not None}

    def reassign(self, eui: str, subscriber: str, since: datetime) -> dict[str, Any]:
        """A change of occupant at `since`: the current period ends there, the new one starts; the registry's
        subscriber becomes the new one."""
        with self._alert_tx() as cur:
            cur.execute(self._q("SELECT id, subscriber FROM devices WHERE eui = ?"), [eui])
            row = cur.fetchone()
            if row is None:
                raise OccupancyError(f"unknown device {eui!r}")
            did, previous = int(row[0]), row[1] or ""
            cur.execute(self._q("SELECT since FROM occupancy WHERE device_id = ? AND until IS NULL"), [did])
            open_rows = cur.fetchall()
            if open_rows:
                start = open_rows[0][0]
                if start is not None and since <= start:
                    raise OccupancyError(f"device {eui}: the current occupant's period starts at "
                                         f"{start.astimezone(UTC).isoformat()}; --from must be after it")
                cur.execute(self._q("UPDATE occupancy SET until = ? WHERE device_id = ? AND until IS NULL"),
                            [since, did])
            else:
                cur.execute(self._q("INSERT INTO occupancy (device_id, subscriber, since, until) "
                                    "VALUES (?, ?, NULL, ?)"), [did, previous, since])
            cur.execute(self._q("INSERT INTO occupancy (device_id, subscriber, since, until) VALUES (?, ?, ?, NULL)"),
                        [did, subscriber, since])
            cur.execute(self._q("UPDATE devices SET subscriber = ? WHERE id = ?"), [subscriber, did])
        return {"device": eui, "previous": previous, "subscriber": subscriber, "since": since.astimezone(UTC)}
