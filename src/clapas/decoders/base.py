"""What every payload decoder is: a pure function from (payload, fPort) to (key, value) pairs.

Keys are quantity keys of the catalogue (`clapas.model.QUANTITIES`) when the value is one of them; any other key is
kept as a device attribute, never dropped. A decoder raises `DecodeError` with a readable reason when the payload is
not what it expects; the pipeline quarantines that uplink and goes on.
"""

from __future__ import annotations

from collections.abc import Callable

Reading = tuple[str, float | int | str | bool]
Decoder = Callable[[bytes, int], list[Reading]]


class DecodeError(ValueError):
    """The payload cannot be decoded; the message says why, for a human reading the quarantine."""


def need(payload: bytes, size: int, what: str) -> None:
    """Fail with a clear reason when a frame is shorter than its format requires."""
    if len(payload) < size:
        raise DecodeError(f"truncated {what}: {len(payload)} bytes, expected at least {size}")
