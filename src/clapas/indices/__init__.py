"""Regulatory indices computed from observations: pure functions, no I/O."""
