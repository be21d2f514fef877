"""A device's readings over time, downsampled in the database: min, mean, max and count per bucket."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Float,
    Numeric,
    cast,
    func,
    literal_column,
    select,
    type_coerce,
)

from rapport.db.base import EPOCH, ONE_MICROSECOND, table_of
from rapport.things.devices.models import DeviceReading

MAX_BUCKETS = 5000
_UNITS = {"m": 60, "h": 3_600, "d": 86_400}
_BUCKET = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
#: a reading name that can be looked up inside the stored JSON on both backends
_NAME = re.compile(r'^[^"\\\x00-\x1f]{1,200}$')


class BadHistory(ValueError):
    """A history request that cannot be answered; the message names the parameter."""


def parse_bucket(text: str) -> timedelta:
    """ "15m", "1h", "1d" as a duration."""
    match = _BUCKET.match(text.strip())
    if match is None:
        raise BadHistory(f"bucket: {text[:20]!r} is not a bucket size such as 15m, 1h or 1d")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def readable(name: str) -> bool:
    """Can the history of reading ``name`` be computed (its name holds no quote, backslash or control)?"""
    return _NAME.match(name) is not None


def check_range(since: datetime, until: datetime, bucket: timedelta) -> None:
    if until <= since:
        raise BadHistory("since: must lie before until")
    if (until - since) / bucket > MAX_BUCKETS:
        raise BadHistory(
            f"bucket: too fine for the range: at most {MAX_BUCKETS} buckets, choose a larger one"
        )


def _bucket_start(connection: Connection, bucket: timedelta) -> ColumnElement[Any]:
    """The start of each reading's bucket, as a number: seconds (PostgreSQL) or microseconds (SQLite)
    since 1970. Written with literals, so that the grouping repeats the selected expression exactly."""
    at = table_of(DeviceReading).c.occurred_at
    if connection.dialect.name == "postgresql":
        step = literal_column(str(int(bucket.total_seconds())), Float)
        return func.floor(func.extract("epoch", at) / step) * step
    micros = literal_column(str(bucket // ONE_MICROSECOND), BigInteger)
    stored = type_coerce(at, BigInteger)
    return stored - stored % micros


def _moment(value: Any, connection: Connection) -> datetime:
    if connection.dialect.name == "postgresql":
        return EPOCH + timedelta(seconds=float(value))
    return EPOCH + int(value) * ONE_MICROSECOND


def downsample(
    connection: Connection,
    *,
    serial: str,
    readings: Sequence[str],
    since: datetime,
    until: datetime,
    bucket: timedelta,
) -> dict[str, list[dict[str, Any]]]:
    """For each of ``readings``, the buckets of ``bucket`` between ``since`` (inclusive) and ``until``
    that hold a value: {"at", "min", "avg", "max", "count"}, oldest first."""
    check_range(since, until, bucket)
    for name in readings:
        if not readable(name):
            raise BadHistory(f"reading: {name[:40]!r} holds a quote, backslash or control character")
    table = table_of(DeviceReading)
    start = _bucket_start(connection, bucket)
    found: dict[str, list[dict[str, Any]]] = {}
    for name in readings:
        value = table.c.readings[name].as_float()
        # as numeric: PostgreSQL averages floats with a sum of their squares too, which overflows past 1e154
        mean = func.avg(cast(value, Numeric(asdecimal=False)))
        query = (
            select(start, func.min(value), mean, func.max(value), func.count(value))
            .where(
                table.c.serial == serial,
                table.c.occurred_at >= since,
                table.c.occurred_at < until,
                value.is_not(None),
            )
            .group_by(start)
            .order_by(start)
        )
        found[name] = [
            {
                "at": _moment(at, connection),
                "min": float(low),
                "avg": float(mean),
                "max": float(high),
                "count": int(count),
            }
            for at, low, mean, high, count in connection.execute(query)
        ]
    return found
