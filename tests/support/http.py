"""Assertions on HTTP answers shared by the API tests."""

from __future__ import annotations

from typing import Any

from httpx2 import Response

PROBLEM_JSON = "application/problem+json"


def problem(response: Response, status: int) -> dict[str, Any]:
    """The problem document of ``response``, after checking it is one, with ``status``."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def ok(response: Response, status: int = 200) -> Any:
    """The JSON body of ``response``, after checking its status."""
    assert response.status_code == status, response.text[:500]
    return response.json()
