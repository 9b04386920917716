"""Open aggregates of personal quantities: what an open caller gets instead of the household series.

A cell (a zone, or the whole city, over a day) is published only when it is safe: at least `min_meters`
contributing meters (décret n° 2020-196: 10 delivery points per residential aggregate) and no meter above
`dominance_share` of the cell's total (INSEE's dominance rule, 85 %); see ../shared/domain-rules.md §8.3, §8.9.
Steps are a day or coarser (CNIL: daily data by default, finer only with consent, §8.2); a sub-daily step is
refused.

Secondary suppression. Cells are nested (a zone holds its child zones and its own meters; the city holds every
zone), so a published parent minus its published children gives the sum of what is left: the meters of its
suppressed children and its own. Of every published cell P, the part no published cell below it covers (P minus its
"frontier", the highest published cells under it) must therefore be empty or safe itself; when it is not, the
frontier cell with the fewest meters is suppressed too ("secondary") and the check starts again, until every
published cell passes. Any set of published cells of one day differences into a union of such parts and of whole
published cells, each safe, so no suppressed cell is recoverable by subtraction (tests/charter/test_aggregates.py
checks it over random zone trees).

Weeks and months are sums of days: a zone's week (month) is published only when each of its days is published or
empty; it then adds nothing to what its days publish, so no week minus its days isolates a suppressed day.

This module is pure: the store hands it per-zone groups of meter-days (`Group`: how many meters, their total and
the largest single contribution), computed in SQL from the daily index differences (`clapas.store.charter`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import msgspec

ROOT = ""  # the city: parent of every zone without a (known) parent, and of meters in no known zone

PUBLISHED, SUPPRESSED, EMPTY = "published", "suppressed", "empty"
# why a cell is suppressed
MIN_METERS, DOMINANCE, SECONDARY = "min_meters", "dominance", "secondary"

# steps an open aggregate may use, finest first; anything else (1h, 15min, raw…) is refused
STEPS = ("1d", "1w", "1M")


class AggregateSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """[charter.aggregates]: when an aggregate of personal data may be published (../shared/domain-rules.md §8)."""

    # Meters a cell needs: décret n° 2020-196 du 4 mars 2020, residential aggregates of 10 delivery points
    # (11 before; INSEE's household grid: 11) [S].
    min_meters: int = 10
    # No meter may contribute more than this share of its cell: INSEE business tables, dominance 85 % [S].
    dominance_share: float = 0.85
    # Device kinds whose consumption is aggregated (dwelling and business meters; not the network's own district
    # meters) (design).
    kinds: list[str] = msgspec.field(default_factory=lambda: ["water_meter"])
    # A day is published once it ended this long ago: late uplinks then no longer change it, since two versions of
    # one cell would difference into the late meters alone (design: meters retry within hours).
    settle_h: float = 26.0
    # Longest period one request may span, in days (design: a year and its neighbours).
    max_days: int = 400


class RefusedStep(ValueError):
    """An open aggregate at a step finer than a day (or unknown)."""


def check_step(step: str) -> str:
    if step not in STEPS:
        raise RefusedStep(f"open aggregates of personal data are daily or coarser: step must be one of "
                          f"{', '.join(STEPS)}, not {step!r} (../shared/domain-rules.md §8.2)")
    return step


@dataclass(frozen=True, slots=True)
class Group:
    """Meter-days pooled together: how many, their total, the largest single one (all that k and dominance need;
    groups of disjoint meters combine exactly)."""

    meters: int = 0
    total: float = 0.0
    top: float = 0.0

    def __add__(self, other: Group) -> Group:
        return Group(self.meters + other.meters, self.total + other.total, max(self.top, other.top))


def unsafe(g: Group, s: AggregateSettings) -> str | None:
    """Why publishing this group's total would disclose too much (None: it may be published). Values are
    consumptions, never negative; a zero total with enough meters discloses nothing about any one of them."""
    if g.meters <= 0:
        return None
    if g.meters < s.min_meters:
        return MIN_METERS
    if g.total > 0 and g.top > s.dominance_share * g.total:
        return DOMINANCE
    return None


class ZoneTree:
    """Zones as a tree under the city (ROOT). A zone whose parent is unknown, or that is in a cycle, hangs from
    the city."""

    def __init__(self, zones: Iterable[tuple[str, str]]) -> None:
        parent = {z: p for z, p in zones if z != ROOT}
        for z in list(parent):
            seen, p = {z}, parent[z]
            while p in parent and p not in seen:
                seen.add(p)
                p = parent[p]
            if p == z:  # z's chain of parents comes back to it: cut the cycle here
                parent[z] = ROOT
        self.parent: dict[str, str] = {z: (p if p in parent else ROOT) for z, p in parent.items()}
        self.children: dict[str, list[str]] = defaultdict(list)
        for z, p in sorted(self.parent.items()):
            self.children[p].append(z)
        order, stack = [], [ROOT]
        while stack:  # top-down order
            n = stack.pop()
            order.append(n)
            stack.extend(reversed(self.children.get(n, [])))
        self.order: list[str] = order

    def node(self, zone: str) -> str:
        """Where a meter of this zone counts: the zone, or the city when the zone is unknown."""
        return zone if zone in self.parent else ROOT

    def subtree(self, zone: str) -> list[str]:
        out, stack = [], [zone]
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(self.children.get(n, []))
        return out


@dataclass(slots=True)
class Cell:
    zone: str
    group: Group
    status: str = PUBLISHED
    reason: str | None = None


def suppress(tree: ZoneTree, own: Mapping[str, Group], s: AggregateSettings) -> dict[str, Cell]:
    """One day: every zone's cell (its subtree's meters) published or suppressed, with why.

    `own`: per zone, the group of the meters registered directly in it (a meter counts in its zone and every
    zone above it).
    """
    own = {tree.node(z): g for z, g in _pool(tree, own).items()}
    total: dict[str, Group] = {}
    for n in reversed(tree.order):  # bottom-up: a cell is its own meters and its children's cells
        g = own.get(n, Group())
        for c in tree.children.get(n, []):
            g = g + total[c]
        total[n] = g
    cells: dict[str, Cell] = {}
    for n in tree.order:
        why = unsafe(total[n], s)
        cells[n] = Cell(n, total[n], EMPTY if total[n].meters == 0 else SUPPRESSED if why else PUBLISHED, why)

    def shown(n: str) -> bool:
        return cells[n].status != SUPPRESSED

    def hidden(n: str) -> tuple[Group, list[str]]:
        """What no published cell strictly below `n` covers, and the published cells that bound it."""
        g, frontier = own.get(n, Group()), []
        for c in tree.children.get(n, []):
            if shown(c):
                frontier.append(c)
            else:
                hg, hf = hidden(c)
                g = g + hg
                frontier += hf
        return g, frontier

    changed = True
    while changed:
        changed = False
        for n in tree.order:
            if cells[n].status != PUBLISHED:
                continue
            while True:
                rest, frontier = hidden(n)
                if unsafe(rest, s) is None:
                    break
                # suppress the frontier cell that costs least; its own part joins the rest (a published cell
                # itself passes, so the loop ends at the latest when the rest is the whole cell)
                victim = min((c for c in frontier if cells[c].group.meters > 0),
                             key=lambda c: (cells[c].group.meters, cells[c].group.total, c))
                cells[victim].status, cells[victim].reason = SUPPRESSED, SECONDARY
                changed = True
    return cells


def _pool(tree: ZoneTree, own: Mapping[str, Group]) -> dict[str, Group]:
    """Groups of zones unknown to the tree count in the city."""
    out: dict[str, Group] = {}
    for z, g in own.items():
        n = tree.node(z)
        out[n] = out.get(n, Group()) + g
    return out


def period_of(day: date, step: str) -> date:
    """The first day of the step's period that holds `day`: the day, its ISO week's Monday, its month's first."""
    if step == "1w":
        return day - timedelta(days=day.weekday())
    if step == "1M":
        return day.replace(day=1)
    return day


