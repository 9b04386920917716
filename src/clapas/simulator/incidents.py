"""Incidents injected into the synthetic city, and the ground truth they leave behind.

Each incident names what it affects (devices and/or a zone), when (start, end) and how (parameters); the signals
read them, and the truth file (JSON lines) lets detectors be scored later. Some entries are *legitimate* high uses
(a pool filled, a garden watered at night): `expected_alert` is false for them, they are there to catch false alarms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from clapas.simulator.city import City, SimDevice
from clapas.simulator.noise import key, uniform

HOUR = 3600.0
DAY = 86400.0

# Default parameters of each incident (named after what they are; sources in domain-rules.md where one exists).
LEAK_FLOW_LPH = 18.0  # a running toilet cistern: constant flow after the meter
BURST_FLOW_LPH = 950.0  # a burst pipe inside the premises
BURST_HOURS = 5
BACKFLOW_LPH = 60.0  # water pushed back into the network (pressure loss, cross-connection)
BACKFLOW_HOURS = 3
OVERCONSUMPTION_FACTOR = 3.0  # well above the loi Warsmann's "double the average volume"
HEATWAVE_DAYS = 3.0
HEATWAVE_TMAX_C = 36.5  # at the peripheral reference station; Hérault thresholds are IBMx 35 / IBMn 22
HEATWAVE_TMIN_C = 22.8
STORM_HOURS = 6
STORM_PEAK_MM_H = 26.0  # a Mediterranean episode: about 100 mm in 6 h over the catchment
STORM_ELSEWHERE = 0.35  # share of the storm's rain falling outside its catchment
FLOOD_AFTERMATH_HOURS = 24  # the river stays high while the catchment drains
POLLUTION_DAYS = 2.5
POLLUTION_PM_FACTOR = 3.4  # takes the PM10 daily mean above the 50 µg/m³ information threshold
POLLUTION_NO2_FACTOR = 1.6
HVAC_FAILURE_HOURS = 18
HVAC_TAU_HOURS = 4.0  # how fast a room drifts once its air handling stops
HVAC_T_TARGET_C = 27.5
HVAC_RH_TARGET = 74.0  # above the 60 % RH of the Bizot band, near the 75 % mould limit
POOL_FLOW_LPH = 1800.0  # a garden pool filled from the tap: about 22 m³ in 12 h
POOL_HOURS = 12
GARDEN_FLOW_LPH = 500.0  # an automatic sprinkler
GARDEN_LOCAL_HOURS = (22,)  # local hours it runs, every night
GARDEN_NIGHTS = 3

KINDS = ("leak", "burst", "backflow", "overconsumption", "heatwave", "flood", "pollution", "hvac_failure", "silent",
         "pool_filling", "garden_watering")
WATER_KINDS = frozenset({"leak", "burst", "backflow", "overconsumption", "pool_filling", "garden_watering"})
LEGITIMATE = frozenset({"pool_filling", "garden_watering"})


class Incident(msgspec.Struct, kw_only=True):
    """One injected incident as written to the truth file."""

    kind: str
    start: datetime
    end: datetime
    devices: list[str] = []
    zone: str = ""
    params: dict[str, Any] = {}
    expected_alert: bool = True

    @property
    def t0(self) -> float:
        return self.start.timestamp()

    @property
    def t1(self) -> float:
        return self.end.timestamp()

    def active(self, t: float) -> bool:
        return self.t0 <= t < self.t1

    def span(self) -> Span:
        return Span(self.kind, self.t0, self.t1, self.zone, self.params, tuple(self.devices))


@dataclass(slots=True, frozen=True)
class Span:
    """An incident with its times as epoch seconds, for the signals' hot path."""

    kind: str
    t0: float
    t1: float
    zone: str
    params: dict[str, Any]
    devices: tuple[str, ...]

    def active(self, t: float) -> bool:
        return self.t0 <= t < self.t1


