"""Matching runs over the real pipeline and identity graph, on both backends: what a run merges, suggests
and leaves alone, incremental runs, and runs that cannot be done or fail half-way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crowd import Person, World, profile_event, trained_model, typo_of, world
from sqlalchemy import select
from typer.testing import CliRunner

from builders import event, ingest, page_view
from rapport.cli import app
from rapport.db import Database
from rapport.identity.models import Conflict, Identifier, Merge
from rapport.identity.service import load_kinds, undo_merge
from rapport.ingest.pipeline import source_priorities
from rapport.matching.models import MatchRun, MatchSuggestion
from rapport.matching.records import FIELDS, GUARDS, profile_records
from rapport.matching.service import BadThresholds, RunFailed, resolve
from rapport.matching.suggestions import SuggestionConflict, accept, list_suggestions, reject
from rapport.profiles.models import Profile
from rapport.settings import Settings
from rapport.views import profile_360

#: pairs this likely are merged, those this likely suggested: the world's typo is far above the first,
#: its nickname between the two (see crowd.py)
AUTO_MERGE, REVIEW = 0.99999, 0.5


@pytest.fixture
def crowd(db: Database, settings: Settings) -> World:
    people = world()
    outcome = ingest(db, settings, people.events())
    assert outcome.accepted == len(people.everyone) == outcome.new_profiles
    return people


def profile_of(db: Database, p: Person) -> str:
    """The live profile holding ``p``'s email address."""
    with db.session() as session:
        found: str = session.scalars(
            select(Identifier.profile_id).where(Identifier.kind == "email", Identifier.value == p.email)
        ).one()
    return found


def who(db: Database, people: World) -> Callable[[str], str]:
    """Profile id -> the real person behind it (the key of the stranger it is, or duplicates)."""
    by_profile = {profile_of(db, p): people.person(p) for p in people.everyone}
    return lambda profile_id: by_profile[profile_id]


def run(db: Database, settings: Settings, **options: object) -> MatchRun:
    """A run with the test thresholds and the model trained once for the session."""
    arguments: dict[str, object] = {"auto_merge": AUTO_MERGE, "review": REVIEW, "model": trained_model()}
    return resolve(db, settings=settings, **(arguments | options))  # type: ignore[arg-type]


def merges(db: Database) -> list[Merge]:
    with db.session() as session:
        return list(session.scalars(select(Merge).order_by(Merge.id)))


def suggestions(db: Database, status: str | None = "open") -> list[dict[str, Any]]:
    with db.session() as session:
        return list_suggestions(session, status=status, limit=500)


def pair(db: Database, a: Person, b: Person) -> frozenset[str]:
    return frozenset((profile_of(db, a), profile_of(db, b)))


def of(suggestion: dict[str, Any]) -> frozenset[str]:
    """The two profiles of a suggestion."""
    return frozenset((suggestion["left"]["id"], suggestion["right"]["id"]))


def merged(merge: Merge) -> frozenset[str]:
    return frozenset((merge.survivor_id, merge.absorbed_id))


def tie(db: Database, settings: Settings, a: Person, b: Person, loyalty_id: str) -> None:
    """Events that tie ``a`` and ``b`` together through a shared loyalty card."""
    ingest(
        db,
        settings,
        [
            page_view({"email": a.email, "loyalty_id": loyalty_id}, minute=2000),
            page_view({"email": b.email, "loyalty_id": loyalty_id}, minute=2001),
        ],
    )


def live(db: Database) -> set[str]:
    with db.session() as session:
        return set(
            session.scalars(
                select(Profile.id).where(Profile.merged_into.is_(None), Profile.erased_at.is_(None))
            )
        )


# -- records -----------------------------------------------------------------------------------------