@dataclass(slots=True)
class PeriodCell:
    zone: str
    period: date
    status: str
    reason: str | None
    meter_days: int
    total: float
    meters: int | None  # distinct meters: days only (a week's would need each meter's identity)


def aggregate(tree: ZoneTree, days: Mapping[date, Mapping[str, Group]], step: str,
              s: AggregateSettings) -> list[PeriodCell]:
    """Cells per zone and period: each day suppressed over the zone tree, then (weeks, months) summed from
    days, a period published only when each of its days is published or empty there."""
    check_step(step)
    by_period: dict[tuple[str, date], list[Cell]] = defaultdict(list)
    for day in sorted(days):
        for zone, cell in suppress(tree, days[day], s).items():
            by_period[(zone, period_of(day, step))].append(cell)
    out = []
    for (zone, period), cells in sorted(by_period.items()):
        g = Group()
        for c in cells:
            g = g + c.group
        if g.meters == 0:
            status, reason = EMPTY, None
        elif any(c.status == SUPPRESSED for c in cells):
            first = next(c for c in cells if c.status == SUPPRESSED)
            status, reason = SUPPRESSED, first.reason if step == "1d" else SECONDARY
        else:
            status, reason = PUBLISHED, None
        out.append(PeriodCell(zone, period, status, reason, g.meters, g.total,
                              g.meters if step == "1d" else None))
    return out
