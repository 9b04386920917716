"""What the health routes read of the store (issue 13, domain-rules.md §7), for both stores.

The routes read the store, never the detectors' memory. A device's learned uplink interval is the silent detector's
rule (the median of its last intervals), kept per device in `device_uplink_times` (version 15): the times of its
last `LEARN_KEEP` + 1 messages heard, their median interval and how many intervals. A batch only appends its times
to `device_uplink_pending` (in its own transaction, a few ms); the store's maintenance step (DuckDB `compact`,
PostgreSQL `maintain`: `fold_uplink_times`) merges them into the kept rows in one statement, as `zone_rollup.py`
rebuilds its pending hours. Reads merge the times still pending, so answers are the same before and after the step.
A health call at 45,000 devices reads one row per device (and the few pending), not 30 days of journal (the journal
read it replaces, `learned_intervals_from_journal`, is kept as the reference the tests compare with). Its frame
counters come from the journal. Which gateways hear which device (the uplinks' `rxInfo[]`) is kept in
`device_gateways` (version 12), one row per (device, gateway): first and last heard, the SNR of the last uplink it
heard. Each batch upserts its pairs in its own transaction; the upsert keeps the earliest first, the latest last, so
a replay changes nothing. Erasure and retention delete its rows with the device's frames (`store/charter.py`):
erasure a device's kept and pending times whole, retention those before the cut. A replay merges its times with the
kept ones (a replayed frame whose time a fixed parser moved leaves its old time kept until 21 newer ones push it
out).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clapas.config import LEARN_UPLINKS_MAX
from clapas.store import schema
from clapas.store.base import DUPLICATE, Batch
from clapas.store.tables import StoreTables

_TEXTS = "(SELECT unnest(CAST(? AS VARCHAR[])))"


def ddl() -> list[str]:
    """Version 12 (issue 13): the gateways each device is heard by."""
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


# the intervals kept per device: §7.2's proposal, the median inter-arrival of the last 20 uplinks (the default of
# `[health] learn_uplinks`, which may not exceed it)
LEARN_KEEP = LEARN_UPLINKS_MAX

# every message of a device but duplicates counts as heard, as for `devices.last_seen` (schema.DEVICE_HEARD_UPDATE);
# only uplinks and status events, as the health rules read them (`Batch.links`)
_HEARD_EVENTS = ("up", "status")
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


# (eui, t) rows → one row per device of `device_uplink_times`: its last LEARN_KEEP + 1 distinct times (ascending),
# the first and last, the median of their intervals (percentile_cont, as the journal read) and how many intervals
_FOLD_CTES = f"""
ranked AS (SELECT eui, t, row_number() OVER (PARTITION BY eui ORDER BY t DESC) AS k FROM heard),
kept AS (SELECT eui, t, t - lag(t) OVER (PARTITION BY eui ORDER BY t) AS gap FROM ranked WHERE k <= {LEARN_KEEP + 1})"""
_FOLD_SELECT = """
SELECT eui AS dev_eui, array_agg(t ORDER BY t) AS times, min(t) AS first_t, max(t) AS last_t,
       CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS DOUBLE PRECISION) AS interval_s, count(gap) AS gaps
