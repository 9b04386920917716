"""clapas: an open, sovereign IoT data platform for cities."""

__version__ = "0.1.0"
