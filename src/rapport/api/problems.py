"""Errors as ``application/problem+json`` (RFC 9457), naming the field and saying what is wrong."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from rapport.console.web import error_page
from rapport.db.faults import unavailable
from rapport.ingest.envelope import LeapSecond, parse_moment

log = logging.getLogger("rapport.api")

PROBLEM_JSON = "application/problem+json"
#: the package of the console's page routes: their errors are answered as pages
CONSOLE = "rapport.console."


def _always_sent(schema: dict[str, Any]) -> None:
    """Every answer holds ``type`` and ``errors`` (maybe empty), though a Problem is made without them."""
    schema["required"] = [*dict.fromkeys([*schema.get("required", []), "type", "errors"])]


class Problem(BaseModel):
    """What went wrong with a request."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[str] = Field(default=[], description="each field that is wrong, and what is wrong with it")

    model_config = ConfigDict(json_schema_extra=_always_sent)


class ProblemError(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[str] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.headers = headers
        self.extra = extra


class MalformedBody(StarletteHTTPException):
    """A body that is not JSON text in UTF-8 or holds a lone surrogate, found while FastAPI reads it
    (which lets only an HTTP exception through): answered as ``POST /v1/events`` answers such a body."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, detail)


def invalid_query(message: str) -> ProblemError:
    """A 422 for a query parameter; ``message`` starts with the parameter's name."""
    return ProblemError(422, "Invalid request", message, [f"query.{message}"])


#: the digits of a second's fraction past the microseconds
_FINER = re.compile(r"\.[0-9]{6}([0-9]+)")


def _next_microsecond(moment: datetime) -> datetime:
    try:
        return moment + timedelta(microseconds=1)
    except OverflowError:  # the last moment Python can hold: nothing lies after it
        return moment


def _rfc_3339(value: Any) -> Any:
    """A query parameter's text read as the envelope's ``occurred_at`` is: pydantic alone takes numbers as
    Unix time and more forms than RFC 3339's. A bound written finer than a microsecond is rounded up to
    the next one, not cut: an event at the microsecond it starts lies before it."""
    if not isinstance(value, str):
        return value
    try:
        moment = parse_moment(value)
        finer = _FINER.search(value)
        return _next_microsecond(moment) if finer and finer.group(1).strip("0") else moment
    except LeapSecond as exc:
        raise PydanticCustomError("leap_second", "{reason}", {"reason": str(exc)}) from None
    except ValueError:
        raise PydanticCustomError("datetime_parsing", "not an RFC 3339 timestamp") from None


#: a moment as a query parameter: RFC 3339, its offset checked by :func:`utc_moment`
QueryMoment = Annotated[datetime | None, BeforeValidator(_rfc_3339)]


def utc_moment(name: str, moment: datetime | None) -> datetime | None:
    """A query parameter's moment in UTC; a 422 naming ``name`` when it has no offset or cannot be UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise invalid_query(f"{name}: needs a time zone offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise invalid_query(f"{name}: lies outside the years 1 to 9999 once in UTC") from exc


def problem_response(
    status: int,
    title: str,
    detail: str,
    errors: list[str] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors or [],
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":  # a field of the body is named alone; the body as a whole is so named
        parts = parts[1:] or ["request body"]
    return ".".join(parts)


#: the pattern of a query parameter that must hold more than white space: ``?channel=%20`` is refused as
#: ``?channel=`` is ("must not be empty"), not taken for a filter that nothing matches
NOT_BLANK = r"\S"


#: pydantic's errors for a moment it could not read
_NOT_A_MOMENT = {"datetime_parsing", "datetime_from_date_parsing", "datetime_type"}


def _message(error: Any) -> str:
    """What a validation error says, in the words the envelope's own checks use."""
    if error.get("type") in _NOT_A_MOMENT:
        return "expected an RFC 3339 timestamp with a time zone offset, e.g. 2026-05-03T14:22:05Z"
    if error.get("type") == "missing":
        return "required property missing"
    if error.get("type") == "string_too_short" and (error.get("ctx") or {}).get("min_length") == 1:
        return "must not be empty"
    if (
        error.get("type") == "string_pattern_mismatch"
        and (error.get("ctx") or {}).get("pattern") == NOT_BLANK
    ):
        return "must not be empty"
    return str(error["msg"])


#: error answers every operation may give, by what it needs: any (parameters), a key, a body
ANY_OPERATION = {"422": "The request is invalid; `errors` names each field and says what is wrong"}
WITH_KEY = {
    "401": "No usable API key: missing, not Bearer, unknown, expired or revoked; `detail` says which",
    "403": "The key's role may not do this; `detail` names the role and the permission it lacks",
    "429": "The key is over its rate limit; try again after `Retry-After` seconds",
    "503": "The database cannot serve now (out of reach, restarting, or held past `RAPPORT_LOCK_WAIT_S` by "
    "a long write); nothing was stored: send the same request again after `Retry-After` seconds",
}
WITH_BODY = {
    "400": "The body is not JSON text in UTF-8",
    "413": "The body is too large",
    "415": "The body is not sent as `application/json` (its `Content-Type`, or none) or is sent compressed "
    "(`Content-Encoding`)",
}
ANSWER_HEADERS = {
    "401": {"WWW-Authenticate": {"description": "`Bearer`: send an API key", "schema": {"type": "string"}}},
    "429": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
    "503": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Describe error answers in an OpenAPI ``document`` as what they are: ``application/problem+json``.

    Every operation gets the errors it can give without saying so (422 for a bad parameter; 401, 403,
    429 and 503 behind a key; 400 and 413 with a body), and an error a route documents with a model as JSON
    is moved to the problem media type, keeping its schema."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            implied = dict(ANY_OPERATION)
            if operation.get("security"):
                implied |= WITH_KEY
            if "requestBody" in operation:
                implied |= WITH_BODY
            for status, description in implied.items():
                responses.setdefault(status, {"description": description})
            for status, answer in responses.items():
                if status.isdigit() and int(status) >= 400:
                    _as_problem(status, answer, implied)
            operation["responses"] = dict(sorted(responses.items()))
    if not _mentions(document["paths"], _FASTAPI_422):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


def _as_problem(status: str, answer: dict[str, Any], implied: dict[str, str]) -> None:
    content = answer.get("content") or {}
    schema = (content.get("application/json") or content.get(PROBLEM_JSON) or {}).get("schema")
    if schema is None or schema.get("$ref") == _FASTAPI_422:
        schema = _PROBLEM_REF
        if status in implied:
            answer["description"] = implied[status]
    answer["content"] = {PROBLEM_JSON: {"schema": schema}}
    if status in ANSWER_HEADERS:
        answer.setdefault("headers", ANSWER_HEADERS[status])


def _mentions(value: Any, ref: str) -> bool:
    if isinstance(value, dict):
        return value.get("$ref") == ref or any(_mentions(v, ref) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, ref) for v in value)
    return False


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document, and say so in the OpenAPI
    document (:func:`document_problems`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        found = exc.errors()
        broken = next((e for e in found if e.get("type") == "json_invalid"), None)
        if broken is not None:  # as POST /v1/events answers it: the body as a whole is wrong
            reason = (broken.get("ctx") or {}).get("error") or broken["msg"]
            detail = f"the body is not valid JSON: {reason} (at character {broken['loc'][-1]})"
            return answer(request, ProblemError(400, "Malformed JSON", detail, [f"request body: {reason}"]))
        errors = [f"{_location(e['loc'])}: {_message(e)}" for e in found]
        detail = errors[0] if errors else "invalid request"
        return answer(request, ProblemError(422, "Invalid request", detail, errors))

    @app.exception_handler(MalformedBody)
    async def _malformed(request: Request, exc: MalformedBody) -> Response:
        return answer(request, ProblemError(400, "Malformed JSON", exc.detail))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {
            400: "Malformed body",
            404: "Not found",
            405: "Method not allowed",
            413: "Request too large",
        }
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            detail = (
                "the body could not be read: send JSON text in UTF-8, nested at most a few hundred levels"
            )
        if exc.status_code == 404 and detail == "Not Found":  # no route: say which address, not the title
            detail = f"nothing is at {request.url.path[:200]}"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405 and headers and "Allow" in headers:
            headers = {**headers, "Allow": allowed_methods(request) or headers["Allow"]}
            detail = f"{request.method} is not allowed on {request.url.path}; it takes {headers['Allow']}"
        title = titles.get(exc.status_code, "Error")
        return answer(request, ProblemError(exc.status_code, title, detail, headers=headers))

    @app.exception_handler(sa_exc.DBAPIError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def _database_error(request: Request, exc: Exception) -> Response:
        if unavailable(exc):  # not a bug: the database is down, restarting, or held by a long write
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            retry = {"Retry-After": str(RETRY_AFTER_S)}
            return answer(request, ProblemError(503, *BUSY_DATABASE, headers=retry))
        return await _bug(request, exc)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(request, ProblemError(500, *INTERNAL_ERROR))


#: the methods a path may be answered to, in the order ``Allow`` lists them (``HEAD``: see allowed_methods)
_METHODS_OFFERED = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method the request's path is answered to, for the ``Allow`` of a 405: Starlette names only
    those of the first route on the path (``GET`` where ``POST`` is taken too). A method is allowed when
    some route of the app would take the same request sent with it; ``HEAD`` wherever ``GET`` is (see
    guards.HeadAsGet, which sends it to the routes as a ``GET``)."""
    allowed = [
        method
        for method in _METHODS_OFFERED
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.routes
        )
    ]
    if "GET" in allowed:
        allowed.insert(1, "HEAD")
    return ", ".join(allowed)


def answer(request: Request, problem: ProblemError) -> Response:
    """``problem`` as a problem document; to a request for one of the console's pages, the console's
    error page saying the same, so that a person in a browser never reads JSON."""
    if not getattr(request.scope.get("endpoint"), "__module__", "").startswith(CONSOLE):
        return problem_response(
            problem.status, problem.title, problem.detail, problem.errors, problem.headers, **problem.extra
        )
    page = error_page(request, problem.status, problem.title, problem.detail)
    page.headers.update(problem.headers or {})
    return page


#: seconds a client is asked to wait before it tries again when the database cannot serve
RETRY_AFTER_S = 5
#: the title and detail of the answer when the database cannot serve now: nothing was stored
BUSY_DATABASE = (
    "Database unavailable",
    "the database cannot serve now (it is out of reach, restarting, or held by a long import or rebuild); "
    f"nothing was stored, so send the same request again in {RETRY_AFTER_S} seconds",
)
#: the title and detail of the answer to an error of ours: a 500 that gives nothing away
INTERNAL_ERROR = ("Internal error", "Rapport failed to answer; this is a bug on our side.")


def internal_error() -> JSONResponse:
    """The answer to an error of ours, outside a request's handlers."""
    return problem_response(500, *INTERNAL_ERROR)
