"""``rapport bench profile``: how fast an agent's screen fills (a 360 plus the first timeline page)."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from rapport.bench.scratch import scratch_database
from rapport.db.bulk import chunked
from rapport.identity.models import Identifier
from rapport.ingest import ingest_stream
from rapport.profiles.service import timeline
from rapport.settings import Settings
from rapport.views import profile_360

BATCH = 5_000


def synthetic_events(profiles: int, events: int, *, seed: int = 3) -> Iterator[dict[str, Any]]:
    """``events`` events over ``profiles`` people (a few very busy, most quiet), each known by one email."""
    rnd = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0)
    weights = [1 / (rank + 10) for rank in range(profiles)]
    people = rnd.choices(range(profiles), weights=weights, k=events - profiles)
    people = list(range(profiles)) + people  # everyone has at least one event
    data: dict[str, Any]
    for n, person in enumerate(people):
        ids = {"email": f"person{person}@bench.example"}
        at = (end - timedelta(seconds=rnd.randint(0, 180 * 86_400))).isoformat()
        roll = rnd.random()
        if roll < 0.5:
            kind, data = "page.viewed", {"url": f"/p/{rnd.randint(1, 500)}"}
        elif roll < 0.7:
            kind, data = "product.viewed", {"sku": f"SKU-{rnd.randint(1, 2000)}"}
        elif roll < 0.85:
            kind, data = (
                "message.received",
                {"channel": rnd.choice(["email", "chat", "phone"]), "subject": "Hi"},
            )
        elif roll < 0.95:
            price = round(rnd.uniform(5, 300), 2)
            kind, data = (
                "order.placed",
                {
                    "order_id": f"B-{n}",
                    "currency": "EUR",
                    "total": price,
                    "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": price}],
                },
            )
        else:
            kind, data = (
                "profile.updated",
                {"first_name": rnd.choice(["Ada", "Ben", "Cleo"]), "locale": "en-GB"},
            )
        yield {
            "id": f"bench-{n}",
            "type": kind,
            "occurred_at": at,
            "source": "bench",
            "identifiers": ids,
            "data": data,
        }


def run(
    settings: Settings, *, profiles: int, events: int, reads: int, echo: Callable[[str], None]
) -> dict[str, Any]:
    """Load ``events`` over ``profiles`` through the pipeline, then time ``reads`` random reads."""
    with scratch_database(settings.database_url) as database:
        echo(f"loading {events:,} events over {profiles:,} profiles on {database.backend} …")
        started = time.perf_counter()
        batches = chunked(synthetic_events(profiles, events), BATCH)
        total = ingest_stream(database, batches, settings=settings, transport="bench")
        echo(f"loaded {total.accepted:,} events in {time.perf_counter() - started:.0f} s")
        if database.backend == "postgresql":
            with database.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
        with database.session() as session:
            ids = list(session.scalars(select(Identifier.profile_id)))
        sample = random.Random(5).choices(ids, k=reads)
        timings: list[float] = []
        for profile_id in sample:
            started = time.perf_counter()
            with database.session() as session:
                view = profile_360(session, profile_id=profile_id)
                page = timeline(session, profile_id=profile_id, limit=50)
            timings.append((time.perf_counter() - started) * 1000)
            assert view is not None and page["items"]
    timings.sort()
    result = {
        "backend": database.backend,
        "profiles": profiles,
        "events": total.accepted,
        "reads": reads,
        "p50_ms": round(statistics.median(timings), 2),
        "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 2),
        "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
        "max_ms": round(timings[-1], 2),
    }
    echo(f"profile + first timeline page: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms")
    return result