FROM kept GROUP BY eui"""
_FOLD = f"{_FOLD_CTES}{_FOLD_SELECT}"
_TIMES_COLS = "(dev_eui, times, first_t, last_t, interval_s, gaps)"
_EPOCH = "CAST(extract(epoch FROM j.time) AS DOUBLE PRECISION)"


def times_ddl() -> list[str]:
    """Version 15 (issue 13): each device's last heard times and learned interval, filled from the journal (one
    pass over it at migration), and the times heard since the last fold (`device_uplink_pending`)."""
    return ["CREATE TABLE device_uplink_pending (dev_eui VARCHAR NOT NULL, t DOUBLE PRECISION NOT NULL)",
            """CREATE TABLE device_uplink_times (dev_eui VARCHAR PRIMARY KEY, times DOUBLE PRECISION[] NOT NULL,
        first_t DOUBLE PRECISION NOT NULL, last_t DOUBLE PRECISION NOT NULL, interval_s DOUBLE PRECISION,
        gaps INTEGER NOT NULL)""",
            f"INSERT INTO device_uplink_times {_TIMES_COLS} WITH heard AS (SELECT DISTINCT j.dev_eui AS eui, "
            f"{_EPOCH} AS t FROM journal j WHERE {_HEARD}), {_FOLD}"]


# a batch's (eui, t), turned into epoch seconds by the store as the journal read does (the same doubles, to the last
# bit): an append, a few ms per batch of 10,000
_PUT_PENDING = f"""
INSERT INTO device_uplink_pending SELECT eui, {_EPOCH.replace("j.time", "t")} FROM (
  SELECT unnest(CAST(? AS VARCHAR[])) AS eui, unnest(CAST(? AS TIMESTAMPTZ[])) AS t) n"""
# the fold: the pending times merged with the kept times of their devices (the primary key finds them)
_HEARD_PENDING = """heard AS (SELECT DISTINCT eui, t FROM (SELECT eui, t FROM new
          UNION ALL SELECT u.dev_eui, unnest(u.times) FROM device_uplink_times u
          WHERE u.dev_eui IN (SELECT eui FROM new)) a),"""
# DuckDB (the store's lock holds every writer off meanwhile): into a temporary table, then swapped in
DUCKDB_FOLD = [
    f"CREATE OR REPLACE TEMP TABLE folded AS WITH new AS (SELECT dev_eui AS eui, t FROM device_uplink_pending), "
    f"{_HEARD_PENDING}{_FOLD}",
    "DELETE FROM device_uplink_times WHERE dev_eui IN (SELECT dev_eui FROM folded)",
    f"INSERT INTO device_uplink_times {_TIMES_COLS} SELECT * FROM folded",
    "DELETE FROM device_uplink_pending",
    "DROP TABLE folded",
]
# PostgreSQL (writers go on): one statement takes the pending rows it deletes, so a row a batch commits meanwhile
# stays for the next fold; an advisory lock keeps two maintainers (workers) from folding one device at once
POSTGRES_FOLD = [
    "SELECT pg_advisory_xact_lock(1315)",  # design: issue 13, migration 15
    f"WITH new AS (DELETE FROM device_uplink_pending RETURNING dev_eui AS eui, t), {_HEARD_PENDING}{_FOLD_CTES} "
    f"INSERT INTO device_uplink_times {_TIMES_COLS} {_FOLD_SELECT} ON CONFLICT (dev_eui) DO UPDATE SET "
    "times = excluded.times, first_t = excluded.first_t, last_t = excluded.last_t, interval_s = excluded.interval_s, "
    "gaps = excluded.gaps",
]
_HEALTH_DEVICE = ("SELECT d.eui, d.name, d.kind, d.profile, d.zone, d.lat, d.lon, d.data_class, d.premises_use, "
                  "d.expected_interval_s, d.last_seen FROM devices d")
_NO_INTERVAL = "dev_eui IN (SELECT eui FROM devices WHERE expected_interval_s IS NULL)"
# a kept median that answers for the window [?, ?] (all its times in it) with at least ? intervals
_STORED_MEDIAN = "first_t >= ? AND last_t <= ? AND gaps >= ? AND gaps >= 1"


@dataclass(frozen=True)
class Learned:
    """The learned intervals of one window (`HealthTables.learned_window`): whether the kept medians answer
    (`stored`, with `stored_args` for `_STORED_MEDIAN`) and the devices recomputed instead (None: none learned)."""

    stored: bool
    stored_args: tuple[float, float, int]
    recomputed: dict[str, float | None]


def heard_times(batch: Batch) -> tuple[list[str], list[datetime]]:
    """The batch's messages heard as the journal read counts them (uplinks and status events, duplicates left
    out): distinct (eui, time), as two columns."""
    pairs = {(e, t) for e, t, ev, st in zip(batch.j_eui, batch.j_time, batch.j_event, batch.j_status,
                                                         strict=True)
             if e is not None and t is not None and ev in _HEARD_EVENTS and st != DUPLICATE}
    return [e for e, _ in pairs], [t for _, t in pairs]


def learn(times: Sequence[float], since: float, until: float, uplinks: int, min_uplinks: int) -> float | None:
    """The journal read's rule on kept times: the median of the intervals between the last `uplinks` + 1 times in
    [since, until], if there are at least `min_uplinks` intervals."""
    t = [x for x in times if since <= x <= until][-(uplinks + 1):]
    if len(t) - 1 < max(min_uplinks, 1):
        return None
    return float(statistics.median(b - a for a, b in itertools.pairwise(t)))


@dataclass(frozen=True)
class Judging:
    """What the store judges device states on (`clapas.indices.health.device_state`, for a whole fleet in one
    statement): when (µs since the epoch), the late and silent factors, T per profile (those that give one), the
    devices whose `health.silent` alert is open, and the learned intervals of the window."""

    at_us: int
    late_factor: float
    silent_factor: float
    profiles: dict[str, float]
    alerted: Sequence[str]
    learned: Learned


# the store's classification is the Python rule's to the last bit: the age in whole µs / 10⁶ (as
# `timedelta.total_seconds`), compared with factor × T in doubles; T the profile's, the registry's (non-zero), else
# learned (a device without a registry interval: recomputed, else its kept median when that answers)
_LAST_US = "CAST(round(extract(epoch FROM d.last_seen) * 1000000) AS BIGINT)"
_DOUBLE = "DOUBLE PRECISION"
# the devices the call names (recomputed learned intervals, open `health.silent` alerts): one row each, one join
_JUDGED = f"""
WITH named AS (SELECT unnest(CAST(? AS VARCHAR[])) AS eui, unnest(CAST(? AS BOOLEAN[])) AS again,
  unnest(CAST(? AS {_DOUBLE}[])) AS t, unnest(CAST(? AS BOOLEAN[])) AS alerted),
