"""The ingest pipeline and its quarantine."""

from rapport.ingest.pipeline import Outcome, ingest_events, ingest_stream

__all__ = ["Outcome", "ingest_events", "ingest_stream"]
