"""The dashboard served by a real uvicorn over the small city of tests/api (a real store, the real pipeline)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from clapas.api.app import create_app
from clapas.config import Settings
from clapas.pipeline.ingest import Pipeline
from clapas.store.alerts import AlertChange
from clapas.store.duckdb import DuckDBStore
from tests.api.city import STATION, fill_city
from tests.helpers import as_local


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_city(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a live server (uvicorn in a thread) over a filled DuckDB store."""
    store = DuckDBStore(f"duckdb:///{tmp_path_factory.mktemp('web') / 'city.duckdb'}")
    pipeline = Pipeline(store)
    fill_city(samples, pipeline)
    # one open alert on the weather station, as a detector would leave it (the dashboard's alerts section)
    store.apply_alert_changes([AlertChange(
        "water.continuous_flow", STATION, "open", datetime(2026, 3, 1, 12, tzinfo=UTC), "major",
        {"min_hourly_flow_lph": 18.2, "window_h": 24}, "No hour without flow for 24 h", "device", "ecusson")])
    # and ten resolved ones, more than the section lists before "show more"
    for day in range(1, 11):
        opened, cleared = datetime(2026, 2, day, 14, tzinfo=UTC), datetime(2026, 2, day, 18, tzinfo=UTC)
        store.apply_alert_changes([AlertChange("heat.heat_stress", STATION, state, at, "warning", {}, "", "device",
                                               "ecusson") for state, at in (("open", opened), ("clear", cleared))])
    with serving(as_local(create_app(store, Settings(), pipeline))) as url:
        yield url
    pipeline.close()
    store.close()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app served by a real uvicorn in a thread, on a free port: its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