def test_records_come_from_the_golden_record_and_the_identifiers(db: Database, settings: Settings) -> None:
    ingest(
        db,
        settings,
        [
            event(
                "profile.updated",
                ids={"email": "Zoe.Nunez@Example.com", "phone": "07700 900123", "customer_id": "C-7"},
                first_name="  Zoë ",
                last_name="Núñez",
                birth_date="1984-02-29",
                gender="female",
                address={"line1": "12 Rue de l'Église", "city": "Lyon", "postcode": "69001", "country": "FR"},
            ),
            page_view({"cookie_id": "c-1"}),  # nothing to compare: left out
        ],
    )
    with db.session() as session:
        [record] = profile_records(session)

    assert set(record) == {"unique_id", *FIELDS, *GUARDS}
    assert {k: v for k, v in record.items() if k != "unique_id"} == {
        "first_name": "Zoë",
        "last_name": "Núñez",
        "birth_date": "1984-02-29",
        "street": "12 Rue de l'Église",
        "city": "Lyon",
        "postcode": "69001",
        "phone": "+447700900123",
        "email_local": "zoe.nunez",
        "email_domain": "example.com",
        "customer_id": "C-7",
        "gender": "female",
    }


def test_the_record_fields_are_the_engines() -> None:
    from rapport.matching import engine

    assert engine.FIELDS == FIELDS


# -- a full run ---------------------------------------------------------------------------------------


def test_a_run_merges_the_sure_pairs_suggests_the_likely_ones_and_leaves_strangers_alone(
    db: Database, settings: Settings, crowd: World
) -> None:
    person = who(db, crowd)
    typo = pair(db, crowd.typo, crowd.original(crowd.typo))
    nickname = pair(db, crowd.nickname, crowd.original(crowd.nickname))
    numbers = pair(db, crowd.customer, crowd.original(crowd.customer))

    done = run(db, settings)

    assert (done.status, done.kind, done.error) == ("done", "full", None)
    assert done.profiles == done.scored == len(crowd.everyone)
    # every merge and every suggestion joins two profiles of one person; strangers are left alone
    logged, suggested = merges(db), suggestions(db)
    assert all(person(m.survivor_id) == person(m.absorbed_id) for m in logged)
    assert all(person(s["left"]["id"]) == person(s["right"]["id"]) for s in suggested)
    assert done.auto_merged == len(logged) >= 1 and done.suggested == len(suggested) >= 2
    # the sure pair is merged, logged with the run and its probability
    [merge] = [m for m in logged if merged(m) == typo]
    assert merge.reason.startswith(f"matching run {done.id}: probability 0.9999")
    assert merge.event_id is None and f"email:{crowd.typo.email}" in merge.absorbed_identifiers
    # the likely pair is suggested with the evidence, strongest first
    [likely] = [s for s in suggested if of(s) == nickname]
    assert REVIEW <= likely["probability"] < AUTO_MERGE and likely["refused"] is None
    weights = [e["match_weight"] for e in likely["evidence"]]
    assert weights == sorted(weights, reverse=True)
    agreed = {e["comparison"] for e in likely["evidence"] if e["match_weight"] > 0}
    assert {"first_name", "last_name", "birth_date"} <= agreed
    # two customer numbers are never merged, however alike, nor put to the steward: kept, saying why
    [refused] = suggestions(db, "refused")
    assert of(refused) == numbers and refused["probability"] >= REVIEW
    assert "customer_id" in refused["refused"] and refused["decided_by"] == f"matching run {done.id}"
    assert done.refused == 1 and numbers <= live(db)


def housemate(first_name: str, email: str, *, last_name: str, **data: Any) -> dict[str, Any]:
    """The profile event of someone at 22 Elm Grove, Leeds, born on 17 May 1990."""
    return event(
        "profile.updated",
        ids={"email": email},
        source="crm",
        first_name=first_name,
        last_name=last_name,
        birth_date="1990-05-17",
        address={"line1": "22 Elm Grove", "city": "Leeds", "postcode": "LS6 1AB", "country": "GB"},
        **data,
    )


