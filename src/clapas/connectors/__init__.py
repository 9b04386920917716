"""Sources of messages. Each connector turns what it receives into `Message`s (raw, as journaled) and knows how
to parse its own messages into `Uplink`s; the pipeline calls `parser_for(message.source)`, and so does replay.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from clapas.connectors import chirpstack, chirpstack_gateway, counts, ttn
from clapas.connectors.chirpstack import ParseError
from clapas.connectors.gbfs import messages as gbfs
from clapas.model import Message, Uplink

# source name → module with parse(Message) -> Uplink and eui_hint(Message) -> str | None
_PARSERS: dict[str, ModuleType] = {
    "chirpstack": chirpstack,
    "chirpstack-http": chirpstack,
    "simulator": chirpstack,  # the simulator speaks ChirpStack, through the same path as real devices
    "ttn": ttn,
    "gbfs": gbfs,  # bike-share polls (issue 12)
    "counts": counts,  # counter files: NGSI TrafficFlowObserved, national-schema CSV (issue 12)
}


def parser_for(source: str) -> tuple[Callable[[Message], Uplink], Callable[[Message], str | None]]:
    try:
        mod = _PARSERS[source]
    except KeyError:
        raise ParseError(f"no parser for message source {source!r}") from None
    return mod.parse, mod.eui_hint


__all__ = ["ParseError", "chirpstack_gateway", "parser_for"]
