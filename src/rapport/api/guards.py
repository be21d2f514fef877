"""What every answer and every request goes through: request-size limits, plain bodies, HEAD as GET,
security headers, CORS."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.api.jsonbody import has_body
from rapport.api.problems import internal_error, problem_response
from rapport.settings import Settings

#: the largest body of any request but a batch of events
MAX_REQUEST_BYTES = 1024 * 1024

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
]
#: API answers run no scripts and may not be framed
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
#: the interactive docs run Swagger UI from this server, started by a script in their page
DOC_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; frame-ancestors 'none'",
)
DOC_PATHS = ("/docs",)


class RequestLimits:
    """Refuse a body over :data:`MAX_REQUEST_BYTES` with 413, whether it announces its length or streams.
    ``POST /v1/events`` is left to its own, configurable limit (see routers.events)."""

    def __init__(self, app: ASGIApp, *, exempt: tuple[str, ...]) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        limit = MAX_REQUEST_BYTES
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            detail = f"the body is {int(declared)} bytes; at most {limit} are accepted"
            await problem_response(413, "Request too large", detail)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:  # raised inside the app, whose handlers answer with a 413 problem
                raise HTTPException(413, f"the body exceeds {limit} bytes")
            return message

        await self.app(scope, counted, send)


class PlainBodies:
    """Refuse with 415 a body sent compressed or otherwise encoded (``Content-Encoding``): read as it is,
    gzip would be called text that is not UTF-8, and an encoding no one reads would go unnoticed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the header speaks of the body: a request without one (a GET) has nothing encoded to refuse
        if scope["type"] == "http" and has_body(Request(scope)):
            encoding = Headers(scope=scope).get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                detail = f"the body is sent as {encoding[:40]!r} (Content-Encoding); send it as plain JSON"
                await problem_response(415, "Unsupported body encoding", detail)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HeadAsGet:
    """Answer ``HEAD`` wherever ``GET`` is answered, with the same status and headers and no body
    (RFC 9110 §9.3.2): uptime checks and load balancers ask ``HEAD /health``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


class SecurityHeaders:
    """The same protective headers on every answer, errors included; answers are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [*SECURITY_HEADERS, DOC_CSP if scope["path"].startswith(DOC_PATHS) else API_CSP]
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in extra if n not in names]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            # The server's own 500 would be sent from outside every middleware, without these headers:
            # answer here, and let the error go on to be logged (the server's answer is then dropped).
            if not started:
                await internal_error()(scope, receive, with_headers)
            raise


class ProblemCors(CORSMiddleware):
    """Starlette's CORS, whose refusal of a preflight is a problem document like every other error (its
    own is plain text)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code < 400:
            return answer
        headers = {k: v for k, v in answer.headers.items() if k.lower().startswith("access-control-")}
        reason = bytes(answer.body).decode()  # "Disallowed CORS origin, method"
        return problem_response(answer.status_code, "Cross-origin request refused", reason, headers=headers)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the guards. CORS stays closed unless ``RAPPORT_CORS_ORIGINS`` names origins."""
    if settings.cors_origins:
        app.add_middleware(
            ProblemCors,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After", "WWW-Authenticate"],
        )
    app.add_middleware(RequestLimits, exempt=("/v1/events",))
    app.add_middleware(PlainBodies)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
