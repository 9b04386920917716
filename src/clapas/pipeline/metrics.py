"""Prometheus metrics of ingestion, updated once per committed batch (never per message on the hot path)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from clapas.store.base import Batch

UPLINKS = Counter("clapas_messages_total", "Messages received, by source, event and final status",
                  ["source", "event", "status"])
OBSERVATIONS = Counter("clapas_observations_total", "Observation rows stored")
BATCH_LATENCY = Histogram("clapas_batch_latency_seconds",
                          "From the first message of a batch to its commit",
                          buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
BATCH_SIZE = Histogram("clapas_batch_messages", "Messages per committed batch",
                       buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000))


def record_batch(batch: Batch, latency_s: float) -> None:
    counts: dict[tuple[str, str, str], int] = {}
    for key in zip(batch.j_source, batch.j_event, batch.j_status, strict=True):
        counts[key] = counts.get(key, 0) + 1
    for (source, event, status), n in counts.items():
        UPLINKS.labels(source, event, status).inc(n)
    OBSERVATIONS.inc(len(batch.o_time))
    BATCH_LATENCY.observe(latency_s)
    BATCH_SIZE.observe(len(batch))
