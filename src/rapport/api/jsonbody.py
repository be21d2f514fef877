"""JSON request bodies that hold only characters: a lone surrogate is refused as ``POST /v1/events``
refuses it, with a 400 saying the body is not valid JSON, and where.

FastAPI reads a body with Python's parser, which takes a lone surrogate (``"\\ud800"``, or its three
bytes) for a character: Pydantic refuses it in a string field, but not as a list item, a key or a value
of free-form JSON, and it would fail only when stored, as a 500. Every router's routes are
:class:`JsonBodyRoute`, whose requests check what the parser read before any field is looked at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from rapport.api.problems import MalformedBody
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


class JsonBodyRoute(APIRoute):
    """A route whose JSON body is read by :class:`JsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def reading_json(request: Request) -> Response:
            return await handle(JsonRequest(request.scope, request.receive))

        return reading_json
