"""Where observations are kept: one interface (`base.Store`), DuckDB and PostgreSQL implementations."""

from clapas.store.base import Batch, DeviceSeen, JournalRow, Store, StoreError, open_store

__all__ = ["Batch", "DeviceSeen", "JournalRow", "Store", "StoreError", "open_store"]
