"""POST /v1/events: take in a batch of events."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from rapport.api.auth import require
from rapport.api.deps import DatabaseDep, SettingsDep
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import PROBLEM_JSON, Problem, ProblemError
from rapport.catalog.errors import json_kind
from rapport.ingest import ingest_events
from rapport.ingest.jsontext import parse_json, utf8_problem
from rapport.settings import Settings
from rapport.trust.roles import Permission as P

router = APIRouter(prefix="/v1", tags=["events"], route_class=JsonBodyRoute)


class RejectedEvent(BaseModel):
    index: int
    id: str | None
    errors: list[str]


class IngestResult(BaseModel):
    """What became of each event of the batch. Rejected events are kept in the quarantine."""

    accepted: int
    duplicates: int
    rejected: list[RejectedEvent]


class RejectedBatch(Problem):
    """A problem document. When events were rejected it also says what became of each event of the
    batch (``errors`` then holds every reason, as ``events.{index}: {reason}``); when the body itself is
    wrong (no list of events), only what is wrong."""

    accepted: int | None = None
    duplicates: int | None = None
    rejected: list[RejectedEvent] | None = None


ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "maxItems": 5000,
            "items": {
                "type": "object",
                "required": ["id", "type", "occurred_at", "source", "identifiers", "data"],
                "properties": {
                    "id": {
                        "type": "string",
                        "maxLength": 200,
                        "description": "the client's idempotency key: an id sent again is a duplicate",
                    },
                    "type": {
                        "type": "string",
                        "example": "order.placed",
                        "description": "an event type of the catalog (`GET /v1/event-types`)",
                    },
                    "schema_version": {"type": "integer", "description": "defaults to the latest version"},
                    "occurred_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "RFC 3339 with an offset, e.g. 2026-05-03T14:22:05Z",
                    },
                    "source": {
                        "type": "string",
                        "maxLength": 200,
                        "example": "pos-store-12",
                        "description": "the system that sends the event",
                    },
                    "identifiers": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "example": {"email": "jo@example.com", "loyalty_id": "L-77"},
                        "description": "identifier kind to one value (`GET /v1/identity/kinds`); one "
                        "at least must be usable",
                    },
                    "data": {
                        "type": "object",
                        "description": "checked against the JSON Schema of the type's version",
                    },
                },
            },
        }
    },
}
#: batches a client can send as they are, shown in the interactive docs
ENVELOPE_EXAMPLES: dict[str, Any] = {
    "order": {
        "summary": "An order placed in a store",
        "value": {
            "events": [
                {
                    "id": "pos-12-000981",
                    "type": "order.placed",
                    "occurred_at": "2026-05-03T14:22:05Z",
                    "source": "pos-store-12",
                    "identifiers": {"email": "jo@example.com", "loyalty_id": "L-77"},
                    "data": {
                        "order_id": "O-981",
                        "currency": "EUR",
                        "total": 59.9,
                        "lines": [{"sku": "SH-1", "quantity": 1, "unit_price": 59.9}],
                    },
                }
            ]
        },
    },
    "visit": {
        "summary": "A page seen by a visitor known by a cookie",
        "value": {
            "events": [
                {
                    "id": "web-5f2a-1",
                    "type": "page.viewed",
                    "occurred_at": "2026-05-03T14:20:00+02:00",
                    "source": "web-shop",
                    "identifiers": {"cookie_id": "c-5f2a"},
                    "data": {"url": "https://shop.example.com/shoes", "title": "Shoes"},
                }
            ]
        },
    },
}


def document_limits(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Say in the OpenAPI ``document`` the batch limits this server is configured with, not the defaults."""
    post = document["paths"]["/v1/events"]["post"]
    events = post["requestBody"]["content"]["application/json"]["schema"]["properties"]["events"]
    events["maxItems"] = settings.max_batch_events
    post["responses"]["413"]["description"] = _too_large(settings)
    return document


