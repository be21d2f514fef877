"""What crosses the boundary of the catalog."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rapport.bodies import RequestBody


class EventTypeIn(RequestBody):
    """A new event type, or a new version of an existing one."""

    type: str = Field(
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=100, examples=["warranty.claimed"]
    )
    description: str = Field(default="", max_length=500)
    subject: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="data field that names the entity the event is about (a new version of a built-in type "
        "keeps the built-in's, and its channel unless given)",
    )
    channel: str | dict[str, Any] | None = Field(
        default=None, description='a constant channel, or {"field": "channel", "default": null}'
    )
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema (draft-07) of the event's data")

    model_config = ConfigDict(populate_by_name=True)


class EventTypeOut(BaseModel):
    type: str
    version: int
    description: str
    subject: str | None
    channel: str | dict[str, Any] | None
    builtin: bool
    personal_fields: list[str]
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")

    model_config = {"populate_by_name": True}
