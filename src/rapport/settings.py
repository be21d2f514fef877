"""Configuration from the environment (prefix ``RAPPORT_``); bad values fail at start-up."""

from __future__ import annotations

import fnmatch
import json
import re
import ssl
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlsplit

import phonenumbers
from pydantic import AfterValidator, Field, FilePath, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "RAPPORT_"

#: The secret the demo runs with. Anything else refuses to start with it (see :meth:`Settings.check_secrets`).
DEMO_SECRET = "rapport-demo-secret-not-for-production"
#: The shortest secret any command accepts.
MIN_SECRET_LENGTH = 32
#: The master URLs Spark accepts (as its SparkContext reads them): local, local[N], local[N,F], local[*],
#: local-cluster[N,C,M], spark://host:port[,host:port…], yarn, k8s://… and mesos://…
SPARK_MASTER = re.compile(
    r"local(\[(\d+|\*)(\s*,\s*\d+)?\])?|local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]"
    r"|spark://\S+|yarn|(k8s|mesos)://\S+"
)
#: The largest a source's priority may be, either way: it is kept beside each trait it decides.
MAX_PRIORITY = 1_000_000


#: the port a browser leaves out of an origin of its scheme
DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> str:
    """A browser origin as browsers send it (``https://shop.example.com``, ``http://127.0.0.1:8080``), or
    ``*``. Origins are compared as written: one with a path or a final ``/`` would match no request, so it
    is refused; scheme and host are kept in lower case and a scheme's own port left out, as browsers do."""
    if value == "*":
        return value
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = -1
    extra = parts.path or parts.query or parts.fragment or value.endswith(("?", "#")) or "@" in parts.netloc
    if not parts.scheme or not parts.hostname or port == -1 or extra:
        raise ValueError(
            "not an origin: give scheme://host[:port] as a browser sends it (https://shop.example.com), "
            "with no path and no final /, or *"
        )
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    shown = port is not None and port != DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if shown else "")


