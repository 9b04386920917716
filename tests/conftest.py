"""Shared fixtures: the samples folder, and real PostgreSQL and MQTT services.

`make test` starts throwaway Mosquitto and PostgreSQL when none answer (scripts/test-services.sh) and sets
CLAPAS_REQUIRE_SERVICES=1: then a missing service fails the run instead of skipping its tests.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("CLAPAS_SAMPLES", ROOT.parent / "shared" / "samples"))
FIXTURES = Path(__file__).parent / "fixtures"

PG_URL = os.environ.get("CLAPAS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MQTT_URL = os.environ.get("CLAPAS_TEST_MQTT", "mqtt://127.0.0.1:1883")
AMQP_URL = os.environ.get("CLAPAS_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
NATS_URL = os.environ.get("CLAPAS_TEST_NATS", "nats://127.0.0.1:4222")
REQUIRE = os.environ.get("CLAPAS_REQUIRE_SERVICES") == "1"


def _answers(url: str, default_port: int) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def _missing(what: str, url: str) -> None:
    msg = f"{what} does not answer at {url} (make test starts one; or set the URL)"
    if REQUIRE:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"shared samples not found at {SAMPLES} (set CLAPAS_SAMPLES)")
    return SAMPLES


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    if not _answers(PG_URL, 5432):
        _missing("PostgreSQL", PG_URL)
    return PG_URL


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    import psycopg

    name = f"clapas_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    u = urlparse(pg_server_url)
    yield u._replace(path=f"/{name}").geturl()
    with psycopg.connect(pg_server_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    if not _answers(MQTT_URL, 1883):
        _missing("MQTT broker", MQTT_URL)
    return MQTT_URL


class Amqp(NamedTuple):
    url: str  # with its own virtual host where one could be made
    prefix: str  # unique names of exchange, partitions and ingress queue


@pytest.fixture(scope="session")
def amqp_server() -> Iterator[str]:
    """The RabbitMQ at CLAPAS_TEST_AMQP, or else a private node of this machine's rabbitmq-server for the session."""
    import shutil

    if _answers(AMQP_URL, 5672):
        yield AMQP_URL
        return
    if shutil.which("rabbitmq-server") is None:
        _missing("RabbitMQ", AMQP_URL)
    from clapas.connectors.broker.node import PrivateNode

    node = PrivateNode()
    yield node.url
    node.close()


@pytest.fixture
def amqp(amqp_server: str) -> Iterator[Amqp]:
    """RabbitMQ for one test: a throwaway virtual host of the machine's broker (rabbitmqctl, where it can), else
    uniquely named partitions in the default one (a private node is the session's alone); deleted afterwards."""
    import shutil
    import subprocess

    u = urlparse(amqp_server)
    tag = uuid.uuid4().hex[:10]
    ctl = shutil.which("rabbitmqctl")
    vhost = f"clapas-test-{tag}"
    made = ctl is not None and amqp_server == AMQP_URL and subprocess.run(
        [ctl, "add_vhost", vhost], capture_output=True, timeout=60).returncode == 0
    if made:
        subprocess.run([ctl, "set_permissions", "-p", vhost, u.username or "guest", ".*", ".*", ".*"],
                       capture_output=True, timeout=60, check=True)
        url = u._replace(path=f"/{vhost}").geturl()
    else:
        url = amqp_server
    yield Amqp(url, f"t{tag}")
    if made:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)
    else:
        from clapas.connectors.broker.rabbitmq import RabbitStreams

        RabbitStreams(url, 999, f"t{tag}").delete()  # deleting names that were never made is a no-op


class Nats(NamedTuple):
    url: str
    prefix: str  # unique stream and subject names


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The NATS (JetStream enabled) at CLAPAS_TEST_NATS, or else a private nats-server for the session."""
    from tests.helpers import PrivateNats

    if _answers(NATS_URL, 4222):
        yield NATS_URL
        return
    if PrivateNats.executable() is None:
        _missing("NATS", NATS_URL)
    node = PrivateNats(tmp_path_factory.mktemp("nats"))
    yield node.url
    node.close()


@pytest.fixture
def jetstream(nats_server: str) -> Iterator[Nats]:
    """NATS JetStream for one test: uniquely named partitions, deleted afterwards."""
    tag = uuid.uuid4().hex[:10]
    yield Nats(nats_server, f"t{tag}")
    from clapas.connectors.broker.jetstream import NatsJetStream

    b = NatsJetStream(nats_server, 16, f"t{tag}")
    try:
        b.delete()  # streams never made are skipped
    finally:
        b.close()
