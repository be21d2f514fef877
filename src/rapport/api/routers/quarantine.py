"""The quarantine: what was rejected and why; replay once fixed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, StrictInt

from rapport.api.auth import Audit, require
from rapport.api.deps import AFTER_NEXT, LIMIT_NEXT, NEXT_AFTER, DatabaseDep, ReadSession, SettingsDep
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import NOT_BLANK, Problem, ProblemError
from rapport.bodies import RequestBody
from rapport.db.base import MAX_ROW_ID
from rapport.ingest.models import MAX_TRANSPORT, QuarantinedEvent, Status
from rapport.ingest.quarantine import PREVIEW_BYTES, discard, get_item, list_quarantine, preview
from rapport.ingest.replay import replay
from rapport.trust.roles import Permission as P
from rapport.views.paging import one_page

router = APIRouter(prefix="/v1/quarantine", tags=["quarantine"], route_class=JsonBodyRoute)


class QuarantineItem(BaseModel):
    id: int
    received_at: datetime
    transport: str
    line: int | None = Field(description="the line of the imported file it starts on (imports only)")
    event_id: str | None
    type: str | None
    payload: Any = Field(description="what was sent, as JSON; null in a listing when payload_truncated")
    raw_text: str | None = Field(
        description="what was sent, as text, when it could not be kept as JSON; null in a listing when "
        "payload_truncated"
    )
    payload_bytes: int = Field(description="the size of what was sent, as compact JSON or as its text")
    payload_preview: str = Field(
        description=f"its first {PREVIEW_BYTES:,} bytes, as compact JSON or as its text (whole when smaller)"
    )
    payload_truncated: bool = Field(
        description="whether this answer leaves payload and raw_text out, as larger than the preview: "
        "GET /v1/quarantine/{id} gives the item whole"
    )
    errors: list[str]
    status: Status
    attempts: int
    resolved_at: datetime | None

    @classmethod
    def of(cls, item: QuarantinedEvent, *, whole: bool) -> QuarantineItem:
        """``item`` as the API gives it: in a listing (not ``whole``), its payload only when it fits the
        preview, so that a page stays small however large the items."""
        start = preview(item)
        left_out = start.truncated and not whole
        return cls(
            id=item.id,
            received_at=item.received_at,
            transport=item.transport,
            line=item.line,
            event_id=item.event_id,
            type=item.type,
            payload=None if left_out else item.payload,
            raw_text=None if left_out else item.raw_text,
            payload_bytes=start.size,
            payload_preview=start.text,
            payload_truncated=left_out,
            errors=item.errors,
            status=item.status,
            attempts=item.attempts,
            resolved_at=item.resolved_at,
        )


class QuarantinePage(BaseModel):
    items: list[QuarantineItem]
    next_after: int | None = Field(description=NEXT_AFTER)


class ReplayRequest(RequestBody):
    ids: list[Annotated[StrictInt, Field(ge=1, le=MAX_ROW_ID)]] | None = Field(
        default=None,
        max_length=5000,
        description="quarantine ids to replay; all open ones when omitted",
    )


class ReplayResult(BaseModel):
    replayed: int
    duplicates: int
    still_rejected: int
    not_found: list[int] = Field(
        description="of the ids asked for, those of no open item (none of that id, or replayed already)"
    )


@router.get(
    "",
    response_model=QuarantinePage,
    summary="Rejected input with its reasons",
    dependencies=[require(P.QUARANTINE_MANAGE)],
)
def get_quarantine(
    session: ReadSession,
    audit: Audit,
    status: Literal[Status, "all"] = Query(
        "open",
        description="`open` to mend, `replayed`, `duplicate` (its id was stored already), `discarded` "
        "or `all`",
    ),
    transport: str | None = Query(
        None,
        min_length=1,
        pattern=NOT_BLANK,
        max_length=MAX_TRANSPORT,
        description="only what came this way: http, mqtt, file:NAME (an imported file, by its name) …",
    ),
    after: int = Query(0, ge=0, le=MAX_ROW_ID, description=AFTER_NEXT),
    limit: int = Query(50, ge=1, le=500, description=LIMIT_NEXT),
) -> QuarantinePage:
    only = None if status == "all" else status
    found = list_quarantine(session, status=only, transport=transport, after=after, limit=limit + 1)
    items, last = one_page(found, limit)
    audit("quarantine.list", "quarantine", status, count=len(items))  # what people sent, as the console
    return QuarantinePage(
        items=[QuarantineItem.of(i, whole=False) for i in items],
        next_after=last.id if last else None,
    )


@router.get(
    "/{item_id:int}",  # not /replay, which takes POST alone
    response_model=QuarantineItem,
    summary="One quarantined item, its payload whole",
    responses={404: {"model": Problem, "description": "No quarantined item has this id"}},
    dependencies=[require(P.QUARANTINE_MANAGE)],
)
def get_quarantined_item(
    session: ReadSession, audit: Audit, item_id: int = Path(ge=1, le=MAX_ROW_ID)
) -> QuarantineItem:
    item = get_item(session, item_id)
    if item is None:
        raise ProblemError(404, "Not found", f"no quarantined item {item_id}")
    audit("quarantine.read", "quarantine", str(item_id))  # what someone sent, as the listing
    return QuarantineItem.of(item, whole=True)


@router.post(
    "/replay",
    response_model=ReplayResult,
    summary="Run quarantined events through the pipeline again",
    dependencies=[require(P.QUARANTINE_MANAGE)],
)
def post_replay(
    database: DatabaseDep, settings: SettingsDep, audit: Audit, body: ReplayRequest | None = None
) -> ReplayResult:
    ids = body.ids if body else None
    outcome = replay(
        database,
        settings=settings,
        ids=ids,  # each page's entry in the page's transaction; its target is cut at 200 characters
        record=lambda session, target, detail: audit.record(
            session, "quarantine.replay", "quarantine", target, **detail
        ),
    )
    return ReplayResult(
        replayed=outcome.replayed,
        duplicates=outcome.duplicates,
        still_rejected=outcome.still_rejected,
        not_found=outcome.not_found,
    )


class DiscardRequest(RequestBody):
    ids: list[Annotated[StrictInt, Field(ge=1, le=MAX_ROW_ID)]] = Field(
        min_length=1, max_length=5000, description="the ids of the open items to discard"
    )


class DiscardResult(BaseModel):
    discarded: int
    not_found: list[int] = Field(description="of the ids asked for, those of no open item")


@router.post(
    "/discard",
    response_model=DiscardResult,
    summary="Discard quarantined input that will never be replayed; its payload is deleted",
    dependencies=[require(P.QUARANTINE_MANAGE)],
)
def post_discard(database: DatabaseDep, audit: Audit, body: DiscardRequest) -> DiscardResult:
    """For input no fix will make acceptable (junk from a misconfigured source, what an erased person's
    systems still send): it leaves the open items, and a replay of all of them no longer runs it again.
    Each item keeps its reasons, id, type and size, as `discarded`; its payload is deleted, for good."""
    with database.session(write=True) as session:
        not_found = discard(session, body.ids, now=datetime.now(UTC))
        discarded = len(set(body.ids)) - len(not_found)
        # as a replay's entry: the ids as the target (cut to its width) and in the detail
        target = ",".join(map(str, body.ids))
        audit.record(session, "quarantine.discard", "quarantine", target, discarded=discarded, ids=body.ids)
    return DiscardResult(discarded=discarded, not_found=not_found)
