"""One Grafana dashboard per use (water, heat, floods, air, museum, mobility, device health), in Grafana's
dashboard JSON model (schemaVersion 39: Grafana 10.4 and later), reading the views of `views.py`.

Panels read the hourly and daily rollups, never the raw rows (PostgreSQL scans 5 M raw rows in ≈ 2 s, DESIGN.md:
a city-wide panel over a month must stay a rollup read). Their SQL uses Grafana's PostgreSQL macros only:
`$__timeFilter(col)`, `$__timeFrom()` and `$__timeTo()`; time series are `time, metric, value` rows (format
`time_series`), tables plain rows. Titles are in French (the city's language) with the English in the description.
The rules' numbers come from the city's settings: the minimum-night-flow window (`[water] mnf_start_hour`,
`mnf_end_hour`), the silent factor (`[health] silent_factor`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clapas.grafana.views import SCHEMA

SCHEMA_VERSION = 39  # Grafana 10.4's dashboard JSON model (what Grafana 11 and 12 read and migrate)
DATASOURCE_UID = "clapas-store"
DATASOURCE_TYPE = "grafana-postgresql-datasource"  # Grafana ≥ 10.3's id of the core PostgreSQL plugin
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
H1, D1, DEV = f"{SCHEMA}.readings_1h", f"{SCHEMA}.readings_1d", f"{SCHEMA}.devices"
DEFAULT_RANGE = {"from": "now-7d", "to": "now"}
REFRESH = "5m"  # design: rollups are rebuilt a few seconds after each hour; 5 min is plenty for a wall screen


@dataclass
class Panel:
    """One panel: a title (French), a description (English), its SQL and how to draw it."""

    title: str
    description: str
    sql: str
    kind: str = "timeseries"  # timeseries, table, barchart
    unit: str = ""
    fmt: str = "time_series"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Use:
    uid: str
    title: str
    description: str
    tags: list[str]
    panels: list[Panel]


@dataclass
class Rules:
    """The settings the panels' SQL depends on."""

    timezone: str = "Europe/Paris"
    mnf_start_hour: int = 2
    mnf_end_hour: int = 4
    silent_factor: float = 3.0


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def hourly(quantity: str, kinds: tuple[str, ...], by: str, agg: str = "avg(mean)") -> str:
    """An hourly series per `by` (zone, name) of one quantity of some kinds."""
    return (f"SELECT time, {by} AS metric, {agg} AS value FROM {H1} WHERE quantity = {_lit(quantity)} "
            f"AND kind IN ({', '.join(map(_lit, kinds))}) AND $__timeFilter(time) GROUP BY 1, 2 ORDER BY 1, 2")


def daily(quantity: str, kinds: tuple[str, ...], by: str, agg: str) -> str:
    return (f"SELECT time, {by} AS metric, {agg} AS value FROM {D1} WHERE quantity = {_lit(quantity)} "
            f"AND kind IN ({', '.join(map(_lit, kinds))}) AND $__timeFilter(time) GROUP BY 1, 2 ORDER BY 1, 2")


