"""The flow from received messages to stored observations (see `ingest.Pipeline`)."""

from clapas.pipeline.ingest import Pipeline

__all__ = ["Pipeline"]
