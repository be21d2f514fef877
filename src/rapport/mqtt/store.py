"""A batch of messages into the ingest pipeline: one transaction, nothing dropped.

Messages that cannot become envelopes go to the quarantine with their topic; envelopes go through the
same pipeline as ``POST /v1/events`` (check, dedupe, resolve, append, project), and what it rejects is
quarantined too. Only :func:`store_messages` touches the database; the worker calls it off the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from rapport.catalog.service import load_catalog
from rapport.db import Database
from rapport.db.faults import fault_reason, isolating_faults
from rapport.identity.service import load_kinds
from rapport.ingest.envelope import Rejection
from rapport.ingest.pipeline import Outcome, check_batch, store_batch
from rapport.ingest.quarantine import quarantine
from rapport.mqtt.topics import Unreadable, translate
from rapport.settings import Settings

log = logging.getLogger("rapport.mqtt")
TRANSPORT = "mqtt"


class Message(Protocol):
    """What a message must have to be stored: the topic it came on and its payload."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...


def _rejection(unreadable: Unreadable) -> Rejection:
    return Rejection(-1, None, None, [unreadable.reason], unreadable.as_quarantined())


def store_messages(database: Database, messages: Sequence[Message], *, settings: Settings) -> Outcome:
    """Translate, check and store ``messages`` in one write transaction; committed when this returns."""
    envelopes: list[dict[str, Any]] = []
    unreadable: list[Unreadable] = []
    for message in messages:
        translated = translate(message.topic, message.payload, limit=settings.max_batch_bytes)
        if isinstance(translated, Unreadable):
            unreadable.append(translated)
        else:
            envelopes.append(translated)
    with database.session() as session:
        catalog = load_catalog(session)
        kinds = load_kinds(session, region=settings.default_region)
    checked = check_batch(envelopes, catalog=catalog, kinds=kinds, settings=settings)
    with database.session(write=True) as session:
        quarantine(session, [_rejection(u) for u in unreadable], transport=TRANSPORT, now=checked.checked_at)
        outcome = store_batch(session, checked, kinds=kinds, settings=settings, transport=TRANSPORT)
    if unreadable:
        outcome.rejected_count += len(unreadable)
        outcome.rejected.extend(
            {"index": None, "id": None, "topic": u.topic, "errors": [u.reason]} for u in unreadable[:100]
        )
    return outcome


def store_isolating_faults(database: Database, messages: Sequence[Message], *, settings: Settings) -> Outcome:
    """:func:`store_messages`, but a batch that fails for a reason of its own (not an unavailable
    database) is split until the message at fault is found; that one is quarantined with the error and
    the rest are stored. Errors of an unavailable database are raised: retry the batch later."""
    total = Outcome()

    def store(group: Sequence[Message]) -> None:
        total.add(store_messages(database, group, settings=settings))

    def keep(message: Message, error: Exception) -> None:
        total.add(_quarantine_fault(database, message, error, settings=settings))

    isolating_faults(messages, store, keep)
    return total


def _quarantine_fault(
    database: Database, message: Message, error: Exception, *, settings: Settings
) -> Outcome:
    """Keep a message that failed on its own with the error. When it became an envelope, the envelope is
    kept, as a rejected event is, so that a replay runs it again once the fault is mended."""
    reason = fault_reason(error)
    log.error("message on %s %s", message.topic, reason)
    translated = translate(message.topic, message.payload, limit=settings.max_batch_bytes)
    if isinstance(translated, Unreadable):
        kept = _rejection(replace(translated, reason=reason))
    else:
        event_id = translated.get("id") if isinstance(translated.get("id"), str) else None
        kept = Rejection(-1, event_id, translated.get("type"), [reason], translated)
    with database.session(write=True) as session:
        quarantine(session, [kept], transport=TRANSPORT, now=datetime.now(UTC))
    return Outcome(rejected=[{"index": None, "id": kept.event_id, "errors": [reason]}], rejected_count=1)
