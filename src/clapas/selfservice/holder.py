"""The effective settings of a running process: the config file's, with the departments' overrides laid over them.

One `SettingsHolder` per process. It validates a change exactly as the config file is validated
(`msgspec.convert` into `Settings`, then `clapas.config`'s checks) on the whole effective configuration, writes it to
the store, and swaps in the new `Settings`; its `version` (the store's latest change id) tells the detector runner,
once per batch, that it must hand the detectors their new values (`DetectorRunner.follow`). Changes made by another
process are picked up every `[selfservice] reload_s`. The config file stays the base: an override the base no
longer accepts (the file changed under it) is skipped, logged, and listed by `clapas settings show`. Changes of a
device's or zone's tags share the history (`selfservice.tags`) but are no settings: a new one calls the
`registry_listeners` (the running registry re-reads) before the version moves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec

from clapas.config import ConfigError, Settings, _check
from clapas.selfservice import paths
from clapas.store.base import Store

log = logging.getLogger("clapas.selfservice")
_json = msgspec.json.Encoder(order="sorted")


class InvalidValue(ValueError):
    """The value is refused by the rules of the config file (the message is theirs)."""


def encode(value: Any) -> str:
    return _json.encode(value).decode()


def decode(text: str | None) -> Any:
    return None if text is None else msgspec.json.decode(text)


def effective(base: Settings, overrides: list[tuple[list[str], Any]]) -> Settings:
    """`base` with the overrides laid over it, checked as a config file is (`InvalidValue` with its message)."""
    data = paths.tree(base)
    for segs, value in overrides:
        paths.put(data, segs, value)
    try:
        s = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise InvalidValue(f"invalid setting: {e}") from None
    try:
        _check(s)
    except ConfigError as e:
        raise InvalidValue(str(e)) from None
    return s


class SettingsHolder:
    def __init__(self, base: Settings, store: Store | None = None, reload_s: float | None = None) -> None:
        self.base = base
        self.store = store
        self.reload_s = base.selfservice.reload_s if reload_s is None else reload_s
        self.current = base
        self.version = 0
        self.overrides: dict[str, dict[str, Any]] = {}  # path → its latest change row (value decoded)
        self.skipped: dict[str, str] = {}  # path → why the base no longer accepts it
        self.listeners: list[Callable[[Settings], None]] = []
        # called when a device's or zone's tags changed (`clapas.selfservice.tags`): the running registry re-reads
        self.registry_listeners: list[Callable[[], None]] = []
        self.registry_version = 0  # the latest tags change's id
        self._lock = threading.Lock()
        self._looked = time.monotonic()
        if store is not None:
            try:
                self.reload()
            except Exception as e:  # a store down at start: the file's settings until it answers (maybe_reload)
                log.warning("settings overrides not read (%s): the config file's settings apply until the store "
                            "answers", e)

    # reading -------------------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the overrides from the store and rebuild the effective settings."""
        assert self.store is not None
        with self._lock:
            version = self.store.settings_version()
            rows = self.store.settings_overrides()
            kept: list[tuple[list[str], Any]] = []
            overrides, skipped = {}, {}
            current = self.base
            registry_version = max((r["id"] for r in rows if paths.is_tags_path(r["path"])), default=0)
            for r in rows:
                if paths.is_tags_path(r["path"]):
                    continue  # a registry change, not a setting (kept in the same history)
                value = decode(r["value"])
                try:
                    segs = paths.split(r["path"])
                    paths.department(segs)
                    current = effective(self.base, [*kept, (segs, value)])
                except (InvalidValue, paths.NotOverridable) as e:
                    skipped[r["path"]] = str(e)
                    log.warning("settings override %s = %s skipped: %s", r["path"], r["value"], e)
                    continue
                kept.append((segs, value))
                overrides[r["path"]] = {**r, "value": value}
            self.overrides, self.skipped = overrides, skipped
            self.current = current  # before the version: whoever sees the new version sees these settings
            if registry_version != self.registry_version:
                # before the version moves: the detectors' next batch re-reads the tags from the refreshed registry
                self.registry_version = registry_version
                for g in self.registry_listeners:
                    g()
            self.version = version
            self._looked = time.monotonic()
        for f in self.listeners:
            f(current)

    def maybe_reload(self) -> None:
        """At most every `reload_s`: reload if another process changed something. Never raises (a store that is
        down keeps the settings as they are)."""
        if self.store is None or time.monotonic() - self._looked < self.reload_s:
            return
        self._looked = time.monotonic()
        try:
            if self.store.settings_version() != self.version:
                self.reload()
        except Exception as e:
            log.warning("settings overrides not re-read (%s); the current ones stay", e)

    def value(self, segs: list[str], settings: Settings | None = None) -> Any:
        return paths.get(paths.tree(settings or self.current), segs)

    # changing ------------------------------------------------------------------------------------------------
    def _pairs(self, without: str) -> list[tuple[list[str], Any]]:
        return [(paths.split(p), r["value"]) for p, r in self.overrides.items() if p != without]

    def check(self, path: str, value: Any) -> tuple[str, Settings]:
        """(normalized path, the settings it would give); NotOverridable or InvalidValue."""
        segs = paths.split(path)
        paths.department(segs)
        norm = paths.join(segs)
        return norm, effective(self.base, [*self._pairs(norm), (segs, value)])

    def change(self, path: str, value: Any, **who: Any) -> dict[str, Any]:
        """Validate, store and apply one change; returns the stored row (value decoded). `who`: actor, via, role,
        key_id (`OverrideTables.record_setting`)."""
        assert self.store is not None
        norm, _ = self.check(path, value)
        previous = self.value(paths.split(norm))
        row = self.store.record_setting(norm, encode(value), previous=encode(previous), **who)
        self.reload()
        return {**row, "value": value, "previous": previous}

    def revert(self, path: str, **who: Any) -> dict[str, Any] | None:
        """Back to the config file's value; None when the path was not overridden."""
        assert self.store is not None
        segs = paths.split(path)
        paths.department(segs)
        norm = paths.join(segs)
        if norm not in self.overrides:
            return None
        previous = self.overrides[norm]["value"]
        row = self.store.record_setting(norm, None, previous=encode(previous), **who)
        self.reload()
        return {**row, "value": None, "previous": previous}
