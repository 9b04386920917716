"""Which class every value has: from the device, its kind and the quantity; derived data from its sources.

The class of a device's values is the most restrictive of (../shared/domain-rules.md §8.9):
- the registry's `data_class` (stored with the device; the default `open` only means "nothing said"),
- its kind's class: `[charter.kinds]` of the city, else the table below (a water meter of a dwelling, or of
  premises the registry does not name, is personal; a non-residential one restricted; an unknown kind restricted),
- and, for one quantity, `[charter.quantities]` (a city may make e.g. `occupancy` restricted everywhere).
So a setting can only add restriction to what the registry says of one device, and a city that wants to open a
kind says so for the kind (`[charter.kinds]`), never by leaving a device's registry class at `open`.

Derived data carries the class of what it comes from: an alert about a device the class of that device (and of
its rule's sources), a zone alert the class of the kinds its rule reads, a journal frame at least `restricted`
(raw frames hold the readings) and personal for a personal device. The registry fields of a personal device that
identify a home (EUI, name, exact position, subscriber, premises use, tags) are personal; its zone and kind are
open, which is why listings may count withheld devices per zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from clapas.charter import CLASSES, OPEN, PERSONAL, RESTRICTED, most_restrictive
from clapas.model import DEVICE_KINDS

HABITATION = "habitation"  # the registry's premises_use of a dwelling (loi Warsmann, §1.1)
NON_RESIDENTIAL = "non_residential"  # `[charter.kinds]` qualifier: "water_meter.non_residential"

# §8.9 "Design defaults — data class" (every row [U], its basis in the table there).
KIND_CLASSES: dict[str, str] = {
    "water_meter": PERSONAL,  # household readings (§8.2: CNIL 2012-404, ATF 147 I 346)
    f"water_meter.{NON_RESIDENTIAL}": RESTRICTED,  # business secrecy; "petits professionnels" split (§8.3)
    "district_meter": RESTRICTED,  # network data, no person
    "indoor_climate": RESTRICTED,  # CO₂/occupancy of small rooms reveals presence
    "weather_station": OPEN,  # CRPA L312-1-1 "intérêt … environnemental" (§8.1)
    "rain_gauge": OPEN,
    "air_quality": OPEN,
    "water_level": OPEN,
    "traffic_counter": OPEN,  # counts, no identifier
    "bike_counter": OPEN,
    "bike_station": OPEN,
    "bikeshare_system": OPEN,  # a public GBFS feed's polling state
    "bikeshare_zone": OPEN,  # counts of a public GBFS feed's free-floating vehicles per zone
}
UNKNOWN_KIND_CLASS = RESTRICTED  # "generic / unknown: deny by default" (§8.9)
JOURNAL_FLOOR = RESTRICTED  # raw frames hold readings and radio data of every device (§8.9, "the journal")

# What each alert rule reads (rule name prefix → device kinds, longest prefix wins): a zone alert has the class of
# these kinds (unknown rules: restricted); a device alert has its device's class ([charter.rules] may raise both).
RULE_SOURCES: dict[str, tuple[str, ...]] = {
    "water.district_night_flow": ("district_meter",),  # DMA night flow and balance: its inflow meters
    "water": ("water_meter",),
    "heat": ("weather_station",),
    "air": ("air_quality",),
    "flood": ("water_level", "rain_gauge"),
    "museum": ("indoor_climate",),
    "mobility": ("bike_station", "bikeshare_system", "bikeshare_zone", "bike_counter", "traffic_counter"),
    # a gateway incident lists the devices it orphans, whatever their kind (a dwelling's meter among them)
    "health.gateway_offline": DEVICE_KINDS,
}

# Registry fields that identify a personal device's home; `zone` and `kind` stay open (§8.9, issue 10).
PERSONAL_FIELDS = ("eui", "name", "lat", "lon", "subscriber", "premises_use", "tags", "attributes")


class ClassSettings(Protocol):
    """The `[charter]` fields this module reads (`clapas.config.CharterSettings`)."""

    kinds: dict[str, str]
    quantities: dict[str, str]
    rules: dict[str, str]


class ClassError(ValueError):
    """A `[charter]` class setting that names no class."""


def check_settings(s: ClassSettings) -> None:
    """Every class named in `[charter.kinds]`, `[charter.quantities]` and `[charter.rules]` is a class."""
    for section in ("kinds", "quantities", "rules"):
        for key, value in getattr(s, section).items():
            if value not in CLASSES:
                raise ClassError(f"charter.{section}.{key}: {value!r} is not a class; one of {', '.join(CLASSES)}")


def _by_prefix(table: Mapping[str, Any], rule: str) -> Any:
    """The entry of the longest prefix of a dotted rule name (`water` matches `water.burst`), or None."""
    best = max((p for p in table if rule == p or rule.startswith(p + ".")), key=len, default=None)
    return None if best is None else table[best]


def _registry_class(value: Any) -> str:
    """The registry's `data_class`: empty means nothing said (open); anything unknown counts as personal."""
    return OPEN if not value else str(value)