class Settings(BaseSettings):
    """Everything an operator may set. Each field reads ``RAPPORT_<NAME>``."""

    # a refused value is never repeated in an error: it may be a secret or a URL with a password
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", hide_input_in_errors=True)

    database_url: str = Field(
        default="sqlite:///rapport.db",
        description="SQLAlchemy URL: sqlite:///FILE (embedded default) or postgresql+psycopg://…",
    )
    default_region: str = Field(
        default="GB",
        description="Region for phone numbers written without a country code (ISO 3166, one the phone "
        "library knows).",
    )
    max_future_skew_s: int = Field(
        default=86_400,
        ge=0,
        le=366 * 86_400,
        description="How far in the future an event's occurred_at may lie, in seconds (at most a year).",
    )
    lock_wait_s: float = Field(
        default=30,
        gt=0,
        le=3600,
        allow_inf_nan=False,  # else "nan" is refused as if it were over the hour, naming no reason
        description="How long a writer waits for another that holds the database (a long import or "
        "rebuild) before it gives up, in seconds: an API request then answers 503, the MQTT worker tries "
        "again later.",
    )
    state_cache_entries: int = Field(
        default=200_000,
        ge=0,
        le=10_000_000,
        description="How many golden records each process keeps decoded in memory, the most recently "
        "written first, so that ingest need not read them back from the database (about 3 KB each for "
        "the demo's customers); 0 keeps none.",
    )
    max_batch_events: int = Field(default=5_000, ge=1, le=100_000)
    # bounded: a line of an import is read with this limit, which Python's readers take as a machine word
    max_batch_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    source_priority: dict[str, Annotated[int, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)]] = Field(
        default_factory=lambda: {"erp*": 20, "crm*": 10},
        description="Glob of source name -> priority. A trait from a higher-priority source wins over a "
        "more recent one from a lower-priority source.",
    )

    secret_key: SecretStr = Field(
        default=SecretStr(DEMO_SECRET),
        description="Keys the hashes of erased identifiers. Set it to a long random value outside the demo; "
        "changing it later makes earlier erasures unrecognisable.",
    )
    demo: bool = Field(default=False, description="Demo mode: the demo secret is allowed.")
    rate_limit_per_minute: int = Field(
        default=1200, ge=1, description="Requests one API key may make per minute (per server process)."
    )
    cors_origins: list[Annotated[str, AfterValidator(_origin)]] = Field(
        default_factory=list, description="Browser origins allowed to call the API; none by default."
    )
    max_string_length: int = Field(
        default=65_536, ge=1, description="The longest string an event's data may hold, in characters."
    )
    max_nesting: int = Field(
        default=32, ge=1, description="How deeply an event's data may nest objects and lists."
    )
    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883",
        description="The MQTT broker `rapport mqtt` reads from: mqtt://[user:password@]host[:port], or "
        "mqtts://… for TLS (port 8883 by default).",
    )
    mqtt_ca_file: FilePath | None = Field(
        default=None,
        description="For mqtts://: a PEM file of the certificate authorities to trust, for a broker whose "
        "certificate a private authority signed; unset, the system's trusted authorities.",
    )
    spark_master: str | None = Field(
        default=None,
        description="Spark master URL (e.g. local[2] or spark://host:7077) for probabilistic matching on "
        "Splink's Spark backend; unset, matching runs on an embedded DuckDB.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        """A URL Rapport can open: an SQLite file, or PostgreSQL through psycopg (3). An in-memory SQLite
        database is refused: each connection would see its own, empty, and all of it is gone when the
        command ends, after it said what it stored."""
        wanted = "RAPPORT_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL"
        try:
            url = make_url(value)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(f"{wanted}; this one cannot be read ({exc})") from None
        if url.drivername in ("sqlite", "sqlite+pysqlite"):
            if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
                raise ValueError(
                    f"{wanted} naming a file (sqlite:///rapport.db): an in-memory database keeps nothing"
                )
        elif url.drivername != "postgresql+psycopg":
            raise ValueError(f"{wanted}, not {url.drivername}://")
        elif (wait := url.query.get("connect_timeout")) is not None and not (
            isinstance(wait, str) and wait.isascii() and wait.isdigit() and int(wait) >= 2
        ):
            # 0 would wait for ever for a server that never answers, and a word fails every connection
            raise ValueError(f"{wanted}; its connect_timeout must be a whole number of seconds, at least 2")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        parsed = urlsplit(value)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ValueError("RAPPORT_MQTT_URL must be an mqtt://host[:port] or mqtts://host[:port] URL")
        try:
            port = parsed.port  # raises on a port that is not a number in range
        except ValueError as exc:
            raise ValueError(f"RAPPORT_MQTT_URL has a bad port: {exc}") from None
        if port == 0:  # else taken for no port at all, and the scheme's own used in its place
            raise ValueError("RAPPORT_MQTT_URL has a bad port: 0 is no port a broker listens on")
        return value

    @field_validator("spark_master")
    @classmethod
    def _spark_master(cls, value: str | None) -> str | None:
        # the forms Spark itself takes; another fails only when a matching run starts Spark, after the
        # JVM's own stack trace. Set empty, it is unset (matching on DuckDB), as it always was.
        if not value:
            return None
        if not SPARK_MASTER.fullmatch(value):
            raise ValueError(
                "RAPPORT_SPARK_MASTER must be a Spark master URL: local, local[N], local[*], "
                "spark://host:port, yarn or k8s://…"
            )
        return value

    @field_validator("mqtt_ca_file")
    @classmethod
    def _certificates(cls, value: FilePath | None) -> FilePath | None:
        # else the MQTT worker starts and retries its connection for ever over a file no retry can mend
        if value is not None:
            try:
                ssl.create_default_context(cafile=value)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise ValueError(
                    f"RAPPORT_MQTT_CA_FILE holds no certificate authority Python can read (PEM): {exc}"
                ) from None
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise ValueError("RAPPORT_DEFAULT_REGION must be a two-letter region code such as GB")
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            # else every phone number written without a country code would be refused as not one
            raise ValueError(
                f"RAPPORT_DEFAULT_REGION {value!r} is not a region the phone library (phonenumbers) knows; "
                "give a two-letter region code such as GB, US or DE"
            )
        return value.upper()

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        # every command, not only those that need the secret: a short one set by mistake is caught at once
        # (the demo default is long enough; whether it may be used is check_secrets's affair)
        if len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"RAPPORT_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters long")
        return value

    def check_secrets(self) -> None:
        """Refuse to run outside demo mode with a secret left at its default or too short to be one."""
        if self.demo:
            return
        secret = self.secret_key.get_secret_value()
        if secret == DEMO_SECRET:
            raise ValueError(
                "RAPPORT_SECRET_KEY is left at the demo default; set it to a long random value, e.g. "
                "the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if len(secret) < MIN_SECRET_LENGTH:  # a copy made without validation
            raise ValueError(f"RAPPORT_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters long")

    @property
    def max_future_skew(self) -> timedelta:
        return timedelta(seconds=self.max_future_skew_s)

    def priority_of_source(self, source: str) -> int:
        """The survivorship priority of ``source``: the highest matching glob, else 0. Case is ignored:
        `erp*` covers `ERP-SAP` (systems name themselves as their admins typed it)."""
        source = source.casefold()
        return max(
            (
                prio
                for pattern, prio in self.source_priority.items()
                if fnmatch.fnmatchcase(source, pattern.casefold())
            ),
            default=0,
        )


class ConfigurationError(ValueError):
    """A setting in the environment that cannot be used; the message names each variable and why."""


def _named(error: Any) -> str:
    """A setting's problem, named by its variable and, inside a JSON value, where in it: ``"erp*"`` of
    ``RAPPORT_SOURCE_PRIORITY``, item 0 of ``RAPPORT_CORS_ORIGINS``."""
    variable, *inside = error["loc"]
    name = f"{ENV_PREFIX}{str(variable).upper()}{''.join(f'[{json.dumps(part)}]' for part in inside)}"
    if error["type"] != "value_error":
        return f"{name}: {error['msg']}"
    # our validators' own words, without pydantic's "Value error, " before them; most name the variable
    said = str(error["ctx"]["error"])
    return said if said.startswith(f"{name} ") else f"{name}: {said}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Raises :class:`ConfigurationError`."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError("; ".join(_named(error) for error in exc.errors())) from exc
    except SettingsError as exc:
        # a value that should be JSON and is not; pydantic-settings names the field, not the variable
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"{ENV_PREFIX}{field.group(1).upper()}" if field else "a setting"
        raise ConfigurationError(f"{name}: not valid JSON ({exc.__cause__ or exc})") from exc