def test_twins_go_to_the_steward_at_the_default_thresholds_and_a_slip_in_the_name_is_merged(
    db: Database, settings: Settings, crowd: World
) -> None:
    twins = [
        ("daniel.moss@example.com", "daniela.moss@example.com"),
        ("alexander.kerr@example.com", "alexandra.kerr@example.com"),
        ("sam.ford@example.com", "sam.ford1@example.com"),
    ]
    ingest(
        db,
        settings,
        [
            housemate("Daniel", twins[0][0], last_name="Moss"),
            housemate("Daniela", twins[0][1], last_name="Moss"),
            housemate("Alexander", twins[1][0], last_name="Kerr", gender="male"),
            housemate("Alexandra", twins[1][1], last_name="Kerr"),  # gender unknown
            housemate("Sam", twins[2][0], last_name="Ford", gender="male"),  # Samuel
            housemate("Sam", twins[2][1], last_name="Ford", gender="female"),  # Samantha
            # one person, with a slip in the first name and another in the email address
            housemate("Jonathan", "jonathan.pemberton@example.com", last_name="Pemberton"),
            housemate("Jonahtan", "jonathan.pembreton@example.com", last_name="Pemberton"),
        ],
    )

    def profile(email: str) -> str:
        with db.session() as session:
            found: str = session.scalars(
                select(Identifier.profile_id).where(Identifier.kind == "email", Identifier.value == email)
            ).one()
        return found

    apart = [frozenset((profile(a), profile(b))) for a, b in twins]
    slip = frozenset((profile("jonathan.pemberton@example.com"), profile("jonathan.pembreton@example.com")))

    done = run(db, settings, auto_merge=0.99)

    merged_pairs = {merged(m) for m in merges(db)}
    assert slip in merged_pairs and not set(apart) & merged_pairs
    open_ = {of(s): s for s in suggestions(db)}
    for pair in apart:  # each likely enough to be merged on its own, and put to the steward instead
        assert pair in open_ and open_[pair]["probability"] >= done.auto_merge, open_.get(pair)
        [why] = [e for e in open_[pair]["evidence"] if e["comparison"] == "not merged on its own"]
        assert "a steward decides" in why["level"] and why["match_weight"] == 0
    assert "each email address holds its own" in str(open_[apart[0]]["evidence"])
    assert "genders differ" in str(open_[apart[2]]["evidence"])
    # a suggestion below the auto-merge threshold says nothing of being held back
    likely = [s for s in suggestions(db) if s["probability"] < done.auto_merge]
    assert all(e["comparison"] != "not merged on its own" for s in likely for e in s["evidence"])
    # the steward decides: accepting merges them, as for any suggestion
    with db.session(write=True) as session:
        kinds = load_kinds(session, region=settings.default_region)
        accept(session, suggestion_id=open_[apart[1]]["id"], decided_by="steward", kinds=kinds)
    assert apart[1] in {merged(m) for m in merges(db)}


def test_a_merge_made_by_a_run_keeps_everything_together_and_can_be_undone(
    db: Database, settings: Settings, crowd: World
) -> None:
    original, duplicate = profile_of(db, crowd.original(crowd.typo)), profile_of(db, crowd.typo)
    ingest(db, settings, [page_view({"email": crowd.typo.email}, minute=500)])

    run(db, settings)

    [merge] = [m for m in merges(db) if merged(m) == {original, duplicate}]
    with db.session() as session:
        joined = profile_360(session, profile_id=merge.absorbed_id)
    assert joined is not None and joined["id"] == merge.survivor_id
    assert merge.absorbed_id in joined["aliases"]
    assert joined["counters"]["events"] == 3  # both profile.updated events and the page view
    assert joined["traits"]["first_name"]["value"] == crowd.typo.first_name
    emails = {i["value"] for i in joined["identifiers"]["email"]}
    assert emails == {crowd.typo.email, crowd.original(crowd.typo).email}

    with db.session(write=True) as session:
        undo_merge(
            session,
            merge_id=merge.id,
            kinds=load_kinds(session, region=settings.default_region),
            priority_of=source_priorities(settings),
        )
    assert {profile_of(db, crowd.typo), profile_of(db, crowd.original(crowd.typo))} == {original, duplicate}
    assert {original, duplicate} <= live(db)
    with db.session() as session:
        split = profile_360(session, profile_id=duplicate)
    assert split is not None and split["counters"]["events"] == 2

    # an undone merge is not made again, nor suggested
    again = run(db, settings)
    assert again.status == "done" and {original, duplicate} <= live(db)
    assert [m.id for m in merges(db) if merged(m) == {original, duplicate}] == [merge.id]
    assert not [s for s in suggestions(db) if of(s) == {original, duplicate}]