def uses(r: Rules) -> list[Use]:
    tz = _lit(r.timezone)
    local_hour = f"extract(hour FROM time AT TIME ZONE {tz})"
    return [
        Use("clapas-water", "clapas · Eau", "Water: district (DMA) flows, minimum night flow, non-residential "
            "consumption. Household meters are personal data and never shown here.", ["clapas", "water"], [
            Panel("Débit des secteurs (L/h)", "District meters' flow, summed per DMA, hourly mean.",
                  hourly("water.flow", ("district_meter",), "zone", "sum(mean)"), unit="suffix: L/h"),
            Panel(f"Débit minimum de nuit ({r.mnf_start_hour:02d} h–{r.mnf_end_hour:02d} h, L/h)",
                  "Minimum night flow per DMA: the mean of the DMA's hourly flow in the night window "
                  "([water] mnf_start_hour, mnf_end_hour), per local night.",
                  f"SELECT date_trunc('day', time AT TIME ZONE {tz}) AT TIME ZONE {tz} AS time, zone AS metric, "
                  f"avg(flow) AS value FROM (SELECT time, zone, sum(mean) AS flow FROM {H1} "
                  "WHERE quantity = 'water.flow' AND kind = 'district_meter' AND $__timeFilter(time) "
                  f"AND {local_hour} >= {r.mnf_start_hour} AND {local_hour} < {r.mnf_end_hour} GROUP BY 1, 2) h "
                  "GROUP BY 1, 2 ORDER BY 1, 2", unit="suffix: L/h"),
            Panel("Consommation journalière des compteurs non résidentiels (m³)",
                  "Non-residential meters (restricted data): each local day's index rise, summed per zone.",
                  f"SELECT time, zone AS metric, sum(v) AS value FROM (SELECT time, zone, "
                  f"max - lag(max) OVER (PARTITION BY eui ORDER BY time) AS v FROM {D1} "
                  "WHERE quantity = 'water.volume' AND kind = 'water_meter' "
                  "AND time >= $__timeFrom()::timestamptz - interval '2 days' AND time < $__timeTo()) d "
                  "WHERE v >= 0 AND $__timeFilter(time) GROUP BY 1, 2 ORDER BY 1, 2", kind="barchart",
                  unit="suffix: m³"),
        ]),
        Use("clapas-heat", "clapas · Chaleur et îlots", "Heat and urban heat islands: air temperature and "
            "humidity per zone (weather stations).", ["clapas", "heat"], [
            Panel("Température de l'air par zone (°C)", "Weather stations' hourly mean, averaged per zone.",
                  hourly("air.temperature", ("weather_station",), "zone"), unit="celsius"),
            Panel("Températures maximales journalières (°C)", "Each station's daily maximum (local days).",
                  daily("air.temperature", ("weather_station",), "name", "max(max)"), unit="celsius"),
            Panel("Températures minimales journalières (°C)", "Each station's daily minimum: warm nights "
                  "(canicule) keep it high.", daily("air.temperature", ("weather_station",), "name", "min(min)"),
                  unit="celsius"),
            Panel("Humidité relative (%)", "Weather stations' hourly mean, per zone.",
                  hourly("air.humidity", ("weather_station",), "zone"), unit="percent"),
        ]),
        Use("clapas-floods", "clapas · Crues", "Floods: river levels and rain.", ["clapas", "floods"], [
            Panel("Hauteur d'eau (m)", "Each river gauge's hourly maximum.",
                  hourly("water.level", ("water_level",), "name", "max(max)"), unit="lengthm"),
            Panel("Pluie horaire (mm)", "Rain fallen each hour, per rain gauge.",
                  hourly("rain.amount", ("rain_gauge", "weather_station"), "name", "sum(sum)"), kind="barchart",
                  unit="lengthmm"),
            Panel("Cumul journalier de pluie (mm)", "Rain fallen each local day, per gauge.",
                  daily("rain.amount", ("rain_gauge", "weather_station"), "name", "sum(sum)"), kind="barchart",
                  unit="lengthmm"),
        ]),
        Use("clapas-air", "clapas · Qualité de l'air", "Air quality: the pollutants of the indice ATMO, hourly "
            "means per station.", ["clapas", "air"], [
            *(Panel(f"{label} (µg/m³)", f"{label}: each station's hourly mean.",
                    hourly(q, ("air_quality",), "name"), unit="conμgm3")
              for q, label in (("air.pm2_5", "PM2,5"), ("air.pm10", "PM10"), ("air.no2", "NO₂"),
                               ("air.o3", "O₃"))),
            Panel("PM10, moyenne journalière (µg/m³)", "Daily mean per station (the information threshold "
                  "is a daily mean).", daily("air.pm10", ("air_quality",), "name", "sum(sum) / sum(count)"),
                  unit="conμgm3"),
        ]),
        Use("clapas-museum", "clapas · Climat des musées", "Museum rooms' climate (restricted data): "
            "temperature, relative humidity and its daily swing.", ["clapas", "museum"], [
            Panel("Température des salles (°C)", "Hourly mean per room.",
                  hourly("air.temperature", ("indoor_climate",), "zone"), unit="celsius"),
            Panel("Humidité relative des salles (%)", "Hourly mean per room.",
                  hourly("air.humidity", ("indoor_climate",), "zone"), unit="percent"),
            Panel("Amplitude journalière de l'humidité (points de %)", "Daily max minus min per room: "
                  "conservation limits bound the daily swing.",
                  daily("air.humidity", ("indoor_climate",), "zone", "max(max) - min(min)"), kind="barchart",
                  unit="percent"),
        ]),
        Use("clapas-mobility", "clapas · Mobilité", "Counters (bikes, traffic) and bike-share stations.",
            ["clapas", "mobility"], [
            Panel("Passages par heure", "Passages counted each hour, per counter.",
                  hourly("counter.count", ("bike_counter", "traffic_counter"), "name", "sum(sum)"),
                  unit="short"),
            Panel("Passages par jour", "Passages counted each local day, per counter.",
                  daily("counter.count", ("bike_counter", "traffic_counter"), "name", "sum(sum)"),
                  kind="barchart", unit="short"),
            Panel("Vélos disponibles", "Bikes available at each station, hourly mean.",
                  hourly("bikeshare.bikes_available", ("bike_station",), "name"), unit="short"),
        ]),
        Use("clapas-health", "clapas · Santé des capteurs", "Device and network health: silent devices, "
            "batteries, radio (open and restricted devices).", ["clapas", "health"], [
            Panel(f"Capteurs silencieux (plus de {r.silent_factor:g} intervalles sans message)",
                  "Devices unheard for more than [health] silent_factor expected intervals.",
                  f"SELECT eui, name, kind, zone, last_seen, now() - last_seen AS silent_for FROM {DEV} "
                  f"WHERE expected_interval_s > 0 AND (last_seen IS NULL OR last_seen < now() - "
                  f"make_interval(secs => expected_interval_s * {r.silent_factor:g})) "
                  "ORDER BY last_seen NULLS FIRST", kind="table", fmt="table"),
            Panel("Capteurs par type", "Devices of each kind, and how many were heard in the last day.",
                  f"SELECT kind, count(*) AS devices, count(*) FILTER (WHERE last_seen > now() - interval '1 day') "
                  f"AS heard_last_day FROM {DEV} GROUP BY 1 ORDER BY 1", kind="table", fmt="table"),
            Panel("Batterie la plus basse par type (%)", "The lowest battery level of each kind, hourly.",
                  f"SELECT time, kind AS metric, min(min) AS value FROM {H1} WHERE quantity = 'battery' "
                  "AND $__timeFilter(time) GROUP BY 1, 2 ORDER BY 1, 2", unit="percent"),
            Panel("Radio : les plus faibles RSSI", "The devices with the weakest last RSSI and SNR.",
                  f"SELECT eui, name, kind, zone, last_rssi, last_snr, last_seen FROM {DEV} "
                  "WHERE last_rssi IS NOT NULL ORDER BY last_rssi LIMIT 50", kind="table", fmt="table"),
        ]),
    ]


