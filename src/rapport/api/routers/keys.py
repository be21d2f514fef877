"""API keys: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field, StrictInt, field_validator

from rapport.api.auth import Audit, CurrentCaller, require
from rapport.api.deps import DatabaseDep, ReadSession, created
from rapport.api.jsonbody import JsonBodyRoute
from rapport.api.problems import Problem, ProblemError
from rapport.bodies import RequestBody
from rapport.db.base import MAX_ROW_ID
from rapport.trust.keyring import issue_key, withdraw_key
from rapport.trust.keys import MAX_KEY_NAME, list_keys, unfit_key_name
from rapport.trust.roles import Permission as P
from rapport.trust.roles import Role

router = APIRouter(prefix="/v1/keys", tags=["trust"], route_class=JsonBodyRoute)


class KeyIn(RequestBody):
    name: str = Field(
        min_length=1,
        max_length=MAX_KEY_NAME,
        description="who or what uses the key: visible, printable text (spaces around it are dropped)",
        examples=["store 12 desk"],
    )
    role: Role

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        name = name.strip()  # as the console and the command line trim and check it
        if problem := unfit_key_name(name):
            raise ValueError(problem)
        return name

    expires_in_days: StrictInt | None = Field(
        default=None, ge=1, le=3650, description="never expires when omitted"
    )


class KeyOut(BaseModel):
    id: int
    name: str
    role: Role
    prefix: str = Field(description="the first characters of the key, to tell keys apart")
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    model_config = {"from_attributes": True}


class NewKey(KeyOut):
    key: str = Field(description="the key itself: shown this once, Rapport keeps only its hash")


@router.get(
    "",
    response_model=list[KeyOut],
    summary="Every key, revoked ones too",
    dependencies=[require(P.KEYS_MANAGE)],
)
def get_keys(session: ReadSession, audit: Audit) -> list[KeyOut]:
    keys = list_keys(session)
    audit("keys.list", "keys", "all", count=len(keys))  # who holds a key, named, as the console
    return [KeyOut.model_validate(k) for k in keys]


@router.post(
    "",
    response_model=NewKey,
    status_code=201,
    summary="Create a key; its secret is in this answer only",
    responses={201: created("The key; `Location` is its address, which `DELETE` revokes")},
    dependencies=[require(P.KEYS_MANAGE)],
)
def post_key(body: KeyIn, database: DatabaseDep, caller: CurrentCaller, response: Response) -> NewKey:
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    with database.session(write=True) as session:
        key, secret = issue_key(session, by=caller, name=body.name, role=body.role, expires_in=expires)
        response.headers["Location"] = f"{router.prefix}/{key.id}"
        return NewKey.model_validate({**KeyOut.model_validate(key).model_dump(), "key": secret})


@router.delete(
    "/{key_id}",
    response_model=KeyOut,
    summary="Revoke a key, at once (a key revoked already is answered as it is)",
    responses={404: {"model": Problem, "description": "No key has this id"}},
    dependencies=[require(P.KEYS_MANAGE)],
)
def delete_key(
    key_id: int = Path(ge=1, le=MAX_ROW_ID), *, database: DatabaseDep, caller: CurrentCaller
) -> KeyOut:
    with database.session(write=True) as session:
        revoked = withdraw_key(session, by=caller, key_id=key_id)
        if revoked is None:
            raise ProblemError(404, "Not found", f"no key {key_id}")
        return KeyOut.model_validate(revoked.key)
