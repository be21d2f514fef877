"""Configuration from the environment (prefix ``RAPPORT_``); bad values fail at start-up."""

from __future__ import annotations

import fnmatch
from datetime import timedelta
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator may set. Each field reads ``RAPPORT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="RAPPORT_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///rapport.db",
        description="SQLAlchemy URL: sqlite:///FILE (embedded default) or postgresql+psycopg://…",
    )
    default_region: str = Field(
        default="GB", description="Region for phone numbers written without a country code (ISO 3166)."
    )
    max_future_skew_s: int = Field(
        default=86_400, ge=0, description="How far in the future an event's occurred_at may lie, in seconds."
    )
    max_batch_events: int = Field(default=5_000, ge=1, le=100_000)
    max_batch_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    source_priority: dict[str, int] = Field(
        default_factory=lambda: {"erp*": 20, "crm*": 10},
        description="Glob of source name -> priority. A trait from a higher-priority source wins over a "
        "more recent one from a lower-priority source.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("RAPPORT_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise ValueError("RAPPORT_DEFAULT_REGION must be a two-letter region code such as GB")
        return value.upper()

    @property
    def max_future_skew(self) -> timedelta:
        return timedelta(seconds=self.max_future_skew_s)

    def priority_of_source(self, source: str) -> int:
        """The survivorship priority of ``source``: the highest matching glob, else 0."""
        return max(
            (prio for pattern, prio in self.source_priority.items() if fnmatch.fnmatchcase(source, pattern)),
            default=0,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
