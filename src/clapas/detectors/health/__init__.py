"""Device and network health (issue 13, domain-rules.md §7): silent devices, gateways and their blast radius,
batteries, radio margins and frame counters, data quality. See `detector` for the rules."""

from clapas.detectors.health.detector import RULES, HealthDetector

__all__ = ["RULES", "HealthDetector"]
