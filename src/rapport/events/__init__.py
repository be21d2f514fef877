"""The event log: every accepted event, stored once and never changed."""

from rapport.events.models import Event
from rapport.events.store import EventRow, append_events

__all__ = ["Event", "EventRow", "append_events"]
