"""`clapas run` and `clapas demo`: one process that ingests, stores and serves.

One asyncio loop runs the MQTT subscriptions (ChirpStack, The Things Stack), the HTTP server (API, ingest,
dashboard) and the batch timer; the store is written by the pipeline's writer thread. What the subscribers receive
goes to the spool (pipeline/spool.py) and from there, by the feeder thread, to the pipeline: the loop never waits
for the disk or the store. SIGINT and SIGTERM stop cleanly: stop reading, acknowledge what is spooled, write what is
pending, close the store, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from clapas.alerts.wiring import build_alerting
from clapas.cli import add_config_argument
from clapas.config import ChirpstackSettings, RegistrySettings, Settings, TtnSettings, load_settings
from clapas.connectors import chirpstack, chirpstack_gateway, ttn
from clapas.connectors.gbfs.poller import GbfsPoller, GbfsSystemSettings
from clapas.connectors.mqtt import MqttSubscriber
from clapas.model import Message
from clapas.pipeline import Pipeline
from clapas.pipeline.spool import Feeder, Spool, default_dir
from clapas.registry.importing import import_registry_files
from clapas.store.base import Store, open_store

log = logging.getLogger("clapas.service")
T = TypeVar("T")

FLUSH_TICK_S = 0.1  # how often the batch timer looks at the pending batch
RETENTION_FIRST_S = 300.0  # the daily retention job's first run, once start-up (imports, catch-up) is over
# Ingestion allocates a few short-lived, acyclic objects per message; the cyclic collector's default threshold
# (700 allocations) makes it scan tens of thousands of times a second for nothing, and a full collection over
# the long-lived caches pauses ingestion long enough for the broker to drop messages.
GC_THRESHOLDS = (50_000, 20, 100)
SPOOL_WATCH_S = 0.2  # how often the spool's size is compared with spool_max_bytes (backpressure on and off)
SPOOL_RESUME = 0.9  # reading resumes once the spool is back under this fraction of spool_max_bytes


def stop_on_signals(stop: asyncio.Event) -> list[signal.Signals]:
    """SIGINT and SIGTERM set `stop` (a graceful end: what is pending is written); the signals it took, for
    `loop.remove_signal_handler` (none on Windows or outside the main thread)."""
    loop = asyncio.get_running_loop()
    taken = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            taken.append(sig)
    return taken


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


class _Acks:
    """QoS 1 acknowledgements: one future per message, resolved in order once the spool has fsync'd its seq."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[tuple[int, asyncio.Future[None]]] = deque()

    def wait(self, seq: int) -> asyncio.Future[None]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        fut = self._loop.create_future()
        self._pending.append((seq, fut))
        return fut

    def durable(self, seq: int) -> None:
        """Called from the spool's thread after each fsync."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                self._loop.call_soon_threadsafe(self._resolve, seq)

    def _resolve(self, seq: int) -> None:
        pending = self._pending
        while pending and pending[0][0] <= seq:
            fut = pending.popleft()[1]
            if not fut.done():
                fut.set_result(None)


class Service:
    """Everything `clapas run` starts, wired once; `serve()` runs until interrupted."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings.store, timezone=settings.timezone, postgres=settings.postgres)
        import_registry_files(self.store, settings.registry)
        # the departments' run-time settings (issue 16) over the config file's: the detectors, the notifier routes
        # and the API all follow this holder
        from clapas.selfservice.holder import SettingsHolder

        self.holder = SettingsHolder(settings, self.store)
        # alerts (issue 3): detectors run on each batch and their state is committed with it (issue 9: they start
        # from the saved state, or refuse to start if it is incompatible); the outbox worker runs in `serve`
        try:
            self.alerting = (build_alerting(settings, self.store, holder=self.holder) if settings.alerts.enabled
                             else None)
        except Exception:  # e.g. saved detector state that must be rebuilt first: leave the store closed
            self.store.close()
            raise
        self.pipeline = Pipeline(self.store, settings.pipeline, settings.profiles,
                                 detectors=self.alerting.runner if self.alerting else None)
        # NGSI-LD subscriptions (issue 11): matched once per committed batch, their notifications in the outbox
        from clapas.api.ngsi_ld.matching import for_service

        self.subscriptions = for_service(settings, self.store)
        self.pipeline.on_commit = self.subscriptions.on_commit
        self.subscribers: list[MqttSubscriber] = []
        # bike share (issue 12): each [[gbfs]] system polled as its feed's ttl asks, into the same pipeline
        # a device's or zone's tags changed through the API (issue 16): the same refresh as a moved station's
        self.holder.registry_listeners.append(self._registry_changed)
        self.gbfs = [GbfsPoller(g, self.pipeline, self.store, on_registry=self._registry_changed)
                     for g in settings.gbfs]
        self.retention_first_s = RETENTION_FIRST_S
        cs, tts = settings.chirpstack, settings.ttn
        if cs.mqtt_url:
            self.subscribers.append(MqttSubscriber(
                cs.mqtt_url, [cs.topic, *cs.gateway_topics], self._chirpstack_sink, client_id=cs.client_id, qos=cs.qos,
                name="chirpstack"))
        if tts.mqtt_url:
            self.subscribers.append(MqttSubscriber(
                tts.mqtt_url, [tts.topic], self._ttn_sink, client_id=tts.client_id, qos=tts.qos, name="tts"))
        # the spool (issue 9): what the subscribers receive, on local disk until it is committed
        self.spool: Spool | None = None
        self._acks = _Acks()
        self._feeder: Feeder | None = None
        if self.subscribers or cs.http_ingest:  # HTTP uplinks take the same path as MQTT's (acknowledged once spooled)
            p = settings.pipeline
            self.spool = Spool(p.spool_dir or default_dir(self.store.url), p.spool_max_bytes,
                               on_durable=self._acks.durable)
            self.pipeline.on_mark = self.spool.release
            if self.spool.recovered:
                log.warning("spool %s: %d messages received before the last stop were not yet written; writing "
                            "them first", self.spool.dir, self.spool.recovered)

    def _registry_changed(self) -> None:
        """New or moved stations: the pipeline and the detectors (which share its registry) see them from now on."""
        self.pipeline.reload_registry()

    def _chirpstack_sink(self, topic: str, payload: bytes) -> asyncio.Future[None] | None:
        wrap = chirpstack_gateway.message if chirpstack_gateway.is_gateway_topic(topic) else chirpstack.message
        return self._spooled(wrap(payload, datetime.now(UTC), topic=topic), self.settings.chirpstack.qos > 0)

    def _ttn_sink(self, topic: str, payload: bytes) -> asyncio.Future[None] | None:
        return self._spooled(ttn.message(payload, datetime.now(UTC), topic=topic), self.settings.ttn.qos > 0)

    def _spooled(self, m: Message, ack: bool) -> asyncio.Future[None] | None:
        """Append to the spool; at QoS 1 the future the PUBACK waits for (the fsync of the message's group)."""
        assert self.spool is not None
        seq = self.spool.append(m, ack)
        return self._acks.wait(seq) if ack else None

    async def _http_ingest(self, m: Message) -> str | None:
        """The HTTP ingest's way in (`app.state.ingest`): spooled and fsync'd before the caller is answered; the
        reason when it cannot be taken now (the spool is full or the disk refuses writes)."""
        assert self.spool is not None
        if self.spool.full:
            return f"spool full ({self.spool.error or f'{self.spool.bytes} bytes'})"
        fut = self._spooled(m, True)
        assert fut is not None
        await fut
        return None

    async def _flush_timer(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # in a thread: handing a batch to a writer that is behind (store down) waits, the loop must not
            await asyncio.to_thread(self.pipeline.flush_if_due)
            await asyncio.sleep(FLUSH_TICK_S)

    async def _spool_watch(self, stop: asyncio.Event) -> None:
        """Backpressure on the brokers only when the spool is full; reading resumes once it has drained a little."""
        spool = self.spool
        assert spool is not None
        paused = False
        while not stop.is_set():
            size = spool.bytes
            if not paused and size >= spool.max_bytes:
                log.error("spool %s full (%d bytes, store: %s): reading from the broker paused", spool.dir, size,
                          self.pipeline.store_error or "behind")
                paused = True
                for s in self.subscribers:
                    s.pause()
            elif paused and size < SPOOL_RESUME * spool.max_bytes:
                log.warning("spool below %d %% of its limit: reading from the broker resumes", SPOOL_RESUME * 100)
                paused = False
                for s in self.subscribers:
                    s.resume()
            await asyncio.sleep(SPOOL_WATCH_S)

    async def serve(self, extra: list[Callable[[asyncio.Event], Awaitable[None]]] | None = None,
                    http: bool = True, stop: asyncio.Event | None = None) -> None:
        """Run until SIGINT/SIGTERM or until `stop` is set; then write what is pending and close the store."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = stop_on_signals(stop)
        if self.spool is not None:
            self._feeder = Feeder(self.spool, self.pipeline)
        tasks = [asyncio.create_task(self._flush_timer(stop))]
        if self.spool is not None:
            tasks.append(asyncio.create_task(self._spool_watch(stop)))
        tasks += [asyncio.create_task(s.run(stop)) for s in self.subscribers]
        tasks += [asyncio.create_task(p.run(stop)) for p in self.gbfs]  # [[gbfs]] systems, polled as their ttl asks
        tasks += [asyncio.create_task(job(stop)) for job in extra or []]
        from clapas.alerts.notifiers.ngsi_ld import NgsiLdNotifier
        from clapas.alerts.outbox import OutboxWorker

        ngsi = NgsiLdNotifier(self.store, self.settings.ngsi_ld.notify_timeout_s)
        if self.alerting:
            self.alerting.worker.notifiers[ngsi.name] = ngsi
            tasks.append(asyncio.create_task(self.alerting.worker.run(stop)))
        else:  # no detectors: the outbox still delivers the subscriptions' notifications
            outbox = OutboxWorker(self.store, {ngsi.name: ngsi}, self.settings.alerts)
            tasks.append(asyncio.create_task(outbox.run(stop)))
        self.subscriptions.start()
        if self.settings.charter.retention.enabled:
            tasks.append(asyncio.create_task(self._retention_job(stop)))
        try:
            if http:
                await self._serve_http(stop)
            else:
                await stop.wait()
        finally:
            await self._shutdown(stop, tasks)
            for sig in signals:
                loop.remove_signal_handler(sig)

    async def _shutdown(self, stop: asyncio.Event, tasks: list[asyncio.Task[Any]]) -> None:
        """Stop reading; fsync the spool while the connections are up (the last PUBACKs go out); write everything
        pending (at most `stop_timeout_s` if the store is down: the rest stays spooled); close the store."""
        log.info("stopping: no more reading, writing what is pending")
        for s in self.subscribers:
            s.pause()
        if self.spool is not None:
            await asyncio.to_thread(self.spool.sync)
            await asyncio.sleep(0.05)  # the acknowledgements resolved by that fsync are sent
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        deadline = time.monotonic() + self.settings.pipeline.stop_timeout_s
        written = True
        if self._feeder is not None:
            written = await asyncio.to_thread(self._feeder.stop, self.settings.pipeline.stop_timeout_s)
        if written:
            written = await asyncio.to_thread(self.pipeline.drain, max(0.0, deadline - time.monotonic()))
        if written:
            await asyncio.to_thread(self.pipeline.close)
        await asyncio.to_thread(self.subscriptions.stop)
        if self.spool is not None:
            self.spool.close()
        self.store.close()
        if written:
            log.info("stopped; everything received was written")
        else:
            kept = self.spool.pending if self.spool is not None else self.pipeline.pending
            log.error("stopped; the store did not take everything within %.0f s (%s): %d messages stay in the "
                      "spool %s and are written on the next start", self.settings.pipeline.stop_timeout_s,
                      self.pipeline.store_error or "busy", kept, self.spool.dir if self.spool else "(none)")

    async def _retention_job(self, stop: asyncio.Event) -> None:
        """[charter.retention], applied a little after start and then every `interval_h` (in the writer's store,
        off the event loop); a failure is logged and retried at the next round."""
        from clapas.charter.jobs import run_retention

        delay = self.retention_first_s
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
                return
            except TimeoutError:
                pass
            try:
                counts = await asyncio.to_thread(run_retention, self.store, self.settings)
                log.info("retention: %s", ", ".join(f"{t} {n}" for t, n in counts.items()) or "nothing due")
            except Exception:
                log.exception("retention failed; next attempt in %.0f h", self.settings.charter.retention.interval_h)
            delay = self.settings.charter.retention.interval_h * 3600

    async def _serve_http(self, stop: asyncio.Event) -> None:
        from clapas.api.app import create_app

        app = create_app(self.store, self.settings, self.pipeline, holder=self.holder)
        app.state.spool = self.spool  # its size and age in /healthz and /metrics
        if self.spool is not None:
            app.state.ingest = self._http_ingest
        from clapas.api.ngsi_ld.matching import attach

        attach(app, self.subscriptions)  # the sandbox's writes notify its subscriptions too
        await serve_app(app, self.settings, stop)


async def serve_app(app: Any, settings: Settings, stop: asyncio.Event) -> None:
    """Serve `app` (uvicorn) until `stop` is set; `clapas serve` runs this alone."""
    import uvicorn

    config = uvicorn.Config(app, host=settings.http.host, port=settings.http.port, log_level="warning",
                            lifespan="off")
    server = _quiet_server_class()(config)

    async def stop_server() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_server())
    log.info("serving on http://%s:%d", settings.http.host, settings.http.port)
    try:
        await server.serve()  # returns on SIGINT/SIGTERM or when `stop` is set
    finally:
        stopper.cancel()
        app.state.access.close()  # the audit entries still queued, written before the store closes


def _quiet_server_class() -> type:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handling: the service owns SIGINT/SIGTERM. (uvicorn re-raises a captured
        signal once it has stopped, which killed the process, exit 143, before what was pending was written.)"""

        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    return QuietServer


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    logging.getLogger().setLevel(settings.log_level.upper())
    service = Service(settings)
    if not service.subscribers and not service.gbfs and not settings.chirpstack.http_ingest:
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
    # bike share (issue 12): the simulated Vélomagg publishes a GBFS feed over HTTP, polled like a real system
    from clapas.simulator.mobility import FeedServer, build_mobility

    bikes = FeedServer(build_mobility(args.seed)).start()
    base = msgspec.structs.replace(base, gbfs=[*base.gbfs, GbfsSystemSettings(
        id=bikes.model.city.system, url=bikes.url, max_interval_s=60.0)])
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
          f"then real time.\n  bike share: a GBFS feed at {bikes.url}, polled every minute\n"
          f"  dashboard and API: http://{settings.http.host}:{settings.http.port}  "
          f"(OpenAPI: /docs)\n  store: {db}\n  injected incidents (ground truth): {truth}\n  Ctrl-C to stop.",
          flush=True)
    try:
        run_loop(service.serve(extra=[simulate]))
    finally:
        bikes.close()
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
