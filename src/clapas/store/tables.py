"""What a table module shared by both stores needs from each store (the mixins of alerts, keys, audit, charter)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any


class StoreTables:
    """Each store provides a writer transaction, its placeholders for the shared `?` SQL, and its reads."""

    def _alert_tx(self) -> AbstractContextManager[Any]:  # pragma: no cover - provided by each store
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return sql

    def _rows(self, sql: str, params: Any = None) -> list[dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError
