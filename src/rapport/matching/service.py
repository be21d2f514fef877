"""Matching runs: score profiles that share no identifier, then merge, suggest, or leave them alone.

A run reads every live profile as a record (:mod:`rapport.matching.records`), trains a model or reuses
the one saved with the latest successful run, and scores candidate pairs. Each pair then gets one of
three outcomes by its match probability and two thresholds an operator sets:

- at least ``auto_merge``: merged through the identity graph (logged, undoable, under the identity
  rules);
- at least ``review``: a suggestion for a data steward (:mod:`rapport.matching.suggestions`), unless the
  pair was suggested before;
- below ``review``: nothing.

A pair the identity rules forbid to merge (two different ``customer_id``, a kind over its limit) is
neither merged nor put in the steward's queue, since no one may merge it: it is kept as a ``refused``
suggestion with the reason, and counted in the run. A pair kept apart (an undone merge, a rejected
suggestion) is left alone.

An incremental run scores only the profiles new or changed since the last successful run against all
the others. Scoring happens outside any lock; the decisions are then applied in one transaction that
holds the identity graph: a run that fails leaves the graph as it was and is recorded as failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.db import Database
from rapport.db.locks import lock_identity_graph
from rapport.events.models import Event
from rapport.identity.service import load_kinds
from rapport.matching.decide import Progress, apply_decisions
from rapport.matching.evaluate import DEFAULT_AUTO_MERGE, DEFAULT_REVIEW, BadThresholds, check_thresholds
from rapport.matching.models import MatchRun
from rapport.matching.records import Record, changed_profiles, profile_records
from rapport.settings import Settings

if TYPE_CHECKING:
    from rapport.matching.engine import MatchModel, ScoredPair

__all__ = [
    "DEFAULT_AUTO_MERGE",
    "DEFAULT_REVIEW",
    "BadThresholds",
    "RunFailed",
    "check_thresholds",
    "list_runs",
    "resolve",
]


class RunFailed(RuntimeError):
    """A run the engine could not carry out (too little data to train on, a model that cannot be read):
    recorded as failed with the reason; the identity graph is as it was."""

    def __init__(self, run: MatchRun, reason: str) -> None:
        super().__init__(f"matching run {run.id} failed: {reason}; the identity graph is unchanged")
        self.run = run


# -- the steps of a run --------------------------------------------------------------------------------


def _start(
    database: Database, *, auto_merge: float, review: float, incremental: bool
) -> tuple[MatchRun, MatchRun | None]:
    """Record the run, with the watermark taken while the graph is held (so that nothing half-written is
    behind it), and find the last successful run."""
    with database.session(write=True) as session:
        lock_identity_graph(session)
        now = datetime.now(UTC)
        last_seq = session.scalar(select(func.max(Event.seq))) or 0
        previous = session.scalars(
            select(MatchRun).where(MatchRun.status == "done").order_by(MatchRun.id.desc()).limit(1)
        ).first()
        as_increment = incremental and previous is not None and previous.event_seq is not None
        run = MatchRun(
            kind="incremental" if as_increment else "full",
            status="running",
            started_at=now,
            auto_merge=auto_merge,
            review=review,
            since=previous.started_at if as_increment and previous else None,
            event_seq=last_seq,
            profiles=0,
            scored=0,
            pairs=0,
            auto_merged=0,
            suggested=0,
            refused=0,
        )
        session.add(run)
        session.flush()
        return run, previous if as_increment else None


#: a saved model is trained again once the profiles to compare are more than this many times those it was
#: trained on: u (how often strangers agree) estimated on the first few customers says next to nothing
#: of a customer base that has since grown, and such a model finds no one
OUTGROWN = 2


@dataclass(frozen=True)
class _Saved:
    run_id: int
    model: str
    #: the profiles read by the run that saved it
    profiles: int


def _saved_model(session: Session) -> _Saved | None:
    """The model saved with the latest successful run that trained one, that run's id and size."""
    saved = session.execute(
        select(MatchRun.id, MatchRun.model, MatchRun.profiles)
        .where(MatchRun.status == "done", MatchRun.model.is_not(None))
        .order_by(MatchRun.id.desc())
        .limit(1)
    ).first()
    return None if saved is None or saved.model is None else _Saved(saved.id, saved.model, saved.profiles)


def _read_model(text: str, what: str) -> MatchModel:
    from rapport.matching import engine

    try:
        return engine.MatchModel.from_json(text)
    except engine.MatchingError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise engine.MatchingError(f"{what} cannot be read: {exc}") from exc


def _model(
    run: MatchRun,
    records: list[Record],
    *,
    given: str | None,
    saved: _Saved | None,
    seed: int,
    spark_master: str | None,
    progress: Progress,
) -> MatchModel:
    """The model to score with: the one given, else the one saved (unless the profiles have outgrown
    it), else one trained now on ``records``. A model given or trained is saved with the run; later runs
    reuse it."""
    from rapport.matching import engine

    if given is None and saved is not None:
        if len(records) <= OUTGROWN * saved.profiles:
            progress(f"reusing the model of run {saved.run_id}")
            run.model_run_id = saved.run_id
            return _read_model(saved.model, f"the model saved with run {saved.run_id}")
        progress(
            f"the model of run {saved.run_id} was trained on {saved.profiles:,} profiles: training again"
        )
    if given is not None:
        model = _read_model(given, "the model given")
    else:
        progress(f"training the model on {len(records):,} profiles")
        model = engine.train(records, seed=seed, spark_master=spark_master)
    run.model, run.model_run_id = model.to_json(), run.id
    return model


