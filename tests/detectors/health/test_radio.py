"""Radio margin per SF, rolling medians, frame-counter loss per segment."""

from __future__ import annotations

from clapas.detectors.health.detector import RADIO
from clapas.detectors.health.radio import CRITICAL, DEGRADING, NONE, FrameCounter, margin_db, radio_state
from tests.detectors.health.chain import T0, Stream, eui


def test_sf12_at_minus_17_db_has_3_db_margin_critical() -> None:
    m = margin_db(12, -17.0)
    assert m == 3.0
    assert radio_state(m, m, 12) == CRITICAL
    assert margin_db(7, 2.5) == 10.0 and radio_state(10.0, 10.0, 7) == NONE
    assert radio_state(8.0, 9.0, 9) == DEGRADING  # under the 10-dB installation margin
    assert radio_state(12.0, 19.0, 9) == DEGRADING  # 7 dB below its 30-day median
    assert radio_state(4.0, 4.0, 12) == CRITICAL  # SF12 under 5 dB


def test_fcnt_loss_per_segment_reset_never_negative() -> None:
    fc = FrameCounter()
    missing = {7, 13, 22, 35, 41, 50, 66, 71, 88, 95}
    for f in range(1, 101):
        if f not in missing:
            fc.add(f)
    assert fc.loss() == 0.1
    assert fc.add(100) == "retransmission" and fc.loss() == 0.1
    assert fc.add(0) == "reset" and fc.resets == 1
    assert fc.loss() == 0.0 and fc.segments == [(1, 100, 90)]
    for f in (1, 2, 3):
        fc.add(f)
    assert fc.loss() == 0.0


def test_degrading_antenna_from_daily_medians() -> None:
    st = Stream([{"eui": eui(1), "kind": "water_meter"}], per_batch=200)
    for k in range(24 * 20):
        snr = 4.0 if k < 24 * 10 else -4.0  # SF9, floor −12.5: 16.5 dB, then 8.5 dB after day 10
        st.up(T0 + k * 3600.0, eui(1), f_cnt=k, sf=9, rx=(("gw-a", snr - 3), ("gw-b", snr)))
    opened = st.opened(RADIO)
    assert len(opened) == 1 and opened[0].severity == "warning"
    day = (opened[0].at.timestamp() - T0) / 86400
    assert 10 < day <= 15
    assert opened[0].evidence["frame_loss"] == 0.0