def _panel(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": pid, "type": p.kind, "title": p.title, "description": p.description, "datasource": DATASOURCE,
        "gridPos": {"h": 9, "w": 12, "x": x, "y": y},
        "targets": [{"refId": "A", "datasource": DATASOURCE, "editorMode": "code", "rawQuery": True,
                     "format": p.fmt, "rawSql": p.sql}],
        "fieldConfig": {"defaults": {"unit": p.unit} if p.unit else {}, "overrides": []},
        "options": p.options or ({"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
                                 if p.kind != "table" else {"showHeader": True}),
    }


def dashboard(use: Use, timezone: str) -> dict[str, Any]:
    """The dashboard JSON of one use: panels two a row."""
    return {
        "uid": use.uid, "title": use.title, "description": use.description, "tags": use.tags,
        "timezone": timezone, "editable": False, "graphTooltip": 1, "time": DEFAULT_RANGE, "refresh": REFRESH,
        "schemaVersion": SCHEMA_VERSION, "version": 1,
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": []},
        "links": [],
        "panels": [_panel(p, i + 1, 12 * (i % 2), 9 * (i // 2)) for i, p in enumerate(use.panels)],
    }


def dashboards(rules: Rules) -> dict[str, dict[str, Any]]:
    """File name → dashboard JSON, one per use."""
    return {f"{u.uid}.json": dashboard(u, rules.timezone) for u in uses(rules)}