def test_accept_merges_and_reject_keeps_apart_for_good(
    db: Database, settings: Settings, crowd: World
) -> None:
    first = run(db, settings)
    nickname = pair(db, crowd.nickname, crowd.original(crowd.nickname))
    numbers = pair(db, crowd.customer, crowd.original(crowd.customer))
    by_pair = {of(s): s["id"] for s in suggestions(db) + suggestions(db, "refused")}
    others = [sid for key, sid in by_pair.items() if key not in (nickname, numbers)]

    with db.session(write=True) as session:
        kinds = load_kinds(session, region=settings.default_region)
        rejected = reject(session, suggestion_id=by_pair[nickname], decided_by="steward")
    with pytest.raises(SuggestionConflict, match="customer_id"), db.session(write=True) as session:
        accept(session, suggestion_id=by_pair[numbers], decided_by="steward", kinds=kinds)
    with pytest.raises(SuggestionConflict, match="rejected already by steward"), db.session() as session:
        reject(session, suggestion_id=by_pair[nickname], decided_by="steward")

    assert (rejected["status"], rejected["decided_by"]) == ("rejected", "steward")
    assert numbers <= live(db)
    if others:  # a likely pair of the background crowd: accepting it merges it, through the graph
        with db.session(write=True) as session:
            accepted = accept(session, suggestion_id=others[0], decided_by="steward", kinds=kinds)
        assert accepted["status"] == "accepted" and accepted["decided_by"] == "steward"
        [merge] = [m for m in merges(db) if m.id == accepted["merge_id"]]
        assert merge.reason.startswith(f"suggestion {others[0]} accepted")
        assert not (accepted["left"]["live"] and accepted["right"]["live"])

    # a second run, even one that merges all it finds, neither suggests nor merges the rejected pair
    second = run(db, settings, auto_merge=REVIEW, model=None)
    assert second.model_run_id == first.id  # the model saved with the first run is reused
    assert nickname <= live(db)
    assert [s["status"] for s in suggestions(db, None) if of(s) == nickname] == ["rejected"]
    # nor does an event that ties the two together: that is a conflict for review instead
    tie(db, settings, crowd.nickname, crowd.original(crowd.nickname), "L-1")
    assert nickname <= live(db)
    with db.session() as session:
        [conflict] = session.scalars(select(Conflict)).all()
    assert set(conflict.profile_ids) == nickname and "kept apart" in conflict.detail


def test_an_incremental_run_scores_only_what_changed_and_finds_a_new_duplicate(
    db: Database, settings: Settings, crowd: World
) -> None:
    first = run(db, settings)
    survivors = {m.survivor_id for m in merges(db)}
    taken = {p.same_as for p in crowd.everyone if p.same_as}
    original = next(p for p in crowd.strangers if p.key not in taken and p.birth_date and p.last_name)
    newcomer = typo_of(original, "late")
    ingest(db, settings, [profile_event(newcomer, minute=1000)])
    apart = pair(db, newcomer, original)

    second = run(db, settings, incremental=True)

    assert (second.kind, second.since) == ("incremental", first.started_at)
    # the newcomer, and the survivors of the first run's merges (their records changed); no one else
    assert second.scored == 1 + len(survivors)
    assert second.profiles == len(crowd.everyone) - first.auto_merged + 1
    [found] = [m for m in merges(db) if m.reason.startswith(f"matching run {second.id}:")]
    assert merged(found) == apart and profile_of(db, newcomer) == profile_of(db, original)

    third = run(db, settings, incremental=True)
    assert (third.kind, third.scored, third.auto_merged, third.suggested) == ("incremental", 1, 0, 0)


