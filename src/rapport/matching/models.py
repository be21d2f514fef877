"""Tables of probabilistic matching: the runs, and the pairs they suggest to a data steward."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rapport.db.base import Base

#: what a run is doing, and how it ended
RUN_STATUSES = ("running", "done", "failed")
#: ``full``: every profile scored against every other; ``incremental``: only those new or changed since
#: the last successful run, against all
RUN_KINDS = ("full", "incremental")
#: ``open`` waits for a steward; ``accepted`` a steward merged it; ``rejected`` a steward said "not the
#: same person" (never suggested or merged again); ``merged`` a run merged it on its own (kept as the
#: evidence of that merge); ``refused`` the identity rules forbid merging it (two customer numbers), so
#: it is not in the steward's queue; ``obsolete`` one of the two was merged with someone else or erased
#: meanwhile
SUGGESTION_STATUSES = ("open", "accepted", "rejected", "merged", "refused", "obsolete")


class MatchRun(Base):
    """One run of probabilistic matching: what it was asked, the model it used, and what it did."""

    __tablename__ = "match_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(2000))
    #: a pair at least this likely is merged
    auto_merge: Mapped[float] = mapped_column(Float)
    #: a pair at least this likely (and below ``auto_merge``) is suggested to a steward
    review: Mapped[float] = mapped_column(Float)
    #: the trained model (the engine's JSON), when this run trained one; later runs reuse it
    model: Mapped[str | None] = mapped_column(Text)
    #: the run whose model this run used (itself when it trained one)
    model_run_id: Mapped[int | None]
    #: live profiles read
    profiles: Mapped[int] = mapped_column(default=0)
    #: profiles scored against the others (all of them in a full run)
    scored: Mapped[int] = mapped_column(default=0)
    #: candidate pairs at least as likely as ``review``
    pairs: Mapped[int] = mapped_column(default=0)
    auto_merged: Mapped[int] = mapped_column(default=0)
    suggested: Mapped[int] = mapped_column(default=0)
    #: pairs at least ``review`` likely that the identity rules forbid to merge (kept as ``refused``)
    refused: Mapped[int] = mapped_column(default=0)
    #: incremental runs: profiles changed since this moment (the previous successful run's start) …
    since: Mapped[datetime | None]
    #: … or holding an event later than this one (the highest event ``seq`` when this run started:
    #: the watermark of the next incremental run)
    event_seq: Mapped[int | None] = mapped_column(BigInteger)


class MatchSuggestion(Base):
    """Two profiles that may be the same person, with the evidence, for a data steward to decide; or
    the record of a pair a run merged on its own. ``left_id`` < ``right_id``, so a pair is stored once."""

    __tablename__ = "match_suggestions"
    __table_args__ = (
        UniqueConstraint("left_id", "right_id"),
        Index("ix_match_suggestions_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("match_runs.id"), index=True)
    left_id: Mapped[str] = mapped_column(String(40))
    right_id: Mapped[str] = mapped_column(String(40), index=True)
    probability: Mapped[float] = mapped_column(Float)
    match_weight: Mapped[float] = mapped_column(Float)
    #: [{"comparison", "level", "match_weight"}, …]: which fields agreed, and how much each counted
    evidence: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(20), default="open")
    #: why the identity rules forbid merging the pair (two customer numbers, …), when they do
    refused: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    #: the key name of the steward, "matching run N", or "matching" (obsolete)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    #: the merge (in identity_merges) that joined the pair, which can be undone there
    merge_id: Mapped[int | None]
