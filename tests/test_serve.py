"""`clapas serve`: the API alone over a PostgreSQL store that workers write (it reads what is there, ingests
nothing)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from clapas.store.postgres import PostgresStore
from tests.store.batches import uplink, utc

ROOT = Path(__file__).parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_reads_what_workers_wrote(pg_url):
    from clapas.store.base import Batch

    store = PostgresStore(pg_url, rollup_interval_s=None)
    store.write(uplink(Batch(), "70b3d57ed0000001", utc(2026, 3, 1, 10), {"air.temperature": 21.5}, kind="weather"))
    store.close()
    port = _port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CLAPAS_STORE": pg_url}
    proc = subprocess.Popen([sys.executable, "-m", "clapas", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = json.loads(urllib.request.urlopen(f"{base}/healthz", timeout=5).read())
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-2000:]
                time.sleep(0.3)
        # counted from the store (this process ingests nothing: the workers do)
        assert health["counts"]["stored"] == 1 and health["ingest"] == {"chirpstack_http": False}
        devices = json.loads(urllib.request.urlopen(f"{base}/api/v1/devices", timeout=5).read())
        # the anonymous caller is told the device exists but not shown it (the data charter): read from the store
        assert len(devices["devices"]) + sum(w["devices"] for w in devices["withheld"]) == 1
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
