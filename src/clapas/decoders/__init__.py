"""Payload decoders, by the name a device's registry entry (tag `decoder`) or its profile gives.

Each module exposes `decode(payload: bytes, f_port: int) -> list[(key, value)]`; see `base.py`.
`chirpstack_object` is special: it maps the network server's own decoded object, so it is applied by the pipeline
with the profile's field table rather than called on bytes.
"""

from __future__ import annotations

from clapas.decoders import cayenne_lpp
from clapas.decoders.base import Decoder, DecodeError, Reading

CHIRPSTACK_OBJECT = "chirpstack_object"

DECODERS: dict[str, Decoder] = {
    "cayenne_lpp": cayenne_lpp.decode,
}


def get_decoder(name: str) -> Decoder:
    try:
        return DECODERS[name]
    except KeyError:
        known = ", ".join(sorted([*DECODERS, CHIRPSTACK_OBJECT]))
        raise DecodeError(f"unknown decoder {name!r} (known: {known})") from None


__all__ = ["CHIRPSTACK_OBJECT", "DECODERS", "DecodeError", "Decoder", "Reading", "get_decoder"]