def _score(
    database: Database,
    run: MatchRun,
    previous: MatchRun | None,
    *,
    model_json: str | None,
    retrain: bool,
    seed: int,
    spark_master: str | None,
    progress: Progress,
) -> list[ScoredPair]:
    """Read the records, then (with no transaction open) train or load the model and score the pairs
    the run is about."""
    from rapport.matching import engine

    with database.session() as session:
        progress("reading profiles")
        records = profile_records(session)
        only: set[str] | None = None
        if previous is not None:
            assert run.since is not None and previous.event_seq is not None
            changed = changed_profiles(session, since=run.since, event_seq=previous.event_seq)
            only = changed & {str(r["unique_id"]) for r in records}
        saved = None if model_json is not None or retrain else _saved_model(session)
    run.profiles = len(records)
    run.scored = len(records) if only is None else len(only)
    progress(f"{run.profiles:,} profiles to compare, {run.scored:,} of them to score")
    nothing_to_score = len(records) < 2 or run.scored == 0
    # a model given is checked (and kept) even when there is nothing to score, and one asked to be trained
    # again is trained: the runs after this one use it
    if nothing_to_score and model_json is None and not (retrain and len(records) >= 2):
        return []
    model = _model(
        run, records, given=model_json, saved=saved, seed=seed, spark_master=spark_master, progress=progress
    )
    if nothing_to_score:
        return []
    progress(f"scoring {run.scored:,} profiles")
    pairs = engine.score(
        records,
        model,
        min_probability=run.review,
        only_ids=None if only is None else sorted(only),
        spark_master=spark_master,
    )
    run.pairs = len(pairs)
    progress(f"{len(pairs):,} pairs at least {run.review} likely")
    return pairs


def _finish(database: Database, run: MatchRun, *, error: str | None) -> MatchRun:
    """Store how the run ended, in a transaction of its own."""
    with database.session(write=True) as session:
        stored = session.get(MatchRun, run.id)
        assert stored is not None
        stored.finished_at = datetime.now(UTC)
        stored.status = "failed" if error else "done"
        stored.error = error[:2000] if error else None
        stored.profiles, stored.scored, stored.pairs = run.profiles, run.scored, run.pairs
        if error is None:
            stored.auto_merged, stored.suggested, stored.refused = run.auto_merged, run.suggested, run.refused
            stored.model, stored.model_run_id = run.model, run.model_run_id
        session.flush()
        return stored


def resolve(
    database: Database,
    *,
    settings: Settings,
    auto_merge: float = DEFAULT_AUTO_MERGE,
    review: float = DEFAULT_REVIEW,
    incremental: bool = False,
    retrain: bool = False,
    model: str | None = None,
    seed: int = 42,
    on_progress: Progress | None = None,
) -> MatchRun:
    """Run probabilistic matching over the live profiles and return the finished run.

    ``incremental`` scores only the profiles new or changed since the last successful run (a full run
    when there is none). The model saved with the latest successful run is reused unless ``retrain`` or
    the profiles have more than doubled since it was trained;
    ``model`` (the engine's JSON) is used instead when given. Raises :class:`BadThresholds` before
    anything is recorded, and :class:`RunFailed` when the engine cannot do the work; any other error is
    re-raised after the run is recorded as failed. Either way the identity graph is left as it was."""
    check_thresholds(auto_merge=auto_merge, review=review)
    from rapport.matching import engine

    progress = on_progress or (lambda _message: None)
    started = time.perf_counter()
    run, previous = _start(database, auto_merge=auto_merge, review=review, incremental=incremental)
    spark_master = settings.spark_master
    try:
        progress(f"run {run.id} ({run.kind}) started")
        pairs = _score(
            database,
            run,
            previous,
            model_json=model,
            retrain=retrain,
            seed=seed,
            spark_master=spark_master,
            progress=progress,
        )
        with database.session(write=True) as session:
            kinds = load_kinds(session, region=settings.default_region)
            apply_decisions(session, run, pairs, kinds=kinds, progress=progress)
    except engine.MatchingError as exc:
        failed = _finish(database, run, error=str(exc))
        raise RunFailed(failed, str(exc)) from exc
    except BaseException as exc:
        _finish(database, run, error=f"{type(exc).__name__}: {exc}")
        raise
    done = _finish(database, run, error=None)
    progress(f"run {run.id} done in {time.perf_counter() - started:.1f} s")
    return done


def list_runs(session: Session, *, before: int | None = None, limit: int = 20) -> list[MatchRun]:
    """Runs, newest first; those older than run ``before`` when given."""
    query = select(MatchRun).order_by(MatchRun.id.desc()).limit(limit)
    if before is not None:
        query = query.where(MatchRun.id < before)
    return list(session.scalars(query))
