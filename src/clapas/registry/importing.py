"""Registry files named in the settings, imported when the service starts."""

from __future__ import annotations

import logging
from pathlib import Path

from clapas.config import RegistrySettings
from clapas.registry.devices_csv import read_devices
from clapas.registry.zones import read_zones
from clapas.store.base import Store

log = logging.getLogger("clapas.registry")


def import_registry_files(store: Store, settings: RegistrySettings) -> None:
    if settings.zones_geojson:
        zones = read_zones(Path(settings.zones_geojson).read_bytes())
        log.info("imported %d zones from %s", store.upsert_zones(zones), settings.zones_geojson)
    if settings.devices_csv:
        with open(settings.devices_csv, newline="", encoding="utf-8") as f:
            devices = read_devices(f)
        log.info("imported %d devices from %s", store.upsert_devices(devices), settings.devices_csv)