class Classifier:
    """The classes of one city's values, from its live `[charter]` settings (none: the §8.9 defaults)."""

    def __init__(self, settings: ClassSettings | None = None) -> None:
        self.kinds = {**KIND_CLASSES, **(settings.kinds if settings else {})}
        self.quantities = dict(settings.quantities) if settings else {}
        self.rules = dict(settings.rules) if settings else {}

    # devices -------------------------------------------------------------------------------------------
    def kind(self, kind: str, premises_use: str = "") -> str:
        """A kind's class; a meter of premises named and not a dwelling takes the `.non_residential` entry."""
        if premises_use and premises_use != HABITATION:
            qualified = self.kinds.get(f"{kind}.{NON_RESIDENTIAL}")
            if qualified is not None:
                return qualified
        return self.kinds.get(kind or "generic", UNKNOWN_KIND_CLASS)

    def device(self, d: Mapping[str, Any]) -> str:
        """The class of a registry device (a row of `Store.devices`): registry class and kind class."""
        return most_restrictive(_registry_class(d.get("data_class")),
                                self.kind(str(d.get("kind") or ""), str(d.get("premises_use") or "")))

    def quantity(self, quantity: str) -> str:
        return self.quantities.get(quantity, OPEN)

    def value(self, d: Mapping[str, Any], quantity: str) -> str:
        """The class of one quantity of one device."""
        return most_restrictive(self.device(d), self.quantity(quantity))

    # derived data --------------------------------------------------------------------------------------
    def rule(self, rule: str) -> str:
        """The class of a zone alert of this rule: `[charter.rules]`, else the class of the kinds it reads."""
        own = _by_prefix(self.rules, rule)
        if own is not None:
            return own
        kinds = _by_prefix(RULE_SOURCES, rule)
        return UNKNOWN_KIND_CLASS if kinds is None else most_restrictive(*(self.kind(k) for k in kinds))

    def alert(self, a: Mapping[str, Any], device: Mapping[str, Any] | None) -> str:
        """An alert (its evidence, message and subject). A device alert has its device's class (a leak on a
        shop's meter is restricted, on a dwelling's personal), raised by `[charter.rules]`; one whose device the
        registry does not know is personal, since nothing says its subject is not a home. A zone alert has its
        rule's class."""
        rule = str(a.get("rule") or "")
        if a.get("subject_kind") != "device":
            return self.rule(rule)
        if device is None:
            return PERSONAL
        return most_restrictive(self.device(device), _by_prefix(self.rules, rule) or OPEN)

    def frame(self, device: Mapping[str, Any] | None) -> str:
        """A journal frame (raw bytes, decoded or not): at least restricted; its device's class if higher. A frame
        of no known device is restricted (what it holds is not known to be anyone's)."""
        return JOURNAL_FLOOR if device is None else most_restrictive(JOURNAL_FLOOR, self.device(device))

    # the register --------------------------------------------------------------------------------------
    def kind_table(self) -> dict[str, str]:
        """Every kind (and qualified kind) the city classifies, with its class."""
        return dict(sorted(self.kinds.items()))
