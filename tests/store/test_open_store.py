"""Opening a store that cannot be opened says which store and why, never with its password."""

from __future__ import annotations

import pytest

from clapas.store.base import StoreError, open_store


def test_duckdb_in_a_folder_that_cannot_exist():
    with pytest.raises(StoreError, match=r"cannot open the store duckdb:///proc/nope/city.duckdb: .*No such file"):
        open_store("duckdb:///proc/nope/city.duckdb")


def test_postgresql_refused_hides_the_password():
    with pytest.raises(StoreError) as err:
        open_store("postgresql://clapas:s3cret@127.0.0.1:1/city")
    assert "postgresql://clapas:***@127.0.0.1:1/city" in str(err.value) and "s3cret" not in str(err.value)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown store URL"):
        open_store("mysql://x")
