"""Who is calling and what they may do: ``Authorization: Bearer <key>``, checked against the role table
(rapport.trust.roles) on every route but ``GET /health``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from rapport.api.deps import get_database, get_settings
from rapport.api.problems import ProblemError
from rapport.db.afterwards import after_read
from rapport.trust import audit
from rapport.trust.keys import Caller, RefusedKey, authenticate
from rapport.trust.ratelimit import RateLimiter
from rapport.trust.roles import Permission, allows

_bearer = HTTPBearer(auto_error=False, description="An API key: `rapport keys create --role …`")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rapport"'}


def current_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The caller behind the request's key; 401 without a usable key (or with two: which one is meant is
    not for the server to guess), 429 over the key's rate."""
    if len(request.headers.getlist("authorization")) > 1:
        raise ProblemError(
            401, "Unauthorized", "send one Authorization header, not several", headers=_CHALLENGE
        )
    if credentials is None:
        raise ProblemError(
            401,
            "Unauthorized",
            "an API key is required: send Authorization: Bearer <key>",
            headers=_CHALLENGE,
        )
    with get_database(request).session() as session:
        try:
            caller = authenticate(session, secret=credentials.credentials)
        except RefusedKey as exc:
            raise ProblemError(401, "Unauthorized", str(exc), headers=_CHALLENGE) from exc
    limiter: RateLimiter = request.app.state.rate_limiter
    if over := limiter.spend(caller.key_id, caller.name):
        raise ProblemError(429, "Too many requests", over.reason, headers=over.headers)
    request.state.caller = caller
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require(permission: Permission) -> Any:
    """A route dependency: the caller's role must allow ``permission``, else 403."""

    def check(caller: CurrentCaller) -> Caller:
        if not allows(caller.role, permission):
            raise ProblemError(
                403,
                "Forbidden",
                f"the {caller.role.value} role may not do this (it needs {permission.value})",
            )
        return caller

    return Depends(check)


class Auditor:
    """Records what the caller did. A change is recorded in its own write session (:meth:`record`), so that
    the change and its entry commit together or not at all; a read, which changes nothing to pair the
    entry with, is recorded in a transaction of its own once answered (:meth:`__call__`: reads run in
    read-only sessions)."""

    def __init__(self, request: Request, caller: CurrentCaller) -> None:
        self.request = request
        self.database = get_database(request)
        self.settings = get_settings(request)
        self.caller = caller

    def reference(self, value: str) -> str:
        """What to record of an id the client chose, in its place: it may hold an identifier value."""
        return audit.reference(value, secret=self.settings.secret_key.get_secret_value())

    def record(self, session: Session, action: str, target_type: str, target_id: str, **detail: Any) -> None:
        """Record a change in ``session``, the write session that makes it."""
        audit.record(
            session,
            caller=self.caller,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail,
        )

    def __call__(self, action: str, target_type: str, target_id: str, **detail: Any) -> None:
        """Record a read, in a transaction of its own, once the read's session has given its connection
        back (see :mod:`rapport.db.afterwards`)."""

        def write() -> None:
            with self.database.session(write=True) as session:
                self.record(session, action, target_type, target_id, **detail)

        after_read(self.request.state, write)


Audit = Annotated[Auditor, Depends(Auditor)]
