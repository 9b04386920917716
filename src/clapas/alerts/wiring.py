"""Detectors, persistent alerts and the outbox worker, built from the settings for `clapas run` / `clapas demo`.

The service only has to hand `runner.on_commit` to its `Pipeline` and run `worker.run(stop)` in its loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from clapas.alerts.notifiers import build_notifiers
from clapas.alerts.outbox import OutboxWorker
from clapas.alerts.routing import Router
from clapas.alerts.sink import PersistentAlerts
from clapas.config import Settings
from clapas.detectors.base import Detector, DetectorRunner, Registry, utc
from clapas.store.base import Store

log = logging.getLogger("clapas.alerts")


def build_detectors(settings: Settings) -> list[Detector]:
    """Every use's detectors, from their settings sections. Each one only sees the devices of its kinds."""
    from clapas.detectors.air import AirDetector
    from clapas.detectors.flood import FloodDetector
    from clapas.detectors.health import HealthDetector
    from clapas.detectors.heat import HeatDetector
    from clapas.detectors.mobility import MobilityDetector
    from clapas.detectors.museum import MuseumDetector
    from clapas.detectors.water import WaterDetector

    tz = settings.timezone
    health = [HealthDetector(settings.health, tz, settings.profiles)] if settings.health.enabled else []
    return [*health, WaterDetector(settings.water, tz), HeatDetector(settings.heat, tz), AirDetector(settings.air, tz),
            FloodDetector(settings.flood, tz), MuseumDetector(settings.museum, tz),
            MobilityDetector(settings.bikeshare, settings.counters, tz)]


@dataclass
class Alerting:
    runner: DetectorRunner
    sink: PersistentAlerts
    worker: OutboxWorker
    router: Router


def build_alerting(settings: Settings, store: Store, load: bool = True, holder: Any = None,
                   registry: Registry | None = None) -> Alerting:
    """The runner starts from the detector state saved in the store (`StateIncompatible` if it cannot): hand it to
    `Pipeline(detectors=alerting.runner)` so that each batch commits the state it changed. `load=False`: blind
    (the caller loads a part of the state: partitioned workers). `holder`: a `SettingsHolder` (issue 16) whose
    changes the detectors follow from their next batch and the notifier routes at once (default: one over
    `settings` and the store's overrides). `registry`: one already read (the partitioned workers' runners share
    one), else one read from the store."""
    if holder is None:
        from clapas.selfservice.holder import SettingsHolder

        holder = SettingsHolder(settings, store)
    settings = holder.current
    router = Router.from_settings(settings.alerts)
    registry = registry or Registry(store)
    sink = PersistentAlerts(store, router, registry, settings.web.language)
    runner = DetectorRunner(build_detectors(settings), sink, registry)
    runner.holder = holder
    holder.listeners.append(lambda s: setattr(sink, "route", Router.from_settings(s.alerts)))
    if load and runner.load_state(store):
        log.info("detector state loaded: watermark %s, %d uplinks seen", utc(runner.watermark).isoformat(),
                 runner.uplinks)
    worker = OutboxWorker(store, build_notifiers(settings.alerts, settings.web.language), settings.alerts, sink)
    return Alerting(runner, sink, worker, router)
