"""`clapas run` and `clapas demo`: one process that ingests, stores and serves.

One asyncio loop runs the MQTT subscriptions (ChirpStack, The Things Stack), the HTTP server (API, ingest,
dashboard) and the batch timer; the store is written by the pipeline's writer thread.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from clapas.alerts.wiring import build_alerting
from clapas.cli import add_config_argument
from clapas.config import ChirpstackSettings, RegistrySettings, Settings, TtnSettings, load_settings
from clapas.connectors import chirpstack, ttn
from clapas.connectors.mqtt import MqttSubscriber
from clapas.pipeline import Pipeline
from clapas.registry.importing import import_registry_files
from clapas.store.base import Store, open_store

log = logging.getLogger("clapas.service")
T = TypeVar("T")

FLUSH_TICK_S = 0.1  # how often the batch timer looks at the pending batch
# Ingestion allocates a few short-lived, acyclic objects per message; the cyclic collector's default threshold
# (700 allocations) makes it scan tens of thousands of times a second for nothing, and a full collection over
# the long-lived caches pauses ingestion long enough for the broker to drop messages.
GC_THRESHOLDS = (50_000, 20, 100)


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run the service's event loop: uvloop where available (faster sockets), and a calmer garbage collector."""
    gc.collect()
    gc.freeze()  # what exists at start (modules, settings, caches) is never scanned again
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        import uvloop
    except ImportError:  # uvloop has no Windows build; the standard loop works, a little slower
        return asyncio.run(main)
    return uvloop.run(main)


