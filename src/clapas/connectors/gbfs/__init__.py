"""Bike share from GBFS feeds (MobilityData/gbfs v2.3 and v3.0, domain-rules §6.1): discovery, polling as the feed's
`ttl` asks, validation against the vendored official schemas, one normalised model for both versions, and the
messages the pipeline journals and stores (station samples, system polls, flags, quarantined files)."""