base AS (
  SELECT d.eui, d.name, d.kind, d.zone, d.data_class, d.premises_use, d.last_seen, d.expected_interval_s AS reg,
    {{profile}} AS prof, coalesce(x.alerted, FALSE) AS alerted,
    CASE WHEN d.last_seen IS NOT NULL THEN greatest(CAST(0 AS {_DOUBLE}),
      CAST(CAST(? AS BIGINT) - {_LAST_US} AS {_DOUBLE}) / CAST(1000000 AS {_DOUBLE})) END AS age,
    CASE WHEN d.expected_interval_s IS NOT NULL THEN NULL WHEN x.again THEN x.t
         WHEN CAST(? AS BOOLEAN) AND u.{_STORED_MEDIAN.replace(" AND ", " AND u.")} THEN u.interval_s END AS learned
  FROM devices d LEFT JOIN named x ON x.eui = d.eui LEFT JOIN device_uplink_times u ON u.dev_eui = d.eui
  WHERE {{where}}
), timed AS (
  SELECT *, CASE WHEN prof IS NOT NULL THEN prof WHEN reg <> 0 THEN CAST(reg AS {_DOUBLE}) ELSE learned END
              AS interval_s,
    CASE WHEN prof IS NOT NULL THEN 'profile' WHEN reg <> 0 THEN 'registry' WHEN learned IS NOT NULL THEN 'learned'
    END AS interval_source
  FROM base
), judged AS MATERIALIZED (
  SELECT eui, name, kind, zone, data_class, premises_use, last_seen, interval_s, interval_source, -- narrow: in memory
    CASE WHEN age IS NULL THEN 'never_seen' WHEN alerted THEN 'silent'
    WHEN interval_s IS NULL OR interval_s <= 0 THEN 'unknown' WHEN age > CAST(? AS {_DOUBLE}) * interval_s THEN 'silent'
    WHEN age > CAST(? AS {_DOUBLE}) * interval_s THEN 'late' ELSE 'ok' END AS state
  FROM timed
)"""


# a listed device's columns beside its state, kind and zone
_ROW_COLUMNS = (("eui", "VARCHAR"), ("name", "VARCHAR"), ("last_seen", "TIMESTAMPTZ"), ("interval_s", _DOUBLE),
                ("interval_source", "VARCHAR"))


def _judged(j: Judging, kind: str | None, zone: str | None) -> tuple[str, list[Any]]:
    """The `judged` CTE of the devices of `kind` and `zone` (each judged once: read twice), and its parameters;
    T per profile a CASE (a city has a handful of profiles)."""
    where, params = schema.device_filter(kind, zone)
    again, alerted = j.learned.recomputed, set(j.alerted)
    named = sorted(again.keys() | alerted)
    profile = ("CASE coalesce(d.profile, '') " + " ".join(f"WHEN ? THEN CAST(? AS {_DOUBLE})" for _ in j.profiles)
               + " END") if j.profiles else f"CAST(NULL AS {_DOUBLE})"
    sql = _JUDGED.replace("{profile}", profile).replace("{where}", where)
    return sql, [named, [e in again for e in named], [again.get(e) for e in named], [e in alerted for e in named],
                 *(x for name_t in j.profiles.items() for x in name_t), j.at_us, j.learned.stored,
                 *j.learned.stored_args, *params, j.silent_factor, j.late_factor]

class HealthTables(StoreTables):
    """The health reads of `Store` (mixed in before `Store`), and what each batch adds for them."""

    def _put_health(self, cur: Any, batch: Batch) -> None:
        """Inside a batch's transaction: which gateways heard which device (from its uplinks' rxInfo), and the
        times its devices were heard (their learned intervals)."""
        rows = link_rows(batch.links)
        if rows:
            cur.execute(self._q(_UPSERT_LINKS), [[r[0] for r in rows], [r[1] for r in rows],
                                                 [_ts(r[2]) for r in rows], [_ts(r[3]) for r in rows],
                                                 [r[4] for r in rows]])
        euis, times = heard_times(batch)
        if euis:
            self._put_pending(cur, euis, times)

    def _put_pending(self, cur: Any, euis: list[str], times: list[datetime]) -> None:
        """The batch's heard times appended to `device_uplink_pending` (PostgreSQL copies them instead)."""
        cur.execute(self._q(_PUT_PENDING), [euis, times])

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

    def _fold_uplink_times(self, cur: Any, statements: list[str]) -> None:
        """Inside the maintenance step's transaction: the pending times merged into the kept rows."""
        for sql in statements:
            cur.execute(self._q(sql))

    def health_devices(self, *, kind: str | None = None, zone: str | None = None,
                       euis: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every registry device (of `kind`, in `zone`, of `euis`) with what the health routes judge and list it
        on: eui, name, kind, profile, zone, lat, lon, data_class, premises_use, expected_interval_s, last_seen — the
        columns of `devices()` without its JSON ones (tags, attributes), by EUI."""
        where, params = schema.device_filter(kind, zone)
        if euis is not None:
            where, params = f"{where} AND d.eui IN {_TEXTS}", [*params, list(euis)]
        return self._rows(self._q(f"{_HEALTH_DEVICE} WHERE {where} ORDER BY d.eui"), params)

    def learned_intervals(self, since: datetime, until: datetime, uplinks: int = LEARN_KEEP,
                          min_uplinks: int = 5, euis: Sequence[str] | None = None) -> dict[str, float]:
        """Each device (of `euis`, default all) without a registry interval: the median of the intervals between
        its last `uplinks` + 1 messages heard in [since, until] (at least `min_uplinks` intervals), in seconds.

        From the kept times (`device_uplink_times`, and those heard since the last fold), the same answer as the
        journal read whenever `until` is at or after the device's last time heard (a health call at now): a device
        whose kept times all lie in the window and that nothing since changed is one stored median (the usual
        case, at the default `uplinks`), others are recomputed from their kept and pending times. An `until`
        before a device's last kept time sees only the kept times before it (the journal read would reach older
        ones).
        """
        learned = self.learned_window(since, until, uplinks, min_uplinks, euis)
        cond, args = (f" AND dev_eui IN {_TEXTS}", [list(euis)]) if euis is not None else ("", [])
        out: dict[str, float] = {}
        if learned.stored:
            rows = self._rows(self._q(f"SELECT dev_eui, interval_s FROM device_uplink_times WHERE {_STORED_MEDIAN} "
                                      f"AND {_NO_INTERVAL}{cond}"), [*learned.stored_args, *args])
            out = {r["dev_eui"]: float(r["interval_s"]) for r in rows if r["dev_eui"] not in learned.recomputed}
        out.update((e, t_) for e, t_ in learned.recomputed.items() if t_ is not None)
        return out

    def learned_window(self, since: datetime, until: datetime, uplinks: int = LEARN_KEEP, min_uplinks: int = 5,
                       euis: Sequence[str] | None = None) -> Learned:
        """`learned_intervals` as a read can join it: which kept medians answer (`_STORED_MEDIAN`, at the default
        `uplinks`), and the devices they do not answer for recomputed from their kept and pending times (None:
        nothing learned) — the devices heard since the last fold, those with kept times outside the window."""
        if not 1 <= uplinks <= LEARN_KEEP:
            raise ValueError(f"uplinks must be between 1 and {LEARN_KEEP} (the intervals the store keeps)")
        lo, hi = since.timestamp(), until.timestamp()
        cond, args = (f" AND dev_eui IN {_TEXTS}", [list(euis)]) if euis is not None else ("", [])
        pending: dict[str, list[float]] = {}
        for r in self._rows(self._q(f"SELECT dev_eui, t FROM device_uplink_pending WHERE {_NO_INTERVAL}{cond}"),
                            args):
            pending.setdefault(r["dev_eui"], []).append(r["t"])
        stored = uplinks == LEARN_KEEP
        # at the default `uplinks`, those the stored median is not; else every device heard in the window
        rest, rest_args = (" AND (first_t < ? OR last_t > ?)", [lo, hi]) if stored else ("", [])
        rows = self._rows(self._q(f"SELECT dev_eui, times FROM device_uplink_times WHERE last_t >= ? AND first_t <= ?"
                                  f"{rest} AND {_NO_INTERVAL}{cond}"), [lo, hi, *rest_args, *args])
        if pending:  # (the pending devices by primary key, not a subquery: no plan guesses the pending table's size)
            rows += self._rows(self._q(f"SELECT dev_eui, times FROM device_uplink_times WHERE dev_eui IN {_TEXTS}"),
                               [list(pending)])
        merged = {r["dev_eui"]: list(r["times"]) for r in rows}
        for eui, times in pending.items():  # with the devices heard only since the last fold
            merged.setdefault(eui, []).extend(times)
        return Learned(stored, (lo, hi, min_uplinks),
                       {eui: learn(sorted(set(times)), lo, hi, uplinks, min_uplinks) for eui, times in merged.items()})

    def health_states(self, judging: Judging, *, kind: str | None = None, zone: str | None = None,
                      state: str | None = None, groups: Sequence[tuple[str, str, str]] | None = None,
                      limit: int = 1000) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every registry device (of `kind`, in `zone`) judged at `judging.at_us`, in one statement: (the devices
        counted per state, kind, zone, data_class and premises_use — what a device's class depends on, texts
        coalesced to '' —, the first `limit` by EUI in `state` of the (data_class, kind, premises_use) `groups`
        (None: all): eui, name, kind, zone, state, last_seen, interval_s, interval_source)."""
        sql, args = _judged(judging, kind, zone)
        listed, more = schema.device_filter(None, None, groups=None if groups is None else list(groups))
        if state is not None:
            listed, more = f"{listed} AND d.state = ?", [*more, state]
        nothing = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in _ROW_COLUMNS)
        rows = self._rows(self._q(
            f"{sql} SELECT 0 AS part, state, coalesce(kind, '') AS kind, coalesce(zone, '') AS zone, "
            "coalesce(data_class, '') AS data_class, coalesce(premises_use, '') AS premises_use, count(*) AS n, "
            f"{nothing} FROM judged GROUP BY 2, 3, 4, 5, 6 UNION ALL "
            f"SELECT 1, state, kind, zone, NULL, NULL, row_number() OVER (ORDER BY eui), "
            f"{', '.join(c for c, _ in _ROW_COLUMNS)} FROM (SELECT * FROM judged d WHERE {listed} ORDER BY d.eui "
            "LIMIT ?) p"), [*args, *more, limit])
        counted = sorted(({"state": r["state"], "kind": r["kind"], "zone": r["zone"], "data_class": r["data_class"],
                           "premises_use": r["premises_use"], "devices": int(r["n"])} for r in rows if r["part"] == 0),
                         key=lambda g: tuple(g.values()))
        page = sorted((r for r in rows if r["part"] == 1), key=lambda r: r["n"])
        return counted, [_utc_times({"eui": r["eui"], "name": r["name"], "kind": r["kind"], "zone": r["zone"],
                                     "state": r["state"], **{c: r[c] for c, _ in _ROW_COLUMNS[2:]}}) for r in page]

    def learned_intervals_from_journal(self, since: datetime, until: datetime, uplinks: int = LEARN_KEEP,
                                       min_uplinks: int = 5) -> dict[str, float]:
        """`learned_intervals` read from the journal itself (up to 30 days of it per device): the reference the
        kept times are checked against, not for a health call."""
        rows = self._rows(self._q(_LEARNED), [since, until, uplinks + 1, min_uplinks])
        return {r["eui"]: float(r["interval_s"]) for r in rows}



def _utc_times(r: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.astimezone(UTC) if isinstance(v, datetime) else v) for k, v in r.items()}
