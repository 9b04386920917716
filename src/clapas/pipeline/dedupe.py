"""Duplicate deliveries: ChirpStack's deduplicationId first; device + frame counter for sources without one."""

from __future__ import annotations

from collections import deque


class Deduplicator:
    """Remembers the last `window` deduplication ids and the last `fcnt_window` frames of each device."""

    def __init__(self, window: int = 500_000, fcnt_window: int = 16) -> None:
        self.window = window
        self.fcnt_window = fcnt_window
        self._keys: dict[str, None] = {}  # insertion-ordered: the oldest are evicted first
        self._frames: dict[str, deque[tuple[int, bytes]]] = {}

    def warm(self, keys: list[str]) -> None:
        """Remember keys already journaled (newest first, as the store returns them) after a restart."""
        for k in reversed(keys[: self.window]):
            self._keys[k] = None

    def seen(self, key: str, dev_eui: str, f_cnt: int | None, payload: bytes) -> bool:
        """True if this message was already seen; remembers it otherwise."""
        if key:
            if key in self._keys:
                return True
            self._keys[key] = None
            if len(self._keys) > self.window:
                del self._keys[next(iter(self._keys))]
            return False
        if f_cnt is None:
            return False
        frames = self._frames.get(dev_eui)
        if frames is None:
            frames = self._frames[dev_eui] = deque(maxlen=self.fcnt_window)
        frame = (f_cnt, payload)
        if frame in frames:
            return True
        frames.append(frame)
        return False
