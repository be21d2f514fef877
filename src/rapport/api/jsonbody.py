"""JSON request bodies: sent as JSON, and holding only characters.

A route that takes a JSON body refuses a body sent as anything else (``Content-Type``), or as nothing,
with a 415 naming ``application/json``: FastAPI would hand such a body to the model as bytes, and the 422
that followed spoke of the body's shape, not of how it was sent.

A lone surrogate is refused as ``POST /v1/events`` refuses it, with a 400 saying the body is not valid
JSON, and where.

FastAPI reads a body with Python's parser, which takes a lone surrogate (``"\\ud800"``, or its three
bytes) for a character: Pydantic refuses it in a string field, but not as a list item, a key or a value
of free-form JSON, and it would fail only when stored, as a 500. Every router's routes are
:class:`JsonBodyRoute`, whose requests check what the parser read before any field is looked at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from rapport.api.problems import MalformedBody, ProblemError
from rapport.ingest.jsontext import utf8_problem

#: a surrogate code point, which JSON text can write as an escape but which is no character
SURROGATE = re.compile("[\ud800-\udfff]")
#: what a body holding one must contain: an escape of one, or its bytes (which Python's parser reads)
MAY_HOLD_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def lone_surrogate(document: Any) -> str | None:
    """Where ``document`` (as parsed) holds a lone surrogate, and which: None when it holds none."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if found := SURROGATE.search(value):
                return f"{path or 'the body'} holds {_written(found)}"
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if found := SURROGATE.search(key):
                    return f"a key of {path or 'the body'} holds {_written(found)}"
                stack.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            stack.extend(
                (f"{path}.{n}" if path else str(n), item) for n, item in reversed(list(enumerate(value)))
            )
    return None


def _written(found: re.Match[str]) -> str:
    return f"a lone surrogate (\\u{ord(found.group()):04x}), which is no character"


class JsonRequest(Request):
    """A request whose JSON body is refused with a 400 when it holds a lone surrogate."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            # JSON is UTF-8 on the wire (RFC 8259); Python's parser would take UTF-16 and UTF-32 too, in
            # which a surrogate's escape is not the bytes looked for below
            if (nul := body.find(b"\x00")) >= 0:  # never in JSON text; every other character of UTF-16
                raise MalformedBody(f"the body is not UTF-8 JSON text (a NUL byte at byte {nul + 1})")
            if not body.isascii() and (problem := utf8_problem(body)):
                raise MalformedBody(f"the body is {problem}")
            document = await super().json()
            if MAY_HOLD_SURROGATE.search(body) and (where := lone_surrogate(document)) is not None:
                raise MalformedBody(f"the body is not valid JSON: {where}")
        return self._json


def json_media_type(content_type: str) -> bool:
    """Is ``content_type`` (a ``Content-Type`` header) JSON: ``application/json`` or a type that says it is
    written in JSON (``application/merge-patch+json``), whatever its parameters (``charset=utf-8``)?"""
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def has_body(request: Request) -> bool:
    """Does the request carry a body (RFC 9112 §6.3: a length over zero, or a transfer coding)?"""
    length = request.headers.get("content-length")
    return "transfer-encoding" in request.headers or (length is not None and length.strip() not in ("", "0"))


def check_media_type(request: Request) -> None:
    """Refuse with a 415 a body not sent as JSON. A request without a body is left to the route, which
    says whether it needs one."""
    if not has_body(request):
        return
    content_type = request.headers.get("content-type")
    if content_type is None or not content_type.strip():
        detail = "the body is sent without a Content-Type; send it as application/json"
    elif json_media_type(content_type):
        return
    else:
        detail = f"the body is sent as {content_type[:60]!r} (Content-Type); send it as application/json"
    raise ProblemError(
        415, "Unsupported media type", detail, ["header.content-type: expected application/json"]
    )


def refuse_stray_body(body: bytes) -> None:
    """Refuse with a 422 a body sent to an operation that takes none, as a field a body does not have is
    refused: ignored, ``{"dry_run": true}`` sent to ``DELETE /v1/profiles/{id}`` would erase the person.
    Nothing but white space, or an empty object, says nothing and is let through."""
    try:
        document = json.loads(body) if body.strip() else {}
    except ValueError:
        document = None
    if document == {}:
        return
    if isinstance(document, dict):
        errors = [f"{name}: Extra inputs are not permitted" for name in list(document)[:20]]
    else:
        errors = ["request body: takes no body"]
    raise ProblemError(422, "Invalid request", errors[0], errors)


class JsonBodyRoute(APIRoute):
    """A route whose JSON body must be sent as JSON (:func:`check_media_type`) and is read by
    :class:`JsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        # a body FastAPI reads into a model, or one the route documents and reads itself (POST /v1/events)
        takes_json = self.body_field is not None or "requestBody" in (self.openapi_extra or {})

        async def reading_json(request: Request) -> Response:
            if takes_json:
                check_media_type(request)
            elif has_body(request):
                refuse_stray_body(await request.body())
            return await handle(JsonRequest(request.scope, request.receive))

        return reading_json