class Service:
    """Everything `clapas run` starts, wired once; `serve()` runs until interrupted."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings.store, timezone=settings.timezone)
        import_registry_files(self.store, settings.registry)
        # alerts (issue 3): detectors run on each batch and their state is committed with it (issue 9: they start
        # from the saved state, or refuse to start if it is incompatible); the outbox worker runs in `serve`
        self.alerting = build_alerting(settings, self.store) if settings.alerts.enabled else None
        self.pipeline = Pipeline(self.store, settings.pipeline, settings.profiles,
                                 detectors=self.alerting.runner if self.alerting else None)
        self.subscribers: list[MqttSubscriber] = []
        cs, tts = settings.chirpstack, settings.ttn
        if cs.mqtt_url:
            self.subscribers.append(MqttSubscriber(
                cs.mqtt_url, [cs.topic], self._chirpstack_sink, client_id=cs.client_id, qos=cs.qos,
                name="chirpstack"))
        if tts.mqtt_url:
            self.subscribers.append(MqttSubscriber(
                tts.mqtt_url, [tts.topic], self._ttn_sink, client_id=tts.client_id, qos=tts.qos, name="tts"))

    def _chirpstack_sink(self, topic: str, payload: bytes) -> None:
        self.pipeline.submit(chirpstack.message(payload, datetime.now(UTC), topic=topic))

    def _ttn_sink(self, topic: str, payload: bytes) -> None:
        self.pipeline.submit(ttn.message(payload, datetime.now(UTC), topic=topic))

    async def _flush_timer(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.pipeline.flush_if_due()
            await asyncio.sleep(FLUSH_TICK_S)

    async def serve(self, extra: list[Callable[[asyncio.Event], Awaitable[None]]] | None = None,
                    http: bool = True, stop: asyncio.Event | None = None) -> None:
        """Run until SIGINT/SIGTERM or until `stop` is set; then write what is pending and close the store."""
        stop = stop or asyncio.Event()
        tasks = [asyncio.create_task(self._flush_timer(stop))]
        tasks += [asyncio.create_task(s.run(stop)) for s in self.subscribers]
        tasks += [asyncio.create_task(job(stop)) for job in extra or []]
        if self.alerting:
            tasks.append(asyncio.create_task(self.alerting.worker.run(stop)))
        try:
            if http:
                await self._serve_http(stop)
            else:
                await stop.wait()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self.pipeline.close)
            self.store.close()
            log.info("stopped; everything received was written")

    async def _serve_http(self, stop: asyncio.Event) -> None:
        import uvicorn

        from clapas.api.app import create_app

        app = create_app(self.store, self.settings, self.pipeline)
        config = uvicorn.Config(app, host=self.settings.http.host, port=self.settings.http.port,
                                log_level="warning", lifespan="off")
        server = uvicorn.Server(config)

        async def stop_server() -> None:
            await stop.wait()
            server.should_exit = True

        stopper = asyncio.create_task(stop_server())
        log.info("serving on http://%s:%d", self.settings.http.host, self.settings.http.port)
        try:
            await server.serve()  # returns on SIGINT/SIGTERM or when `stop` is set
        finally:
            stopper.cancel()


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    logging.getLogger().setLevel(settings.log_level.upper())
    service = Service(settings)
    if not service.subscribers and not settings.chirpstack.http_ingest:
        log.warning("no source configured: set CLAPAS_CHIRPSTACK_MQTT_URL or enable the HTTP ingest")
    run_loop(service.serve())
    return 0


# Demo: a week of city life in about three minutes, then real time.
DEMO_DAYS = 7
DEMO_SPEED = DEMO_DAYS * 86_400 / 180


def cmd_demo(args: argparse.Namespace) -> int:
    from clapas.simulator.city import build_city
    from clapas.simulator.run import run_in_background

    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    db = data / "city.duckdb"
    if not args.keep:
        for p in (db, data / "city.duckdb.wal"):
            p.unlink(missing_ok=True)
    city = build_city(seed=args.seed, devices=args.devices)
    zones_path, devices_path = city.export_registry(data)  # imported like a city's own registry files
    base = load_settings(args.config)
    # the city's settings (thresholds of every use, alerts, http…) with the demo's own store and registry files
    settings = msgspec.structs.replace(
        base, store=f"duckdb:///{db.resolve()}", chirpstack=ChirpstackSettings(), ttn=TtnSettings(),
        registry=RegistrySettings(devices_csv=str(devices_path), zones_geojson=str(zones_path)),
    )
    if args.port:
        settings.http.port = args.port
    service = Service(settings)
    stop_sim = threading.Event()
    truth = data / "truth.jsonl"

    async def simulate(stop: asyncio.Event) -> None:
        thread = run_in_background(service.pipeline, city, args.speed, stop_sim, truth, seed=args.seed,
                                   days=DEMO_DAYS)
        await stop.wait()
        stop_sim.set()
        await asyncio.to_thread(thread.join, 10)

    print(f"clapas demo: {len(city.devices)} simulated devices, a week of city life in about three minutes, "
          f"then real time.\n  dashboard and API: http://{settings.http.host}:{settings.http.port}  "
          f"(OpenAPI: /docs)\n  store: {db}\n  injected incidents (ground truth): {truth}\n  Ctrl-C to stop.",
          flush=True)
    run_loop(service.serve(extra=[simulate]))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="ingest from ChirpStack / The Things Stack, store, and serve the API",
        description="Connect to the city's ChirpStack v4 MQTT integration (and/or The Things Stack, and/or accept "
        "the ChirpStack HTTP integration), keep every message in the store, serve the API and dashboard. "
        "Settings: --config FILE and CLAPAS_* variables, e.g. CLAPAS_STORE=duckdb:///var/lib/clapas/city.duckdb "
        "or postgresql://user@host/db, CLAPAS_CHIRPSTACK_MQTT_URL=mqtt://host:1883, CLAPAS_HTTP_HOST, "
        "CLAPAS_HTTP_PORT, CLAPAS_TTN_MQTT_URL, CLAPAS_TIMEZONE, CLAPAS_PIPELINE_BATCH_SIZE, "
        "CLAPAS_REGISTRY_DEVICES_CSV, CLAPAS_REGISTRY_ZONES_GEOJSON. See city.example.toml for every setting.",
    )
    add_config_argument(p)
    p.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="a simulated city, stored and served on http://127.0.0.1:8000",
                       description="Simulate a city's sensors (a week in about three minutes, then real time), "
                       "decode and store them in a DuckDB file and serve the API and dashboard.")
    add_config_argument(d)
    d.add_argument("--data", default="var/demo", help="folder for the demo's DuckDB file and ground truth")
    d.add_argument("--devices", type=int, default=300, help="number of simulated devices (default 300)")
    d.add_argument("--seed", type=int, default=34, help="random seed: the same seed gives the same city")
    d.add_argument("--speed", type=float, default=DEMO_SPEED,
                   help=f"simulated seconds per real second while catching up (default {DEMO_SPEED:.0f})")
    d.add_argument("--port", type=int, default=None, help="HTTP port (default 8000 or CLAPAS_HTTP_PORT)")
    d.add_argument("--keep", action="store_true", help="keep the previous demo data instead of starting afresh")
    d.set_defaults(func=cmd_demo)
