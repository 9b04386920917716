"""Every built-in decoder, on any bytes and port: readings of the right shape, or a DecodeError — nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clapas.decoders import DECODERS, DecodeError

# the fPort each format is sent on, so that the fuzzing reaches past the port check most of the time
USUAL_PORT = {"cayenne_lpp": 1, "elsys": 5, "dragino_lht65": 2, "milesight": 85, "decentlab_pm": 1,
              "decentlab_mbx": 1, "kamstrup": 1, "oms": 1}
# a valid first byte helps the fuzzer past the frame's header (M-Bus: 0x78 no TPL header; Decentlab: version 2)
USUAL_START = {"kamstrup": b"\x78", "oms": b"\x7a", "decentlab_pm": b"\x02", "decentlab_mbx": b"\x02"}


def test_every_decoder_has_fuzzing_hints():
    assert set(USUAL_PORT) == set(DECODERS)


@pytest.mark.parametrize("name", sorted(DECODERS))
@given(data=st.data())
def test_no_input_crashes_a_decoder(name: str, data: st.DataObject) -> None:
    body = data.draw(st.binary(max_size=96))
    payload = data.draw(st.sampled_from([body, USUAL_START.get(name, b"") + body]))
    f_port = data.draw(st.sampled_from([USUAL_PORT[name]] * 3 + [0, 2, 100, 255]))
    try:
        out = DECODERS[name](payload, f_port)
    except DecodeError:
        return
    assert all(isinstance(k, str) and isinstance(v, int | float | str | bool) for k, v in out)
