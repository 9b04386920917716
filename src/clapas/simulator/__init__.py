"""A synthetic city: devices, plausible signals, injected incidents with their ground truth."""
