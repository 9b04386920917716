"""Detectors: rules that watch the stored stream of observations and open or clear alerts (see `base`)."""

from clapas.detectors.base import (
    CLEAR,
    OPEN,
    AlertSink,
    Detection,
    Detector,
    DetectorRunner,
    DeviceMeta,
    MemorySink,
    Registry,
)

__all__ = ["CLEAR", "OPEN", "AlertSink", "Detection", "Detector", "DetectorRunner", "DeviceMeta", "MemorySink",
           "Registry"]
