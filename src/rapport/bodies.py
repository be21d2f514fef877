"""The base of every model a request body is read into, whichever transport or page reads it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """A request body: a field it does not have is refused by name ("Extra inputs are not permitted"),
    not ignored, so that a misspelt field cannot pass for an omitted one (``{"id": [5]}`` for
    ``{"ids": [5]}`` would otherwise replay every open item of the quarantine)."""

    model_config = ConfigDict(extra="forbid")