def test_a_model_trained_on_the_first_few_profiles_is_not_reused_once_they_have_grown(
    db: Database, settings: Settings
) -> None:
    people = world()
    first, second, *rest = people.events()
    ingest(db, settings, [first, second])
    tiny = resolve(db, settings=settings, auto_merge=AUTO_MERGE, review=REVIEW)
    assert tiny.status == "done" and tiny.model is not None  # trained on two profiles
    ingest(db, settings, rest)
    typo = pair(db, people.typo, people.original(people.typo))

    grown = resolve(db, settings=settings, auto_merge=AUTO_MERGE, review=REVIEW)

    # two profiles say nothing of how often strangers agree: a model of them finds no one, so the
    # run trains again on what is there now, and that one is kept for the runs after it
    assert any(merged(m) == typo for m in merges(db))
    assert grown.model_run_id == grown.id and grown.model is not None
    again = resolve(db, settings=settings, auto_merge=AUTO_MERGE, review=REVIEW)
    assert again.model_run_id == grown.id


def test_a_retrain_asked_for_is_done_even_when_an_incremental_run_has_nothing_to_score(
    db: Database, settings: Settings, crowd: World
) -> None:
    first = run(db, settings)
    settled = run(db, settings, model=None, incremental=True)  # the survivors of the first run's merges
    assert settled.auto_merged == 0

    again = run(db, settings, model=None, incremental=True, retrain=True)

    assert (again.kind, again.scored, again.pairs) == ("incremental", 0, 0)
    assert again.model_run_id == again.id and again.model is not None and again.model != first.model
    assert run(db, settings, model=None).model_run_id == again.id  # the runs after it use the new model


def test_an_open_suggestion_the_rules_come_to_forbid_leaves_the_stewards_queue_as_refused(
    db: Database, settings: Settings, crowd: World
) -> None:
    run(db, settings)
    kate, katherine = crowd.nickname, crowd.original(crowd.nickname)
    nickname = pair(db, kate, katherine)
    assert [s["status"] for s in suggestions(db, None) if of(s) == nickname] == ["open"]
    # the ERP files each under a customer number of its own: no one may merge the two now
    numbered = [
        page_view({"email": p.email, "customer_id": f"C-{n}"}, minute=3000)
        for n, p in enumerate((kate, katherine))
    ]
    ingest(db, settings, numbered)

    again = run(db, settings, incremental=True)

    assert not [s for s in suggestions(db) if of(s) == nickname]
    [refused] = [s for s in suggestions(db, None) if of(s) == nickname]
    assert refused["status"] == "refused" and "customer_id" in refused["refused"]
    assert refused["decided_by"] == f"matching run {again.id}" and again.refused == 1


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("auto_merge", "review"), [(0.5, 0.9), (1.5, 0.9), (0.9, -0.1), (float("nan"), 0.5)])
def test_thresholds_out_of_order_are_refused_and_change_nothing(
    db: Database, settings: Settings, crowd: World, auto_merge: float, review: float
) -> None:
    with pytest.raises(BadThresholds, match="review") as refused:
        resolve(db, settings=settings, auto_merge=auto_merge, review=review)
    assert "auto_merge" in str(refused.value)
    with db.session() as session:
        assert session.scalars(select(MatchRun)).all() == []
    assert merges(db) == []


def test_an_empty_database_and_profiles_with_nothing_to_compare_give_a_run_without_pairs(
    db: Database, settings: Settings
) -> None:
    empty = resolve(db, settings=settings)
    nothing = event("profile.updated", ids={"email": "a@example.com"}, locale="en")
    ingest(db, settings, [page_view({"cookie_id": "c-1"}), nothing, page_view({"email": "b@example.com"})])
    alone = resolve(db, settings=settings, incremental=True)

    assert (empty.status, empty.profiles, empty.pairs, empty.auto_merged, empty.suggested) == (
        "done",
        0,
        0,
        0,
        0,
    )
    assert (alone.status, alone.profiles, alone.pairs) == ("done", 2, 0)


def test_unicode_names_and_missing_fields_are_matched_without_trouble(
    db: Database, settings: Settings
) -> None:
    people = world(60, again=12)
    odd = [
        p for p in people.everyone if not (p.birth_date and p.last_name and (p.first_name or "").isascii())
    ]
    assert odd  # the crowd has them
    ingest(db, settings, people.events())
    person = who(db, people)

    done = resolve(db, settings=settings, auto_merge=AUTO_MERGE, review=REVIEW)

    assert done.status == "done" and done.model is not None and done.model_run_id == done.id
    assert all(person(m.survivor_id) == person(m.absorbed_id) for m in merges(db))