def _too_large(settings: Settings) -> str:
    return (
        f"Over {settings.max_batch_events:,} events or {settings.max_batch_bytes:,} bytes in one request "
        "(`RAPPORT_MAX_BATCH_EVENTS`, `RAPPORT_MAX_BATCH_BYTES`)"
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError(
            413, "Request too large", f"the body is {declared} bytes; at most {limit} are accepted"
        )
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ProblemError(413, "Request too large", f"the body exceeds {limit} bytes")
    return bytes(body)


def _events_of(body: bytes, max_events: int) -> list[Any]:
    if not body:  # no body at all is missing, as every operation that needs one says it (not malformed)
        missing = "request body: required property missing"
        raise ProblemError(422, "Invalid request", f'{missing}; send {{"events": [...]}}', [missing])
    try:
        document = parse_json(body)
    except orjson.JSONDecodeError as exc:
        problem = utf8_problem(body) or f"not valid JSON: {exc}"
        raise ProblemError(400, "Malformed JSON", f"the body is {problem}") from exc
    if not isinstance(document, dict):
        # named as every operation names its body as a whole (a message has a field called body)
        reason = f'request body: expected an object, got {json_kind(document)}; send {{"events": [...]}}'
        raise ProblemError(422, "Invalid request", reason, [reason])
    if "events" not in document:
        raise ProblemError(
            422,
            "Invalid request",
            'events: required property missing; send {"events": [...]}',
            ["events: required property missing"],
        )
    if unknown := sorted(set(document) - {"events"}):
        reasons = [f'{name}: unknown field; send {{"events": [...]}}' for name in unknown]
        raise ProblemError(422, "Invalid request", "; ".join(reasons), reasons)
    events = document["events"]
    if not isinstance(events, list):
        raise ProblemError(
            422, "Invalid request", "events: expected a list of events", ["events: expected a list of events"]
        )
    if len(events) > max_events:
        raise ProblemError(
            413,
            "Batch too large",
            f"events: {len(events)} events sent; at most {max_events} per request",
            [f"events: at most {max_events} items"],
        )
    return events


@router.post(
    "/events",
    response_model=IngestResult,
    summary="Send a batch of events",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ENVELOPE_SCHEMA, "examples": ENVELOPE_EXAMPLES}},
        }
    },
    responses={
        200: {"description": "Every event was accepted or recognised as a duplicate"},
        400: {"model": Problem, "description": "The body is not JSON"},
        413: {"model": Problem, "description": "Too many events or bytes in one request"},
        422: {
            "model": RejectedBatch,
            "description": "Some events were rejected (and quarantined); the others were stored. The body "
            "lists each rejected event with its reasons. Or the body holds no list of events.",
        },
    },
    dependencies=[require(P.EVENTS_WRITE)],
)
async def post_events(request: Request, database: DatabaseDep, settings: SettingsDep) -> Any:
    """Validate, deduplicate, resolve and store each event. An id seen before counts as a duplicate and
    changes nothing, so a batch may safely be sent again."""
    body = await _read_body(request, settings.max_batch_bytes)
    # in a thread: a body too deep for Python's parser that may hold long numbers takes seconds to read
    events = await run_in_threadpool(_events_of, body, settings.max_batch_events)

    def work() -> Any:
        with database.session(write=True) as session:
            return ingest_events(session, events=events, settings=settings, transport="http")

    outcome = await run_in_threadpool(work)
    result = {"accepted": outcome.accepted, "duplicates": outcome.duplicates, "rejected": outcome.rejected}
    if outcome.rejected:
        detail = f"{len(outcome.rejected)} of {len(events)} events were rejected and quarantined"
        # `errors`, as every problem document has it: each reason, named by the event's place in the batch
        errors = [f"events.{r['index']}: {reason}" for r in outcome.rejected for reason in r["errors"]]
        return JSONResponse(
            {
                "type": "about:blank",
                "title": "Some events were rejected",
                "status": 422,
                "detail": detail,
                "errors": errors,
                **result,
            },
            status_code=422,
            media_type=PROBLEM_JSON,
        )
    return result