def _hour(t: float) -> datetime:
    return datetime.fromtimestamp(int(t // HOUR) * HOUR, UTC)


def _pick(devices: list[SimDevice], k: int, taken: set[str], i: int, want: Any = None) -> SimDevice | None:
    """A deterministic pick among devices not yet used by another incident."""
    pool = [d for d in devices if d.eui not in taken and (want is None or want(d))]
    if not pool:
        return None
    d = pool[int(uniform(k, i) * len(pool))]
    taken.add(d.eui)
    return d


def default_incidents(city: City, start: datetime, end: datetime, seed: int = 0) -> list[Incident]:
    """A plausible set over the period, placed at fixed fractions of it (so any period gets all of them)."""
    t0, t1 = start.timestamp(), end.timestamp()
    span = max(t1 - t0, DAY)
    k = key(seed, "incidents")
    taken: set[str] = set()

    def at(fraction: float) -> float:
        return t0 + fraction * span

    def until(t: float, seconds: float) -> datetime:
        return _hour(min(t + seconds, t1 + HOUR))

    homes = [d for d in city.by_kind("water_meter") if d.device.premises_use == "habitation"]
    out: list[Incident] = []

    def water(kind: str, i: int, t_start: float, t_end: datetime, want: Any = None, **params: Any) -> None:
        d = _pick(homes, k, taken, i, want)
        if d is not None:
            out.append(Incident(kind=kind, start=_hour(t_start), end=t_end, devices=[d.eui], zone=d.group,
                                params=params, expected_alert=kind not in LEGITIMATE))

    water("leak", 1, at(0.25), end, flow_lph=LEAK_FLOW_LPH)
    water("burst", 2, at(0.5), until(_hour(at(0.5)).timestamp(), BURST_HOURS * HOUR), flow_lph=BURST_FLOW_LPH)
    water("backflow", 3, at(0.4), until(_hour(at(0.4)).timestamp(), BACKFLOW_HOURS * HOUR),
          flow_lph=BACKFLOW_LPH)
    water("overconsumption", 4, at(0.55), end, factor=OVERCONSUMPTION_FACTOR)
    water("pool_filling", 5, at(0.35), until(_hour(at(0.35)).timestamp(), POOL_HOURS * HOUR),
          flow_lph=POOL_FLOW_LPH)
    garden_start = max(t0, t1 - GARDEN_NIGHTS * DAY)
    water("garden_watering", 6, garden_start, end, want=lambda d: d.params.get("garden"),
          flow_lph=GARDEN_FLOW_LPH, local_hours=list(GARDEN_LOCAL_HOURS))

    hw_start = _hour(at(0.3))
    out.append(Incident(kind="heatwave", start=hw_start, end=min(hw_start + timedelta(days=HEATWAVE_DAYS),
                                                                  end),
                        zone="", params={"tmax_c": HEATWAVE_TMAX_C, "tmin_c": HEATWAVE_TMIN_C},
                        devices=[d.eui for d in city.by_kind("weather_station")]))
    catchment = "catchment-lez"
    st = _hour(at(0.8))  # after the heatwave: storms end heatwaves, they do not rain inside them
    gauges = [d.eui for d in city.devices if d.group == catchment and d.kind in ("water_level", "rain_gauge")]
    out.append(Incident(kind="flood", start=st, end=st + timedelta(hours=STORM_HOURS + FLOOD_AFTERMATH_HOURS),
                        zone=catchment, devices=gauges,
                        params={"rain_hours": STORM_HOURS, "peak_mm_h": STORM_PEAK_MM_H,
                                "elsewhere_factor": STORM_ELSEWHERE}))
    ps = _hour(at(0.05))
    out.append(Incident(kind="pollution", start=ps, end=min(ps + timedelta(days=POLLUTION_DAYS), end),
                        devices=[d.eui for d in city.by_kind("air_quality")],
                        params={"pm_factor": POLLUTION_PM_FACTOR, "no2_factor": POLLUTION_NO2_FACTOR}))
    rooms = city.by_kind("indoor_climate")
    if rooms:
        room = rooms[0]
        hs = _hour(at(0.6))
        out.append(Incident(kind="hvac_failure", start=hs, end=hs + timedelta(hours=HVAC_FAILURE_HOURS),
                            zone=room.device.zone, devices=[d.eui for d in rooms if d.group == room.group],
                            params={"t_target_c": HVAC_T_TARGET_C, "rh_target": HVAC_RH_TARGET,
                                    "tau_h": HVAC_TAU_HOURS}))
    streets = [d for d in city.by_kind("weather_station") if d.site == "street"]
    silent = _pick(streets or city.by_kind("air_quality"), k, taken, 7)
    if silent is not None:
        out.append(Incident(kind="silent", start=_hour(at(0.45)), end=end, devices=[silent.eui],
                            zone=silent.device.zone))
    out.sort(key=lambda i: (i.start, i.kind))
    return out


def select(spec: str, city: City, start: datetime, end: datetime, seed: int = 0) -> list[Incident]:
    """`default`, `none`, or a comma-separated list of kinds taken from the default set."""
    spec = (spec or "default").strip()
    if spec == "none":
        return []
    incidents = default_incidents(city, start, end, seed)
    if spec == "default":
        return incidents
    wanted = {s.strip() for s in spec.split(",") if s.strip()}
    unknown = wanted - set(KINDS)
    if unknown:
        raise ValueError(f"unknown incident kind(s): {', '.join(sorted(unknown))} (known: {', '.join(KINDS)})")
    return [i for i in incidents if i.kind in wanted]


_encoder = msgspec.json.Encoder()


def write_truth(path: str | Path, incidents: Iterable[Incident]) -> int:
    """The ground truth, one JSON object per line."""
    n = 0
    with open(path, "wb") as f:
        for inc in incidents:
            f.write(_encoder.encode(inc) + b"\n")
            n += 1
    return n


def read_truth(path: str | Path) -> list[Incident]:
    with open(path, "rb") as f:
        return [msgspec.json.decode(line, type=Incident) for line in f if line.strip()]
