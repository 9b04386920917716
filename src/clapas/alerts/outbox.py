"""The outbox worker: delivers the notifications the store keeps, with retries, backoff and a dead letter.

Runs as a task of the service's event loop, never in the ingestion path. Each round claims the due rows (each
claim counts an attempt and leases the row, so a crash mid-delivery means a retry, not a loss), sends them
concurrently, and records the outcome: delivered; or retried after retry_base_s × 2^(attempt−1) (capped at
retry_max_s); or, after max_attempts (or at once when the notifier says no retry can deliver it, `Undeliverable`),
kept as `dead` for a person to look at (`/api/v1/notifications?status=dead`).
Delivery is at least once: receivers can drop repeats by the `X-Clapas-Delivery` / `notification_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from clapas.alerts.notifiers import Notifier, Undeliverable
from clapas.alerts.sink import PersistentAlerts
from clapas.config import AlertSettings
from clapas.store.base import Store

log = logging.getLogger("clapas.alerts.outbox")

CLAIM_BATCH = 50


class OutboxWorker:
    def __init__(self, store: Store, notifiers: dict[str, Notifier], settings: AlertSettings,
                 sink: PersistentAlerts | None = None) -> None:
        self.store = store
        self.notifiers = notifiers
        self.s = settings
        self.sink = sink
        # a lease longer than any attempt can take, so that a row is never sent twice at once
        self.lease_s = 2 * max([60.0, *(n.timeout_s for n in notifiers.values())])
        self.delivered = 0
        self.failed = 0

    def backoff_s(self, attempts: int) -> float:
        return min(self.s.retry_base_s * 2 ** (attempts - 1), self.s.retry_max_s)

    async def run_once(self) -> int:
        """One round: every due notification tried once. Returns how many were tried."""
        if self.sink is not None:
            await asyncio.to_thread(self.sink.retry_pending)
        rows = await asyncio.to_thread(self.store.claim_notifications, CLAIM_BATCH, self.lease_s)
        if rows:
            await asyncio.gather(*(self._deliver(r) for r in rows))
        return len(rows)

    async def _deliver(self, row: dict) -> None:
        notifier = self.notifiers.get(row["notifier"])
        try:
            if notifier is None:
                raise LookupError(f"notifier {row['notifier']!r} is not configured")
            await asyncio.wait_for(notifier.send(row), notifier.timeout_s * 2)
        except Exception as e:
            self.failed += 1
            last = row["attempts"] >= self.s.max_attempts or isinstance(e, Undeliverable)
            retry_at = None if last else datetime.now(UTC) + timedelta(seconds=self.backoff_s(row["attempts"]))
            error = f"{type(e).__name__}: {e}"
            log.warning("notification %d (%s, alert %d) attempt %d failed: %s%s", row["id"], row["notifier"],
                        row["alert_id"], row["attempts"], error, " — dead" if last else "")
            await asyncio.to_thread(self.store.notification_failed, row["id"], error, retry_at)
        else:
            self.delivered += 1
            await asyncio.to_thread(self.store.notification_delivered, row["id"])

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: a round whenever something is due, else a nap of poll_interval_s."""
        try:
            while not stop.is_set():
                try:
                    tried = await self.run_once()
                except Exception:
                    log.exception("outbox round failed")
                    tried = 0
                if not tried:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.s.poll_interval_s)
        finally:
            await self.close()

    async def close(self) -> None:
        for n in self.notifiers.values():
            with contextlib.suppress(Exception):
                await n.close()