# -- failures ------------------------------------------------------------------------------------------


def test_a_run_with_a_model_that_cannot_be_read_fails_and_changes_nothing(
    db: Database, settings: Settings, crowd: World
) -> None:
    before = live(db)

    with pytest.raises(RunFailed, match="identity graph is unchanged") as failed:
        resolve(db, settings=settings, model='{"comparisons": "not a model"}')

    assert failed.value.run.status == "failed" and failed.value.run.error
    assert live(db) == before and merges(db) == [] and suggestions(db, None) == []
    with db.session() as session:
        [stored] = session.scalars(select(MatchRun)).all()
    assert (stored.status, stored.finished_at is not None) == ("failed", True)


def test_a_run_that_fails_half_way_leaves_the_identity_graph_as_it_was(
    db: Database, settings: Settings, crowd: World
) -> None:
    before = live(db)

    def interrupted(message: str) -> None:
        if message.startswith("merged"):  # the merges are written, the suggestions not yet
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(db, settings, on_progress=interrupted)

    assert live(db) == before and merges(db) == [] and suggestions(db, None) == []
    with db.session() as session:
        [failed] = session.scalars(select(MatchRun)).all()
        assert session.scalars(select(MatchSuggestion)).all() == []
    assert (failed.status, failed.error) == ("failed", "KeyboardInterrupt: ")
    # and the next run does the work
    assert run(db, settings).auto_merged >= 1


def test_suggestions_of_profiles_merged_or_erased_since_become_obsolete(
    db: Database, settings: Settings, crowd: World
) -> None:
    run(db, settings)
    nickname = pair(db, crowd.nickname, crowd.original(crowd.nickname))
    # events tie the two together: the identity graph merges them on its own
    tie(db, settings, crowd.nickname, crowd.original(crowd.nickname), "L-2")
    assert profile_of(db, crowd.nickname) == profile_of(db, crowd.original(crowd.nickname))
    assert not [s for s in suggestions(db) if of(s) == nickname]  # no longer listed as open

    run(db, settings)

    [stale] = [s for s in suggestions(db, None) if of(s) == nickname]
    assert (stale["status"], stale["decided_by"]) == ("obsolete", "matching")


# -- the command line ----------------------------------------------------------------------------------


def test_the_command_resolves_and_refuses_thresholds_out_of_order(
    cli: CliRunner, db: Database, crowd: World
) -> None:
    refused = cli.invoke(app, ["identity", "resolve", "--auto-merge", "0.5", "--review", "0.9"])
    assert refused.exit_code == 2
    assert "review" in refused.output and "auto_merge" in refused.output

    done = cli.invoke(app, ["identity", "resolve", "--auto-merge", str(AUTO_MERGE), "--review", str(REVIEW)])

    assert done.exit_code == 0, done.output
    assert f"{len(crowd.everyone):,} profiles" in done.output
    assert "merged" in done.output and "suggested" in done.output
    with db.session() as session:
        [stored] = session.scalars(select(MatchRun)).all()
    assert stored.status == "done" and stored.auto_merged >= 1


def test_ctrl_c_stops_the_command_in_one_line_with_the_run_failed_and_nothing_merged(
    cli: CliRunner, db: Database, crowd: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rapport.matching.engine

    def pressed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # what the engine raises when Ctrl-C stops its query

    monkeypatch.setattr(rapport.matching.engine, "train", pressed)

    result = cli.invoke(app, ["identity", "resolve", "--retrain"])

    assert result.exit_code == 130, result.output
    said = "identity resolution interrupted: the run is recorded as failed and nothing was merged"
    assert result.stderr.splitlines()[-1] == said
    assert merges(db) == [] and suggestions(db, None) == []
    with db.session() as session:
        [failed] = session.scalars(select(MatchRun)).all()
    assert failed.status == "failed"
