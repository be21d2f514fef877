"""The audit trail, read-only: there is no route that changes or removes an entry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from rapport.api.auth import Audit, require
from rapport.api.deps import AFTER_NEXT, LIMIT_NEXT, NEXT_AFTER, ReadSession
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import NOT_BLANK
from rapport.db.base import MAX_ROW_ID
from rapport.trust import audit
from rapport.trust.roles import Permission as P
from rapport.views.paging import one_page

router = APIRouter(prefix="/v1/audit", tags=["trust"], route_class=JsonBodyRoute)


class AuditItem(BaseModel):
    id: int
    at: datetime
    key_id: int | None = Field(description="the key that acted; null on the command line, which has none")
    key_name: str
    role: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any]

    model_config = {"from_attributes": True}


class AuditPage(BaseModel):
    items: list[AuditItem]
    next_after: int | None = Field(description=NEXT_AFTER)


@router.get(
    "",
    response_model=AuditPage,
    summary="Who read, exported or erased whom, and who changed keys and the catalog; oldest first",
    dependencies=[require(P.AUDIT_READ)],
)
def get_audit(
    session: ReadSession,
    auditor: Audit,
    after: int = Query(0, ge=0, le=MAX_ROW_ID, description=AFTER_NEXT),
    limit: int = Query(100, ge=1, le=1000, description=LIMIT_NEXT),
    action: str | None = Query(
        None,
        min_length=1,
        pattern=NOT_BLANK,
        max_length=50,
        examples=["profile.read"],
        description="the entries of one action",
    ),
    target_id: str | None = Query(
        None, min_length=1, pattern=NOT_BLANK, max_length=200, description="e.g. a profile id"
    ),
    key_id: int | None = Query(None, ge=1, le=MAX_ROW_ID, description="the entries of one key"),
) -> AuditPage:
    found = audit.page(
        session, after=after, limit=limit + 1, action=action, target_id=target_id, key_id=key_id
    )
    items, last = one_page(found, limit)
    # who read whom, as the console records it: the filters stay out, a target may be an identifier value
    auditor("audit.list", "audit", "all", count=len(items))
    return AuditPage(
        items=[AuditItem.model_validate(i) for i in items],
        next_after=last.id if last else None,
    )
