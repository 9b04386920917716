"""`PersistentAlerts`: the `AlertSink` that keeps alerts in the store (see `clapas.store.alerts` for the rules).

It runs in the pipeline's writer thread (through `DetectorRunner.on_commit`), so it does one short store
transaction per batch that has detections, and nothing slow: delivery is the outbox worker's job. If the store
refuses the transaction (down, restarting), the transitions are kept in memory, in order, and written with the next
batch's or by the outbox worker's next round: detections are not lost to a store hiccup.
"""

from __future__ import annotations

import logging
import threading

from clapas.config import WebSettings
from clapas.detectors.base import Detection, Registry
from clapas.i18n import render
from clapas.store.alerts import AlertChange, Route
from clapas.store.base import Store

log = logging.getLogger("clapas.alerts")

GATEWAY_RULE = "health.gateway_offline"  # its subject is a gateway, neither a device nor a zone
MAX_PENDING = 100_000  # transitions kept while the store is down; beyond, the oldest are dropped (and logged)


class PersistentAlerts:
    in_transaction = True  # `DetectorRunner.prepare` hands its changes to the batch's transaction (`change`)

    def __init__(self, store: Store, route: Route | None = None, registry: Registry | None = None,
                 language: str = WebSettings().language) -> None:
        """`language`: the city's (`[web] language`), the one alerts are written and notified in."""
        self.store = store
        self.language = language
        self.route = route
        self.registry = registry
        self._pending: list[AlertChange] = []
        self._lock = threading.Lock()
        self.written = 0  # transitions written

    def change(self, d: Detection) -> AlertChange:
        """A detection with its subject's kind and zone: a registered device, else a zone id (district rules)."""
        meta = self.registry.by_eui.get(d.subject) if self.registry is not None else None
        if meta is not None:
            kind, zone = "device", meta.zone
        elif d.rule == GATEWAY_RULE:
            kind, zone = "gateway", ""
        else:
            kind, zone = "zone", d.subject
        return AlertChange(d.rule, d.subject, d.state, d.at, d.severity, dict(d.evidence),
                           render(d.text, self.language), kind, zone, d.text.as_json() if d.text else None,
                           self.language)

    def handle(self, detections: list[Detection]) -> None:
        with self._lock:
            self._pending.extend(self.change(d) for d in detections)
            if len(self._pending) > MAX_PENDING:
                dropped = len(self._pending) - MAX_PENDING
                log.error("alert store unavailable for long: dropping the %d oldest transitions", dropped)
                del self._pending[:dropped]
            self._flush_locked()

    def committed(self, n: int) -> None:
        """`n` transitions were committed with their batch."""
        self.written += n

    def retry_pending(self) -> None:
        """Write what a failed transaction left (called by the outbox worker's loop)."""
        with self._lock:
            if self._pending:
                self._flush_locked()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _flush_locked(self) -> None:
        try:
            self.store.apply_alert_changes(self._pending, self.route)
        except Exception:
            log.exception("writing %d alert transitions failed; kept for the next try", len(self._pending))
            return
        self.written += len(self._pending)
        self._pending = []
