"""`/metrics`: the pipeline's Prometheus counters, and gauges of what the store holds."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_after_ingestion(client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = samples_of(r.text)
    # the counters are process-wide (other tests ingest too): at least what this city sent
    up = (("event", "up"), ("source", "chirpstack"), ("status", "stored"))
    assert m[("clapas_messages_total", up)] >= 15
    quarantined = (("event", "up"), ("source", "chirpstack"), ("status", "quarantined"))
    assert m[("clapas_messages_total", quarantined)] >= 2
    assert m[("clapas_observations_total", ())] >= 41
    assert m[("clapas_batch_latency_seconds_count", ())] >= 1
    # gauges read from this store at scrape time: exact
    assert m[("clapas_store_up", ())] == 1
    assert m[("clapas_store_messages", (("status", "stored"),))] == 17
    assert m[("clapas_store_messages", (("status", "quarantined"),))] == 2
    assert m[("clapas_store_messages", (("status", "duplicate"),))] == 1
    assert m[("clapas_store_observations", ())] == 41
    assert m[("clapas_store_devices", ())] == 3
