"""The NGSI-LD city on both stores (module-scoped: filled once per store)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from clapas.store.base import Store, open_store

from .city.city_data import fill


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def ngsi_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    drop = None
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path_factory.mktemp('ngsi') / 'city.duckdb'}"
    else:
        import psycopg

        server = request.getfixturevalue("pg_server_url")
        name = f"clapas_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        url = urlparse(server)._replace(path=f"/{name}").geturl()

        def drop() -> None:
            with psycopg.connect(server, autocommit=True) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    store = open_store(url, "Europe/Paris")
    fill(store)
    yield store
    store.close()
    if drop:
        drop()
