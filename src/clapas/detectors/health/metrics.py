"""Prometheus gauges of the fleet's health, kept by the health rules as they judge (no store query per scrape).

Labels are problems and states, never a device: the metrics are open data."""

from __future__ import annotations

from prometheus_client import Gauge

DEVICES = Gauge("clapas_health_devices", "Devices with an open health problem, by problem", ["problem"])
GATEWAYS = Gauge("clapas_health_gateways", "Gateways known to the health rules, by state", ["state"])
TRACKED = Gauge("clapas_health_tracked_devices", "Devices the health rules have heard")


def publish(silent: int, low_battery: int, weak_radio: int, stuck: int, gateways_online: int,
            gateways_offline: int, tracked: int) -> None:
    for problem, n in (("silent", silent), ("low_battery", low_battery), ("weak_radio", weak_radio),
                       ("stuck_sensor", stuck)):
        DEVICES.labels(problem).set(n)
    GATEWAYS.labels("online").set(gateways_online)
    GATEWAYS.labels("offline").set(gateways_offline)
    TRACKED.set(tracked)
