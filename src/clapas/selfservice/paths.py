"""Which settings a department may change at run time, and whose scope each one needs.

A setting is named by its path in the config file, written as a TOML dotted key: `flood.rise_1h_m_per_h`,
`flood.gauges.0004a30b001c2f3a.yellow_m`, `alerts.rule_enabled."flood.river_level"` (a key holding dots is
quoted, as in TOML). The departments are those of the charter's operator roles (`clapas.charter.roles`): a path
belongs to the department of the use its section (or its rule) serves; the notifier routes, shared by every
department, need `config:write`. Every other path (the store, the HTTP server, the charter, the credentials…) is
the config file's alone: changing it needs a restart, so it is refused here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi

from clapas.charter import CONFIG_WRITE, DEPARTMENT_SCOPES
from clapas.config import Settings

# section → department (the use it configures)
SECTIONS = {"water": "water", "heat": "environment", "islands": "environment", "air": "environment",
            "flood": "environment", "museum": "culture", "bikeshare": "mobility", "counters": "mobility"}
# rule prefix (before the first dot) → department; health rules are the platform's (config:write)
RULE_PREFIXES = {"water": "water", "heat": "environment", "air": "environment", "flood": "environment",
                 "museum": "culture", "mobility": "mobility", "health": "platform"}
NOTIFIERS = ("webhook", "mqtt", "email")
# per-device tables: section, table, the struct of one entry
DEVICE_TABLES = {("flood", "gauges"): "water_level", ("flood", "rain_gauges"): "rain_gauge"}
PLATFORM = "platform"
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


class NotOverridable(ValueError):
    """A path that is not a setting departments may change at run time (or not a path at all)."""


def split(path: str) -> list[str]:
    """`a.b."c.d".e` → ["a", "b", "c.d", "e"] (TOML dotted keys: bare or double-quoted)."""
    segs: list[str] = []
    i, n = 0, len(path)
    while i < n:
        if path[i] == '"':
            j = path.find('"', i + 1)
            if j < 0:
                raise NotOverridable(f"{path!r}: unterminated quoted key")
            segs.append(path[i + 1:j])
            i = j + 1
        else:
            j = path.find(".", i)
            j = n if j < 0 else j
            seg = path[i:j].strip()
            if not _BARE.match(seg):
                raise NotOverridable(f"{path!r}: {seg!r} is not a key (letters, digits, _ and -; quote others)")
            segs.append(seg)
            i = j
        if i < n:
            if path[i] != ".":
                raise NotOverridable(f"{path!r}: keys are separated by dots")
            i += 1
            if i == n:
                raise NotOverridable(f"{path!r}: ends with a dot")
    if not segs or any(s == "" for s in segs):
        raise NotOverridable(f"{path!r}: empty key")
    return segs


def join(segs: list[str]) -> str:
    return ".".join(s if _BARE.match(s) else '"' + s.replace('"', "") + '"' for s in segs)


def department(segs: list[str]) -> str:
    """The department a path belongs to (`platform` for what they share), or NotOverridable."""
    if segs[0] in SECTIONS and len(segs) >= 2:
        return SECTIONS[segs[0]]
    if segs[:2] == ["alerts", "rule_enabled"] and len(segs) == 3:
        prefix = segs[2].split(".", 1)[0]
        if prefix not in RULE_PREFIXES:
            raise NotOverridable(f"alerts.rule_enabled: {segs[2]!r} is no rule of a known use "
                                 f"({', '.join(RULE_PREFIXES)})")
        return RULE_PREFIXES[prefix]
    if segs[0] == "alerts" and len(segs) == 3 and segs[1] in NOTIFIERS and segs[2] == "rules":
        return PLATFORM
    if segs == ["alerts", "events"]:
        return PLATFORM
    raise NotOverridable(f"{join(segs)} cannot be changed at run time: it is the config file's (edit it and "
                         "restart); departments change the sections " + ", ".join(SECTIONS)
                         + ", alerts.rule_enabled and the notifiers' rules")


TAG_ROOTS = ("devices", "zones")  # tags changes in the settings history: devices.<eui>.tags, zones.<id>.tags


def is_tags_path(path: str) -> bool:
    """Whether a settings-history path is a device's or zone's tags (`clapas.selfservice.tags`), not a setting:
    the holder leaves it out of the configuration."""
    try:
        segs = split(path)
    except NotOverridable:
        return False
    return len(segs) == 3 and segs[0] in TAG_ROOTS and segs[2] == "tags"


def scope_of(dept: str) -> str:
    return CONFIG_WRITE if dept == PLATFORM else DEPARTMENT_SCOPES[dept]


@dataclass(frozen=True, slots=True)
class Entry:
    """One setting offered for change: its path, department, the kind of value it takes."""

    path: str
    department: str
    kind: str  # float, int, bool, str, list, "float|null"…
    device: str = ""  # the device EUI of a per-device setting

    @property
    def scope(self) -> str:
        return scope_of(self.department)


_KINDS = {mi.FloatType: "float", mi.IntType: "int", mi.BoolType: "bool", mi.StrType: "str"}


def _kind(t: Any) -> str | None:
    """The value kind of a field type, None for tables and structs (not offered as one value)."""
    for cls, name in _KINDS.items():
        if isinstance(t, cls):
            return name
    if isinstance(t, mi.UnionType):
        parts = [_kind(x) if not isinstance(x, mi.NoneType) else "null" for x in t.types]
        return None if None in parts else "|".join(parts)  # type: ignore[arg-type]
    if isinstance(t, (mi.VarTupleType, mi.ListType)) and _kind(t.item_type) in ("float", "int"):
        return "list"
    return None


def _fields(cls: type) -> list[tuple[str, str]]:
    info = mi.type_info(cls)
    return [(f.encode_name, k) for f in info.fields if (k := _kind(f.type)) is not None]  # type: ignore[union-attr]


def _section_types() -> dict[str, type]:
    return {f.encode_name: f.type.cls for f in mi.type_info(Settings).fields  # type: ignore[union-attr]
            if f.encode_name in SECTIONS}


def catalog(devices: dict[str, list[str]], rules: list[str]) -> list[Entry]:
    """Every setting offered: the scalar (and number-list) fields of the departments' sections, the per-device
    fields of each registered device of the kinds that have them (`devices`: kind → EUIs), each rule's switch and
    the notifiers' routes."""
    from clapas.indices.flood import GaugeSettings, RainGaugeSettings

    out: list[Entry] = []
    for name, cls in _section_types().items():
        out += [Entry(f"{name}.{f}", SECTIONS[name], k) for f, k in _fields(cls)]
    per_device = {("flood", "gauges"): GaugeSettings, ("flood", "rain_gauges"): RainGaugeSettings}
    for (section, table), kind in DEVICE_TABLES.items():
        fields = _fields(per_device[(section, table)])
        for eui in sorted(devices.get(kind, ())):
            out += [Entry(join([section, table, eui, f]), SECTIONS[section], k, eui) for f, k in fields]
    for rule in sorted(rules):
        prefix = rule.split(".", 1)[0]
        if prefix in RULE_PREFIXES:
            out.append(Entry(join(["alerts", "rule_enabled", rule]), RULE_PREFIXES[prefix], "bool"))
    out += [Entry(f"alerts.{n}.rules", PLATFORM, "str|list") for n in NOTIFIERS]
    out.append(Entry("alerts.events", PLATFORM, "str|list"))
    return out


def get(data: Any, segs: list[str]) -> Any:
    """The value at a path of a settings tree (builtins), None where absent."""
    for s in segs:
        if not isinstance(data, dict) or s not in data:
            return None
        data = data[s]
    return data


def put(data: dict[str, Any], segs: list[str], value: Any) -> None:
    """Set a path in a settings tree (builtins), making the tables on the way (a gauge's first override)."""
    for s in segs[:-1]:
        nxt = data.get(s)
        if nxt is None:
            nxt = data[s] = {}
        if not isinstance(nxt, dict):
            raise NotOverridable(f"{join(segs)}: {s!r} is a value, not a table")
        data = nxt
    data[segs[-1]] = value


def tree(settings: Settings) -> dict[str, Any]:
    return msgspec.to_builtins(settings)  # type: ignore[no-any-return]
